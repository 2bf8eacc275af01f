// The SC link on loopback: real transports, and raw peers that speak (or forge) the protocol
// byte by byte. Each member has its own 127/8 address, so source-address checks are real.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { ScTransport, type LinkDropReason, type ScTransportOptions } from "./transport.js";
import {
  CloneStatus,
  decodeScMessage,
  encodeScMessage,
  ScDecodeError,
  ScFramer,
  ScType,
  type CloneMessage,
} from "./message.js";
import { ServerHandshake, type LinkKey } from "../auth/link.js";
import { freePort, RawPeer } from "./testing.js";

// This process's own loopback addresses (127/8 is local as a whole on Linux).
const NET = `127.${(process.pid >> 8) & 0xff || 1}.${(process.pid & 0xff) ^ 0x5a}`;
const ADDR = { a: `${NET}.1`, b: `${NET}.2`, c: `${NET}.3`, stranger: `${NET}.99` };
const KEY: LinkKey = { kind: "secret", key: Buffer.alloc(32, 7) };
const OTHER_KEY: LinkKey = { kind: "secret", key: Buffer.alloc(32, 8) };
const INSECURE: LinkKey = { kind: "insecure-dev" };

function cloneMsg(cloneId: number): CloneMessage {
  return {
    type: ScType.Clone,
    cloneId,
    startDeadline: Date.now() + 1000,
    state: new Uint8Array(8),
    seed: new Uint8Array(40),
    asf: new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"),
  };
}

type Id = "a" | "b" | "c";

/** Members a, b, c on their own addresses and ports (c only exists as a member unless started). */
async function members(): Promise<{ id: Id; host: string; port: number }[]> {
  return [
    { id: "a", host: ADDR.a, port: await freePort(ADDR.a) },
    { id: "b", host: ADDR.b, port: await freePort(ADDR.b) },
    { id: "c", host: ADDR.c, port: await freePort(ADDR.c) },
  ];
}

function node(
  id: Id,
  peers: { id: string; host: string; port: number }[],
  over: Partial<ScTransportOptions> = {},
): ScTransport {
  const me = peers.find((p) => p.id === id)!;
  return new ScTransport({
    nodeId: id,
    listenHost: me.host,
    listenPort: me.port,
    peers,
    key: KEY,
    localAddress: me.host,
    onClone: () => {},
    ...over,
  });
}

/** Polls for state that has no event of its own. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > 500) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves with the reason of the next drop the transport counts. */
function nextDrop(t: ScTransport): Promise<LinkDropReason> {
  return new Promise((resolve) => {
    const orig = t.countDrop.bind(t);
    t.countDrop = (reason, who) => {
      t.countDrop = orig;
      orig(reason, who);
      resolve(reason);
    };
  });
}

test("two nodes authenticate and exchange CLONE and CLONE-ACK over persistent links", async () => {
  const peers = await members();
  const seen: { id: number; from: string; asf: string }[] = [];
  const a = node("a", peers.slice(0, 2));
  const b = node("b", peers.slice(0, 2), {
    onClone: (m, from, reply) => {
      seen.push({ id: m.cloneId, from, asf: new TextDecoder().decode(m.asf) });
      const status = m.cloneId === 2 ? CloneStatus.Busy : CloneStatus.Accepted;
      reply({
        type: ScType.CloneAck,
        cloneId: m.cloneId,
        status,
        responseLength: status ? 0 : 1234,
        head: new Uint8Array(0),
      });
    },
  });
  try {
    await Promise.all([a.start(), b.start()]);
    await Promise.all([a.waitForPeers(5000), b.waitForPeers(5000)]);
    const ok = await a.requestClone("b", cloneMsg(1), 2000);
    assert.equal(ok.kind, "accepted");
    assert.equal(ok.kind === "accepted" && ok.ack.responseLength, 1234);
    const refused = await a.requestClone("b", cloneMsg(2), 2000);
    assert.deepEqual(refused.kind === "refused" && refused.reason, "busy");
    assert.deepEqual(seen, [
      { id: 1, from: "a", asf: "GET / HTTP/1.1\r\n\r\n" },
      { id: 2, from: "a", asf: "GET / HTTP/1.1\r\n\r\n" },
    ]);
    assert.equal((await a.requestClone("nobody", cloneMsg(3), 100)).kind, "unreachable");
    assert.equal(b.counters.accepted, 1);
    assert.equal(a.counters.connects, 1);
    assert.deepEqual(
      Object.values(b.counters.drops).reduce((x, y) => x + y, 0),
      0,
    );
  } finally {
    await a.close();
    await b.close();
  }
});

test("a clone that gets no answer times out and a CANCEL reaches the peer", async () => {
  const peers = (await members()).slice(0, 2);
  let cancelled = -1;
  const a = node("a", peers);
  const b: ScTransport = node("b", peers, {
    onCancel: (id) => {
      cancelled = id;
      b.emit("cancel-seen");
    },
  });
  const gotCancel = once(b, "cancel-seen");
  try {
    await Promise.all([a.start(), b.start()]);
    await a.waitForPeers(5000);
    const out = await a.requestClone("b", cloneMsg(77), 50);
    assert.equal(out.kind, "timeout");
    await gotCancel;
    assert.equal(cancelled, 77);
  } finally {
    await a.close();
    await b.close();
  }
});

test("a lost peer fails pending clones at once and the link comes back", async () => {
  const peers = (await members()).slice(0, 2);
  const a = node("a", peers, { minBackoffMs: 10, maxBackoffMs: 50 });
  let b = node("b", peers);
  try {
    await Promise.all([a.start(), b.start()]);
    await a.waitForPeers(5000);
    const pending = a.requestClone("b", cloneMsg(5), 10_000);
    const down = once(a, "peer-down");
    await b.close();
    await down;
    assert.equal((await pending).kind, "unreachable");
    b = node("b", peers);
    await b.start();
    await a.waitForPeers(5000);
    assert.ok(a.isPeerUp("b"));
    assert.ok(a.counters.connects >= 2);
  } finally {
    await a.close();
    await b.close();
  }
});

test("garbage from a member address is counted and the connection closed", async () => {
  const peers = await members();
  const b = node("b", peers, { onClone: () => assert.fail("no clone expected") });
  try {
    await b.start();
    const raw = await RawPeer.connect(ADDR.c, peers[1]!);
    raw.sock.write(Buffer.from("GET / HTTP/1.1\r\n\r\n"));
    await raw.closed;
    assert.equal(b.counters.drops["bad-message"], 1);
  } finally {
    await b.close();
  }
});

test("forged HELLOs are refused before anything is cloned: unknown id, member id from the wrong address, wrong MAC", async () => {
  const peers = await members();
  let clones = 0;
  const b = node("b", peers, { onClone: () => clones++ });
  try {
    await b.start();
    const cases: { from: string; id: string; key: LinkKey; want: LinkDropReason }[] = [
      { from: ADDR.c, id: "mallory", key: KEY, want: "unknown-peer" },
      { from: ADDR.c, id: "b", key: KEY, want: "unknown-peer" }, // b itself
      { from: ADDR.c, id: "a", key: KEY, want: "wrong-address" },
      { from: ADDR.c, id: "c", key: OTHER_KEY, want: "bad-mac" },
    ];
    for (const c of cases) {
      const raw = await RawPeer.connect(c.from, peers[1]!);
      const dropped = nextDrop(b);
      await raw.handshake(c.id, c.key, true);
      assert.equal(await dropped, c.want, `${c.id} from ${c.from}`);
      // Whatever the forger sends next never reaches onClone.
      raw.send(cloneMsg(1));
      await raw.closed;
      assert.equal(raw.got.length, 1, "nothing after the CHALLENGE");
    }
    // Not even a CHALLENGE for an address that is no member's.
    const stranger = await RawPeer.connect(ADDR.stranger, peers[1]!);
    await stranger.closed;
    assert.equal(stranger.got.length, 0);
    assert.equal(clones, 0);
    assert.equal(b.counters.accepted, 0);
    assert.deepEqual(
      [
        b.counters.drops["unknown-peer"],
        b.counters.drops["wrong-address"],
        b.counters.drops["bad-mac"],
        b.counters.drops["unknown-address"],
      ],
      [2, 1, 1, 1],
    );
  } finally {
    await b.close();
  }
});

test("a recorded handshake replayed on a new connection fails its MAC (the server's nonce changed)", async () => {
  const peers = await members();
  let clones = 0;
  const b = node("b", peers, { onClone: () => clones++ });
  try {
    await b.start();
    const honest = await RawPeer.connect(ADDR.c, peers[1]!);
    const hello = await honest.handshake("c", KEY);
    assert.ok(honest.session !== null, "the honest handshake succeeds");
    const recorded = honest.send(cloneMsg(1));
    honest.sock.destroy();
    const replay = await RawPeer.connect(ADDR.c, peers[1]!);
    await replay.message(1);
    const dropped = nextDrop(b);
    replay.sock.write(Buffer.concat([hello, recorded]));
    assert.equal(await dropped, "bad-mac");
    await replay.closed;
    assert.ok(clones <= 1, "only the honest session's clone");
    assert.equal(b.counters.accepted, 1);
  } finally {
    await b.close();
  }
});

test("within a session, a replayed, reordered or untagged message closes the link", async () => {
  const peers = await members();
  const ids: number[] = [];
  const b = node("b", peers, { onClone: (m) => ids.push(m.cloneId) });
  try {
    await b.start();
    // Replay: the same frame (same tag) a second time.
    const r1 = await RawPeer.connect(ADDR.c, peers[1]!);
    await r1.handshake("c", KEY);
    const frame = r1.send(cloneMsg(1));
    let dropped = nextDrop(b);
    r1.sock.write(frame);
    assert.equal(await dropped, "bad-tag");
    await r1.closed;
    // Reorder: the second message's frame before the first's.
    const r2 = await RawPeer.connect(ADDR.c, peers[1]!);
    await r2.handshake("c", KEY);
    const m1 = encodeScMessage(cloneMsg(2));
    const m2 = encodeScMessage(cloneMsg(3));
    const t1 = r2.session!.seal(m1);
    const t2 = r2.session!.seal(m2);
    dropped = nextDrop(b);
    r2.sock.write(Buffer.concat([m2, t2, m1, t1]));
    assert.equal(await dropped, "bad-tag");
    await r2.closed;
    // No tag at all (a v2 message as an unauthenticated link would send it).
    const r3 = await RawPeer.connect(ADDR.c, peers[1]!);
    await r3.handshake("c", KEY);
    dropped = nextDrop(b);
    const cancel = encodeScMessage({ type: ScType.Cancel, cloneId: 4 });
    r3.sock.write(Buffer.concat([encodeScMessage(cloneMsg(4)), cancel, cancel]));
    assert.equal(await dropped, "bad-tag");
    assert.deepEqual(ids, [1], "only the first, genuine message was taken");
    assert.equal(b.counters.drops["bad-tag"], 3);
  } finally {
    await b.close();
  }
});

test("a fake server (no secret, or another node's id) gets no HELLO-ACK accepted: the link never comes up", async () => {
  const peers = (await members()).slice(0, 2);
  for (const fake of [
    { key: OTHER_KEY, id: "b", want: "bad-mac" },
    { key: KEY, id: "c", want: "wrong-server" },
  ] as const) {
    const server = net.createServer((sock) => {
      sock.on("error", () => undefined);
      const hs = new ServerHandshake(fake.key, fake.id, randomBytes(32));
      const framer = new ScFramer();
      sock.write(encodeScMessage(hs.challenge));
      sock.on("data", (chunk: Buffer) => {
        framer.push(chunk);
        const f = framer.next();
        if (f === null || f instanceof ScDecodeError) return;
        const m = decodeScMessage(f.bytes);
        if (m instanceof ScDecodeError || m.type !== ScType.Hello) return;
        // Answers as if it had admitted the client.
        const r = hs.onHello(m, () => null);
        const mac = "reply" in r ? r.reply.mac : randomBytes(32);
        sock.write(encodeScMessage({ type: ScType.HelloAck, mac }));
      });
    });
    server.listen(peers[1]!.port, ADDR.b);
    await once(server, "listening");
    const a = node("a", peers, { minBackoffMs: 5000 });
    try {
      const dropped = nextDrop(a);
      await a.start();
      assert.equal(await dropped, fake.want);
      assert.equal(a.isPeerUp("b"), false);
      assert.equal((await a.requestClone("b", cloneMsg(1), 100)).kind, "unreachable");
    } finally {
      await a.close();
      await new Promise((r) => server.close(r));
    }
  }
});

test("a version 1 peer is refused with reason 'version'; a v2 client facing a silent v1 server times out", async () => {
  const peers = await members();
  const b = node("b", peers, { onClone: () => assert.fail("no clone expected") });
  try {
    await b.start();
    const v1 = await RawPeer.connect(ADDR.c, peers[1]!);
    const dropped = nextDrop(b);
    // Version 1: HELLO "c" right after connecting, then a CLONE.
    v1.sock.write(Uint8Array.from([0x53, 0x43, 1, 1, 0, 0, 0, 14, 0, 0, 0, 0, 1, 0x63]));
    assert.equal(await dropped, "version");
    await v1.closed;
  } finally {
    await b.close();
  }
  // A version 1 server says nothing until it gets a HELLO: the v2 client's handshake deadline.
  const silent = net.createServer((s) => s.on("error", () => undefined));
  silent.listen(peers[1]!.port, ADDR.b);
  await once(silent, "listening");
  const a = node("a", peers.slice(0, 2), { limits: { handshakeMs: 150 }, minBackoffMs: 5000 });
  try {
    const dropped = nextDrop(a);
    await a.start();
    assert.equal(await dropped, "handshake-timeout");
    assert.equal(a.isPeerUp("b"), false);
  } finally {
    await a.close();
    await new Promise((r) => silent.close(r));
  }
});

test("--insecure-dev and a secure node refuse each other (counted on both ends); two insecure nodes link", async () => {
  const peers = (await members()).slice(0, 2);
  const a = node("a", peers, { key: INSECURE, minBackoffMs: 5000 });
  const b = node("b", peers, { minBackoffMs: 5000 });
  try {
    const aDrop = nextDrop(a);
    const bDrop = nextDrop(b);
    await Promise.all([a.start(), b.start()]);
    // b's client link sees a's insecure CHALLENGE; a's client link sees b's secure one.
    assert.deepEqual(new Set([await aDrop, await bDrop]), new Set(["peer-insecure", "peer-secure"]));
    assert.equal(a.isPeerUp("b") || b.isPeerUp("a"), false);
  } finally {
    await a.close();
    await b.close();
  }
  const ids: number[] = [];
  const x = node("a", peers, { key: INSECURE });
  const y = node("b", peers, {
    key: INSECURE,
    onClone: (m, _from, reply) => {
      ids.push(m.cloneId);
      reply({
        type: ScType.CloneAck,
        cloneId: m.cloneId,
        status: 0,
        responseLength: 10,
        head: new Uint8Array(0),
      });
    },
  });
  try {
    await Promise.all([x.start(), y.start()]);
    await x.waitForPeers(5000);
    assert.equal((await x.requestClone("b", cloneMsg(9), 2000)).kind, "accepted");
    assert.deepEqual(ids, [9]);
  } finally {
    await x.close();
    await y.close();
  }
});

test("silent connections are dropped at the handshake deadline", async () => {
  const peers = await members();
  const b = node("b", peers, { limits: { handshakeMs: 200 } });
  try {
    await b.start();
    const silent = await RawPeer.connect(ADDR.c, peers[1]!);
    await silent.message(1);
    await silent.closed;
    assert.equal(b.counters.drops["handshake-timeout"], 1);
  } finally {
    await b.close();
  }
});

test("inbound connections are capped in total and per member address", async () => {
  const peers = await members();
  const b = node("b", peers, { limits: { maxInbound: 3, maxInboundPerPeer: 2 } });
  try {
    await b.start();
    const held = [await RawPeer.connect(ADDR.c, peers[1]!), await RawPeer.connect(ADDR.c, peers[1]!)];
    await Promise.all(held.map((h) => h.message(1)));
    const third = await RawPeer.connect(ADDR.c, peers[1]!);
    await third.closed;
    assert.equal(third.got.length, 0, "refused before the CHALLENGE");
    assert.equal(b.counters.drops["connection-cap"], 1);
    assert.equal(b.inboundCount, 2);
    // Another member still gets in (the per-address cap kept room for it)...
    const fromA = await RawPeer.connect(ADDR.a, peers[1]!);
    await fromA.message(1);
    // ...up to the total cap.
    const over = await RawPeer.connect(ADDR.a, peers[1]!);
    await over.closed;
    assert.equal(over.got.length, 0);
    assert.equal(b.counters.drops["connection-cap"], 2);
    for (const h of [...held, fromA]) h.sock.destroy();
  } finally {
    await b.close();
  }
});

test("a peer's newer link replaces its older one (a reconnect before the old one was noticed dead)", async () => {
  const peers = await members();
  const ids: number[] = [];
  const lost: string[] = [];
  const b = node("b", peers, {
    onClone: (m) => ids.push(m.cloneId),
    onInboundLost: (p) => lost.push(`${p} after ${ids.length} clones`),
  });
  try {
    await b.start();
    const old = await RawPeer.connect(ADDR.c, peers[1]!);
    await old.handshake("c", KEY);
    const dropped = nextDrop(b);
    const fresh = await RawPeer.connect(ADDR.c, peers[1]!);
    await fresh.handshake("c", KEY);
    assert.equal(await dropped, "replaced");
    await old.closed;
    fresh.send(cloneMsg(3));
    await until(() => ids.length === 1);
    assert.deepEqual(ids, [3]);
    assert.equal(b.counters.accepted, 2);
    assert.deepEqual(
      lost,
      ["c after 0 clones"],
      "replaced: the older link's requests void before the newer one's first",
    );
    fresh.sock.destroy();
    await fresh.closed;
    await until(() => lost.length === 2);
    assert.deepEqual(lost, ["c after 0 clones", "c after 1 clones"], "the newer link from c closed too");
  } finally {
    await b.close();
  }
});

test("keepalives hold a quiet link up; a peer that goes silent is dropped at the idle timeout", async () => {
  const peers = await members();
  const limits = { keepaliveMs: 40, idleMs: 600 };
  const a = node("a", peers.slice(0, 2), { limits });
  const b = node("b", peers, { limits });
  try {
    await Promise.all([a.start(), b.start()]);
    await a.waitForPeers(5000);
    // An authenticated peer that then sends nothing, not even keepalives.
    const mute = await RawPeer.connect(ADDR.c, peers[1]!);
    await mute.handshake("c", KEY);
    const dropped = nextDrop(b);
    assert.equal(await dropped, "idle-timeout");
    await mute.closed;
    // Meanwhile the real link, as quiet but for its keepalives, stayed up.
    assert.ok(
      mute.got.some((m) => m.type === ScType.Keepalive),
      "b sent keepalives",
    );
    assert.ok(a.isPeerUp("b"));
    assert.equal(a.counters.disconnects, 0);
    assert.equal(b.counters.drops["idle-timeout"], 1);
  } finally {
    await a.close();
    await b.close();
  }
});

test("the client side drops a server that authenticated and then went silent (dead-peer detection)", async () => {
  const peers = (await members()).slice(0, 2);
  const server = net.createServer((sock) => {
    sock.on("error", () => undefined);
    const hs = new ServerHandshake(KEY, "b", randomBytes(32));
    const framer = new ScFramer();
    sock.write(encodeScMessage(hs.challenge));
    sock.on("data", (chunk: Buffer) => {
      framer.push(chunk);
      const f = framer.next();
      if (f === null || f instanceof ScDecodeError) return;
      const m = decodeScMessage(f.bytes);
      if (m instanceof ScDecodeError || m.type !== ScType.Hello) return;
      const r = hs.onHello(m, () => null);
      if ("reply" in r) sock.write(encodeScMessage(r.reply));
      framer.tagLength = 1 << 20; // then never reads anything again, nor answers
    });
  });
  server.listen(peers[1]!.port, ADDR.b);
  await once(server, "listening");
  const a = node("a", peers, { limits: { keepaliveMs: 40, idleMs: 250 }, minBackoffMs: 5000 });
  try {
    const up = once(a, "peer-up");
    const down = once(a, "peer-down");
    await a.start();
    await up;
    const pending = a.requestClone("b", cloneMsg(1), 60_000);
    await down;
    assert.equal((await pending).kind, "unreachable");
    assert.equal(a.counters.drops["idle-timeout"], 1);
  } finally {
    await a.close();
    await new Promise((r) => server.close(r));
  }
});

test("a peer that stops reading loses its link once the outbound bound is reached", async () => {
  const peers = await members();
  const head = new Uint8Array(30_000).fill(0x41);
  const b = node("b", peers, {
    limits: { maxOutboundBytes: 64 * 1024 },
    onClone: (m, _from, reply) =>
      reply({ type: ScType.CloneAck, cloneId: m.cloneId, status: 0, responseLength: head.length, head }),
  });
  try {
    await b.start();
    const raw = await RawPeer.connect(ADDR.c, peers[1]!);
    await raw.handshake("c", KEY);
    raw.sock.pause(); // reads nothing more: the replies pile up in both kernels, then in b
    const dropped = nextDrop(b);
    let sent = 0;
    let closed = false;
    void raw.closed.then(() => (closed = true));
    // Each CLONE draws a 30 KB CLONE-ACK; a few hundred fill the socket buffers.
    while (!closed && sent < 5000) {
      raw.send(cloneMsg(++sent));
      if (sent % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.equal(await dropped, "output-overflow");
    assert.equal(b.counters.drops["output-overflow"], 1);
  } finally {
    await b.close();
  }
});

test("setPeers: a member added at run time gets links both ways; one taken out loses them for good", async () => {
  const all = await members();
  const ab = all.filter((m) => m.id !== "c");
  const a = node("a", ab, { minBackoffMs: 20, maxBackoffMs: 100 });
  const b = node("b", ab, { minBackoffMs: 20, maxBackoffMs: 100 });
  const c = node("c", all, { minBackoffMs: 20, maxBackoffMs: 100 });
  try {
    await Promise.all([a.start(), b.start(), c.start()]);
    await a.waitForPeers(3000);
    // c is no member of a's and b's yet: their servers refuse it by address.
    await until(() => a.counters.drops["unknown-address"] > 0);
    assert.equal(c.isPeerUp("a"), false);
    a.setPeers(all);
    b.setPeers(all);
    await Promise.all([a.waitForPeers(3000), b.waitForPeers(3000), c.waitForPeers(3000)]);
    assert.deepEqual(a.peersUp().sort(), ["b", "c"]);
    // c leaves a's membership: a's link to it goes down and stays down, and a refuses c again.
    const down = once(a, "peer-down");
    a.setPeers(ab);
    assert.deepEqual(await down, ["c"]);
    assert.equal(a.isPeerUp("c"), false);
    assert.equal(a.sendOnLink("c", { type: ScType.Done, cloneIds: [1] }), false);
    const refused = a.counters.drops["unknown-address"];
    await until(() => a.counters.drops["unknown-address"] > refused);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(a.peersUp(), ["b"], "no link to c re-opened");
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

test("a CLONE crosses the wire encrypted: a tap between two nodes never sees its request or clone id", async () => {
  const peers = await members();
  const two = peers.slice(0, 2);
  // a dials b through a tap on b's address (another port) that records a -> b's bytes.
  const tapPort = await freePort(ADDR.b);
  const seen: Buffer[] = [];
  const tap = net.createServer((inSock) => {
    const out = net.connect({ host: ADDR.b, port: two[1]!.port, localAddress: ADDR.a });
    inSock.on("data", (d: Buffer) => {
      seen.push(Buffer.from(d));
      out.write(d);
    });
    out.on("data", (d: Buffer) => inSock.write(d));
    inSock.on("error", () => undefined);
    out.on("error", () => undefined);
    inSock.on("close", () => out.destroy());
    out.on("close", () => inSock.destroy());
  });
  tap.listen(tapPort, ADDR.b);
  await once(tap, "listening");
  const secretRequest = "GET /account?token=do-not-leak HTTP/1.1\r\nHost: x\r\n\r\n";
  const got: string[] = [];
  const b = node("b", two, {
    onClone: (m, _from, reply) => {
      got.push(new TextDecoder().decode(m.asf));
      reply({
        type: ScType.CloneAck,
        cloneId: m.cloneId,
        status: CloneStatus.Accepted,
        responseLength: 5,
        head: new Uint8Array(0),
      });
    },
  });
  const a = node("a", [two[0]!, { ...two[1]!, port: tapPort }]);
  try {
    await b.start();
    await a.start();
    await a.waitForPeers(3000);
    const msg = { ...cloneMsg(0x5ec2e7), asf: new TextEncoder().encode(secretRequest) };
    const out = await a.requestClone("b", msg, 2000);
    assert.equal(out.kind, "accepted");
    assert.deepEqual(got, [secretRequest], "b got the request intact");
    const wire = Buffer.concat(seen);
    assert.ok(wire.length > secretRequest.length, "the tap saw the CLONE");
    assert.equal(wire.indexOf("do-not-leak"), -1);
    assert.equal(wire.indexOf("GET /"), -1);
    assert.equal(wire.indexOf(Buffer.from([0x00, 0x5e, 0xc2, 0xe7])), -1, "the clone id is encrypted too");
  } finally {
    await a.close();
    await b.close();
    await new Promise((r) => tap.close(r));
  }
});

test("a sealed message whose ciphertext or length was altered on the way closes the link (bad-tag)", async () => {
  const peers = await members();
  const ids: number[] = [];
  const b = node("b", peers, { onClone: (m) => ids.push(m.cloneId) });
  try {
    await b.start();
    // One ciphertext bit flipped (in the request bytes).
    const r1 = await RawPeer.connect(ADDR.c, peers[1]!);
    await r1.handshake("c", KEY);
    const m1 = encodeScMessage(cloneMsg(1));
    const t1 = r1.session!.seal(m1);
    m1[m1.length - 3]! ^= 0x20;
    let dropped = nextDrop(b);
    r1.sock.write(Buffer.concat([m1, t1]));
    assert.equal(await dropped, "bad-tag");
    await r1.closed;
    // The length shortened by one (and the frame with it): the clear length is authenticated.
    const r2 = await RawPeer.connect(ADDR.c, peers[1]!);
    await r2.handshake("c", KEY);
    const m2 = encodeScMessage(cloneMsg(2));
    const t2 = r2.session!.seal(m2);
    const short = m2.slice(0, m2.length - 1);
    new DataView(short.buffer).setUint32(4, short.length);
    dropped = nextDrop(b);
    r2.sock.write(Buffer.concat([short, t2]));
    assert.equal(await dropped, "bad-tag");
    await r2.closed;
    assert.deepEqual(ids, []);
    assert.equal(b.counters.drops["bad-tag"], 2);
  } finally {
    await b.close();
  }
});

test("a version 3 peer (HMAC-tagged links) is refused with reason 'version', as server and as client", async () => {
  const peers = await members();
  const b = node("b", peers, { onClone: () => assert.fail("no clone expected") });
  try {
    await b.start();
    const v3 = await RawPeer.connect(ADDR.c, peers[1]!);
    await v3.message(1); // b's CHALLENGE
    const hello = encodeScMessage({
      type: ScType.Hello,
      auth: 0,
      nonce: randomBytes(32),
      mac: new Uint8Array(32),
      nodeId: "c",
    });
    hello[2] = 3;
    const dropped = nextDrop(b);
    v3.sock.write(hello);
    assert.equal(await dropped, "version");
    await v3.closed;
    assert.equal(b.counters.drops.version, 1);
    assert.equal(b.counters.accepted, 0);
  } finally {
    await b.close();
  }
  // A version 3 server's CHALLENGE: the client refuses it before answering.
  const challenge = encodeScMessage(new ServerHandshake(KEY, "b", randomBytes(32)).challenge);
  challenge[2] = 3;
  const helloSent: Buffer[] = [];
  const old = net.createServer((s) => {
    s.on("error", () => undefined);
    s.on("data", (d: Buffer) => helloSent.push(d));
    s.write(challenge);
  });
  old.listen(peers[1]!.port, ADDR.b);
  await once(old, "listening");
  const a = node("a", peers.slice(0, 2), { minBackoffMs: 5000 });
  try {
    const dropped = nextDrop(a);
    await a.start();
    assert.equal(await dropped, "version");
    assert.equal(a.isPeerUp("b"), false);
    assert.equal(a.counters.drops.version, 1);
    assert.deepEqual(helloSent, [], "no HELLO for a version 3 server");
  } finally {
    await a.close();
    await new Promise((r) => old.close(r));
  }
});

test("a link whose key carried maxMessagesPerKey messages closes (key-exhausted) and comes back with fresh keys", async () => {
  const peers = (await members()).slice(0, 2);
  const limits = { maxMessagesPerKey: 3, keepaliveMs: 60_000 };
  const ids: number[] = [];
  const ack = (cloneId: number) => ({
    type: ScType.CloneAck as const,
    cloneId,
    status: CloneStatus.Accepted,
    responseLength: 1,
    head: new Uint8Array(0),
  });
  const b = node("b", peers, {
    limits,
    onClone: (m, _from, reply) => {
      ids.push(m.cloneId);
      reply(ack(m.cloneId));
    },
  });
  const a = node("a", peers, { limits, minBackoffMs: 10 });
  try {
    await b.start();
    await a.start();
    await a.waitForPeers(3000);
    // a -> b carried the HELLO unsealed; then three sealed CLONEs, the key's limit.
    for (const id of [1, 2, 3])
      assert.equal((await a.requestClone("b", cloneMsg(id), 2000)).kind, "accepted");
    const dropped = nextDrop(a);
    const down = once(a, "peer-down");
    assert.equal((await a.requestClone("b", cloneMsg(4), 2000)).kind, "unreachable");
    assert.equal(await dropped, "key-exhausted");
    await down;
    assert.deepEqual(ids, [1, 2, 3], "nothing was sealed past the limit");
    await a.waitForPeers(3000);
    assert.equal((await a.requestClone("b", cloneMsg(5), 2000)).kind, "accepted");
    assert.equal(a.counters.drops["key-exhausted"], 1);
    assert.equal(a.counters.connects, 2);
    assert.equal(b.counters.drops["bad-tag"], 0);
  } finally {
    await a.close();
    await b.close();
  }
});
