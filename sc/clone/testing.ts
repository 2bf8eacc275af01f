// Test support for the SC link: a raw peer that speaks (or forges) the protocol step by step
// on a socket of its own, and free ports for the links. Not imported by product code.
import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import {
  decodeScMessage,
  encodeScMessage,
  ScDecodeError,
  ScFramer,
  ScType,
  type ScMessage,
} from "./message.js";
import { ClientHandshake, type LinkKey, type LinkSession } from "../auth/link.js";

/** A TCP port free on `host` now (for SC servers that must know each other's ports first). */
export async function freePort(host: string): Promise<number> {
  const s = net.createServer();
  s.listen(0, host);
  await once(s, "listening");
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A raw SC peer on a socket of its own: does (or forges) each step by hand. */
export class RawPeer {
  readonly framer = new ScFramer();
  readonly got: ScMessage[] = [];
  session: LinkSession | null = null;
  readonly closed: Promise<unknown>;
  private waiters: (() => void)[] = [];

  private constructor(readonly sock: net.Socket) {
    this.closed = new Promise((r) => sock.once("close", r));
    sock.on("error", () => undefined);
    sock.on("data", (chunk: Buffer) => {
      this.framer.push(chunk);
      for (;;) {
        const f = this.framer.next();
        if (f === null || f instanceof ScDecodeError) break;
        if (this.session !== null) assert.ok(this.session.open(f.bytes, f.tag), "server tag verifies");
        const m = decodeScMessage(f.bytes);
        assert.ok(!(m instanceof ScDecodeError));
        this.got.push(m);
      }
      const w = this.waiters;
      this.waiters = [];
      for (const x of w) x();
    });
  }

  static async connect(from: string, to: { host: string; port: number }): Promise<RawPeer> {
    const sock = net.connect({ host: to.host, port: to.port, localAddress: from });
    await once(sock, "connect");
    return new RawPeer(sock);
  }

  /** Waits for the n-th message received (1-based). */
  async message(n: number): Promise<ScMessage> {
    while (this.got.length < n) await new Promise<void>((r) => this.waiters.push(r));
    return this.got[n - 1]!;
  }

  /**
   * Does the client handshake as `id` with `key` towards the server `serverId`; returns the
   * HELLO bytes it sent. Waits for the HELLO-ACK unless `forged` (a refused HELLO gets none).
   */
  async handshake(id: string, key: LinkKey, forged = false, serverId = "b"): Promise<Uint8Array> {
    const ch = await this.message(1);
    assert.equal(ch.type, ScType.Challenge);
    const hs = new ClientHandshake(key, id, serverId, randomBytes(32));
    const r = hs.onChallenge(ch);
    assert.ok("hello" in r);
    const hello = encodeScMessage(r.hello);
    this.sock.write(hello);
    if (forged) return hello;
    const ack = await this.message(2);
    if (ack.type === ScType.HelloAck) {
      const done = hs.onHelloAck(ack);
      if ("session" in done) {
        this.session = done.session;
        this.framer.tagLength = done.session.tagLength;
      }
    }
    return hello;
  }

  /** Encodes, tags and writes a message; returns the frame's bytes (for replays). */
  send(m: ScMessage): Buffer {
    const bytes = encodeScMessage(m);
    const frame = Buffer.concat([bytes, this.session?.seal(bytes) ?? new Uint8Array(0)]);
    this.sock.write(frame);
    return frame;
  }
}
