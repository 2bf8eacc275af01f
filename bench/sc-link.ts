// The cost of securing SC links (docs/sc-protocol.md): the per-message protection, the
// handshake, and a CLONE -> CLONE-ACK round trip on loopback, secure vs --insecure-dev. The
// per-message figures compare, on the same messages in the same run: version 4's AES-256-GCM
// (LinkSession, the real code), version 3's truncated HMAC-SHA-256 tag (integrity only; its
// former code, kept here) and ChaCha20-Poly1305 in the same shape as the link's AES-GCM.
//   npm run build && node dist/bench/sc-link.js [--iterations N] [--rounds N] [--round-trips N]
// Prints one line per figure. Figures are recorded in docs/sc-protocol.md.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import { sameBytes } from "../sc/auth/secret.js";
import { ClientHandshake, LinkSession, ServerHandshake, type LinkKey } from "../sc/auth/link.js";
import { encodeScMessage, ScType, SC_TAG_LEN, type CloneMessage } from "../sc/clone/message.js";
import { ScTransport } from "../sc/clone/transport.js";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const ITERATIONS = arg("--iterations", 50_000);
const ROUND_TRIPS = arg("--round-trips", 5_000);
const ROUNDS = arg("--rounds", 5);
const KEY: LinkKey = { kind: "secret", key: randomBytes(32) };

let sink = 0;

/** Best of ROUNDS runs of `n` calls, in ns per call. */
function measure(name: string, n: number, fn: (i: number) => number): void {
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink += fn(i);
    best = Math.min(best, Number(process.hrtime.bigint() - start) / n);
  }
  console.log(`${name.padEnd(56)} ${(best / 1000).toFixed(2).padStart(8)} us`);
}

function sessions(): { client: LinkSession; server: LinkSession } {
  const server = new ServerHandshake(KEY, "b", randomBytes(32));
  const client = new ClientHandshake(KEY, "a", "b", randomBytes(32));
  const hello = client.onChallenge(server.challenge);
  if (!("hello" in hello)) throw new Error("bench setup");
  const ack = server.onHello(hello.hello, () => null);
  if (!("reply" in ack)) throw new Error("bench setup");
  const done = client.onHelloAck(ack.reply);
  if (!("session" in done)) throw new Error("bench setup");
  return { client: done.session, server: ack.session };
}

function clone(asfBytes: number): CloneMessage {
  return {
    type: ScType.Clone,
    cloneId: 1,
    startDeadline: Date.now() + 2000,
    state: new Uint8Array(96),
    seed: new Uint8Array(40),
    asf: new Uint8Array(asfBytes).fill(0x41),
  };
}

/** Version 3's tag (sc/auth/link.ts before encryption): HMAC-SHA-256(key, seq || message)[0..16]. */
function hmacTag(key: Uint8Array, seq: number, message: Uint8Array): Uint8Array {
  const seqBuf = Buffer.alloc(8);
  seqBuf.writeUInt32BE(Math.floor(seq / 0x100000000), 0);
  seqBuf.writeUInt32BE(seq >>> 0, 4);
  return createHmac("sha256", key).update(seqBuf).update(message).digest().subarray(0, SC_TAG_LEN);
}

/** ChaCha20-Poly1305 sealed and opened in place exactly as LinkSession does with AES-256-GCM. */
function chachaRoundTrip(key: Uint8Array, seq: number, message: Uint8Array): number {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(seq >>> 0, 8);
  const body = message.subarray(8);
  const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  c.setAAD(message.subarray(0, 8), { plaintextLength: body.length });
  c.update(body).copy(body);
  c.final();
  const tag = c.getAuthTag();
  const d = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  d.setAAD(message.subarray(0, 8), { plaintextLength: body.length });
  d.setAuthTag(tag);
  const plain = d.update(body);
  d.final();
  body.set(plain);
  return plain.length;
}

console.log(`SC link protection (node ${process.version}, best of ${ROUNDS})`);
const sizes: [string, Uint8Array][] = [
  ["KEEPALIVE / CANCEL (12 B)", encodeScMessage({ type: ScType.Keepalive })],
  ["CLONE, 100-byte request (264 B)", encodeScMessage(clone(100))],
  ["CLONE, 1 KiB request (1188 B)", encodeScMessage(clone(1024))],
  ["CLONE, 24 KiB request (24.7 KB, the largest)", encodeScMessage(clone(24 * 1024))],
];
const macKey = randomBytes(32);
for (const [name, bytes] of sizes) {
  measure(`v3 HMAC tag + verify: ${name}`, ITERATIONS, (i) =>
    sameBytes(hmacTag(macKey, i, bytes), hmacTag(macKey, i, bytes)) ? 1 : 0,
  );
  const { client, server } = sessions();
  // Sealing encrypts in place and opening decrypts in place: `bytes` is the plaintext again.
  measure(`v4 AES-256-GCM seal + open: ${name}`, ITERATIONS, () =>
    server.open(bytes, client.seal(bytes)) ? 1 : 0,
  );
  measure(`ChaCha20-Poly1305 seal + open: ${name}`, ITERATIONS, (i) => chachaRoundTrip(macKey, i, bytes));
}
measure("handshake, both ends (4 HMACs each side + key derivation)", ITERATIONS / 10, () => {
  const s = sessions();
  return s.client.tagLength;
});

/** CLONE -> CLONE-ACK round trips between two transports on loopback; latency percentiles in us. */
async function roundTrips(key: LinkKey): Promise<number[]> {
  const peers = [
    { id: "a", host: "127.0.0.1", port: 0 },
    { id: "b", host: "127.0.0.2", port: 0 },
  ];
  const b = new ScTransport({
    nodeId: "b",
    listenHost: peers[1]!.host,
    listenPort: 0,
    peers,
    key,
    onClone: (m, _from, reply) =>
      reply({
        type: ScType.CloneAck,
        cloneId: m.cloneId,
        status: 0,
        responseLength: 10_000,
        head: new Uint8Array(200),
      }),
  });
  await b.start();
  peers[1]!.port = b.address.port;
  const a = new ScTransport({
    nodeId: "a",
    listenHost: peers[0]!.host,
    listenPort: 0,
    peers,
    key,
    localAddress: peers[0]!.host,
    onClone: () => undefined,
  });
  await a.start();
  await a.waitForPeers(5000);
  const msg = clone(300);
  const us: number[] = [];
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const t0 = performance.now();
    const out = await a.requestClone("b", { ...msg, cloneId: i + 1 }, 2000);
    if (out.kind !== "accepted") throw new Error(`round trip ${i}: ${out.kind}`);
    us.push((performance.now() - t0) * 1000);
  }
  await a.close();
  await b.close();
  return us.sort((x, y) => x - y);
}

const pct = (xs: number[], q: number) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]!.toFixed(0);
for (const [name, key] of [
  ["--insecure-dev", { kind: "insecure-dev" }],
  ["cluster secret", KEY],
  ["--insecure-dev (again)", { kind: "insecure-dev" }],
  ["cluster secret (again)", KEY],
] as [string, LinkKey][]) {
  const us = await roundTrips(key);
  console.log(
    `CLONE -> CLONE-ACK on loopback, ${name.padEnd(24)} p50 ${pct(us, 0.5)} us, p90 ${pct(us, 0.9)} us, p99 ${pct(us, 0.99)} us (${us.length})`,
  );
}
if (sink === -1) console.log(sink);
