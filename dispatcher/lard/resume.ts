// Range resume for LARD (docs/lard.md): what the front-end keeps of a handed-off connection so
// that another node can continue its response when its node dies, and the plan for that
// resume. Pure: packets come in as peeked headers plus payload, nothing is sent from here.
//
// Every client packet of a handed-off connection passes the front-end, so it knows what the
// client acknowledged (the highest ACK number) and every byte the client sent after the
// handoff (a superset of what the dead node received). The node announced its response's
// length and head (RESPONSE) before the first byte left; the new node gets the connection
// with its send point at the client's ACK and sends the rest of that response: the dead
// node's head from there if the head was not all acknowledged, then the body.
import type { TcpExportedState } from "../../sc/tcp/state.js";
import { seqAdd, seqDiff, seqGe, seqGt } from "../../sc/tcp/seq.js";
import type { TcpPeek } from "../../sc/router/router.js";

const TCP_FIN = 0x01;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;

/** Client bytes kept per connection after its handoff (beyond: it cannot be resumed). */
export const CLIENT_BYTES_MAX = 16 * 1024;
/** Out-of-order client segments kept per connection (beyond: it cannot be resumed). */
const CLIENT_SEGMENTS_MAX = 64;

/** The response a node announced for the connection's current request (RESPONSE). */
export interface AnnouncedResponse {
  length: number;
  head: Uint8Array;
}

/**
 * The client's side of a handed-off connection as the front-end sees it pass: its highest
 * acknowledgement (with the window it advertised there) and the bytes it sent after the
 * handoff, bounded.
 */
export class ClientTrack {
  /** The highest ACK number the client sent (starts at the handoff's send point). */
  acked: number;
  /** The client's window at that ACK (bytes, scaled) and the sequence number it came with. */
  window: number;
  windowSeq: number;
  /** Segments the client sent beyond the handoff's receive point: [seq, bytes]. */
  private readonly segments: [number, Uint8Array][] = [];
  private bytes = 0;
  /** More than the bounds allow, a FIN, or a RST: no resume. */
  spoiled: "client-data" | "client-fin" | null = null;

  constructor(
    /** The handoff's receive point: the client's bytes before it are in the HANDOFF's data. */
    readonly rcvFrom: number,
    sndFrom: number,
    window: number,
    private readonly wscale: number,
  ) {
    this.acked = sndFrom;
    this.window = window;
    this.windowSeq = rcvFrom;
  }

  /** A client packet on its way to the node; `payload` is its TCP payload (copied if kept). */
  observe(p: TcpPeek, payload: Uint8Array): void {
    if ((p.flags & TCP_RST) !== 0) return; // the node or the client ends it; END follows
    if ((p.flags & TCP_ACK) !== 0 && seqGe(p.ack, this.acked)) {
      this.acked = p.ack;
      this.window = p.window * 2 ** this.wscale;
      this.windowSeq = p.seq;
    }
    if ((p.flags & TCP_FIN) !== 0) this.spoiled ??= "client-fin";
    if (payload.length === 0 || this.spoiled !== null) return;
    const end = seqAdd(p.seq, payload.length);
    if (!seqGt(end, this.rcvFrom)) return; // a retransmission of bytes the HANDOFF carries
    if (this.segments.length >= CLIENT_SEGMENTS_MAX || this.bytes + payload.length > CLIENT_BYTES_MAX) {
      this.spoiled = "client-data";
      this.segments.length = 0;
      return;
    }
    this.segments.push([p.seq, Uint8Array.from(payload)]);
    this.bytes += payload.length;
  }

  /**
   * The client's bytes from the handoff's receive point on, as far as they are contiguous:
   * every byte the dead node can have acknowledged (it saw only what passed here).
   */
  contiguous(): Uint8Array {
    const segs = [...this.segments].sort((a, b) => seqDiff(a[0], b[0]));
    const out: Uint8Array[] = [];
    let next = this.rcvFrom;
    let size = 0;
    for (const [seq, data] of segs) {
      if (seqGt(seq, next)) break; // a gap: nothing beyond it reached anyone in order
      const skip = seqDiff(next, seq);
      if (skip >= data.length) continue;
      const part = data.subarray(skip);
      out.push(part);
      size += part.length;
      next = seqAdd(next, part.length);
    }
    const all = new Uint8Array(size);
    let off = 0;
    for (const p of out) {
      all.set(p, off);
      off += p.length;
    }
    return all;
  }
}

/** What the front-end knows of a connection whose node died. */
export interface ResumeInput {
  /** The state exported at the handoff (its send point is where the response starts). */
  state: TcpExportedState;
  /** The HANDOFF's data: the request and what followed it then. */
  data: Uint8Array;
  response: AnnouncedResponse | null;
  client: ClientTrack;
  /** Most bytes of request data a RESUME can carry (beside the head). */
  room: number;
}

export type ResumePlan =
  | {
      kind: "resume";
      /** The state for the new node: send point at the client's ACK, receive point past its data. */
      state: TcpExportedState;
      /** The client's last header as of the handoff (the socket seed). */
      seed: Uint8Array;
      data: Uint8Array;
      /** Response bytes the client acknowledged (0 and no head: answered afresh). */
      offset: number;
      response: AnnouncedResponse | null;
    }
  | { kind: "reset"; reason: UnresumableReason };

/** Why a connection whose node died is reset instead of resumed (counted). */
export const UNRESUMABLE_REASONS = [
  /** The client acknowledged bytes of a response never announced: its head is unknown. */
  "unknown-response",
  /** The response was all acknowledged with its FIN: the client has everything. */
  "finished",
  /** The client sent more than is kept after the handoff, or its FIN. */
  "client-data",
  "client-fin",
  /** The request and the client's later bytes do not fit one RESUME. */
  "too-large",
  /** The client acknowledged beyond the response and its FIN: a confused or lying client. */
  "bad-ack",
  /** No node left to resume on, or its link is down. */
  "no-node",
  /** The new node refused the RESUME, or did not answer it in time. */
  "refused",
  /** The handoff's state has no socket seed (the client's last header): nothing to import. */
  "no-seed",
] as const;
export type UnresumableReason = (typeof UNRESUMABLE_REASONS)[number];

/** Decides how a connection whose node died goes on. */
export function planResume(r: ResumeInput): ResumePlan {
  if (r.state.seed === undefined) return { kind: "reset", reason: "no-seed" };
  const start = r.state.sndNxt;
  const acked = seqDiff(r.client.acked, start);
  if (acked < 0) return { kind: "reset", reason: "bad-ack" };
  if (r.response === null) {
    // Never announced: the node had not begun its response (the RESPONSE leaves before the
    // first byte), unless the client acknowledged some.
    if (acked > 0) return { kind: "reset", reason: "unknown-response" };
  } else if (acked > r.response.length) {
    return { kind: "reset", reason: acked === r.response.length + 1 ? "finished" : "bad-ack" };
  }
  if (r.client.spoiled !== null) return { kind: "reset", reason: r.client.spoiled };
  const more = r.client.contiguous();
  if (r.data.length + more.length + (r.response?.head.length ?? 0) > r.room)
    return { kind: "reset", reason: "too-large" };
  const data = new Uint8Array(r.data.length + more.length);
  data.set(r.data, 0);
  data.set(more, r.data.length);
  const state: TcpExportedState = {
    ...r.state,
    sndUna: r.client.acked,
    sndNxt: r.client.acked,
    sndWnd: r.client.window,
    sndWl1: r.client.windowSeq,
    sndWl2: r.client.acked,
    rcvNxt: seqAdd(r.state.rcvNxt, more.length),
  };
  return { kind: "resume", state, seed: r.state.seed, data, offset: acked, response: r.response };
}
