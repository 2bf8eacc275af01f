import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ClientHandshake,
  LinkSession,
  ServerHandshake,
  linkKey,
  type Admission,
  type LinkKey,
} from "./link.js";
import { ClusterSecret } from "./secret.js";
import { ScAuth, ScType, type HelloMessage } from "../clone/message.js";

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

const msg = (s: string) => new TextEncoder().encode(s);

test("a handshake with the same key gives sessions whose tags verify both ways, in order", () => {
  const { client, server } = sessions();
  assert.equal(client.tagLength, 16);
  for (let i = 0; i < 3; i++) {
    const m = msg(`clone ${i}`);
    assert.ok(server.open(m, client.seal(m)));
    const a = msg(`ack ${i}`);
    assert.ok(client.open(a, server.seal(a)));
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

test("two insecure ends link without MACs or tags", () => {
  const r = shake(INSECURE, INSECURE);
  assert.ok("client" in r);
  assert.equal(r.client.tagLength, 0);
  const m = msg("x");
  assert.equal(r.client.seal(m).length, 0);
  assert.ok(r.server.open(m, new Uint8Array(0)));
  assert.ok(!r.server.open(m, new Uint8Array(16)));
});

test("tags: a replayed, reordered, altered, reflected or other-session message fails", () => {
  const { client, server } = sessions();
  const m0 = msg("zero");
  const m1 = msg("one");
  const t0 = client.seal(m0);
  const t1 = client.seal(m1);
  // Reordered: m1 first fails, and a failure does not advance the receive sequence.
  assert.ok(!server.open(m1, t1));
  assert.ok(server.open(m0, t0));
  // Replayed.
  assert.ok(!server.open(m0, t0));
  // Altered by one bit.
  const bad = Uint8Array.from(m1);
  bad[0]! ^= 1;
  assert.ok(!server.open(bad, t1));
  assert.ok(server.open(m1, t1));
  // Reflected: the server's own direction key differs from the client's.
  const s = server.seal(m0);
  assert.ok(!server.open(m0, s));
  // Another session (same ids, new nonces) cannot open this session's messages.
  const other = sessions(5, 6);
  assert.ok(!other.server.open(m0, t0));
});

test("session keys depend on the nonces only, so the server's fresh nonce is what defeats a replay", () => {
  const m = msg("m");
  assert.deepEqual(sessions(1, 2).client.seal(m), sessions(1, 2).client.seal(m));
  assert.notDeepEqual(sessions(1, 2).client.seal(m), sessions(3, 2).client.seal(m));
});
