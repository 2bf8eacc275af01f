// The take-over: OpenSSL's handshake, then our record layer carries the connection, against
// node:tls (OpenSSL) as the client. Over loopback (node:net) and over our TCP stack.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import type { Conn } from "./conn.js";
import { makeDemoCertificates, type DemoCertificates } from "./tls-certs.js";
import { TlsTermination } from "./tls.js";
import { TlsRecordConn, TlsTakeover } from "./tls-takeover.js";

let dir = "";
let certs: DemoCertificates;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sc-tko-"));
  certs = await makeDemoCertificates(dir, { ips: ["127.0.0.1"], names: ["localhost"] });
});
after(() => rm(dir, { recursive: true, force: true }));

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** An echo server whose TLS 1.3 connections are taken over; `conns` are what it was handed. */
async function echoServer(term: TlsTermination) {
  const open = new Set<net.Socket>();
  const conns: Conn[] = [];
  const closedConns = new Set<Conn>();
  const srv = net.createServer({ allowHalfOpen: true }, (sock) => {
    open.add(sock);
    sock.on("close", () => open.delete(sock));
    term.accept(sock, (c) => {
      conns.push(c);
      c.on("close", () => closedConns.add(c));
      c.on("data", (d) => c.write(d));
      c.on("end", () => c.end());
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    conns,
    closedConns,
    close() {
      srv.close();
      for (const s of open) s.destroy();
    },
  };
}

function termination() {
  return TlsTermination.create({
    certFile: certs.cert,
    keyFile: certs.key,
    handshakeTimeoutMs: 5000,
    maxHandshakes: 100,
    takeOver: true,
  });
}

/** Sends `payload` right after the handshake (it may reach the server before the take-over), reads the echo, closes. */
function echo(port: number, payload: Buffer, o: tls.ConnectionOptions = {}) {
  return new Promise<{ got: Buffer; protocol: string | null; suite: string; ended: boolean }>(
    (resolve, reject) => {
      const c = tls.connect({
        host: "127.0.0.1",
        port,
        ca: [readFileSync(certs.caCert)],
        servername: "localhost",
        ...o,
      });
      const got: Buffer[] = [];
      let ended = false;
      let protocol: string | null = null;
      let suite = "";
      c.on("secureConnect", () => {
        protocol = c.getProtocol();
        suite = c.getCipher().standardName;
        c.write(payload);
      });
      c.on("data", (d: Buffer) => {
        got.push(d);
        if (Buffer.concat(got).length >= payload.length) c.end(); // our close_notify
      });
      c.on("end", () => (ended = true));
      c.on("error", reject);
      c.on("close", () =>
        resolve({
          got: Buffer.concat(got),
          protocol,
          suite,
          ended,
        }),
      );
    },
  );
}

test("TLS 1.3 taken over after the handshake: echo byte-exact, close_notify both ways, tickets accounted", async () => {
  const term = await termination();
  const s = await echoServer(term);
  try {
    for (const size of [1, 5000, 300_000]) {
      const payload = Buffer.alloc(size);
      for (let i = 0; i < size; i++) payload[i] = (i * 13 + size) & 0xff;
      const r = await echo(s.port, payload);
      assert.equal(r.protocol, "TLSv1.3");
      assert.equal(sha(r.got), sha(payload), `size ${size}`);
      assert.ok(r.ended, "the server's close_notify arrived (the client saw a clean end)");
    }
    assert.equal(term.counters.takenOver, 3);
    assert.ok(s.conns.every((c) => c instanceof TlsRecordConn));
    // OpenSSL sends two NewSessionTickets per TLS 1.3 handshake by default: found by decrypting
    // them, and our write sequence starts after them.
    assert.equal(term.counters.ticketsAccounted, 6);
    assert.deepEqual(term.counters.takeoverFailures, {
      no_secrets: 0,
      unsupported_suite: 0,
      bad_record: 0,
      late_write: 0,
      closed: 0,
    });
    // Once a connection is gone its secrets are zeros.
    await Promise.all(
      s.conns.map((c) => (s.closedConns.has(c) ? undefined : new Promise((r) => c.on("close", r)))),
    );
    for (const c of s.conns)
      assert.ok((c as unknown as TlsRecordConn).session.writeState().secret.every((b) => b === 0));
  } finally {
    s.close();
  }
});

test("every TLS 1.3 suite is taken over; TLS 1.2 stays with OpenSSL", async () => {
  const term = await termination();
  const s = await echoServer(term);
  try {
    for (const suite of [
      "TLS_AES_128_GCM_SHA256",
      "TLS_AES_256_GCM_SHA384",
      "TLS_CHACHA20_POLY1305_SHA256",
    ]) {
      const payload = Buffer.from(`hello with ${suite} `.repeat(2000));
      const r = await echo(s.port, payload, { ciphers: suite });
      assert.equal(r.suite, suite);
      assert.equal(sha(r.got), sha(payload));
    }
    assert.equal(term.counters.takenOver, 3);
    const r12 = await echo(s.port, Buffer.from("over 1.2"), { maxVersion: "TLSv1.2" });
    assert.equal(r12.protocol, "TLSv1.2");
    assert.equal(r12.got.toString(), "over 1.2");
    assert.equal(term.counters.takenOver, 3);
    assert.deepEqual(term.counters.handshakes, { "TLSv1.3": 3, "TLSv1.2": 1 });
  } finally {
    s.close();
  }
});

test("a forged record after the take-over gets an alert and a reset, not data", async () => {
  const term = await termination();
  const s = await echoServer(term);
  try {
    // A raw TCP client that does the handshake through node:tls, then writes a bad record itself.
    const raw = net.connect(s.port, "127.0.0.1");
    const c = tls.connect({ socket: raw, ca: [readFileSync(certs.caCert)], servername: "localhost" });
    await new Promise((r) => c.once("secureConnect", r));
    c.write("first");
    await new Promise((r) => c.once("data", r));
    const errors: string[] = [];
    c.on("error", (e: NodeJS.ErrnoException) => errors.push(String(e.code ?? e.message)));
    const closed = new Promise((r) => raw.once("close", r));
    raw.write(Buffer.from([23, 3, 3, 0, 20, ...Array<number>(20).fill(7)]));
    await closed;
    assert.equal(term.counters.takenOver, 1);
    // The server's bad_record_mac alert reached the client's TLS layer.
    assert.ok(
      errors.some((e) => /ALERT_BAD_RECORD_MAC|bad record mac|ECONNRESET/i.test(e)),
      errors.join(","),
    );
  } finally {
    s.close();
  }
});

test("KeyUpdate from OpenSSL's s_client, requested and not: our record layer follows both ways", async () => {
  const term = await termination();
  const conns: TlsRecordConn[] = [];
  const open = new Set<net.Socket>();
  const srv = net.createServer({ allowHalfOpen: true }, (sock) => {
    open.add(sock);
    sock.on("close", () => open.delete(sock));
    term.accept(sock, (c) => {
      conns.push(c as unknown as TlsRecordConn);
      c.on("data", (d) => c.write(Buffer.from(`echo:${d.toString()}`)));
      c.on("end", () => c.end());
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  // Interactive s_client: a line "K" sends KeyUpdate(update_requested), "k" KeyUpdate(update_not_requested).
  const p = spawn(
    "openssl",
    [
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      "-CAfile",
      certs.caCert,
      "-servername",
      "localhost",
      "-tls1_3",
    ],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  let out = "";
  const waiters: (() => void)[] = [];
  const onOut = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) w();
  };
  p.stdout.on("data", onOut);
  p.stderr.on("data", onOut);
  const waitFor = async (re: RegExp, count = 1) => {
    while ((out.match(new RegExp(re, "g")) ?? []).length < count)
      await new Promise<void>((r) => waiters.push(r));
  };
  try {
    await waitFor(/Verify return code: 0/);
    p.stdin.write("hello\n");
    await waitFor(/echo:hello/);
    const session = () => conns[0]!.session;
    const seqBefore = session().writeSeq;
    assert.ok(seqBefore >= 3, "after the tickets and one record"); // 2 tickets + "echo:hello"
    p.stdin.write("K\n");
    await waitFor(/KEYUPDATE/);
    p.stdin.write("after\n");
    await waitFor(/echo:after/);
    // Our owed KeyUpdate went first under the old key, then "echo:after" as record 0 of the new key.
    assert.equal(session().writeSeq, 1);
    assert.equal(
      session().readSeq,
      1,
      "the client's line after its KeyUpdate: record 0 of its new key, now 1",
    );
    p.stdin.write("k\n");
    await waitFor(/KEYUPDATE/, 2);
    p.stdin.write("again\n");
    await waitFor(/echo:again/);
    assert.equal(session().writeSeq, 2, "no update owed: our key stays");
    assert.equal(session().readSeq, 1);
    assert.equal(term.counters.takenOver, 1);
  } finally {
    p.kill();
    srv.close();
    for (const s of open) s.destroy();
  }
});

test("a tap that never learns its secrets holds a bounded amount, then gives up", () => {
  const tap = new TlsTakeover();
  const record = Buffer.concat([Buffer.from([23, 3, 3, 0x03, 0xe8]), Buffer.alloc(1000, 9)]);
  for (let i = 0; i < 1000; i++) tap.outbound(record); // 1 MB of records, no keylog line
  assert.notEqual(tap.fromServer.failed, null);
  assert.equal(tap.fromServer.waitingRecords, 0, "nothing kept once it gave up");
  assert.equal(tap.session(), "unsupported_suite");
  tap.setSuite("TLS_AES_128_GCM_SHA256");
  assert.equal(tap.session(), "bad_record");
});
