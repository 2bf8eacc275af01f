// The LARD handoff messages (docs/lard.md): the front-end hands a client connection it
// accepted to a back-end node. Same family as the SC messages (sc/clone/message.ts): the same
// 12-byte header (magic "SC", version 4, type, total length, an id), big-endian fields,
// strict decoding that never throws, and on a secure link each message encrypted from byte 8
// on and followed by a 16-byte tag (sc/auth/link.ts). The handshake messages (CHALLENGE, HELLO, HELLO-ACK) and
// KEEPALIVE are the SC ones; the types below are only valid on a handoff link.
import {
  decodeScMessage,
  readU16,
  readU32,
  readU64,
  ScDecodeError,
  ScType,
  SC_HEADER_LEN,
  SC_MAGIC,
  SC_MAX_MESSAGE,
  SC_VERSION,
  writeScHeader,
  writeU16,
  writeU32,
  writeU64,
  CloneStatus,
  type ChallengeMessage,
  type HelloAckMessage,
  type HelloMessage,
  type KeepaliveMessage,
} from "../clone/message.js";

export const enum HandoffType {
  /** Front-end to node: a connection (state, seed, the bytes received so far). */
  Handoff = 9,
  /** Node to front-end: the handoff was taken (status 0) or refused. */
  HandoffAck = 10,
  /** Node to front-end: the handed-off connection is gone here (load accounting, forwarding). */
  End = 11,
  /**
   * Node to front-end: the connection's next request has begun; the node gives the connection
   * back (state, seed, the bytes from that request's first byte on) so that the front-end
   * hands it to the node the request's target maps to (multiple handoff).
   */
  HandBack = 12,
  /**
   * Node to front-end: the response this connection's current request gets (its total length
   * and head), sent before its first byte leaves, so that another node can resume it.
   */
  Response = 13,
  /**
   * Front-end to node: a connection whose node died mid-response; as a HANDOFF, plus the
   * response's length and head as the dead node announced them and how much of it the client
   * acknowledged: the node sends the rest (range resume, as SC's original does).
   */
  Resume = 14,
}

/** The highest type of a handoff link. */
const LAST_HANDOFF_TYPE = HandoffType.Resume;

/** Statuses of a HANDOFF-ACK: the SC-ACK's codes that apply to a handoff. */
export const HANDOFF_STATUSES: readonly CloneStatus[] = [
  CloneStatus.Accepted,
  CloneStatus.Busy,
  CloneStatus.Expired,
  CloneStatus.BadState,
  CloneStatus.NoListener,
  CloneStatus.ServerError,
  CloneStatus.Exists,
];

export interface HandoffMessage {
  type: HandoffType.Handoff;
  /** Chosen by the front-end, unique per link; the ACK and END name it. */
  handoffId: number;
  /**
   * Wall-clock ms (epoch) after which the node must not take the connection: past it the
   * front-end may reset the client itself, and two senders would corrupt the stream.
   */
  startDeadline: number;
  /** CLOCK_MONOTONIC microseconds when it left the front-end (0 = not stamped). */
  sentAtUs: number;
  /** The exported TCP state (sc/tcp's 96-byte encoding). */
  state: Uint8Array;
  /** The client's last IPv4+TCP header as received (the socket seed, >= 40 bytes). */
  seed: Uint8Array;
  /**
   * Every byte the front-end received and acknowledged on the connection: the first request
   * and whatever followed it (pipelined requests). At least one byte.
   */
  data: Uint8Array;
}

/** Same fields as a HANDOFF (its start deadline is 0: the front-end takes it at any time). */
export interface HandBackMessage extends Omit<HandoffMessage, "type"> {
  type: HandoffType.HandBack;
}

export interface ResponseMessage {
  type: HandoffType.Response;
  handoffId: number;
  /** Bytes of the response on the wire: head plus body. */
  length: number;
  /** The response head exactly as sent (a resuming node sends these bytes, not its own). */
  head: Uint8Array;
}

export interface ResumeMessage extends Omit<HandoffMessage, "type"> {
  type: HandoffType.Resume;
  /**
   * Bytes of the response the client acknowledged; the state's send point is there. Without
   * a head (no RESPONSE came), 0: the client has nothing of it and the node answers afresh.
   */
  offset: number;
  /** The response's total length (RESPONSE), 0 without a head. */
  responseLength: number;
  /** The response head as the dead node sent it; empty: answer afresh. */
  head: Uint8Array;
}

export interface HandoffAckMessage {
  type: HandoffType.HandoffAck;
  handoffId: number;
  status: CloneStatus;
}

export interface HandoffEndMessage {
  type: HandoffType.End;
  handoffId: number;
}

export type HandoffLinkMessage =
  | HandoffMessage
  | HandBackMessage
  | HandoffAckMessage
  | HandoffEndMessage
  | ResponseMessage
  | ResumeMessage
  | ChallengeMessage
  | HelloMessage
  | HelloAckMessage
  | KeepaliveMessage;

/** HANDOFF: state length, seed length, data length, start deadline, send stamp, reserved. */
const HANDOFF_FIXED = 2 + 2 + 4 + 8 + 8 + 4;
/** RESUME beyond a HANDOFF's fields: offset, response length, head length, reserved. */
const RESUME_EXTRA = 8 + 8 + 2 + 2;
/** RESPONSE: length, head length, reserved. */
const RESPONSE_FIXED = 8 + 2 + 2;
/** HANDOFF-ACK: status, reserved. */
const HANDOFF_ACK_LEN = SC_HEADER_LEN + 4;

export function handoffMessageLength(stateLen: number, seedLen: number, dataLen: number): number {
  return SC_HEADER_LEN + HANDOFF_FIXED + stateLen + seedLen + dataLen;
}

export function resumeMessageLength(
  stateLen: number,
  seedLen: number,
  dataLen: number,
  headLen: number,
): number {
  return handoffMessageLength(stateLen, seedLen, dataLen) + RESUME_EXTRA + headLen;
}

/** Room for a RESPONSE's head (a head beyond it is not announced: that response cannot be resumed). */
export const RESPONSE_HEAD_MAX = SC_MAX_MESSAGE - SC_HEADER_LEN - RESPONSE_FIXED;

function header(buf: Uint8Array, type: HandoffType, id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new RangeError(`handoff id ${id}`);
  writeScHeader(buf, type as number as ScType, buf.length, id);
}

/** The messages only a handoff link carries (types 9-14). */
export type HandoffOnlyMessage =
  HandoffMessage | HandBackMessage | HandoffAckMessage | HandoffEndMessage | ResponseMessage | ResumeMessage;

/** Encodes a handoff-link message of types 9-14; throws RangeError for values no peer could decode. */
export function encodeHandoffMessage(msg: HandoffOnlyMessage): Uint8Array {
  switch (msg.type) {
    case HandoffType.Handoff:
    case HandoffType.HandBack: {
      if (msg.state.length > 0xffff || msg.seed.length > 0xffff) throw new RangeError("state/seed too long");
      if (msg.data.length === 0) throw new RangeError("a handoff carries at least one byte of request");
      if (!Number.isSafeInteger(msg.sentAtUs) || msg.sentAtUs < 0) throw new RangeError("sentAtUs");
      if (!Number.isSafeInteger(msg.startDeadline) || msg.startDeadline < 0)
        throw new RangeError("startDeadline");
      const total = handoffMessageLength(msg.state.length, msg.seed.length, msg.data.length);
      if (total > SC_MAX_MESSAGE) throw new RangeError(`handoff of ${total} bytes exceeds ${SC_MAX_MESSAGE}`);
      const buf = new Uint8Array(total);
      header(buf, msg.type, msg.handoffId);
      writeU16(buf, 12, msg.state.length);
      writeU16(buf, 14, msg.seed.length);
      writeU32(buf, 16, msg.data.length);
      writeU64(buf, 20, msg.startDeadline);
      writeU64(buf, 28, msg.sentAtUs);
      let off = SC_HEADER_LEN + HANDOFF_FIXED;
      buf.set(msg.state, off);
      off += msg.state.length;
      buf.set(msg.seed, off);
      off += msg.seed.length;
      buf.set(msg.data, off);
      return buf;
    }
    case HandoffType.Resume: {
      if (msg.state.length > 0xffff || msg.seed.length > 0xffff || msg.head.length > 0xffff)
        throw new RangeError("state/seed/head too long");
      if (msg.data.length === 0) throw new RangeError("a resume carries at least one byte of request");
      if (!Number.isSafeInteger(msg.sentAtUs) || msg.sentAtUs < 0) throw new RangeError("sentAtUs");
      if (!Number.isSafeInteger(msg.startDeadline) || msg.startDeadline < 0)
        throw new RangeError("startDeadline");
      checkResumePoint(msg);
      const total = resumeMessageLength(msg.state.length, msg.seed.length, msg.data.length, msg.head.length);
      if (total > SC_MAX_MESSAGE) throw new RangeError(`resume of ${total} bytes exceeds ${SC_MAX_MESSAGE}`);
      const buf = new Uint8Array(total);
      header(buf, msg.type, msg.handoffId);
      writeU16(buf, 12, msg.state.length);
      writeU16(buf, 14, msg.seed.length);
      writeU32(buf, 16, msg.data.length);
      writeU64(buf, 20, msg.startDeadline);
      writeU64(buf, 28, msg.sentAtUs);
      let off = SC_HEADER_LEN + HANDOFF_FIXED;
      writeU64(buf, off, msg.offset);
      writeU64(buf, off + 8, msg.responseLength);
      writeU16(buf, off + 16, msg.head.length);
      off += RESUME_EXTRA;
      for (const part of [msg.state, msg.seed, msg.data, msg.head]) {
        buf.set(part, off);
        off += part.length;
      }
      return buf;
    }
    case HandoffType.Response: {
      if (msg.head.length === 0 || msg.head.length > RESPONSE_HEAD_MAX)
        throw new RangeError("response head length");
      if (!Number.isSafeInteger(msg.length) || msg.length < msg.head.length)
        throw new RangeError("response length");
      const buf = new Uint8Array(SC_HEADER_LEN + RESPONSE_FIXED + msg.head.length);
      header(buf, msg.type, msg.handoffId);
      writeU64(buf, 12, msg.length);
      writeU16(buf, 20, msg.head.length);
      buf.set(msg.head, SC_HEADER_LEN + RESPONSE_FIXED);
      return buf;
    }
    case HandoffType.HandoffAck: {
      if (!HANDOFF_STATUSES.includes(msg.status)) throw new RangeError(`handoff status ${msg.status}`);
      const buf = new Uint8Array(HANDOFF_ACK_LEN);
      header(buf, msg.type, msg.handoffId);
      buf[12] = msg.status;
      return buf;
    }
    case HandoffType.End: {
      const buf = new Uint8Array(SC_HEADER_LEN);
      header(buf, msg.type, msg.handoffId);
      return buf;
    }
  }
}

/** The total length of the message whose header starts `buf`; 0 if fewer than 12 bytes; or an error. */
export function peekHandoffLength(buf: Uint8Array): number | ScDecodeError {
  if (buf.length < SC_HEADER_LEN) return 0;
  if (((buf[0]! << 8) | buf[1]!) !== SC_MAGIC) return new ScDecodeError("bad-magic", "not an SC message");
  if (buf[2] !== SC_VERSION) return new ScDecodeError("bad-version", `version ${buf[2]}`);
  const type = buf[3]!;
  const known =
    type === ScType.Challenge ||
    type === ScType.Hello ||
    type === ScType.HelloAck ||
    type === ScType.Keepalive ||
    (type >= HandoffType.Handoff && type <= LAST_HANDOFF_TYPE);
  if (!known) return new ScDecodeError("bad-type", `type ${type} on a handoff link`);
  const total = readU32(buf, 4);
  if (total < SC_HEADER_LEN) return new ScDecodeError("bad-length", `total length ${total}`);
  if (total > SC_MAX_MESSAGE) return new ScDecodeError("too-large", `total length ${total}`);
  return total;
}

/** Decodes exactly one whole message of a handoff link (`buf.length` is its total length). */
export function decodeHandoffMessage(buf: Uint8Array): HandoffLinkMessage | ScDecodeError {
  const total = peekHandoffLength(buf);
  if (total instanceof ScDecodeError) return total;
  if (total === 0 || total !== buf.length)
    return new ScDecodeError("bad-length", `have ${buf.length} bytes, header says ${total}`);
  const type = buf[3]!;
  const id = readU32(buf, 8);
  switch (type) {
    case HandoffType.Handoff:
    case HandoffType.HandBack: {
      const fixed = SC_HEADER_LEN + HANDOFF_FIXED;
      if (total < fixed) return new ScDecodeError("bad-length", "handoff too short");
      const stateLen = readU16(buf, 12);
      const seedLen = readU16(buf, 14);
      const dataLen = readU32(buf, 16);
      const startDeadline = readU64(buf, 20);
      const sentAtUs = readU64(buf, 28);
      if (!Number.isSafeInteger(sentAtUs) || !Number.isSafeInteger(startDeadline))
        return new ScDecodeError("bad-field", "time beyond 2^53");
      if (readU32(buf, 36) !== 0) return new ScDecodeError("bad-field", "reserved bytes");
      if (fixed + stateLen + seedLen + dataLen !== total)
        return new ScDecodeError("bad-length", "handoff field lengths do not add up to the total");
      if (seedLen < 40) return new ScDecodeError("bad-field", `socket seed of ${seedLen} bytes`);
      if (dataLen === 0) return new ScDecodeError("bad-field", "handoff without request bytes");
      const state = buf.subarray(fixed, fixed + stateLen);
      const seed = buf.subarray(fixed + stateLen, fixed + stateLen + seedLen);
      const data = buf.subarray(fixed + stateLen + seedLen, total);
      return { type, handoffId: id, startDeadline, sentAtUs, state, seed, data };
    }
    case HandoffType.Resume: {
      const fixed = SC_HEADER_LEN + HANDOFF_FIXED + RESUME_EXTRA;
      if (total < fixed) return new ScDecodeError("bad-length", "resume too short");
      const stateLen = readU16(buf, 12);
      const seedLen = readU16(buf, 14);
      const dataLen = readU32(buf, 16);
      const startDeadline = readU64(buf, 20);
      const sentAtUs = readU64(buf, 28);
      const x = SC_HEADER_LEN + HANDOFF_FIXED;
      const offset = readU64(buf, x);
      const responseLength = readU64(buf, x + 8);
      const headLen = readU16(buf, x + 16);
      if (![sentAtUs, startDeadline, offset, responseLength].every(Number.isSafeInteger))
        return new ScDecodeError("bad-field", "value beyond 2^53");
      if (readU32(buf, 36) !== 0 || readU16(buf, x + 18) !== 0)
        return new ScDecodeError("bad-field", "reserved bytes");
      if (fixed + stateLen + seedLen + dataLen + headLen !== total)
        return new ScDecodeError("bad-length", "resume field lengths do not add up to the total");
      if (seedLen < 40) return new ScDecodeError("bad-field", `socket seed of ${seedLen} bytes`);
      if (dataLen === 0) return new ScDecodeError("bad-field", "resume without request bytes");
      let off = fixed;
      const take = (n: number): Uint8Array => buf.subarray(off, (off += n));
      const state = take(stateLen);
      const seed = take(seedLen);
      const data = take(dataLen);
      const head = take(headLen);
      const m: ResumeMessage = {
        type,
        handoffId: id,
        startDeadline,
        sentAtUs,
        state,
        seed,
        data,
        offset,
        responseLength,
        head,
      };
      try {
        checkResumePoint(m);
      } catch (e) {
        return new ScDecodeError("bad-field", (e as Error).message);
      }
      return m;
    }
    case HandoffType.Response: {
      if (total < SC_HEADER_LEN + RESPONSE_FIXED)
        return new ScDecodeError("bad-length", "response too short");
      const length = readU64(buf, 12);
      const headLen = readU16(buf, 20);
      if (readU16(buf, 22) !== 0) return new ScDecodeError("bad-field", "reserved bytes");
      if (SC_HEADER_LEN + RESPONSE_FIXED + headLen !== total)
        return new ScDecodeError("bad-length", "response head length does not add up to the total");
      if (headLen === 0) return new ScDecodeError("bad-field", "response without a head");
      if (!Number.isSafeInteger(length) || length < headLen)
        return new ScDecodeError("bad-field", `response length ${length} below its head's`);
      return { type, handoffId: id, length, head: buf.subarray(SC_HEADER_LEN + RESPONSE_FIXED, total) };
    }
    case HandoffType.HandoffAck: {
      if (total !== HANDOFF_ACK_LEN) return new ScDecodeError("bad-length", "handoff-ack length");
      const status = buf[12]!;
      if (!HANDOFF_STATUSES.includes(status)) return new ScDecodeError("bad-field", `status ${status}`);
      if (buf[13] !== 0 || buf[14] !== 0 || buf[15] !== 0)
        return new ScDecodeError("bad-field", "reserved bytes");
      return { type, handoffId: id, status };
    }
    case HandoffType.End: {
      if (total !== SC_HEADER_LEN) return new ScDecodeError("bad-length", "end has a body");
      return { type, handoffId: id };
    }
    default: {
      // The SC handshake messages and KEEPALIVE, by their own codec.
      const m = decodeScMessage(buf);
      if (m instanceof ScDecodeError) return m;
      if (
        m.type === ScType.Challenge ||
        m.type === ScType.Hello ||
        m.type === ScType.HelloAck ||
        m.type === ScType.Keepalive
      )
        return m;
      return new ScDecodeError("bad-type", `type ${m.type} on a handoff link`);
    }
  }
}

/** A RESUME's point lies within its response (at most its end), and only a known response has one. */
function checkResumePoint(m: Pick<ResumeMessage, "offset" | "responseLength" | "head">): void {
  if (m.head.length === 0) {
    if (m.offset !== 0 || m.responseLength !== 0)
      throw new RangeError("a fresh resume has no offset or length");
    return;
  }
  if (m.responseLength < m.head.length) throw new RangeError("resume length below its head's");
  if (m.offset < 0 || m.offset > m.responseLength) throw new RangeError("resume offset beyond the response");
}

/**
 * Splits a handoff link's byte stream into frames (message + tag once authenticated), as
 * ScFramer does for SC links: at most one partial frame is buffered, a header announcing more
 * than SC_MAX_MESSAGE fails the stream at once, and a failed stream stays failed (the caller
 * closes the connection).
 */
export class HandoffFramer {
  tagLength = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private failed: ScDecodeError | null = null;

  push(chunk: Uint8Array): void {
    if (this.failed !== null || chunk.length === 0) return;
    if (this.buf.length === 0) this.buf = chunk;
    else {
      const b = new Uint8Array(this.buf.length + chunk.length);
      b.set(this.buf, 0);
      b.set(chunk, this.buf.length);
      this.buf = b;
    }
  }

  next(): { bytes: Uint8Array; tag: Uint8Array } | null | ScDecodeError {
    if (this.failed !== null) return this.failed;
    const total = peekHandoffLength(this.buf);
    if (total instanceof ScDecodeError) {
      this.failed = total;
      this.buf = new Uint8Array(0);
      return total;
    }
    if (total === 0 || this.buf.length < total + this.tagLength) return null;
    const bytes = this.buf.subarray(0, total);
    const tag = this.buf.subarray(total, total + this.tagLength);
    this.buf = this.buf.subarray(total + this.tagLength);
    return { bytes, tag };
  }

  get bufferedBytes(): number {
    return this.buf.length;
  }
}
