// The SC engine (engine.ts): every path of a clone on both ends, pure (time passed in,
// effects recorded) and with real TcpStacks on the virtual network (sim-testing.ts), so the
// failure paths the netns tests cover with root run here without it, under virtual time.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CloneSide,
  OriginalSide,
  resumeOffsets,
  resumePoint,
  SendDeadlines,
  type OriginalEffects,
  type Tuple,
} from "./engine.js";
import { CloneStatus } from "./message.js";
import { encodeIpv4Tcp, parseTcp, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST } from "../wire/tcp.js";
import { parseIpv4 } from "../wire/ipv4.js";
import { ipv4FromString } from "../wire/addr.js";
import { isWireError } from "../wire/error.js";
import { pattern } from "../tcp/testing.js";
import { ScSim } from "./sim-testing.js";

const CLIENT = ipv4FromString("198.18.0.101") as number;
const VIP = ipv4FromString("198.18.100.1") as number;
const TUPLE: Tuple = { remoteAddr: CLIENT, remotePort: 40000, localAddr: VIP, localPort: 80 };
const B = { id: "B" };
const C = { id: "C" };

function packet(ack: number, flags = TCP_ACK, payload = new Uint8Array(0), srcPort = 40000): Uint8Array {
  const p = encodeIpv4Tcp(
    { src: CLIENT, dst: VIP, ttl: 64, tos: 0, id: 1, dontFrag: true },
    { srcPort, dstPort: 80, seq: 1000, ack, flags, window: 500, urgent: 0, options: {}, payload },
  );
  assert.ok(!isWireError(p));
  return p;
}

/** `extra`: bytes the connection's framing adds to a response (TLS records), as streamLength says. */
type H = { name: string; extra?: number };

/** An original side whose effects are recorded as strings. */
function original(
  opts: { ackTimeoutMs?: number; cancelWaitMs?: number; stallMs?: number; finLingerMs?: number } = {},
) {
  const log: string[] = [];
  const link = { up: true };
  const forwarded: Uint8Array[] = [];
  const local: Uint8Array[] = [];
  const resetCauses: string[] = [];
  const leftAt: (number | undefined)[] = [];
  const fx: OriginalEffects<{ id: string }, H> = {
    shadow: (h, on, ackedThrough) => {
      log.push(`shadow:${h.name}:${on}`);
      if (!on) leftAt.push(ackedThrough);
    },
    toStack: (p) => local.push(p),
    forward: (p, peer) => {
      forwarded.push(p);
      log.push(`forward:${peer.id}`);
    },
    sendCancel: (peer, id) => {
      if (link.up) log.push(`cancel:${peer.id}:${id}`);
      return link.up;
    },
    sendDone: (peer, id) => {
      if (link.up) log.push(`done:${peer.id}:${id}`);
      return link.up;
    },
    settle: (h, d) => log.push(`settle:${h.name}:${d}`),
    reset: (c, cause) => {
      log.push(`reset:${c.handle.name}`);
      resetCauses.push(cause);
    },
    resume: (c) => log.push(`resume:${c.handle.name}:${c.phase}`),
    accepted: (c, ms) => log.push(`accepted:${c.length}:${ms}`),
    streamLength: (h, n) => n + (h.extra ?? 0),
    count: (r, d) => log.push(d === undefined ? `count:${r}` : `count:${r}:${d}`),
  };
  const o = new OriginalSide<{ id: string }, H>(
    {
      ackTimeoutMs: opts.ackTimeoutMs ?? 2250,
      ...(opts.cancelWaitMs === undefined ? {} : { cancelWaitMs: opts.cancelWaitMs }),
      router: { stallMs: opts.stallMs ?? 5000, finLingerMs: opts.finLingerMs ?? 10_000 },
    },
    fx,
  );
  return { o, log, forwarded, local, link, resetCauses, leftAt };
}

const accepted = (cloneId: number, length: number, head = new Uint8Array(10)) => ({
  cloneId,
  status: CloneStatus.Accepted,
  responseLength: length,
  head,
});

test("original: shadow before the CLONE, forwarding, completion at start + length, then the connection back", () => {
  const { o, log, forwarded, local } = original();
  const h = { name: "c1" };
  const c = o.begin(h, B, TUPLE, 5000, 0);
  assert.deepEqual(log, ["shadow:c1:true"], "shadow on before anything goes out");
  o.onClientPacket(packet(5000), 1);
  assert.equal(local.length, 1, "the local stack sees every client packet");
  assert.equal(forwarded.length, 1, "and so does the clone while the SC-ACK is outstanding");
  o.onAck("B", accepted(c.id, 100), 3);
  assert.equal(c.phase, "active");
  o.onClientPacket(packet(5060), 4);
  assert.ok(!log.includes("settle:c1:done"));
  const n = forwarded.length;
  o.onClientPacket(packet(5100), 5);
  assert.deepEqual(log.slice(-3), [`done:B:${c.id}`, "shadow:c1:false", "settle:c1:done"]);
  assert.equal(forwarded.length, n, "DONE ends the clone: the completing ACK is not relayed");
  assert.equal(o.router.notRelayed, 1);
  o.onClientPacket(packet(5100), 6);
  assert.equal(forwarded.length, n, "nothing after completion (no linger)");
  assert.ok(log.includes("accepted:100:3"), "latency from CLONE sent to SC-ACK received");
  assert.equal(o.size, 0);
});

test("original: completion leaves shadow mode at the ACK the router counted, which the stack may have dropped", () => {
  for (const early of [false, true]) {
    const { o, leftAt } = original();
    const c = o.begin({ name: "c" }, B, TUPLE, 5000, 0);
    if (early) {
      // The client's ACK of the end overtook the SC-ACK: completion on the SC-ACK.
      o.onClientPacket(packet(5100), 1);
      o.onAck("B", accepted(c.id, 100), 2);
    } else {
      o.onAck("B", accepted(c.id, 100), 1);
      o.onClientPacket(packet(5040), 2);
      o.onClientPacket(packet(5100, TCP_ACK | TCP_PSH, new Uint8Array(6)), 3);
    }
    assert.equal(c.phase, "over");
    assert.deepEqual(leftAt, [5100]);
  }
  // A failed clone leaves shadow with no such point (the resume finds its own).
  const { o, leftAt } = original({ ackTimeoutMs: 10 });
  o.begin({ name: "d" }, B, TUPLE, 5000, 0);
  o.poll(100);
  o.poll(1000);
  assert.deepEqual(leftAt, [undefined]);
});

test("original: a framed response (TLS records) completes at start + its stream length, not its content length", () => {
  const { o, log } = original();
  const h = { name: "t", extra: 46 };
  const c = o.begin(h, B, TUPLE, 5000, 0, true);
  o.onAck("B", accepted(c.id, 100), 3);
  assert.equal(c.length, 100);
  assert.equal(c.streamLength, 146);
  o.onClientPacket(packet(5101), 4);
  assert.ok(!log.includes("settle:t:done"), "the content length (and its FIN) acknowledged is not the end");
  o.onClientPacket(packet(5146), 5);
  assert.ok(!log.includes("settle:t:done"), "the delegated FIN is still owed");
  o.onClientPacket(packet(5147), 6);
  assert.deepEqual(log.slice(-3), [`done:B:${c.id}`, "shadow:t:false", "settle:t:done"]);
});

test("original: completion with the SC link down: the completing ACK is relayed and alone ends the clone", () => {
  const { o, log, forwarded, link } = original();
  const c = o.begin({ name: "c" }, B, TUPLE, 0, 0);
  o.onAck("B", accepted(c.id, 100), 1);
  link.up = false;
  const n = forwarded.length;
  o.onClientPacket(packet(100), 2);
  assert.equal(forwarded.length, n + 1);
  assert.deepEqual(log.slice(-3), ["forward:B", "shadow:c:false", "settle:c:done"]);
  assert.equal(o.router.forwarded, 1);
  assert.equal(o.router.completed, 1);
});

test("original: the client's ACK for the whole response may overtake the SC-ACK", () => {
  const { o, log } = original();
  const c = o.begin({ name: "c" }, B, TUPLE, 0, 0);
  o.onClientPacket(packet(30), 1);
  assert.ok(!log.some((l) => l.startsWith("settle")));
  o.onAck("B", accepted(c.id, 30), 2);
  assert.deepEqual(log.slice(-3), [`done:B:${c.id}`, "shadow:c:false", "settle:c:done"]);
});

test("original: no SC-ACK by the deadline: CANCEL; its answer (not started) has the request served here", () => {
  const { o, log } = original({ ackTimeoutMs: 100, cancelWaitMs: 50 });
  const c = o.begin({ name: "c" }, B, TUPLE, 0, 10);
  assert.equal(o.pollAt(), 110);
  o.poll(109);
  assert.ok(!log.some((l) => l.startsWith("cancel")));
  o.poll(110);
  assert.deepEqual(log.slice(1), ["cancel:B:1"], "nothing served before the answer");
  assert.equal(c.phase, "cancelling");
  assert.equal(o.pollAt(), 160);
  o.onAck(
    "B",
    { cloneId: c.id, status: CloneStatus.Cancelled, responseLength: 0, head: new Uint8Array(0) },
    120,
  );
  assert.deepEqual(log.slice(2), ["count:timeout", "shadow:c:false", "settle:c:serve"]);
  o.onAck("B", accepted(c.id, 10), 130);
  assert.equal(o.unexpectedAcks, 1);
  assert.equal(log.length, 5, "nothing more happens");
  assert.equal(o.pollAt(), Infinity);
});

test("original: an SC-ACK accepting the clone after its deadline, before the CANCEL's answer, is taken: one sender", () => {
  const { o, log } = original({ ackTimeoutMs: 100 });
  const c = o.begin({ name: "c" }, B, TUPLE, 0, 0);
  o.onClientPacket(packet(20), 50); // the clone is sending; its SC-ACK is held on a lossy link
  o.poll(100);
  assert.deepEqual(log.slice(-1), ["cancel:B:1"]);
  o.onAck("B", accepted(c.id, 30), 400);
  assert.equal(c.phase, "active");
  assert.equal(o.lateAccepts, 1);
  assert.ok(!log.some((l) => l.startsWith("count:") || l.startsWith("settle") || l.startsWith("reset")));
  o.onClientPacket(packet(30), 410);
  assert.deepEqual(log.slice(-3), [`done:B:${c.id}`, "shadow:c:false", "settle:c:done"]);
  o.poll(10_000);
  assert.equal(o.cancelsUnanswered, 0);
});

test("original: a CANCEL with no answer in cancelWaitMs: timed out (served here); a CANCEL that cannot be sent: at once", () => {
  const { o, log, link } = original({ ackTimeoutMs: 100, cancelWaitMs: 300 });
  const c = o.begin({ name: "c" }, B, TUPLE, 0, 0);
  o.poll(100);
  o.poll(399);
  assert.equal(c.phase, "cancelling");
  o.poll(400);
  assert.deepEqual(log.slice(1), ["cancel:B:1", "count:timeout", "shadow:c:false", "settle:c:serve"]);
  assert.equal(o.cancelsUnanswered, 1);
  link.up = false;
  const d = o.begin({ name: "d" }, B, { ...TUPLE, remotePort: 2 }, 0, 500);
  o.poll(600);
  assert.equal(d.phase, "over");
  assert.deepEqual(log.slice(-3), ["count:timeout", "shadow:d:false", "settle:d:serve"]);
});

test("original: the link goes down while a CANCEL is out: served here (peer-down)", () => {
  const { o, log } = original({ ackTimeoutMs: 100 });
  const c = o.begin({ name: "c" }, B, TUPLE, 0, 0);
  o.poll(100);
  o.onPeerDown("B");
  assert.equal(c.phase, "over");
  assert.deepEqual(log.slice(-3), ["count:peer-down", "shadow:c:false", "settle:c:serve"]);
  assert.equal(o.pollAt(), Infinity);
});

test("original: refused clone is served here, the refusal counted by status", () => {
  const { o, log } = original();
  const c = o.begin({ name: "c" }, B, TUPLE, 0, 0);
  o.onAck("B", { cloneId: c.id, status: CloneStatus.Busy, responseLength: 0, head: new Uint8Array(0) }, 1);
  assert.deepEqual(log.slice(1), ["count:refused:busy", "shadow:c:false", "settle:c:serve"]);
});

test("original: refused or lost after the client acknowledged bytes of it: reset, never wrong bytes", () => {
  const { o, log, resetCauses } = original({ ackTimeoutMs: 100, cancelWaitMs: 100 });
  o.begin({ name: "c" }, B, TUPLE, 0, 0);
  o.onClientPacket(packet(20), 1); // a clone answered; its SC-ACK and the CANCEL's answer are lost
  o.poll(100);
  o.poll(200);
  assert.deepEqual(log.slice(-6), [
    "cancel:B:1",
    "count:timeout",
    "count:abandoned",
    "shadow:c:false",
    "settle:c:done",
    "reset:c",
  ]);
  assert.deepEqual(resetCauses, ["timeout after the client acknowledged 20 bytes of the clone"]);
});

test("original: an SC-ACK from another peer than the clone's is not taken", () => {
  const { o, log } = original();
  const c = o.begin({ name: "c" }, B, TUPLE, 0, 0);
  o.onAck("C", accepted(c.id, 10), 1);
  assert.equal(o.unexpectedAcks, 1);
  assert.equal(c.phase, "sent");
  assert.deepEqual(log, ["shadow:c:true"]);
});

test("original: the clone's link goes down: waiting clones are served here, answering ones resume", () => {
  const { o, log, forwarded } = original();
  const waiting = o.begin({ name: "w" }, B, TUPLE, 0, 0);
  const other = o.begin({ name: "o" }, C, { ...TUPLE, remotePort: 40001 }, 0, 0);
  const answering = o.begin({ name: "a" }, B, { ...TUPLE, remotePort: 40002 }, 0, 0);
  o.onAck("B", accepted(answering.id, 1000), 1);
  o.onPeerDown("B");
  assert.ok(log.includes("settle:w:serve"));
  assert.ok(log.includes("count:peer-down"));
  assert.ok(log.includes("resume:a:resuming"));
  assert.equal(waiting.phase, "over");
  assert.equal(other.phase, "sent", "another peer's clone is untouched");
  // Routing to the failed node stopped at once.
  const n = forwarded.length;
  o.onClientPacket(packet(10, TCP_ACK, new Uint8Array(0), 40002), 2);
  assert.equal(forwarded.length, n);
  o.resumed(answering);
  assert.equal(log.at(-1), "shadow:a:false");
});

test("original: no progress for stallMs resumes; a client that closed and went quiet ends the clone", () => {
  const { o, log } = original({ stallMs: 100, finLingerMs: 300 });
  const stalled = o.begin({ name: "s" }, B, TUPLE, 0, 0);
  o.onAck("B", accepted(stalled.id, 1000), 0);
  const finned = o.begin({ name: "f" }, B, { ...TUPLE, remotePort: 40001 }, 0, 0);
  o.onAck("B", accepted(finned.id, 1000), 0);
  o.onClientPacket(packet(10, TCP_ACK | TCP_FIN, new Uint8Array(0), 40001), 50);
  assert.equal(o.pollAt(), 100);
  o.poll(100);
  assert.ok(log.includes("resume:s:resuming"));
  assert.ok(!log.includes("resume:f:resuming"), "the FIN's ACK was progress");
  o.poll(150);
  assert.ok(log.includes("resume:f:resuming"), "no progress after the FIN either: resumed, not dropped");
});

test("original: FIN delegation: the client's ACK of the clone's FIN closes the connection in the same tick: done, no failure", () => {
  // The stack processes the client's ACK of the delegated FIN (with the client's own FIN)
  // and closes the connection at once, inside toStack, before the engine acts on the
  // router's "complete": the close is the clone's success (bench micro counted ~1 in 4 as
  // "reset" before).
  const { o, log, forwarded, local } = original();
  const h = { name: "c" };
  let closing = false;
  const c = o.begin(h, B, TUPLE, 0, 0, true);
  o.onAck("B", accepted(c.id, 100), 1);
  const toStack = local.push.bind(local);
  local.push = (...p: Uint8Array[]) => {
    const n = toStack(...p);
    if (closing) o.onConnectionClosed(h);
    return n;
  };
  closing = true;
  o.onClientPacket(packet(101, TCP_ACK | TCP_FIN), 2);
  assert.ok(!log.some((l) => l.startsWith("count:")), log.join());
  assert.ok(log.includes(`done:B:${c.id}`) && log.includes("settle:c:done"), log.join());
  assert.equal(forwarded.length, 0, "the clone learns of the ACK of its FIN by the DONE");
  assert.equal(o.size, 0);
});

test("original: FIN delegation with the SC link down at the close: the ACK of the FIN goes to the clone instead of a DONE", () => {
  const { o, log, forwarded, local, link } = original();
  const h = { name: "c" };
  const c = o.begin(h, B, TUPLE, 0, 0, true);
  o.onAck("B", accepted(c.id, 100), 1);
  const toStack = local.push.bind(local);
  local.push = (...p: Uint8Array[]) => {
    const n = toStack(...p);
    o.onConnectionClosed(h);
    return n;
  };
  link.up = false;
  o.onClientPacket(packet(101, TCP_ACK | TCP_FIN), 2);
  assert.ok(!log.some((l) => l.startsWith("count:") || l.startsWith("done:")), log.join());
  assert.equal(forwarded.length, 1, "the clone learns of the end from the ACK itself");
  assert.equal(o.router.forwarded, 1);
});

test("original: the client closes or resets its connection during the clone: counted, ended once", () => {
  const { o, log } = original();
  const h = { name: "c" };
  const c = o.begin(h, B, TUPLE, 0, 0);
  o.onAck("B", accepted(c.id, 1000), 1);
  o.onClientPacket(packet(5, TCP_RST), 2);
  o.onConnectionClosed(h);
  o.onConnectionClosed(h);
  assert.deepEqual(log.slice(-4), ["forward:B", "count:reset", "shadow:c:false", "settle:c:done"]);
  assert.equal(o.size, 0);
});

test("original: a CLONE that could not be sent is served here", () => {
  const { o, log } = original();
  const c = o.begin({ name: "c" }, B, TUPLE, 0, 0);
  o.unsent(c);
  assert.deepEqual(log.slice(1), ["count:peer-down", "shadow:c:false", "settle:c:serve"]);
  assert.equal(o.pollAt(), Infinity);
});

test("resume offsets: head left to send, then the body from the right byte", () => {
  assert.deepEqual(resumeOffsets(100, 0), { headFrom: 0, bodyFrom: 0 });
  assert.deepEqual(resumeOffsets(100, 40), { headFrom: 40, bodyFrom: 0 });
  assert.deepEqual(resumeOffsets(100, 100), { headFrom: 100, bodyFrom: 0 });
  assert.deepEqual(resumeOffsets(100, 1500), { headFrom: 100, bodyFrom: 1400 });
  assert.equal(resumePoint({ ackedBytes: 300, acked: 0xffffff00 }, 0x10), 300 + 0x110, "across the wrap");
});

test("send deadlines: only a connection with data outstanding and no progress expires", () => {
  const d = new SendDeadlines<string>(100);
  d.watch("x", 5, 0);
  d.watch("idle", 5, 0);
  d.watch("gone", 5, 0);
  const state: Record<string, { una: number; idle: boolean; gone: boolean }> = {
    x: { una: 5, idle: false, gone: false },
    idle: { una: 5, idle: true, gone: false },
    gone: { una: 5, idle: false, gone: true },
  };
  assert.equal(d.pollAt(), 100);
  assert.deepEqual(
    d.expire(50, (h) => state[h]!),
    [],
  );
  assert.equal(d.size, 2, "a gone connection is no longer watched");
  state.x!.una = 9; // progress restarts the clock
  assert.deepEqual(
    d.expire(99, (h) => state[h]!),
    [],
  );
  assert.deepEqual(
    d.expire(198, (h) => state[h]!),
    [],
  );
  assert.deepEqual(
    d.expire(199, (h) => state[h]!),
    ["x"],
  );
  assert.deepEqual(
    d.expire(10_000, (h) => state[h]!),
    [],
    "an idle connection owes nothing",
  );
});

// ------------------------------------------------------------------ clone side

function cloneSide(max = 10) {
  const log: string[] = [];
  const s = new CloneSide<string>(
    { maxClones: max, safetyMs: 50 },
    { drop: (h) => log.push(`drop:${h}`), count: (r) => log.push(`count:${r}`) },
  );
  return { s, log };
}

test("clone side: admission refuses late, excess and duplicate clones", () => {
  const { s } = cloneSide(1);
  assert.equal(s.admit("A", 1, TUPLE, 1000, 951), CloneStatus.Expired, "within the safety margin");
  const r = s.admit("A", 1, TUPLE, 1000, 0);
  assert.equal(typeof r, "object");
  if (typeof r === "number") return;
  s.attach(r, "h1");
  assert.equal(s.admit("A", 2, { ...TUPLE, remotePort: 1 }, 1000, 0), CloneStatus.Busy);
  const { s: s2 } = cloneSide();
  const r2 = s2.admit("A", 1, TUPLE, 1000, 0);
  if (typeof r2 === "number") return assert.fail("admitted");
  s2.attach(r2, "h");
  assert.equal(s2.admit("A", 1, { ...TUPLE, remotePort: 1 }, 1000, 0), CloneStatus.Exists, "same id");
});

test("clone side: a connection's clone belongs to its peer: that peer's next CLONE replaces it, another's is refused", () => {
  const { s, log } = cloneSide();
  const first = s.admit("A", 1, TUPLE, 1000, 0);
  if (typeof first === "number") return assert.fail("admitted");
  s.attach(first, "h1");
  assert.equal(s.ownerOf(TUPLE), "A");
  assert.equal(s.admit("C", 9, TUPLE, 1000, 0), CloneStatus.Exists);
  assert.equal(s.onCancel("C", 1), "ignored", "C cannot cancel A's clone");
  assert.equal(s.cancelsIgnored, 1);
  const next = s.admit("A", 2, TUPLE, 1000, 0);
  assert.equal(typeof next, "object");
  assert.deepEqual(log, ["drop:h1"], "the previous clone vanished");
  assert.equal(s.size, 0);
});

test("clone side: CANCEL before the start stops it; after the start it is too late", () => {
  const { s } = cloneSide();
  const a = s.admit("A", 1, TUPLE, 1000, 0);
  const b = s.admit("A", 2, { ...TUPLE, remotePort: 2 }, 1000, 0);
  if (typeof a === "number" || typeof b === "number") return assert.fail("admitted");
  s.attach(a, "a");
  s.attach(b, "b");
  assert.equal(s.onCancel("A", 1), "cancelled");
  assert.equal(s.start(a, 10), CloneStatus.Cancelled);
  assert.equal(s.start(b, 960), CloneStatus.Expired, "past the deadline minus the safety margin");
  const c = s.admit("A", 3, { ...TUPLE, remotePort: 3 }, 1000, 0);
  if (typeof c === "number") return assert.fail("admitted");
  s.attach(c, "c");
  assert.equal(s.start(c, 10), null);
  assert.equal(s.onCancel("A", 3), "started");
});

test("clone side: the link from a peer is lost: that peer's clones vanish, counted; another peer's stay", () => {
  const { s, log } = cloneSide();
  const a1 = s.admit("A", 1, TUPLE, 1000, 0);
  const a2 = s.admit("A", 2, { ...TUPLE, remotePort: 2 }, 1000, 0);
  const c1 = s.admit("C", 1, { ...TUPLE, remotePort: 3 }, 1000, 0);
  if (typeof a1 === "number" || typeof a2 === "number" || typeof c1 === "number")
    return assert.fail("admitted");
  s.attach(a1, "a1");
  s.attach(a2, "a2");
  s.attach(c1, "c1");
  assert.equal(s.start(a1, 10), null);
  assert.equal(s.linkLost("A"), 2);
  assert.deepEqual(log, ["count:clone-link-lost", "drop:a1", "count:clone-link-lost", "drop:a2"]);
  assert.equal(s.size, 1);
  assert.equal(s.ownerOf({ ...TUPLE, remotePort: 3 }), "C");
  assert.equal(s.onDone("A", 1), false, "gone");
});

test("clone side: DONE makes the sender's clone vanish; another peer's DONE or a late one does nothing", () => {
  const { s, log } = cloneSide();
  const r = s.admit("A", 1, TUPLE, 1000, 0);
  if (typeof r === "number") return assert.fail("admitted");
  s.attach(r, "h");
  assert.equal(s.onDone("C", 1), false);
  assert.deepEqual(log, []);
  assert.equal(s.onDone("A", 1), true);
  assert.deepEqual(log, ["drop:h"]);
  assert.equal(s.onDone("A", 1), false, "already gone");
  assert.equal(s.size, 0);
});

test("clone side: forwarded packets reach only a clone that exists; send timeouts make it vanish", () => {
  const { s, log } = cloneSide();
  assert.equal(s.acceptsPeerPacket(CLIENT, 40000, VIP, 80), false, "before the CLONE arrived");
  const r = s.admit("A", 1, TUPLE, 1000, 0);
  if (typeof r === "number") return assert.fail("admitted");
  s.attach(r, "h");
  assert.equal(s.acceptsPeerPacket(CLIENT, 40000, VIP, 80), true);
  assert.equal(s.acceptsPeerPacket(CLIENT, 40000, VIP, 81), false);
  s.sendTimedOut("h");
  assert.deepEqual(log, ["count:clone-send-timeout", "drop:h"]);
  assert.equal(s.acceptsPeerPacket(CLIENT, 40000, VIP, 80), false, "after it vanished");
  assert.equal(s.peerPacketsDropped, 3);
});

// ------------------------------------------------------------------ with TCP, virtual time

const REQUEST = "GET /x HTTP/1.1\r\nHost: sc\r\n\r\n";

function response(n: number, seed = 7): { head: Uint8Array; body: Uint8Array } {
  return {
    head: Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${n}\r\n\r\n`),
    body: pattern(n, seed),
  };
}

function whole(r: { head: Uint8Array; body: Uint8Array }): Buffer {
  return Buffer.concat([r.head, r.body]);
}

for (const [loss, seed] of [
  [0, 1],
  [0.01, 2],
  [0.05, 3],
  [0.05, 4],
] as const) {
  test(`sim: a clone answers byte-exact with ${loss * 100}% loss and reordering (seed ${seed}); the original takes the connection back`, async () => {
    const resp = response(200_000, seed);
    const sim = new ScSim({ seed, respond: () => resp });
    sim.net.setImpairment({ loss, reorder: loss > 0 ? 0.05 : 0, reorderDelay: 3 });
    const cl = sim.connect();
    await sim.run(() => cl.sock.readyState === "open", 5000);
    cl.sock.write(REQUEST);
    const want = whole(resp);
    assert.ok(await sim.run(() => cl.received().length >= want.length && sim.settled.size === 1, 120_000));
    assert.ok(cl.received().equals(want), "byte-exact");
    const orig = sim.originals[0]!;
    assert.equal(sim.settled.get(orig), "done");
    assert.deepEqual(sim.events, ["done:1", "settle:done"]);
    assert.equal(orig.conn.shadow, false);
    assert.equal(orig.conn.sndUna, orig.conn.sndMax, "its send state followed the client's ACKs");
    assert.equal(sim.latencies.length, 1);
    assert.ok(
      await sim.run(() => sim.cloneSide.size === 0, 1000),
      "the clone vanished (DONE or its last ACK)",
    );
  });
}

test("sim: completion reaches the clone as DONE, or as the relayed last ACK when no DONE can be sent", async () => {
  for (const doneLink of [true, false]) {
    const resp = response(50_000);
    const sim = new ScSim({ respond: () => resp });
    sim.doneLink = doneLink;
    const want = whole(resp).length;
    const cl = sim.connect();
    await sim.run(() => cl.sock.readyState === "open", 5000);
    await sim.run(() => sim.originals.length > 0, 5000);
    // Drops the forwarded ACK that completes the response (lost between the nodes).
    const end = (sim.originals[0]!.conn.sndMax + want) >>> 0;
    let relayedLast = 0;
    sim.forwardFilter = (p) => {
      const ip = parseIpv4(p, { verifyChecksum: false });
      if (isWireError(ip)) return true;
      const tcp = parseTcp(ip.payload, ip.src, ip.dst, { verifyChecksum: false });
      if (!isWireError(tcp) && tcp.ack === end) relayedLast++;
      return true;
    };
    cl.sock.write(REQUEST);
    assert.ok(await sim.run(() => sim.settled.size === 1, 10_000));
    assert.equal(sim.events.includes("done:1"), doneLink);
    assert.equal(relayedLast > 0, !doneLink, "the last ACK is relayed only without a DONE");
    assert.ok(
      await sim.run(() => sim.cloneSide.size === 0, 1000),
      `the clone vanished (DONE link ${doneLink})`,
    );
    assert.ok(cl.received().equals(whole(resp)));
  }
});

test("sim: the clone's node dies mid-response: the original resumes from the acknowledged byte, byte-exact under loss", async () => {
  for (const seed of [11, 12, 13]) {
    const resp = response(400_000, seed);
    const sim = new ScSim({ seed, respond: () => resp });
    sim.net.setImpairment({ loss: 0.01 });
    const cl = sim.connect();
    await sim.run(() => cl.sock.readyState === "open", 5000);
    cl.sock.write(REQUEST);
    const kill = 30_000 + seed * 10_000;
    assert.ok(await sim.run(() => cl.received().length > kill, 60_000));
    sim.killB();
    const want = whole(resp);
    assert.ok(await sim.run(() => cl.received().length >= want.length, 120_000), `seed ${seed}`);
    assert.ok(cl.received().equals(want), `byte-exact after the resume (seed ${seed})`);
    assert.ok(sim.events.includes("resumed"), sim.events.join());
    assert.ok(await sim.run(() => sim.events.includes("resumed-sent"), 60_000));
    assert.equal(cl.closed(), false, "the client never saw a reset");
  }
});

test("sim: the clone's node stalls (its packets lost): resumed after stallMs", async () => {
  const resp = response(100_000);
  const sim = new ScSim({ respond: () => resp, stallMs: 500 });
  const cl = sim.connect();
  await sim.run(() => cl.sock.readyState === "open", 5000);
  cl.sock.write(REQUEST);
  await sim.run(() => cl.received().length > 10_000, 10_000);
  const t0 = sim.net.now;
  sim.bAlive = false; // silent: no link-down event, only the stall shows it
  const want = whole(resp);
  assert.ok(await sim.run(() => cl.received().length >= want.length, 60_000));
  assert.ok(cl.received().equals(want));
  assert.ok(sim.events.includes("resumed"));
  assert.ok(sim.net.now - t0 >= 500, "not before the stall timeout");
});

test("sim: no SC-ACK in time (the clone's node is slow): CANCEL, the request served by the original", async () => {
  const resp = response(1000);
  const sim = new ScSim({ respond: () => resp, cloneTimeoutMs: 200 });
  sim.cloneWorkMs = 1000; // longer than the start deadline
  const cl = sim.connect();
  await sim.run(() => cl.sock.readyState === "open", 5000);
  cl.sock.write(REQUEST);
  assert.ok(await sim.run(() => sim.settled.size === 1, 10_000));
  assert.deepEqual(sim.events.slice(0, 2), ["cancel:1", "timeout"]);
  assert.equal(sim.settled.get(sim.originals[0]!), "serve");
  // The slow node then finds the start deadline passed and the clone cancelled: it sends nothing.
  await sim.run(() => false, 2000);
  assert.equal(cl.received().length, 0);
  assert.equal(sim.cloneSide.size, 0);
});

test("sim: the SC-ACK held past its deadline on a lossy SC link while the clone sends: CANCEL, then the late SC-ACK is taken; byte-exact, no reset", async () => {
  const resp = response(50_000);
  const sim = new ScSim({ respond: () => resp, cloneTimeoutMs: 200 });
  const cl = sim.connect();
  await sim.run(() => cl.sock.readyState === "open", 5000);
  sim.backStallUntil = sim.net.now + 700; // past the SC-ACK deadline (450 ms), within the CANCEL's wait (+450 ms)
  cl.sock.write(REQUEST);
  assert.ok(await sim.run(() => sim.events.includes("cancel:1"), 5000));
  assert.ok(
    sim.original.cloneOf(sim.originals[0]!)!.entry.ackedBytes > 0,
    "the client acknowledged bytes of the clone",
  );
  const want = whole(resp);
  assert.ok(await sim.run(() => sim.settled.size === 1 && cl.received().length >= want.length, 10_000));
  assert.ok(cl.received().equals(want));
  assert.equal(sim.settled.get(sim.originals[0]!), "done", sim.events.join());
  assert.equal(sim.original.lateAccepts, 1, sim.events.join());
  assert.deepEqual(
    sim.events.filter((e) => e === "timeout" || e === "abandoned" || e === "reset"),
    [],
    "the original neither served it nor reset the client",
  );
  assert.equal(cl.closed(), false, sim.events.join());
});

test("sim: the SC link stuck (no answer to the CANCEL) after the client acknowledged bytes: reset, never a second sender", async () => {
  const resp = response(50_000);
  const sim = new ScSim({ respond: () => resp, cloneTimeoutMs: 200 });
  const cl = sim.connect();
  await sim.run(() => cl.sock.readyState === "open", 5000);
  sim.backStallUntil = Infinity;
  cl.sock.write(REQUEST);
  assert.ok(await sim.run(() => sim.events.includes("reset"), 10_000));
  assert.deepEqual(sim.events.slice(0, 3), ["cancel:1", "timeout", "abandoned"]);
  assert.equal(sim.original.cancelsUnanswered, 1);
});

test("sim: a refused clone is served by the original", async () => {
  const sim = new ScSim({ respond: () => "refuse" });
  const cl = sim.connect();
  await sim.run(() => cl.sock.readyState === "open", 5000);
  cl.sock.write(REQUEST);
  assert.ok(await sim.run(() => sim.settled.size === 1, 10_000));
  assert.deepEqual(sim.events, ["refused:busy", "settle:serve"]);
  assert.equal(sim.originals[0]!.conn.shadow, false);
});

test("sim: the client resets during the clone: the original ends it, the clone vanishes without a packet", async () => {
  const resp = response(300_000);
  const sim = new ScSim({ respond: () => resp });
  const cl = sim.connect();
  await sim.run(() => cl.sock.readyState === "open", 5000);
  cl.sock.write(REQUEST);
  await sim.run(() => cl.received().length > 20_000, 10_000);
  cl.sock.destroy(); // RST to the VIP
  assert.ok(await sim.run(() => sim.settled.size === 1, 10_000));
  assert.deepEqual(sim.events, ["reset", "settle:done"]);
  assert.ok(await sim.run(() => sim.cloneSide.size === 0, 10_000), "the forwarded RST ended the clone");
});

// ------------------------------------------------------------------ FIN delegation

const CLOSE_REQUEST = "GET /x HTTP/1.1\r\nHost: sc\r\nConnection: close\r\n\r\n";

/** FIN segments from the VIP to the client in the trace (the clone's and the original's alike). */
function finsToClient(sim: ScSim): { fins: number; rsts: number; finWithData: number } {
  let fins = 0;
  let rsts = 0;
  let finWithData = 0;
  for (const { packet: p } of sim.net.trace ?? []) {
    const ip = parseIpv4(p, { verifyChecksum: false });
    if (isWireError(ip) || ip.src !== VIP) continue;
    const tcp = parseTcp(ip.payload, ip.src, ip.dst, { verifyChecksum: false });
    if (isWireError(tcp)) continue;
    if (tcp.flags & TCP_RST) rsts++;
    if (tcp.flags & TCP_FIN) {
      fins++;
      if (tcp.payload.length > 0) finWithData++;
    }
  }
  return { fins, rsts, finWithData };
}

for (const [loss, seed] of [
  [0, 21],
  [0.01, 22],
  [0.05, 23],
  [0.05, 24],
] as const) {
  test(`sim: FIN delegation: the last response ends with the clone's FIN, the original sends none (${loss * 100}% loss, seed ${seed})`, async () => {
    for (const size of [100, 3000, 70_000]) {
      const resp = response(size, seed);
      const sim = new ScSim({ seed, respond: () => resp });
      sim.net.setImpairment({ loss, reorder: loss > 0 ? 0.05 : 0, reorderDelay: 3 });
      sim.net.trace = [];
      const cl = sim.connect();
      let ended = false;
      cl.sock.on("end", () => (ended = true));
      await sim.run(() => cl.sock.readyState === "open", 5000);
      cl.sock.write(CLOSE_REQUEST);
      assert.ok(await sim.run(() => ended, 120_000), `the client saw the FIN (size ${size})`);
      assert.ok(cl.received().equals(whole(resp)), `byte-exact (size ${size})`);
      cl.sock.end();
      const orig = sim.originals[0]!;
      assert.ok(await sim.run(() => orig.conn.state === "TIME-WAIT" || orig.conn.state === "CLOSED", 60_000));
      assert.ok(sim.events.includes("fin-delegated"), sim.events.join());
      assert.ok(await sim.run(() => sim.cloneSide.size === 0, 10_000));
      const w = finsToClient(sim);
      assert.equal(w.rsts, 0, "no RST");
      if (loss === 0) {
        assert.equal(w.fins, 1, "one FIN: the clone's, on its last data segment");
        assert.equal(w.finWithData, 1);
      } else assert.ok(w.finWithData >= 1);
    }
  });
}

test("sim: FIN delegation with the clone's node dying mid-response: the original resumes and closes at the same point", async () => {
  const resp = response(300_000, 31);
  const sim = new ScSim({ seed: 31, respond: () => resp });
  sim.net.setImpairment({ loss: 0.01 });
  const cl = sim.connect();
  let ended = false;
  cl.sock.on("end", () => (ended = true));
  await sim.run(() => cl.sock.readyState === "open", 5000);
  cl.sock.write(CLOSE_REQUEST);
  assert.ok(await sim.run(() => cl.received().length > 50_000, 60_000));
  sim.killB();
  assert.ok(await sim.run(() => ended, 120_000));
  assert.ok(cl.received().equals(whole(resp)), "byte-exact, then the FIN");
  assert.ok(sim.events.includes("resumed"));
  assert.equal(cl.closed(), false, "no reset");
});
