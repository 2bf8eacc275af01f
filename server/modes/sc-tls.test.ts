// Socket Cloning of TLS 1.3 connections in one process (server/modes/sc-testing.ts): OpenSSL
// (node:tls) as the client, our record layer on the nodes after OpenSSL's handshake, clones
// that seal their responses in the session the original goes on with (docs/tls.md, "Cloning").
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type tls from "node:tls";
import { readResponse, ScTestCluster, testSite, until, VIP, type TestClient } from "./sc-testing.js";
import { makeDemoCertificates, type DemoCertificates } from "../transport/tls-certs.js";
import { parseIpv4 } from "../../sc/wire/ipv4.js";
import { parseTcp, TCP_FIN, TCP_RST } from "../../sc/wire/tcp.js";
import { isWireError } from "../../sc/wire/error.js";
import { CLOSE_NOTIFY_LENGTH } from "../../sc/tls/sealed-stream.js";

// 20,000 bytes: two records; 3,000,017: many records and a short last one.
const { docs: DOCS, small, large } = testSite("t", 20_000, 3_000_017);

let dir = "";
let certs: DemoCertificates;
let ca = "";

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sc-tls-clone-"));
  certs = await makeDemoCertificates(dir, { ips: [VIP], names: ["localhost"] });
  ca = readFileSync(certs.caCert, "utf8");
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function cluster(o: Partial<Parameters<typeof ScTestCluster.start>[0]> = {}): Promise<ScTestCluster> {
  return ScTestCluster.start({
    nodes: 2,
    docs: DOCS,
    settings: { localMaxBytes: 0 },
    tls: { certFile: certs.cert, keyFile: certs.key },
    ...o,
  });
}

async function secure(client: TestClient, o: tls.ConnectionOptions = {}, raw?: (b: Buffer) => void) {
  const s = client.connectTls(ca, o, raw);
  const errors: Error[] = [];
  s.on("error", (e) => errors.push(e));
  await new Promise<void>((resolve, reject) => {
    s.once("secureConnect", () => resolve());
    s.once("error", reject);
  });
  assert.equal(s.getProtocol(), "TLSv1.3");
  return { s, errors };
}

async function fetch(s: tls.TLSSocket, path: string, extra = ""): Promise<Buffer> {
  const r = readResponse(s);
  s.write(`GET ${path} HTTP/1.1\r\nHost: sc\r\n${extra}\r\n`);
  const { status, body } = await r;
  assert.equal(status, 200, path);
  return body;
}

/** Packets a node sent with any of `flags` set. */
function sentWith(c: ScTestCluster, node: string, flags: number): number {
  let n = 0;
  for (const r of c.sent) {
    if (r.node !== node) continue;
    const ip = parseIpv4(r.packet);
    if (isWireError(ip)) continue;
    const tcp = parseTcp(ip.payload, ip.src, ip.dst);
    if (!isWireError(tcp) && (tcp.flags & flags) !== 0) n++;
  }
  return n;
}

test(
  "a TLS 1.3 keep-alive connection is cloned request after request, each suite: byte-exact, the session goes on",
  { timeout: 60_000 },
  async () => {
    const c = await cluster();
    try {
      const [n1, n2] = [c.node("n1"), c.node("n2")];
      const suites = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"];
      for (const [i, suite] of suites.entries()) {
        const { s, errors } = await secure(c.client("n1"), { ciphers: suite });
        assert.equal(s.getCipher().standardName, suite);
        // Cloned, served here, cloned (many records), cloned again: every response continues
        // the same session, whichever node sealed the one before.
        for (const path of [small("n2", c), small("n1", c), large("n2", c), small("n2", c), small("n1", c)]) {
          assert.ok((await fetch(s, path)).equals(DOCS[path]!), `${suite}: exact bytes of ${path}`);
        }
        assert.equal(n1.mode.tlsClonesSent, 3 * (i + 1), `${suite}: three requests cloned with the session`);
        assert.equal(n2.mode.tlsClonesReceived, 3 * (i + 1));
        assert.deepEqual(errors, [], "no alert, no error at the client");
        s.destroy();
      }
      const f = n1.mode.failures;
      assert.deepEqual([f.refused, f.timeout, f.resumed, f.abandoned], [0, 0, 0, 0]);
      assert.equal(c.strays.length, 0);
    } finally {
      await c.close();
    }
  },
);

test(
  "the last response (Connection: close) cloned under TLS ends with the clone's close_notify and FIN; the original sends neither",
  { timeout: 30_000 },
  async () => {
    const c = await cluster();
    try {
      const raw: Buffer[] = [];
      const { s, errors } = await secure(c.client("n1"), {}, (b) => raw.push(b));
      const first = small("n2", c);
      assert.ok((await fetch(s, first)).equals(DOCS[first]!));
      const path = small("n2", c);
      const got: Buffer[] = [];
      s.on("data", (d: Buffer) => got.push(d));
      const ended = new Promise<void>((r) => s.once("end", () => r()));
      s.write(`GET ${path} HTTP/1.1\r\nHost: sc\r\nConnection: close\r\n\r\n`);
      await ended;
      const all = Buffer.concat(got);
      assert.ok(
        all.subarray(all.indexOf("\r\n\r\n") + 4).equals(DOCS[path]!),
        "the whole document, then the end",
      );
      // The stream's last record is close_notify-sized: an alert (2 bytes) under the session's key.
      const stream = Buffer.concat(raw);
      const tail = stream.subarray(stream.length - CLOSE_NOTIFY_LENGTH);
      assert.deepEqual([...tail.subarray(0, 5)], [0x17, 3, 3, 0, CLOSE_NOTIFY_LENGTH - 5]);
      // The client's TLS socket ends its side by itself (allowHalfOpen off).
      await new Promise<void>((r) => (s.destroyed ? r() : s.once("close", () => r())));
      const n1 = c.node("n1");
      assert.equal(n1.mode.tlsClonesSent, 2);
      assert.equal(n1.mode.finsDelegated, 1);
      assert.equal(sentWith(c, "n1", TCP_FIN | TCP_RST), 0, "the original sends no FIN and no RST");
      assert.deepEqual(errors, []);
    } finally {
      await c.close();
    }
  },
);

test(
  "the SC link is lost mid-response under TLS: the original re-seals from inside a record and the client reads on, byte-exact",
  { timeout: 30_000 },
  async () => {
    const c = await cluster();
    try {
      const { s, errors } = await secure(c.client("n1", { rcvBufSize: 16 * 1024 }));
      const [n1, n2] = [c.node("n1"), c.node("n2")];
      const path = large("n2", c);
      s.pause(); // the clone stays mid-response while the client does not read
      const response = readResponse(s);
      s.write(`GET ${path} HTTP/1.1\r\nHost: sc\r\n\r\n`);
      await until(() => n2.mode.stats().clonesActive === 1, 5000, "n1's clone on n2");
      await until(() => n1.mode.stats().cloneLatencyUs !== null, 5000, "the SC-ACK on n1");
      n1.transport.setPeers([{ id: "n1", host: n1.addr, port: n1.transport.address.port }]);
      await until(() => n2.mode.failures["clone-link-lost"] === 1, 5000, "the clone to vanish on n2");
      assert.equal(n1.mode.failures.resumed, 1, "the original took the stream back");
      s.resume();
      const r = await response;
      assert.ok(r.body.equals(DOCS[path]!), "byte-exact across the take-back");
      // And the session goes on after it: a request served here.
      const here = small("n1", c);
      assert.ok((await fetch(s, here)).equals(DOCS[here]!));
      assert.deepEqual(errors, []);
      s.destroy();
    } finally {
      await c.close();
    }
  },
);

test(
  "over --insecure-dev SC links a TLS session is never cloned (its secret would cross in clear): served here, counted",
  { timeout: 30_000 },
  async () => {
    const c = await cluster({ key: { kind: "insecure-dev" } });
    try {
      const { s, errors } = await secure(c.client("n1"));
      const path = small("n2", c);
      assert.ok((await fetch(s, path)).equals(DOCS[path]!));
      const n1 = c.node("n1");
      assert.equal(n1.mode.tlsClonesSent, 0);
      assert.equal(n1.mode.tlsNotCloned["insecure-link"], 1);
      assert.equal(c.node("n2").mode.clonesReceived, 0);
      assert.deepEqual(errors, []);
      s.destroy();
    } finally {
      await c.close();
    }
  },
);
