// The kTLS-style take-over of a TLS 1.3 connection: OpenSSL (node:tls) does the handshake,
// then our record layer (sc/tls) carries the connection, so that its write side can later be
// handed to a clone on another node. Exactness comes from watching, not from assumptions: a
// tap on the raw bytes between the TCP socket and OpenSSL decrypts every record of both
// directions with the secrets OpenSSL reports through its keylog, so at the take-over point
// the sequence numbers (NewSessionTickets included) and any request bytes the client already
// sent are known. A byte OpenSSL writes after the take-over would break that count: the
// connection is then reset and counted, never continued with a wrong sequence number.
import { EventEmitter } from "node:events";
import type { Conn } from "./conn.js";
import {
  ContentType,
  direction,
  isTlsError,
  openRecord,
  RecordFramer,
  type Direction,
} from "../../sc/tls/record.js";
import { cipherSuite, type CipherSuite } from "../../sc/tls/suites.js";
import { TlsSession, type SessionOptions } from "../../sc/tls/session.js";

/** Why a take-over did not happen (the connection is reset). */
export const TAKEOVER_FAILURES = [
  "no_secrets",
  "unsupported_suite",
  "bad_record",
  "late_write",
  "closed",
] as const;
export type TakeoverFailure = (typeof TAKEOVER_FAILURES)[number];

/** Encrypted bytes a tap holds while it waits for a secret; a handshake never needs more. */
const MAX_WAITING_BYTES = 64 * 1024;
const RECORD_CCS = 20;
const RECORD_HANDSHAKE = 22;
const RECORD_APPLICATION = 23;

type SecretName =
  | "SERVER_HANDSHAKE_TRAFFIC_SECRET"
  | "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
  | "SERVER_TRAFFIC_SECRET_0"
  | "CLIENT_TRAFFIC_SECRET_0";
const SECRET_NAMES: readonly SecretName[] = [
  "SERVER_HANDSHAKE_TRAFFIC_SECRET",
  "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
  "SERVER_TRAFFIC_SECRET_0",
  "CLIENT_TRAFFIC_SECRET_0",
];

/**
 * One direction of the raw stream, followed record by record: plaintext records of the
 * handshake, then records under the handshake key, then under the application key. Each
 * encrypted record is opened (so it is known, not guessed, under which key and at which
 * sequence number it went); application data found on the way is kept.
 */
class DirectionTap {
  private readonly framer = new RecordFramer();
  private hs: Direction | null = null;
  /** The application direction, once its secret is known; its seq counts the records opened. */
  app: Direction | null = null;
  /** Application bytes in records opened under the application key (the client's first request). */
  readonly data: Buffer[] = [];
  /** Records seen under the application key, by inner type (NewSessionTicket: Handshake). */
  readonly appRecords: ContentType[] = [];
  failed: string | null = null;
  /** Encrypted records waiting for a secret (the keylog line comes after some bytes are written). */
  private waiting: Buffer[] = [];
  private waitingBytes = 0;
  private draining = false;
  /** The handshake key's records are over. */
  private inApp = false;

  constructor(private readonly suite: () => CipherSuite | undefined) {}

  setSecrets(hs: Buffer | undefined, app: Buffer | undefined): void {
    const suite = this.suite();
    if (suite === undefined) return;
    if (hs !== undefined && this.hs === null) this.hs = direction(suite, hs);
    if (app !== undefined && this.app === null) this.app = direction(suite, app);
    const w = this.waiting;
    this.waiting = [];
    this.waitingBytes = 0;
    this.draining = true;
    for (let i = 0; i < w.length; i++) {
      this.record(w[i]!);
      // Still no key for it: it and the rest stay queued, in order.
      if (this.waiting.length > 0) {
        this.waiting.push(...w.slice(i + 1));
        break;
      }
    }
    this.draining = false;
  }

  push(bytes: Uint8Array): void {
    if (this.failed !== null) return;
    const records = this.framer.push(bytes);
    if (isTlsError(records)) {
      this.failed = records.detail;
      return;
    }
    for (const r of records) this.record(Buffer.from(r));
  }

  /** Whole records still waiting for a secret (a take-over point must have none). */
  get waitingRecords(): number {
    return this.waiting.length;
  }

  /** Bytes of an incomplete record (the rest is still on its way). */
  get partial(): number {
    return this.framer.buffered;
  }

  /** Takes the bytes of the incomplete record (the record layer taking over reads on from them). */
  takePartial(): Buffer {
    return this.framer.takeBuffered();
  }

  private record(r: Buffer): void {
    if (this.failed !== null) return;
    const type = r[0];
    if (type === RECORD_HANDSHAKE || type === RECORD_CCS) return; // Hellos, the compatibility CCS
    if (type !== RECORD_APPLICATION) {
      this.failed = `record of type ${type} during the handshake`;
      return;
    }
    // In order: while one record waits for a secret, the ones after it wait too.
    if ((this.waiting.length > 0 && !this.draining) || this.hs === null) {
      this.wait(r);
      return;
    }
    if (!this.inApp) {
      // Under the handshake key while it opens; the first one that does not is the application key's.
      const before = this.hs.seq;
      if (!isTlsError(openRecord(this.hs, r))) return;
      this.hs.seq = before;
      if (this.app === null) {
        this.wait(r);
        return;
      }
      this.inApp = true;
    }
    const app = this.app!;
    const o = openRecord(app, r);
    if (isTlsError(o)) {
      this.failed = `record ${app.seq} under the application key: ${o.alert}`;
      return;
    }
    this.appRecords.push(o.type);
    if (o.type === ContentType.ApplicationData && o.content.length > 0)
      this.data.push(Buffer.from(o.content));
  }

  /** Queues a record until its secret is known, within a bound (else the tap gives up). */
  private wait(r: Buffer): void {
    this.waitingBytes += r.length;
    if (this.waitingBytes > MAX_WAITING_BYTES) {
      this.failed = "no secret for the records seen";
      this.waiting = [];
      return;
    }
    this.waiting.push(r);
  }
}

/**
 * Watches a server TLSSocket's handshake on `raw` (the Duplex it runs on) and, once it is done,
 * takes the connection over. Create it before the TLSSocket starts reading, call `inbound` and
 * `outbound` with every raw byte the Duplex carries, `keylog` with every keylog line.
 */
export class TlsTakeover {
  private readonly secrets = new Map<SecretName, Buffer>();
  private suiteValue: CipherSuite | undefined;
  readonly fromClient = new DirectionTap(() => this.suiteValue);
  readonly fromServer = new DirectionTap(() => this.suiteValue);

  keylog(line: Buffer): void {
    const text = line.toString("latin1").trim();
    const [name, , hex] = text.split(" ");
    if (name === undefined || hex === undefined || !(SECRET_NAMES as readonly string[]).includes(name))
      return;
    this.secrets.set(name as SecretName, Buffer.from(hex, "hex"));
    this.feedSecrets();
  }

  /** The negotiated suite (from getCipher().standardName), known from the ServerHello on. */
  setSuite(name: string): boolean {
    this.suiteValue = cipherSuite(name);
    this.feedSecrets();
    return this.suiteValue !== undefined;
  }

  inbound(bytes: Uint8Array): void {
    this.fromClient.push(bytes);
  }

  outbound(bytes: Uint8Array): void {
    this.fromServer.push(bytes);
  }

  /**
   * The session at this point: our read side continues after every client record seen, our
   * write side after every server record (the tickets included). Plus the application bytes
   * the client already sent. A TakeoverFailure if anything is not accounted for.
   */
  session(
    opts: SessionOptions = {},
  ): { session: TlsSession; early: Buffer; ticketsSeen: number } | TakeoverFailure {
    const suite = this.suiteValue;
    if (suite === undefined) return "unsupported_suite";
    const c = this.fromClient;
    const s = this.fromServer;
    if (c.failed !== null || s.failed !== null) return "bad_record";
    if (c.app === null || s.app === null || !this.secrets.has("CLIENT_TRAFFIC_SECRET_0")) return "no_secrets";
    // OpenSSL writes whole records; the client's last record may still be arriving.
    if (c.waitingRecords > 0 || s.waitingRecords > 0 || s.partial > 0) return "bad_record";
    const session = new TlsSession(
      {
        suite,
        read: { secret: this.secrets.get("CLIENT_TRAFFIC_SECRET_0")!, seq: c.app.seq },
        write: { secret: this.secrets.get("SERVER_TRAFFIC_SECRET_0")!, seq: s.app.seq },
      },
      opts,
    );
    // An incomplete record yields no event yet: its bytes only move to the session's framer.
    const rest = session.receive(c.takePartial());
    if (rest.length > 0) return "bad_record";
    const ticketsSeen = s.appRecords.filter((t) => t === ContentType.Handshake).length;
    return { session, early: Buffer.concat(c.data), ticketsSeen };
  }

  /** Zeroes the secrets held (after the take-over, or when it failed). */
  wipe(): void {
    for (const s of this.secrets.values()) s.fill(0);
    this.secrets.clear();
  }

  private feedSecrets(): void {
    this.fromServer.setSecrets(
      this.secrets.get("SERVER_HANDSHAKE_TRAFFIC_SECRET"),
      this.secrets.get("SERVER_TRAFFIC_SECRET_0"),
    );
    this.fromClient.setSecrets(
      this.secrets.get("CLIENT_HANDSHAKE_TRAFFIC_SECRET"),
      this.secrets.get("CLIENT_TRAFFIC_SECRET_0"),
    );
  }
}

/**
 * A connection our record layer carries after the take-over: a Conn for the HTTP server, with
 * plaintext in and out, over the TCP connection the handshake ran on. The client's
 * close_notify is 'end'; end() sends ours, then FIN; a record that does not authenticate gets
 * its alert and a reset. Secrets are wiped when the connection closes.
 */
export class TlsRecordConn extends EventEmitter {
  private closed = false;
  private ended = false;
  private readonly pendingData: Buffer[];

  constructor(
    /** The TCP connection (the user-space TcpSocket on the VIP). */
    readonly socket: Conn,
    /** The session from the take-over point on: what a clone would continue. */
    readonly session: TlsSession,
    /** Application bytes the client sent before the take-over (opened by the tap). */
    early: Buffer,
  ) {
    super();
    this.pendingData = early.length > 0 ? [early] : [];
    socket.on("data", this.onData);
    socket.on("end", () => this.emitEnd());
    socket.on("drain", () => this.emit("drain"));
    socket.on("error", (err) => this.emit("error", err));
    socket.on("close", () => {
      this.closed = true;
      this.session.wipe();
      this.emit("close");
    });
    socket.resume(); // the TLS layer may have paused it (its buffer was full)
    // The early bytes go out once the server has its listeners (next tick, like a socket's first data).
    this.on("newListener", (event: string) => {
      if (event === "data" && this.pendingData.length > 0)
        queueMicrotask(() => {
          for (const d of this.pendingData.splice(0)) this.emit("data", d);
        });
    });
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }
  get writableLength(): number {
    return this.socket.writableLength;
  }
  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  write(chunk: Uint8Array, cb?: (err?: Error | null) => void): boolean {
    if (this.socket.destroyed) {
      cb?.(new Error("connection closed"));
      return false;
    }
    return this.socket.write(chunk.length === 0 ? chunk : this.session.seal(chunk), cb);
  }

  end(): void {
    if (this.socket.destroyed) return;
    // A clone may have sent the session's close_notify with the last response (docs/tls.md).
    if (this.session.writeOpen) this.socket.write(this.session.closeNotify());
    this.socket.end();
  }

  destroy(error?: Error): void {
    this.session.wipe();
    this.socket.destroy(error);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  cork(): void {
    this.socket.cork?.();
  }

  uncork(): void {
    this.socket.uncork?.();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closed) return;
    for (const e of this.session.receive(chunk)) {
      switch (e.kind) {
        case "data":
          this.emit("data", e.data);
          break;
        case "close_notify":
          this.emitEnd();
          break;
        case "key_update":
        case "handshake":
          break; // an owed KeyUpdate goes out before our next record (TlsSession)
        case "alert":
          this.socket.destroy();
          return;
        case "error":
          this.socket.write(this.session.alert(e.error.alert));
          this.socket.destroy();
          return;
      }
    }
  };

  private emitEnd(): void {
    if (this.ended) return;
    this.ended = true;
    this.emit("end");
  }
}
