// The handoff codec (strict, never throws on input) and the authenticated handoff links on
// loopback (each end on its own 127/8 address, so the source-address check is real).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CloneStatus,
  ScDecodeError,
  ScType,
  SC_MAX_MESSAGE,
  SC_VERSION,
  encodeScMessage,
} from "../clone/message.js";
import type { LinkKey } from "../auth/link.js";
import { freePort } from "../clone/testing.js";
import {
  decodeHandoffMessage,
  encodeHandoffMessage,
  HandoffFramer,
  HandoffType,
  handoffMessageLength,
  resumeMessageLength,
  type HandoffMessage,
  type ResumeMessage,
} from "./message.js";
import { HandoffClient, HandoffServer } from "./link.js";

function handoff(over: Partial<HandoffMessage> = {}): HandoffMessage {
  return {
    type: HandoffType.Handoff,
    handoffId: 0xfedcba98,
    startDeadline: 1_700_000_000_123,
    sentAtUs: 123_456_789,
    state: Uint8Array.from({ length: 96 }, (_, i) => i),
    seed: Uint8Array.from({ length: 52 }, (_, i) => 255 - i),
    data: new TextEncoder().encode("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
    ...over,
  };
}

test("HANDOFF, HANDOFF-ACK and END round-trip; the header is the SC one", () => {
  const m = handoff();
  const b = encodeHandoffMessage(m);
  assert.equal(b.length, handoffMessageLength(96, 52, m.data.length));
  assert.deepEqual([b[0], b[1], b[2], b[3]], [0x53, 0x43, SC_VERSION, 9]);
  assert.deepEqual(decodeHandoffMessage(b), m);
  const ack = { type: HandoffType.HandoffAck, handoffId: 7, status: CloneStatus.Busy } as const;
  assert.deepEqual(decodeHandoffMessage(encodeHandoffMessage(ack)), ack);
  const end = { type: HandoffType.End, handoffId: 9 } as const;
  assert.deepEqual(decodeHandoffMessage(encodeHandoffMessage(end)), end);
  // The SC handshake messages decode on a handoff link too; SC's CLONE does not.
  const ka = encodeScMessage({ type: ScType.Keepalive });
  assert.deepEqual(decodeHandoffMessage(ka), { type: ScType.Keepalive });
  const done = encodeScMessage({ type: ScType.Done, cloneIds: [1] });
  assert.ok(decodeHandoffMessage(done) instanceof ScDecodeError);
});

function resume(over: Partial<ResumeMessage> = {}): ResumeMessage {
  const head = new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
  return {
    ...handoff(),
    type: HandoffType.Resume,
    offset: 20,
    responseLength: head.length + 10,
    head,
    ...over,
  };
}

test("RESUME and RESPONSE round-trip; their fields are checked", () => {
  const r = resume();
  const b = encodeHandoffMessage(r);
  assert.equal(b.length, resumeMessageLength(96, 52, r.data.length, r.head.length));
  assert.equal(b[3], 14);
  assert.deepEqual(decodeHandoffMessage(b), r);
  const fresh = resume({ offset: 0, responseLength: 0, head: new Uint8Array(0) });
  assert.deepEqual(decodeHandoffMessage(encodeHandoffMessage(fresh)), fresh);
  const resp = { type: HandoffType.Response, handoffId: 3, length: 1e10, head: r.head } as const;
  const rb = encodeHandoffMessage(resp);
  assert.equal(rb[3], 13);
  assert.deepEqual(decodeHandoffMessage(rb), resp);
  // Encoding refuses what no peer may decode.
  assert.throws(() => encodeHandoffMessage(resume({ offset: r.responseLength + 1 })), RangeError);
  assert.throws(() => encodeHandoffMessage(resume({ head: new Uint8Array(0) })), RangeError);
  assert.throws(() => encodeHandoffMessage({ ...resp, length: 3 }), RangeError);
  assert.throws(() => encodeHandoffMessage({ ...resp, head: new Uint8Array(0) }), RangeError);
  // Decoding is strict: an offset beyond the response, a length below its head, reserved bytes.
  const at = 12 + 28; // the RESUME's own fields follow the HANDOFF's
  const bad = (from: Uint8Array, f: (x: Uint8Array) => void): string | undefined => {
    const x = Uint8Array.from(from);
    f(x);
    const m = decodeHandoffMessage(x);
    return m instanceof ScDecodeError ? m.kind : undefined;
  };
  assert.equal(
    bad(b, (x) => (x[at + 7] = 200)),
    "bad-field",
  ); // offset 200 > length
  assert.equal(
    bad(b, (x) => (x[at + 15] = 1)),
    "bad-field",
  ); // length below the head
  assert.equal(
    bad(b, (x) => (x[at + 19] = 1)),
    "bad-field",
  ); // reserved
  assert.equal(
    bad(b, (x) => (x[at + 17] += 1)),
    "bad-length",
  ); // head length off by one
  assert.equal(
    bad(rb, (x) => (x[23] = 1)),
    "bad-field",
  ); // reserved
  assert.equal(
    bad(rb, (x) => {
      x.fill(0, 12, 19);
      x[19] = 1;
    }),
    "bad-field",
  ); // length 1, below the head
  for (let i = 0; i < 2000; i++) {
    const x = Uint8Array.from(i % 2 === 0 ? b : rb);
    x[(i * 31) % x.length] ^= 1 + (i % 255);
    decodeHandoffMessage(x);
  }
});

test("decoding is strict: every malformed field is an error value, never a throw", () => {
  const good = encodeHandoffMessage(handoff());
  const bad = (f: (b: Uint8Array) => void): ScDecodeError | undefined => {
    const b = Uint8Array.from(good);
    f(b);
    const r = decodeHandoffMessage(b);
    return r instanceof ScDecodeError ? r : undefined;
  };
  assert.equal(bad((b) => (b[0] = 0))?.kind, "bad-magic");
  assert.equal(bad((b) => (b[2] = 2))?.kind, "bad-version");
  assert.equal(bad((b) => (b[3] = 15))?.kind, "bad-type");
  assert.equal(bad((b) => (b[3] = ScType.Clone))?.kind, "bad-type");
  assert.equal(bad((b) => (b[13] = 95))?.kind, "bad-length"); // state length off by one
  assert.equal(bad((b) => (b[39] = 1))?.kind, "bad-field"); // reserved
  assert.ok(decodeHandoffMessage(good.subarray(0, good.length - 1)) instanceof ScDecodeError);
  const ack = encodeHandoffMessage({
    type: HandoffType.HandoffAck,
    handoffId: 1,
    status: CloneStatus.Accepted,
  });
  ack[12] = 7; // cancelled: no such handoff status
  assert.equal((decodeHandoffMessage(ack) as ScDecodeError).kind, "bad-field");
  // Random bytes never throw.
  for (let i = 0; i < 2000; i++) {
    const b = Uint8Array.from(good);
    b[(i * 31) % b.length] ^= 1 + (i % 255);
    decodeHandoffMessage(b);
  }
  assert.throws(() => encodeHandoffMessage(handoff({ data: new Uint8Array(0) })), RangeError);
  assert.throws(() => encodeHandoffMessage(handoff({ data: new Uint8Array(SC_MAX_MESSAGE) })), RangeError);
});

test("the framer splits a stream cut anywhere, with tags, and refuses an oversized header at once", () => {
  const a = encodeHandoffMessage(handoff());
  const b = encodeHandoffMessage({ type: HandoffType.End, handoffId: 3 });
  const tag = new Uint8Array(16).fill(9);
  const stream = Buffer.concat([a, tag, b, tag]);
  for (const cut of [1, 5, 13, a.length, a.length + 3, stream.length - 1]) {
    const f = new HandoffFramer();
    f.tagLength = 16;
    f.push(stream.subarray(0, cut));
    const out = [];
    for (let x = f.next(); x !== null; x = f.next()) out.push(x);
    f.push(stream.subarray(cut));
    for (let x = f.next(); x !== null; x = f.next()) out.push(x);
    assert.equal(out.length, 2, `cut at ${cut}`);
    assert.deepEqual(Buffer.from((out[1] as { bytes: Uint8Array }).bytes), Buffer.from(b));
    assert.equal(f.bufferedBytes, 0);
  }
  const f = new HandoffFramer();
  const huge = Uint8Array.from(b);
  huge[4] = 0x7f;
  f.push(huge);
  assert.equal((f.next() as ScDecodeError).kind, "too-large");
});

const NET = `127.${(process.pid >> 8) & 0xff || 1}.${(process.pid & 0xff) ^ 0x33 || 1}`;
const FE = `${NET}.1`;
const NODE = `${NET}.2`;
const STRANGER = `${NET}.9`;
const KEY: LinkKey = { kind: "secret", key: Buffer.alloc(32, 7) };

async function pair(clientKey: LinkKey, from: string) {
  const port = await freePort(NODE);
  const got: (HandoffMessage | ResumeMessage)[] = [];
  const server = new HandoffServer({
    nodeId: "node1",
    listenHost: NODE,
    listenPort: port,
    key: KEY,
    admit: (addr) => addr === FE,
    onHandoff: (m, link) => {
      got.push(m);
      link.ack(m.handoffId, CloneStatus.Accepted);
      link.response(m.handoffId, 100, Buffer.from("HTTP/1.1 200 OK\r\n\r\n"));
      link.handBack({
        type: HandoffType.HandBack,
        handoffId: m.handoffId,
        startDeadline: 0,
        sentAtUs: 0,
        state: m.state,
        seed: m.seed,
        data: m.data,
      });
      link.end(m.handoffId);
    },
  });
  await server.start();
  const events: string[] = [];
  const client = new HandoffClient({
    nodes: [{ id: "node1", host: NODE, port }],
    key: clientKey,
    localAddress: from,
    onAck: (node, ack) => events.push(`ack ${node} ${ack.handoffId} ${ack.status}`),
    onEnd: (node, end) => events.push(`end ${node} ${end.handoffId}`),
    onHandBack: (node, back) => events.push(`back ${node} ${back.handoffId} ${back.data.length}`),
    onResponse: (node, r) => events.push(`response ${node} ${r.handoffId} ${r.length}`),
    onDown: (node) => events.push(`down ${node}`),
    minBackoffMs: 50,
    maxBackoffMs: 100,
  });
  client.start();
  return { server, client, got, events };
}

async function until(f: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("an authenticated link carries HANDOFF and RESUME one way and HANDOFF-ACK, RESPONSE, HANDBACK and END back", async () => {
  const { server, client, got, events } = await pair(KEY, FE);
  try {
    await client.waitUp(3000);
    assert.ok(client.send("node1", handoff({ handoffId: 5 })));
    await until(() => events.length === 4);
    assert.deepEqual(events, [
      "ack node1 5 0",
      "response node1 5 100",
      `back node1 5 ${handoff().data.length}`,
      "end node1 5",
    ]);
    assert.deepEqual(Buffer.from(got[0]!.data), Buffer.from(handoff().data));
    assert.ok(client.send("node1", resume({ handoffId: 6 })));
    await until(() => events.length === 8);
    const r = got[1] as ResumeMessage;
    assert.equal(r.type, HandoffType.Resume);
    assert.deepEqual([r.handoffId, r.offset, r.responseLength], [6, 20, resume().responseLength]);
    assert.deepEqual(Buffer.from(r.head), Buffer.from(resume().head));
    assert.equal(server.accepted, 1);
  } finally {
    client.close();
    await server.close();
  }
});

test("a front-end with another secret, or from an address the node does not take GUE from, is refused", async () => {
  const wrong = await pair({ kind: "secret", key: Buffer.alloc(32, 8) }, FE);
  try {
    await until(() => wrong.server.drops["bad-mac"] > 0);
    assert.equal(wrong.client.isUp("node1"), false);
    assert.equal(wrong.client.send("node1", handoff()), false);
  } finally {
    wrong.client.close();
    await wrong.server.close();
  }
  const stranger = await pair(KEY, STRANGER);
  try {
    await until(() => stranger.server.drops["unknown-address"] > 0);
    assert.equal(stranger.client.isUp("node1"), false);
    assert.equal(stranger.got.length, 0);
  } finally {
    stranger.client.close();
    await stranger.server.close();
  }
});
