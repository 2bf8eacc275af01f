// TLS termination: OpenSSL's handshake over our user-space TCP socket (through ConnDuplex, on a
// virtual network) and over node:net on loopback; versions, ALPN, failures, reload, metrics.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { Registry } from "prom-client";
import { VirtualNet } from "../../sc/tcp/sim.js";
import { TcpServer, connectTcp, type TcpSocket } from "../../sc/tcp/socket.js";
import type { Conn } from "./conn.js";
import { UserError } from "../../common/errors.js";
import { makeDemoCertificates, type DemoCertificates } from "./tls-certs.js";
import { ConnDuplex, registerTlsMetrics, TlsTermination } from "./tls.js";

const VIP = "198.18.100.1";
let dir = "";
let certs: DemoCertificates;
let certs2: DemoCertificates;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sc-tls-"));
  certs = await makeDemoCertificates(join(dir, "a"), { ips: [VIP, "127.0.0.1"], names: ["localhost"] });
  certs2 = await makeDemoCertificates(join(dir, "b"), { ips: [VIP, "127.0.0.1"], names: ["localhost"] });
});
after(() => rm(dir, { recursive: true, force: true }));

function termination(extra: { handshakeTimeoutMs?: number; maxHandshakes?: number } = {}) {
  return TlsTermination.create({
    certFile: certs.cert,
    keyFile: certs.key,
    handshakeTimeoutMs: extra.handshakeTimeoutMs ?? 5000,
    maxHandshakes: extra.maxHandshakes ?? 100,
  });
}

/** An echo server behind TLS termination on loopback (node:net sockets are Conns as they are). */
async function loopbackServer(term: TlsTermination): Promise<{ port: number; close: () => void }> {
  const open = new Set<net.Socket>();
  const srv = net.createServer({ allowHalfOpen: true }, (sock) => {
    open.add(sock);
    sock.on("close", () => open.delete(sock));
    term.accept(sock, (secure) => secure.on("data", (d) => secure.write(d)));
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () => {
      srv.close();
      for (const sock of open) sock.destroy();
    },
  };
}

/** The server certificate each client saw, taken at its handshake. */
const fingerprints = new WeakMap<tls.TLSSocket, string>();

/**
 * A client connection, after one echo round trip: in TLS 1.3 the client is done before the
 * server has read its Finished, and the server counts a handshake only then.
 */
function connect(port: number, o: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, ca: [readCa()], ALPNProtocols: ["http/1.1"], ...o });
    s.once("secureConnect", () => {
      fingerprints.set(s, s.getPeerX509Certificate()?.fingerprint256 ?? "none");
      s.write("ping");
      s.once("data", () => resolve(s));
    });
    s.once("error", reject);
  });
}

/** The demo CA, as a client that trusts the cluster has it. */
function readCa(): Buffer {
  return readFileSync(certs.caCert);
}

test("OpenSSL's handshake over our user-space TCP socket: TLS 1.3, ALPN http/1.1, 1 MB both ways byte-exact", async () => {
  const term = await termination();
  const vnet = new VirtualNet(3);
  const server = vnet.addStack([VIP]);
  const client = vnet.addStack(["198.18.0.2"]);
  const srv = new TcpServer(server, { allowHalfOpen: true });
  let secureConn: Conn | undefined;
  // TcpSocket follows net.Socket: it is a Conn (its EventEmitter typings are only wider).
  srv.on("connection", (s: TcpSocket) =>
    term.accept(s as unknown as Conn, (secure) => {
      secureConn = secure;
      secure.on("data", (d) => secure.write(d));
      secure.on("end", () => secure.end());
    }),
  );
  srv.listen(443, VIP);
  const raw = connectTcp(client, { host: VIP, port: 443 });
  const c = tls.connect({
    socket: new ConnDuplex(raw as unknown as Conn),
    ca: [readCa()],
    servername: "localhost",
    ALPNProtocols: ["http/1.1"],
  });
  let secure = false;
  c.once("secureConnect", () => (secure = true));
  const until = async (p: () => boolean) => {
    for (let i = 0; i < 2000 && !p(); i++) {
      await vnet.run(p, 1000);
      await new Promise((r) => setImmediate(r));
    }
    return p();
  };
  assert.ok(await until(() => secure && secureConn !== undefined), "handshake completes on both ends");
  assert.equal(c.getProtocol(), "TLSv1.3");
  assert.equal(c.alpnProtocol, "http/1.1");
  assert.ok(secureConn);
  assert.equal(secureConn.remoteAddress, "198.18.0.2", "the TLS socket knows its peer (access log)");
  const payload = Buffer.alloc(1 << 20);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + (i >> 10)) & 0xff;
  const got: Buffer[] = [];
  let ended = false;
  c.on("data", (d: Buffer) => got.push(d));
  c.on("end", () => (ended = true));
  c.end(payload);
  assert.ok(await until(() => ended), "echo complete");
  const h = (b: Buffer) => createHash("sha256").update(b).digest("hex");
  assert.equal(h(Buffer.concat(got)), h(payload));
  assert.deepEqual(term.counters.handshakes, { "TLSv1.3": 1, "TLSv1.2": 0 });
  assert.equal(term.counters.pending, 0);
});

test("TLS 1.2 clients are served and counted apart; the suites offered are ECDHE AEADs", async () => {
  const term = await termination();
  const s = await loopbackServer(term);
  try {
    const c12 = await connect(s.port, { maxVersion: "TLSv1.2", servername: "localhost" });
    assert.equal(c12.getProtocol(), "TLSv1.2");
    assert.match(c12.getCipher().name, /^ECDHE-/);
    c12.destroy();
    for (const suite of [
      "TLS_AES_128_GCM_SHA256",
      "TLS_AES_256_GCM_SHA384",
      "TLS_CHACHA20_POLY1305_SHA256",
    ]) {
      const c = await connect(s.port, { ciphers: suite, servername: "localhost" });
      assert.equal(c.getCipher().standardName, suite);
      c.destroy();
    }
    // TLS 1.1 is refused.
    await assert.rejects(connect(s.port, { minVersion: "TLSv1", maxVersion: "TLSv1.1" }));
    const until = Date.now() + 5000;
    while (term.counters.failures.protocol < 1 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(term.counters.handshakes, { "TLSv1.3": 3, "TLSv1.2": 1 });
    assert.equal(term.counters.failures.protocol, 1);
    const reg = new Registry();
    registerTlsMetrics(reg, term);
    const text = await reg.metrics();
    assert.match(text, /^sc_tls_handshakes_total\{version="TLSv1.3"\} 3$/m);
    assert.match(text, /^sc_tls_handshakes_total\{version="TLSv1.2"\} 1$/m);
    assert.match(text, /^sc_tls_handshake_failures_total\{reason="protocol"\} 1$/m);
  } finally {
    s.close();
  }
});

test("garbage, a silent client and a surplus handshake are reset and counted", async () => {
  const term = await termination({ handshakeTimeoutMs: 300, maxHandshakes: 1 });
  const s = await loopbackServer(term);
  const closed = (sock: net.Socket) => new Promise<void>((r) => sock.once("close", () => r()));
  try {
    // Silent: takes the one handshake slot until its timeout.
    const silent = net.connect(s.port, "127.0.0.1");
    silent.on("error", () => undefined);
    await new Promise((r) => silent.once("connect", r));
    await new Promise((r) => setTimeout(r, 50)); // the server has accepted it
    const surplus = net.connect(s.port, "127.0.0.1");
    surplus.on("error", () => undefined);
    await closed(surplus);
    assert.equal(term.counters.failures.busy, 1);
    await closed(silent);
    assert.equal(term.counters.failures.timeout, 1);
    // Garbage instead of a ClientHello.
    const junk = net.connect(s.port, "127.0.0.1");
    junk.on("error", () => undefined);
    junk.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await closed(junk);
    assert.equal(term.counters.failures.protocol, 1);
    assert.equal(term.counters.pending, 0);
  } finally {
    s.close();
  }
});

test("reload swaps the certificate for new handshakes; a bad file is refused and the old one stays", async () => {
  const term = await termination();
  const s = await loopbackServer(term);
  const fingerprint = (c: tls.TLSSocket) => fingerprints.get(c);
  const ca2 = readFileSync(certs2.caCert);
  try {
    const before = await connect(s.port, { servername: "localhost" });
    const first = fingerprint(before);
    before.destroy();
    await term.reload({ certFile: certs2.cert, keyFile: certs2.key });
    const afterReload = await connect(s.port, { ca: [ca2], servername: "localhost" });
    assert.notEqual(fingerprint(afterReload), first);
    assert.equal(fingerprint(afterReload), new X509Certificate(readFileSync(certs2.cert)).fingerprint256);
    const second = fingerprint(afterReload);
    afterReload.destroy();
    // A key that does not match the certificate, and a file that is not there.
    await assert.rejects(term.reload({ certFile: certs.cert, keyFile: certs2.key }), UserError);
    await assert.rejects(term.reload({ certFile: join(dir, "none.crt"), keyFile: certs.key }), /cannot read/);
    const bad = join(dir, "bad.pem");
    await writeFile(bad, "not a certificate");
    await assert.rejects(term.reload({ certFile: bad, keyFile: certs.key }), UserError);
    const still = await connect(s.port, { ca: [ca2], servername: "localhost" });
    assert.equal(fingerprint(still), second);
    still.destroy();
    assert.equal(term.counters.certificateLoads, 2);
  } finally {
    s.close();
  }
});
