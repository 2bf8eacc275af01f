import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ClientHandshake,
  LinkSession,
  ServerHandshake,
  SC_CLEAR_LEN,
  linkKey,
  type Admission,
  type LinkKey,
} from "./link.js";
import { ClusterSecret } from "./secret.js";
import {
  decodeScMessage,
  encodeScMessage,
  ScAuth,
  ScType,
  type CloneMessage,
  type HelloMessage,
  type ScDecodeError,
  type ScMessage,
} from "../clone/message.js";

const KEY: LinkKey = { kind: "secret", key: Buffer.alloc(32, 1) };
const OTHER: LinkKey = { kind: "secret", key: Buffer.alloc(32, 2) };
const INSECURE: LinkKey = { kind: "insecure-dev" };
const nonce = (n: number) => new Uint8Array(32).fill(n);
const admitAll: Admission = () => null;

/** A whole handshake between `a` (client) and `b` (server); returns both sessions or the refusal. */
function shake(
  clientKey: LinkKey,
  serverKey: LinkKey,
  opts: { ns?: number; nc?: number; admit?: Admission; clientId?: string } = {},
): { client: LinkSession; server: LinkSession } | { refused: string; at: "client" | "server" } {
  const server = new ServerHandshake(serverKey, "b", nonce(opts.ns ?? 1));
  const client = new ClientHandshake(clientKey, opts.clientId ?? "a", "b", nonce(opts.nc ?? 2));
  const c1 = client.onChallenge(server.challenge);
  if ("refused" in c1) return { refused: c1.refused, at: "client" };
  const s1 = server.onHello(c1.hello, opts.admit ?? admitAll);
  if ("refused" in s1) return { refused: s1.refused, at: "server" };
  assert.equal(s1.peerId, opts.clientId ?? "a");
  const c2 = client.onHelloAck(s1.reply);
  if ("refused" in c2) return { refused: c2.refused, at: "client" };
  return { client: c2.session, server: s1.session };
}

function sessions(ns = 1, nc = 2): { client: LinkSession; server: LinkSession } {
  const r = shake(KEY, KEY, { ns, nc });
  assert.ok("client" in r);
  return r;
}

const REQUEST = "GET /secret/path?token=hunter2 HTTP/1.1\r\nHost: example\r\n\r\n";
const STATE = new Uint8Array(96).map((_, i) => (i * 7 + 3) & 0xff);
const KEY_BYTES = Buffer.alloc(32, 1);

function cloneMsg(cloneId: number): CloneMessage {
  return {
    type: ScType.Clone,
    cloneId: cloneId + 1,
    startDeadline: 1_700_000_000_000,
    state: STATE,
    seed: new Uint8Array(40).fill(0x45),
    asf: new TextEncoder().encode(REQUEST),
  };
}

/** A message as it leaves a session: encrypted in place, and its tag (copies). */
function sealed(s: LinkSession, m: ScMessage): { bytes: Uint8Array; tag: Uint8Array } {
  const bytes = encodeScMessage(m);
  const tag = s.seal(bytes);
  return { bytes: Uint8Array.from(bytes), tag: Uint8Array.from(tag) };
}

/** Opens a sealed message (on a copy) and decodes it. */
function opened(s: LinkSession, w: { bytes: Uint8Array; tag: Uint8Array }): ScMessage | ScDecodeError {
  const bytes = Uint8Array.from(w.bytes);
  assert.ok(s.open(bytes, w.tag), "the sealed message opens");
  return decodeScMessage(bytes);
}

test("a handshake with the same key gives sessions whose messages open both ways, in order", () => {
  const { client, server } = sessions();
  assert.equal(client.tagLength, 16);
  for (let i = 0; i < 3; i++) {
    const c = sealed(client, cloneMsg(i));
    assert.deepEqual(opened(server, c), cloneMsg(i));
    const a = sealed(server, { type: ScType.Cancel, cloneId: i });
    assert.deepEqual(opened(client, a), { type: ScType.Cancel, cloneId: i });
  }
});

test("the cluster secret's sc-link key is the link key; insecure-dev stays insecure", () => {
  const secret = ClusterSecret.parse("x".repeat(40)) as ClusterSecret;
  const k = linkKey({ kind: "secret", secret });
  assert.ok(k.kind === "secret" && Buffer.from(k.key).equals(secret.key("sc-link")));
  assert.deepEqual(linkKey({ kind: "insecure-dev" }), { kind: "insecure-dev" });
});

test("a different secret fails at the server (HELLO MAC); a fake server fails at the client (HELLO-ACK MAC)", () => {
  assert.deepEqual(shake(OTHER, KEY), { refused: "bad-mac", at: "server" });
  // The server without the secret cannot produce a HELLO-ACK: forge one with its own key.
  const server = new ServerHandshake(OTHER, "b", nonce(1));
  const client = new ClientHandshake(KEY, "a", "b", nonce(2));
  const c1 = client.onChallenge(server.challenge);
  assert.ok("hello" in c1);
  const fake = new ServerHandshake(OTHER, "b", nonce(1)).onHello(
    { ...c1.hello, mac: macUnder(OTHER, c1.hello) },
    admitAll,
  );
  assert.ok("reply" in fake);
  assert.deepEqual(client.onHelloAck(fake.reply), { refused: "bad-mac" });
});

/** The HELLO's MAC as a node holding `key` would compute it (same ids and nonces). */
function macUnder(key: LinkKey, hello: HelloMessage): Uint8Array {
  const c = new ClientHandshake(key, hello.nodeId, "b", hello.nonce);
  const r = c.onChallenge({ type: ScType.Challenge, auth: ScAuth.Secret, nonce: nonce(1), nodeId: "b" });
  assert.ok("hello" in r);
  return r.hello.mac;
}

test("the MAC binds ids and nonces: a HELLO with another id, or replayed to a new challenge, fails", () => {
  const server = new ServerHandshake(KEY, "b", nonce(1));
  const client = new ClientHandshake(KEY, "a", "b", nonce(2));
  const c1 = client.onChallenge(server.challenge);
  assert.ok("hello" in c1);
  assert.deepEqual(server.onHello({ ...c1.hello, nodeId: "c" }, admitAll), { refused: "bad-mac" });
  assert.deepEqual(server.onHello({ ...c1.hello, nonce: nonce(3) }, admitAll), { refused: "bad-mac" });
  // The same HELLO against the next connection's challenge (a fresh server nonce).
  const next = new ServerHandshake(KEY, "b", nonce(9));
  assert.deepEqual(next.onHello(c1.hello, admitAll), { refused: "bad-mac" });
  // The genuine one passes.
  assert.ok("reply" in server.onHello(c1.hello, admitAll));
});

test("a HELLO's MAC reflected as the HELLO-ACK does not verify (separate labels)", () => {
  const server = new ServerHandshake(KEY, "b", nonce(1));
  const client = new ClientHandshake(KEY, "a", "b", nonce(2));
  const c1 = client.onChallenge(server.challenge);
  assert.ok("hello" in c1);
  assert.deepEqual(client.onHelloAck({ type: ScType.HelloAck, mac: c1.hello.mac }), { refused: "bad-mac" });
});

test("membership and address checks come from the transport; the server's own id is never a peer", () => {
  assert.deepEqual(shake(KEY, KEY, { admit: () => "unknown-peer" }), {
    refused: "unknown-peer",
    at: "server",
  });
  assert.deepEqual(shake(KEY, KEY, { admit: () => "wrong-address" }), {
    refused: "wrong-address",
    at: "server",
  });
  assert.deepEqual(shake(KEY, KEY, { clientId: "b" }), { refused: "unknown-peer", at: "server" });
});

test("the client refuses a CHALLENGE from another node than the one it dialled", () => {
  const client = new ClientHandshake(KEY, "a", "b", nonce(2));
  const ch = new ServerHandshake(KEY, "c", nonce(1)).challenge;
  assert.deepEqual(client.onChallenge(ch), { refused: "wrong-server" });
});

test("secure and insecure ends refuse each other, each with its own reason", () => {
  assert.deepEqual(shake(KEY, INSECURE), { refused: "peer-insecure", at: "client" });
  assert.deepEqual(shake(INSECURE, KEY), { refused: "peer-secure", at: "client" });
  // A secure server that gets an insecure HELLO anyway (a client that ignores the challenge).
  const server = new ServerHandshake(KEY, "b", nonce(1));
  const hello: HelloMessage = {
    type: ScType.Hello,
    auth: ScAuth.Insecure,
    nonce: nonce(2),
    mac: new Uint8Array(32),
    nodeId: "a",
  };
  assert.deepEqual(server.onHello(hello, admitAll), { refused: "peer-insecure" });
  const insecureServer = new ServerHandshake(INSECURE, "b", nonce(1));
  assert.deepEqual(insecureServer.onHello({ ...hello, auth: ScAuth.Secret }, admitAll), {
    refused: "peer-secure",
  });
});

test("two insecure ends link without MACs, tags or encryption", () => {
  const r = shake(INSECURE, INSECURE);
  assert.ok("client" in r);
  assert.equal(r.client.tagLength, 0);
  const plain = encodeScMessage(cloneMsg(1));
  const m = Uint8Array.from(plain);
  assert.equal(r.client.seal(m).length, 0);
  assert.deepEqual(m, plain, "--insecure-dev sends the message as it is");
  assert.ok(r.server.open(m, new Uint8Array(0)));
  assert.ok(!r.server.open(m, new Uint8Array(16)));
});

test("a sealed CLONE carries neither its request nor its clone id in clear; magic, version, type and length stay clear", () => {
  const { client, server } = sessions();
  const plain = encodeScMessage(cloneMsg(7));
  const w = sealed(client, cloneMsg(7));
  assert.equal(w.bytes.length, plain.length, "encryption in place: no bytes added besides the tag");
  assert.equal(w.tag.length, 16);
  assert.deepEqual(w.bytes.subarray(0, SC_CLEAR_LEN), plain.subarray(0, SC_CLEAR_LEN));
  assert.notDeepEqual(w.bytes.subarray(8, 12), plain.subarray(8, 12));
  const onWire = Buffer.concat([w.bytes, w.tag]);
  assert.equal(onWire.indexOf(REQUEST), -1);
  assert.equal(onWire.indexOf("GET "), -1);
  assert.equal(onWire.indexOf(Buffer.from(STATE)), -1);
  assert.deepEqual(opened(server, w), cloneMsg(7));
});

test("sealing: tampered ciphertext, length, type or tag, replayed, reordered, dropped, reflected or other-session messages fail", () => {
  const { client, server } = sessions();
  const w0 = sealed(client, cloneMsg(0));
  const w1 = sealed(client, cloneMsg(1));
  const w2 = sealed(client, cloneMsg(2));
  // Reordered (or w0 dropped): w1 first fails; a failure does not advance the receive
  // sequence, nor touch the bytes it was given.
  const before = Uint8Array.from(w1.bytes);
  assert.ok(!server.open(w1.bytes, w1.tag));
  assert.deepEqual(w1.bytes, before);
  // Tampered, one bit at a time: ciphertext (request bytes), clone id, length, type, tag.
  for (const [at, what] of [
    [w0.bytes.length - 5, "ciphertext"],
    [9, "clone id"],
    [7, "length"],
    [3, "type"],
  ] as [number, string][]) {
    const bad = Uint8Array.from(w0.bytes);
    bad[at]! ^= 1;
    assert.ok(!server.open(bad, w0.tag), what);
  }
  const badTag = Uint8Array.from(w0.tag);
  badTag[15]! ^= 0x80;
  assert.ok(!server.open(Uint8Array.from(w0.bytes), badTag), "tag");
  assert.ok(!server.open(Uint8Array.from(w0.bytes), w0.tag.subarray(0, 12)), "short tag");
  // The genuine one still opens (nothing above advanced the sequence).
  assert.deepEqual(opened(server, w0), cloneMsg(0));
  // Replayed.
  assert.ok(!server.open(Uint8Array.from(w0.bytes), w0.tag));
  // Dropped: w2 where w1 is due.
  assert.ok(!server.open(Uint8Array.from(w2.bytes), w2.tag));
  assert.deepEqual(opened(server, w1), cloneMsg(1));
  // Reflected: the server's own direction key differs from the client's.
  const s = sealed(server, cloneMsg(3));
  assert.ok(!server.open(s.bytes, s.tag));
  // Another session (same ids, new nonces) cannot open this session's messages.
  const other = sessions(5, 6);
  assert.ok(!other.server.open(Uint8Array.from(w0.bytes), w0.tag));
});

test("a direction that has carried its message limit is exhausted: sealing throws, the receiver refuses more", () => {
  const t = { clientId: "a", serverId: "b", serverNonce: nonce(1), clientNonce: nonce(2) };
  const client = LinkSession.secure(KEY_BYTES, t, "client", 2);
  const server = LinkSession.secure(KEY_BYTES, t, "server", 2);
  const limitless = LinkSession.secure(KEY_BYTES, t, "client");
  const w0 = sealed(client, cloneMsg(0));
  assert.ok(!client.exhausted);
  sealed(client, cloneMsg(1));
  assert.ok(client.exhausted);
  assert.throws(() => client.seal(encodeScMessage(cloneMsg(2))), /exhausted/);
  // The same key without the limit seals a third message; the limited receiver refuses it.
  sealed(limitless, cloneMsg(0));
  const w1 = sealed(limitless, cloneMsg(1));
  const w2 = sealed(limitless, cloneMsg(2));
  assert.deepEqual(opened(server, w0), cloneMsg(0));
  assert.deepEqual(opened(server, w1), cloneMsg(1));
  assert.ok(!server.open(w2.bytes, w2.tag));
  // The limit can only be lowered.
  assert.throws(() => LinkSession.secure(KEY_BYTES, t, "client", 2 ** 33), RangeError);
  assert.throws(() => LinkSession.secure(KEY_BYTES, t, "client", 0), RangeError);
});

test("session keys depend on the nonces only, so the server's fresh nonce is what defeats a replay", () => {
  const seal = (ns: number) => sealed(sessions(ns, 2).client, cloneMsg(1));
  assert.deepEqual(seal(1), seal(1));
  assert.notDeepEqual(seal(1).tag, seal(3).tag);
  assert.notDeepEqual(seal(1).bytes, seal(3).bytes);
});

test("known answer: sealed bytes and tags are pinned (nodes of earlier builds, which sealed with node:crypto, interoperate)", () => {
  // Recorded with the node:crypto implementation this build replaced (the addon's aead.c).
  const t = { clientId: "a", serverId: "b", serverNonce: nonce(1), clientNonce: nonce(2) };
  const want: Record<"client" | "server", [string, string][]> = {
    client: [
      ["534305040000000c898cde26", "05702f5d8b3ccacf8b3b28c5949d0014"],
      ["534305040000000c854e1094", "91ff85156d5128dc1b72980e0f4dd0c7"],
    ],
    server: [
      ["534305040000000cf6cfd937", "8756279a6f60d6413bfa3a12820e0dfc"],
      ["534305040000000cfc92cb87", "5cffc10cba8fb8266a77cad5aea3cb21"],
    ],
  };
  for (const side of ["client", "server"] as const) {
    const s = LinkSession.secure(KEY_BYTES, t, side);
    want[side].forEach(([bytes, tag], i) => {
      const w = sealed(s, { type: ScType.Cancel, cloneId: 0x01020304 + i });
      assert.equal(Buffer.from(w.bytes).toString("hex"), bytes, `${side} message ${i}`);
      assert.equal(Buffer.from(w.tag).toString("hex"), tag, `${side} tag ${i}`);
    });
  }
});

test("a destroyed session seals and opens nothing (its keys are gone)", () => {
  const { client, server } = sessions();
  const w = sealed(client, cloneMsg(0));
  server.destroy();
  assert.throws(() => server.open(Uint8Array.from(w.bytes), w.tag), /destroyed/);
  client.destroy();
  assert.throws(() => client.seal(encodeScMessage(cloneMsg(1))), /destroyed/);
});
