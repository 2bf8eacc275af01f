// The LARD handoff messages (docs/lard.md): the front-end hands a client connection it
// accepted to a back-end node. Same family as the SC messages (sc/clone/message.ts): the same
// 12-byte header (magic "SC", version 3, type, total length, an id), big-endian fields,
// strict decoding that never throws, and on an authenticated link a 16-byte tag after each
// message (sc/auth/link.ts). The handshake messages (CHALLENGE, HELLO, HELLO-ACK) and
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
} from "../../sc/clone/message.js";

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
}

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
  | ChallengeMessage
  | HelloMessage
  | HelloAckMessage
  | KeepaliveMessage;

/** HANDOFF: state length, seed length, data length, start deadline, send stamp, reserved. */
const HANDOFF_FIXED = 2 + 2 + 4 + 8 + 8 + 4;
/** HANDOFF-ACK: status, reserved. */
const HANDOFF_ACK_LEN = SC_HEADER_LEN + 4;

export function handoffMessageLength(stateLen: number, seedLen: number, dataLen: number): number {
  return SC_HEADER_LEN + HANDOFF_FIXED + stateLen + seedLen + dataLen;
}

function header(buf: Uint8Array, type: HandoffType, id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new RangeError(`handoff id ${id}`);
  writeScHeader(buf, type as number as ScType, buf.length, id);
}

/** Encodes a handoff-link message of types 9-11; throws RangeError for values no peer could decode. */
export function encodeHandoffMessage(
  msg: HandoffMessage | HandBackMessage | HandoffAckMessage | HandoffEndMessage,
): Uint8Array {
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
    (type >= HandoffType.Handoff && type <= HandoffType.HandBack);
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
