// SC protocol messages (paper section 2.2; DESIGN.md section 4; byte layout in
// docs/sc-protocol.md). They travel on persistent kernel TCP connections between nodes,
// so every message is self-delimiting: a fixed 12-byte header carries the total length.
// Decoding is strict and never throws: bad input yields a typed ScDecodeError.

export const SC_MAGIC = 0x5343; // "SC"
export const SC_VERSION = 1;
export const SC_HEADER_LEN = 12;
/** Upper bound on one message; a request line + headers fit many times over. */
export const SC_MAX_MESSAGE = 1 << 20;

export const enum ScType {
  Hello = 1,
  Clone = 2,
  CloneAck = 3,
  Cancel = 4,
}

/** Why a clone was refused (SC-ACK status != Accepted). */
export const enum CloneStatus {
  Accepted = 0,
  Busy = 1, // too many clones in progress on the receiving node
  Expired = 2, // arrived after its start deadline
  BadState = 3, // socket state or seed did not decode or does not fit the stack
  NoListener = 4, // the receiving node does not serve the connection's address/port
  ServerError = 5, // the request could not be turned into a response
  Exists = 6, // a connection with this 4-tuple already exists on the receiving node
  Cancelled = 7,
}

export const CLONE_STATUS_NAMES: Record<number, string> = {
  0: "accepted",
  1: "busy",
  2: "expired",
  3: "bad-state",
  4: "no-listener",
  5: "server-error",
  6: "exists",
  7: "cancelled",
};

export interface HelloMessage {
  type: ScType.Hello;
  /** The sender's node id (1..64 bytes of UTF-8). */
  nodeId: string;
}

export interface CloneMessage {
  type: ScType.Clone;
  cloneId: number;
  /**
   * Wall-clock ms (epoch) after which the receiver must not start sending: the
   * original node serves the request itself once this has passed without an SC-ACK.
   */
  startDeadline: number;
  /** The exported TCP state (sc/tcp's fixed-size encoding). */
  state: Uint8Array;
  /** The socket seed: the client's last IPv4+TCP header as received. */
  seed: Uint8Array;
  /** Application State Field: the request bytes the clone serves. */
  asf: Uint8Array;
}

export interface CloneAckMessage {
  type: ScType.CloneAck;
  cloneId: number;
  status: CloneStatus;
  /** Exact number of response bytes the clone sends (head + body); 0 when refused. */
  responseLength: number;
  /**
   * The response head (status line + headers) the clone sends, so the original can
   * resume the byte stream exactly if the clone's node dies mid-response.
   */
  head: Uint8Array;
}

export interface CancelMessage {
  type: ScType.Cancel;
  cloneId: number;
}

export type ScMessage = HelloMessage | CloneMessage | CloneAckMessage | CancelMessage;

export type ScDecodeErrorKind =
  "bad-magic" | "bad-version" | "bad-type" | "bad-length" | "too-large" | "bad-field";

export class ScDecodeError {
  constructor(
    readonly kind: ScDecodeErrorKind,
    readonly detail: string,
  ) {}
}

const MAX_U32 = 0xffffffff;

function writeHeader(buf: Uint8Array, type: ScType, total: number, cloneId: number): void {
  buf[0] = SC_MAGIC >> 8;
  buf[1] = SC_MAGIC & 0xff;
  buf[2] = SC_VERSION;
  buf[3] = type;
  writeU32(buf, 4, total);
  writeU32(buf, 8, cloneId);
}

function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = (v >>> 16) & 0xff;
  buf[off + 2] = (v >>> 8) & 0xff;
  buf[off + 3] = v & 0xff;
}

function readU32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

function writeU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 8;
  buf[off + 1] = v & 0xff;
}

function readU16(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

/** Safe integers up to 2^53 as two big-endian u32 halves. */
function writeU64(buf: Uint8Array, off: number, v: number): void {
  writeU32(buf, off, Math.floor(v / 0x100000000));
  writeU32(buf, off + 4, v >>> 0);
}

function readU64(buf: Uint8Array, off: number): number {
  return readU32(buf, off) * 0x100000000 + readU32(buf, off + 4);
}

function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > MAX_U32)
    throw new RangeError(`${name} must be a uint32, got ${v}`);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes a message; throws RangeError for values no peer could decode (a programming error). */
export function encodeScMessage(msg: ScMessage): Uint8Array {
  switch (msg.type) {
    case ScType.Hello: {
      const id = encoder.encode(msg.nodeId);
      if (id.length < 1 || id.length > 64) throw new RangeError("node id must be 1..64 bytes");
      const total = SC_HEADER_LEN + 1 + id.length;
      const buf = new Uint8Array(total);
      writeHeader(buf, msg.type, total, 0);
      buf[12] = id.length;
      buf.set(id, 13);
      return buf;
    }
    case ScType.Clone: {
      checkU32("cloneId", msg.cloneId);
      if (msg.state.length > 0xffff || msg.seed.length > 0xffff) throw new RangeError("state/seed too long");
      if (!Number.isSafeInteger(msg.startDeadline) || msg.startDeadline < 0)
        throw new RangeError("startDeadline must be a non-negative integer (ms)");
      const total = SC_HEADER_LEN + 8 + 2 + 2 + 4 + msg.state.length + msg.seed.length + msg.asf.length;
      if (total > SC_MAX_MESSAGE)
        throw new RangeError(`clone message of ${total} bytes exceeds ${SC_MAX_MESSAGE}`);
      const buf = new Uint8Array(total);
      writeHeader(buf, msg.type, total, msg.cloneId);
      let off = SC_HEADER_LEN;
      writeU64(buf, off, msg.startDeadline);
      off += 8;
      writeU16(buf, off, msg.state.length);
      writeU16(buf, off + 2, msg.seed.length);
      writeU32(buf, off + 4, msg.asf.length);
      off += 8;
      buf.set(msg.state, off);
      off += msg.state.length;
      buf.set(msg.seed, off);
      off += msg.seed.length;
      buf.set(msg.asf, off);
      return buf;
    }
    case ScType.CloneAck: {
      checkU32("cloneId", msg.cloneId);
      if (!Number.isSafeInteger(msg.responseLength) || msg.responseLength < 0)
        throw new RangeError("responseLength must be a non-negative safe integer");
      if (msg.head.length > 0xffff) throw new RangeError("response head too long");
      const total = SC_HEADER_LEN + 1 + 1 + 2 + 8 + msg.head.length;
      const buf = new Uint8Array(total);
      writeHeader(buf, msg.type, total, msg.cloneId);
      buf[12] = msg.status;
      buf[13] = 0; // reserved
      writeU16(buf, 14, msg.head.length);
      writeU64(buf, 16, msg.responseLength);
      buf.set(msg.head, 24);
      return buf;
    }
    case ScType.Cancel: {
      checkU32("cloneId", msg.cloneId);
      const buf = new Uint8Array(SC_HEADER_LEN);
      writeHeader(buf, msg.type, SC_HEADER_LEN, msg.cloneId);
      return buf;
    }
  }
}

/**
 * Validates a header at the start of `buf` and returns the message's total length,
 * or 0 if fewer than 12 bytes are available, or an error.
 */
export function peekScLength(buf: Uint8Array): number | ScDecodeError {
  if (buf.length < SC_HEADER_LEN) return 0;
  if (((buf[0]! << 8) | buf[1]!) !== SC_MAGIC) return new ScDecodeError("bad-magic", "not an SC message");
  if (buf[2] !== SC_VERSION) return new ScDecodeError("bad-version", `version ${buf[2]}`);
  const type = buf[3]!;
  if (type < ScType.Hello || type > ScType.Cancel) return new ScDecodeError("bad-type", `type ${type}`);
  const total = readU32(buf, 4);
  if (total < SC_HEADER_LEN) return new ScDecodeError("bad-length", `total length ${total}`);
  if (total > SC_MAX_MESSAGE) return new ScDecodeError("too-large", `total length ${total}`);
  return total;
}

/** Decodes exactly one whole message (`buf.length` must equal its total length). */
export function decodeScMessage(buf: Uint8Array): ScMessage | ScDecodeError {
  const total = peekScLength(buf);
  if (total instanceof ScDecodeError) return total;
  if (total === 0 || total !== buf.length)
    return new ScDecodeError("bad-length", `have ${buf.length} bytes, header says ${total}`);
  const type = buf[3] as ScType;
  const cloneId = readU32(buf, 8);
  switch (type) {
    case ScType.Hello: {
      if (total < SC_HEADER_LEN + 2) return new ScDecodeError("bad-length", "hello too short");
      const n = buf[12]!;
      if (n < 1 || n > 64 || SC_HEADER_LEN + 1 + n !== total)
        return new ScDecodeError("bad-field", `node id length ${n}`);
      try {
        return { type, nodeId: decoder.decode(buf.subarray(13, 13 + n)) };
      } catch {
        return new ScDecodeError("bad-field", "node id is not UTF-8");
      }
    }
    case ScType.Clone: {
      const fixed = SC_HEADER_LEN + 16;
      if (total < fixed) return new ScDecodeError("bad-length", "clone too short");
      const startDeadline = readU64(buf, 12);
      const stateLen = readU16(buf, 20);
      const seedLen = readU16(buf, 22);
      const asfLen = readU32(buf, 24);
      if (fixed + stateLen + seedLen + asfLen !== total)
        return new ScDecodeError("bad-length", "clone field lengths do not add up to the total");
      if (seedLen < 40) return new ScDecodeError("bad-field", `socket seed of ${seedLen} bytes`);
      if (asfLen === 0) return new ScDecodeError("bad-field", "empty ASF");
      let off = fixed;
      const state = buf.subarray(off, off + stateLen);
      off += stateLen;
      const seed = buf.subarray(off, off + seedLen);
      off += seedLen;
      const asf = buf.subarray(off, off + asfLen);
      return { type, cloneId, startDeadline, state, seed, asf };
    }
    case ScType.CloneAck: {
      if (total < SC_HEADER_LEN + 12) return new ScDecodeError("bad-length", "clone-ack too short");
      const status = buf[12]!;
      if (status > CloneStatus.Cancelled) return new ScDecodeError("bad-field", `status ${status}`);
      const headLen = readU16(buf, 14);
      if (SC_HEADER_LEN + 12 + headLen !== total) return new ScDecodeError("bad-length", "head length");
      const responseLength = readU64(buf, 16);
      if (!Number.isSafeInteger(responseLength)) return new ScDecodeError("bad-field", "response length");
      if (status === CloneStatus.Accepted && headLen > responseLength)
        return new ScDecodeError("bad-field", "head longer than the response");
      return { type, cloneId, status, responseLength, head: buf.subarray(24, 24 + headLen) };
    }
    case ScType.Cancel: {
      if (total !== SC_HEADER_LEN) return new ScDecodeError("bad-length", "cancel has a body");
      return { type, cloneId };
    }
  }
}

/**
 * Splits a byte stream into messages. Push chunks as they arrive; whole messages come
 * out. After a framing error the stream cannot be resynchronised: the caller closes
 * the connection (and counts the error).
 */
export class ScFramer {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private failed: ScDecodeError | null = null;

  /** Returns the messages completed by this chunk, or the error that broke the stream. */
  push(chunk: Uint8Array): ScMessage[] | ScDecodeError {
    if (this.failed) return this.failed;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const out: ScMessage[] = [];
    while (this.buffered >= SC_HEADER_LEN) {
      const head = this.peek(SC_HEADER_LEN);
      const total = peekScLength(head);
      if (total instanceof ScDecodeError) return (this.failed = total);
      if (this.buffered < total) break;
      const msg = decodeScMessage(this.take(total));
      if (msg instanceof ScDecodeError) return (this.failed = msg);
      out.push(msg);
    }
    return out;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    return this.copyOut(n, false);
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length === n) {
      this.chunks.shift();
      this.buffered -= n;
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return first.subarray(0, n);
    }
    return this.copyOut(n, true);
  }

  private copyOut(n: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(n);
    let off = 0;
    let i = 0;
    while (off < n) {
      const c = this.chunks[i]!;
      const k = Math.min(c.length, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (consume) {
        if (k === c.length) {
          this.chunks.shift();
        } else {
          this.chunks[0] = c.subarray(k);
        }
      } else {
        i++;
      }
    }
    if (consume) this.buffered -= n;
    return out;
  }
}
