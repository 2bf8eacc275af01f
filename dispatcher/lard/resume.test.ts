// The resume plan (pure): what the front-end keeps of a client's packets and when a connection
// whose node died can be continued exactly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { newTcpPeek, type TcpPeek } from "../../sc/router/router.js";
import type { TcpExportedState } from "../../sc/tcp/state.js";
import { ClientTrack, CLIENT_BYTES_MAX, planResume, type ResumeInput } from "./resume.js";

const ACK = 0x10;
const FIN = 0x01;
const RST = 0x04;
/** Near the wrap of the sequence space, so that the arithmetic must be modular. */
const SND = 0xffffff00;
const RCV = 0xfffffff0;

function peek(over: Partial<TcpPeek>): TcpPeek {
  return { ...newTcpPeek(), flags: ACK, seq: RCV, ack: SND, window: 1000, ...over };
}

function state(): TcpExportedState {
  return {
    tuple: { localAddr: 1, localPort: 80, remoteAddr: 2, remotePort: 5555 },
    state: "ESTABLISHED",
    wscaleSeen: true,
    hasRttSample: false,
    noDelay: true,
    sackOk: true,
    sndWscale: 7,
    rcvWscale: 7,
    sndMss: 1460,
    advMss: 1460,
    rcvMss: 1460,
    iss: SND - 1,
    irs: RCV - 100,
    sndUna: SND,
    sndNxt: SND,
    rcvNxt: RCV,
    sndWnd: 64000,
    sndWl1: RCV,
    sndWl2: SND,
    maxSndWnd: 64000,
    rcvWnd: 65535,
    cwnd: 14600,
    ssthresh: 0x7fffffff,
    srtt: 1,
    rttvar: 1,
    rto: 200,
    seed: new Uint8Array(40),
  };
}

const HEAD = Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
const RESPONSE = { length: HEAD.length + 1000, head: HEAD };
const REQUEST = Buffer.from("GET /x HTTP/1.1\r\n\r\n");

function input(client: ClientTrack, over: Partial<ResumeInput> = {}): ResumeInput {
  return { state: state(), data: REQUEST, response: RESPONSE, client, room: 30_000, ...over };
}

function track(): ClientTrack {
  return new ClientTrack(RCV, SND, 64000, 7);
}

test("the resume point is the client's highest ACK (across the sequence wrap), with its window", () => {
  const c = track();
  c.observe(peek({ ack: (SND + 300) >>> 0, window: 100 }), new Uint8Array(0));
  c.observe(peek({ ack: (SND + 200) >>> 0, window: 5 }), new Uint8Array(0)); // reordered: older
  const p = planResume(input(c));
  assert.equal(p.kind, "resume");
  if (p.kind !== "resume") return;
  assert.equal(p.offset, 300);
  assert.equal(p.state.sndNxt, (SND + 300) >>> 0);
  assert.equal(p.state.sndUna, p.state.sndNxt);
  assert.equal(p.state.sndWnd, 100 * 128, "the window of that ACK, scaled");
  assert.equal(p.state.rcvNxt, RCV);
  assert.deepEqual(Buffer.from(p.data), REQUEST);
});

test("the client's later bytes go with the resume, reassembled in order from out-of-order segments", () => {
  const c = track();
  const next = Buffer.from("GET /y HTTP/1.1\r\n\r\n");
  // Second half first, then a retransmission overlapping the first half, then a duplicate.
  c.observe(peek({ seq: (RCV + 10) >>> 0 }), next.subarray(10));
  c.observe(
    peek({ seq: (RCV - 5) >>> 0 }),
    Buffer.concat([REQUEST.subarray(REQUEST.length - 5), next.subarray(0, 12)]),
  );
  c.observe(peek({ seq: RCV }), next.subarray(0, 4));
  const p = planResume(input(c));
  assert.equal(p.kind, "resume");
  if (p.kind !== "resume") return;
  assert.deepEqual(Buffer.from(p.data), Buffer.concat([REQUEST, next]));
  assert.equal(p.state.rcvNxt, (RCV + next.length) >>> 0);
});

test("bytes beyond a gap stay out (nobody acknowledged them: the client sends them again)", () => {
  const c = track();
  c.observe(peek({ seq: (RCV + 5) >>> 0 }), Buffer.from("later"));
  const p = planResume(input(c));
  assert.equal(p.kind, "resume");
  if (p.kind !== "resume") return;
  assert.deepEqual(Buffer.from(p.data), REQUEST);
  assert.equal(p.state.rcvNxt, RCV);
});

test("no announced response: afresh when the client acknowledged nothing, else a reset", () => {
  const fresh = planResume(input(track(), { response: null }));
  assert.equal(fresh.kind, "resume");
  if (fresh.kind === "resume") assert.equal(fresh.offset, 0);
  const c = track();
  c.observe(peek({ ack: (SND + 1) >>> 0 }), new Uint8Array(0));
  assert.deepEqual(planResume(input(c, { response: null })), { kind: "reset", reason: "unknown-response" });
});

test("the whole response and its FIN acknowledged: finished; beyond that: a bad ACK", () => {
  const all = track();
  all.observe(peek({ ack: (SND + RESPONSE.length) >>> 0 }), new Uint8Array(0));
  const p = planResume(input(all));
  assert.equal(
    p.kind,
    "resume",
    "all of it acknowledged (keep-alive): the next node waits for the next request",
  );
  if (p.kind === "resume") assert.equal(p.offset, RESPONSE.length);
  const fin = track();
  fin.observe(peek({ ack: (SND + RESPONSE.length + 1) >>> 0 }), new Uint8Array(0));
  assert.deepEqual(planResume(input(fin)), { kind: "reset", reason: "finished" });
  const lie = track();
  lie.observe(peek({ ack: (SND + RESPONSE.length + 9) >>> 0 }), new Uint8Array(0));
  assert.deepEqual(planResume(input(lie)), { kind: "reset", reason: "bad-ack" });
});

test("a client FIN, too many bytes after the handoff, or a resume too large for a message: reset", () => {
  const fin = track();
  fin.observe(peek({ flags: ACK | FIN }), new Uint8Array(0));
  assert.deepEqual(planResume(input(fin)), { kind: "reset", reason: "client-fin" });
  const much = track();
  let seq = RCV;
  for (let sent = 0; sent <= CLIENT_BYTES_MAX; sent += 1000) {
    much.observe(peek({ seq }), new Uint8Array(1000));
    seq = (seq + 1000) >>> 0;
  }
  assert.deepEqual(planResume(input(much)), { kind: "reset", reason: "client-data" });
  assert.deepEqual(planResume(input(track(), { room: REQUEST.length + HEAD.length - 1 })), {
    kind: "reset",
    reason: "too-large",
  });
  assert.deepEqual(planResume(input(track(), { state: { ...state(), seed: undefined } })), {
    kind: "reset",
    reason: "no-seed",
  });
  // A RST passing through changes nothing (the node or the client ends the connection).
  const rst = track();
  rst.observe(peek({ flags: RST, ack: (SND + 50) >>> 0 }), new Uint8Array(0));
  const p = planResume(input(rst));
  assert.ok(p.kind === "resume" && p.offset === 0);
});
