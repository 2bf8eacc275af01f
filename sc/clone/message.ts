// SC protocol messages (paper section 2.2; DESIGN.md section 4; byte layout in
// docs/sc-protocol.md). They travel on persistent kernel TCP connections between nodes,
// so every message is self-delimiting: a fixed 12-byte header carries the total length.
// On a secure link each message after the handshake is encrypted from byte 8 on and followed
// by a 16-byte AES-GCM tag (sc/auth/link.ts); the framer splits frames on the clear 8 bytes,
// the tag is checked (and the message decrypted) before the message is decoded. Decoding is strict and never throws: bad input yields a typed ScDecodeError.

export const SC_MAGIC = 0x5343; // "SC"
/**
 * 2: authenticated links (CHALLENGE, HELLO with a MAC, HELLO-ACK, tags, KEEPALIVE).
 * 3: DONE (completion as a message) and the CLONE's monotonic send stamp.
 * 4: encrypted links (AES-256-GCM after the handshake instead of an HMAC tag).
 * 5: the CLONE's TLS block (cloning a TLS 1.3 connection: docs/tls.md).
 */
export const SC_VERSION = 5;
export const SC_HEADER_LEN = 12;
/**
 * Upper bound on one message. The largest is a CLONE: 36 bytes of fields, the socket state
 * (96) and seed (<= 120), and the request head the HTTP parser accepted (request line
 * <= 8 KiB, header fields <= 16 KiB, server/http/parser.ts); 32 KiB leaves headroom.
 */
export const SC_MAX_MESSAGE = 32 * 1024;
/** Handshake nonces (CHALLENGE, HELLO). */
export const SC_NONCE_LEN = 32;
/** Handshake MACs (HELLO, HELLO-ACK): a whole HMAC-SHA-256. */
export const SC_HANDSHAKE_MAC_LEN = 32;
/** The AES-GCM tag after every message of a secure link once the handshake is done. */
export const SC_TAG_LEN = 16;

export const enum ScType {
  Hello = 1,
  Clone = 2,
  CloneAck = 3,
  Cancel = 4,
  Challenge = 5,
  HelloAck = 6,
  Keepalive = 7,
  Done = 8,
}

/** How a link authenticates; both ends must agree (a secure node refuses an insecure peer). */
export const enum ScAuth {
  /** MACs from the cluster secret (the normal case). */
  Secret = 0,
  /** --insecure-dev: no MACs, no tags; only ever talks to another --insecure-dev node. */
  Insecure = 1,
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
  WrongWorker = 8, // the receiving node's GUE steering sends this client's packets to another of its workers
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
  8: "wrong-worker",
};

/** Sent by the accepting side as soon as a connection opens: who it is and a fresh nonce. */
export interface ChallengeMessage {
  type: ScType.Challenge;
  auth: ScAuth;
  /** The server's fresh random nonce (SC_NONCE_LEN bytes). */
  nonce: Uint8Array;
  /** The server's node id (1..64 bytes of UTF-8). */
  nodeId: string;
}

/** The connecting side's answer to the CHALLENGE. */
export interface HelloMessage {
  type: ScType.Hello;
  auth: ScAuth;
  /** The client's fresh random nonce (SC_NONCE_LEN bytes). */
  nonce: Uint8Array;
  /** MAC over both ids and nonces (SC_HANDSHAKE_MAC_LEN bytes; all zero when Insecure). */
  mac: Uint8Array;
  /** The sender's node id (1..64 bytes of UTF-8). */
  nodeId: string;
}

/** The server's proof that it holds the secret too (mutual authentication). */
export interface HelloAckMessage {
  type: ScType.HelloAck;
  /** SC_HANDSHAKE_MAC_LEN bytes; all zero when the link is Insecure. */
  mac: Uint8Array;
}

/** Sent on an idle link so that both ends see the other is alive. */
export interface KeepaliveMessage {
  type: ScType.Keepalive;
}

export interface CloneMessage {
  type: ScType.Clone;
  cloneId: number;
  /**
   * Wall-clock ms (epoch) after which the receiver must not start sending: the
   * original node serves the request itself once this has passed without an SC-ACK.
   */
  startDeadline: number;
  /**
   * When the CLONE left the original: CLOCK_MONOTONIC in microseconds (process.hrtime), which
   * nodes on one machine share; the clone's node measures the one-way clone latency from it.
   * 0 (or absent when encoding): not stamped, no sample.
   */
  sentAtUs?: number;
  /**
   * The last response on the connection (Connection: close, HTTP/1.0): the clone sends FIN
   * with its last data segment (FIN delegation); the original's shadow follows it.
   */
  last?: boolean;
  /** The exported TCP state (sc/tcp's fixed-size encoding). */
  state: Uint8Array;
  /** The socket seed: the client's last IPv4+TCP header as received. */
  seed: Uint8Array;
  /** Application State Field: the request bytes the clone serves. */
  asf: Uint8Array;
  /**
   * A TLS 1.3 connection (docs/tls.md, "Cloning"): the server's write side as the clone goes on
   * sealing it, and the layout of its records. Never the read side. Only on encrypted links.
   */
  tls?: CloneTls;
}

/** The TLS block of a CLONE. */
export interface CloneTls {
  /** The cipher suite's IANA code (0x1301..0x1303). */
  suite: number;
  /** The server's current application traffic secret (32 or 48 bytes). */
  secret: Uint8Array;
  /** The sequence number of the clone's first record. */
  seq: number;
  /** Content bytes per record the clone seals (1..16384), the last one shorter. */
  fragment: number;
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

/**
 * The clients acknowledged these clones' whole responses: they may vanish (original to clone
 * node). One message carries every completion of a short interval (batched by the sender).
 */
export interface DoneMessage {
  type: ScType.Done;
  /** 1..DONE_MAX_IDS clone ids. */
  cloneIds: readonly number[];
}

/** Clone ids one DONE carries at most (its body within SC_MAX_MESSAGE). */
export const DONE_MAX_IDS = 1024;

export type ScMessage =
  | ChallengeMessage
  | HelloMessage
  | HelloAckMessage
  | CloneMessage
  | CloneAckMessage
  | CancelMessage
  | DoneMessage
  | KeepaliveMessage;

/** One message as it came off the stream, and its tag (empty before the handshake ends). */
export interface ScFrame {
  bytes: Uint8Array;
  tag: Uint8Array;
}

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

/** Fixed parts: header, auth, id length, nonce (CHALLENGE) and MAC (HELLO); the id follows. */
const CHALLENGE_FIXED = SC_HEADER_LEN + 2 + SC_NONCE_LEN;
const HELLO_FIXED = CHALLENGE_FIXED + SC_HANDSHAKE_MAC_LEN;
const HELLO_ACK_LEN = SC_HEADER_LEN + SC_HANDSHAKE_MAC_LEN;

/** CLONE: deadline, three lengths, send stamp, flags, reserved. CLONE-ACK: status, reserved, head length, response length. */
const CLONE_FIXED = 8 + 2 + 2 + 4 + 8 + 1 + 3;
/** CLONE flags. */
const CLONE_FLAG_LAST = 0x01;
const CLONE_FLAG_TLS = 0x02;
const CLONE_FLAGS = CLONE_FLAG_LAST | CLONE_FLAG_TLS;
/** The TLS block after the ASF: suite, secret length, reserved, fragment, reserved, sequence number; the secret follows. */
const TLS_BLOCK_FIXED = 2 + 1 + 1 + 2 + 2 + 8;
const TLS_MAX_FRAGMENT = 16384;
const CLONE_ACK_FIXED = 1 + 1 + 2 + 8;

/**
 * The encoded size of a CLONE with these field lengths (compare with SC_MAX_MESSAGE);
 * `tlsSecretLen`: the TLS block's secret, if the CLONE has one.
 */
export function cloneMessageLength(
  stateLen: number,
  seedLen: number,
  asfLen: number,
  tlsSecretLen?: number,
): number {
  const tls = tlsSecretLen === undefined ? 0 : TLS_BLOCK_FIXED + tlsSecretLen;
  return SC_HEADER_LEN + CLONE_FIXED + stateLen + seedLen + asfLen + tls;
}

/** The encoded size of a CLONE-ACK carrying a response head of `headLen` bytes. */
export function cloneAckLength(headLen: number): number {
  return SC_HEADER_LEN + CLONE_ACK_FIXED + headLen;
}

function encodeNodeId(nodeId: string): Uint8Array {
  const id = encoder.encode(nodeId);
  if (id.length < 1 || id.length > 64) throw new RangeError("node id must be 1..64 bytes");
  return id;
}

function checkLength(name: string, b: Uint8Array, n: number): void {
  if (b.length !== n) throw new RangeError(`${name} must be ${n} bytes, got ${b.length}`);
}

function isZero(b: Uint8Array): boolean {
  let acc = 0;
  for (const x of b) acc |= x;
  return acc === 0;
}

/** The id at buf[off, off + n) of a message whose total length is fixed + n. */
function decodeNodeId(buf: Uint8Array, off: number, n: number): string | ScDecodeError {
  if (n < 1 || n > 64 || off + n !== buf.length) return new ScDecodeError("bad-field", `node id length ${n}`);
  try {
    return decoder.decode(buf.subarray(off, off + n));
  } catch {
    return new ScDecodeError("bad-field", "node id is not UTF-8");
  }
}

function checkCloneTls(t: CloneTls): void {
  if (!(t.suite >= 0 && t.suite <= 0xffff && Number.isInteger(t.suite)))
    throw new RangeError("tls suite must be a u16");
  if (t.secret.length !== 32 && t.secret.length !== 48)
    throw new RangeError("tls secret must be 32 or 48 bytes");
  if (!(Number.isInteger(t.fragment) && t.fragment >= 1 && t.fragment <= TLS_MAX_FRAGMENT))
    throw new RangeError(`tls fragment must be 1..${TLS_MAX_FRAGMENT}`);
  if (!Number.isSafeInteger(t.seq) || t.seq < 0)
    throw new RangeError("tls seq must be a non-negative safe integer");
}

/** The TLS block at buf[at, total): its length was checked against the total by the caller. */
function decodeCloneTls(buf: Uint8Array, at: number): CloneTls | ScDecodeError {
  const secretLen = buf[at + 2]!;
  if (secretLen !== 32 && secretLen !== 48)
    return new ScDecodeError("bad-field", `tls secret of ${secretLen} bytes`);
  if (buf[at + 3] !== 0 || buf[at + 6] !== 0 || buf[at + 7] !== 0)
    return new ScDecodeError("bad-field", "tls block reserved bytes");
  const fragment = readU16(buf, at + 4);
  if (fragment < 1 || fragment > TLS_MAX_FRAGMENT)
    return new ScDecodeError("bad-field", `tls fragment ${fragment}`);
  const seq = readU64(buf, at + 8);
  if (!Number.isSafeInteger(seq)) return new ScDecodeError("bad-field", "tls sequence number beyond 2^53");
  const secret = buf.subarray(at + TLS_BLOCK_FIXED, at + TLS_BLOCK_FIXED + secretLen);
  return { suite: readU16(buf, at), secret, seq, fragment };
}

function decodeAuth(b: number): ScAuth | ScDecodeError {
  return b === ScAuth.Secret || b === ScAuth.Insecure ? b : new ScDecodeError("bad-field", `auth ${b}`);
}

/** Encodes a message; throws RangeError for values no peer could decode (a programming error). */
export function encodeScMessage(msg: ScMessage): Uint8Array {
  switch (msg.type) {
    case ScType.Challenge: {
      const id = encodeNodeId(msg.nodeId);
      checkLength("nonce", msg.nonce, SC_NONCE_LEN);
      const buf = new Uint8Array(CHALLENGE_FIXED + id.length);
      writeHeader(buf, msg.type, buf.length, 0);
      buf[12] = msg.auth;
      buf[13] = id.length;
      buf.set(msg.nonce, 14);
      buf.set(id, CHALLENGE_FIXED);
      return buf;
    }
    case ScType.Hello: {
      const id = encodeNodeId(msg.nodeId);
      checkLength("nonce", msg.nonce, SC_NONCE_LEN);
      checkLength("mac", msg.mac, SC_HANDSHAKE_MAC_LEN);
      const buf = new Uint8Array(HELLO_FIXED + id.length);
      writeHeader(buf, msg.type, buf.length, 0);
      buf[12] = msg.auth;
      buf[13] = id.length;
      buf.set(msg.nonce, 14);
      buf.set(msg.mac, 14 + SC_NONCE_LEN);
      buf.set(id, HELLO_FIXED);
      return buf;
    }
    case ScType.HelloAck: {
      checkLength("mac", msg.mac, SC_HANDSHAKE_MAC_LEN);
      const buf = new Uint8Array(HELLO_ACK_LEN);
      writeHeader(buf, msg.type, buf.length, 0);
      buf.set(msg.mac, SC_HEADER_LEN);
      return buf;
    }
    case ScType.Keepalive: {
      const buf = new Uint8Array(SC_HEADER_LEN);
      writeHeader(buf, msg.type, SC_HEADER_LEN, 0);
      return buf;
    }
    case ScType.Clone: {
      checkU32("cloneId", msg.cloneId);
      if (msg.state.length > 0xffff || msg.seed.length > 0xffff) throw new RangeError("state/seed too long");
      if (!Number.isSafeInteger(msg.startDeadline) || msg.startDeadline < 0)
        throw new RangeError("startDeadline must be a non-negative integer (ms)");
      const sentAtUs = msg.sentAtUs ?? 0;
      if (!Number.isSafeInteger(sentAtUs) || sentAtUs < 0)
        throw new RangeError("sentAtUs must be a non-negative integer (us)");
      if (msg.tls !== undefined) checkCloneTls(msg.tls);
      const total = cloneMessageLength(
        msg.state.length,
        msg.seed.length,
        msg.asf.length,
        msg.tls?.secret.length,
      );
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
      writeU64(buf, off + 8, sentAtUs);
      buf[off + 16] =
        (msg.last === true ? CLONE_FLAG_LAST : 0) | (msg.tls !== undefined ? CLONE_FLAG_TLS : 0);
      off += 20;
      buf.set(msg.state, off);
      off += msg.state.length;
      buf.set(msg.seed, off);
      off += msg.seed.length;
      buf.set(msg.asf, off);
      off += msg.asf.length;
      if (msg.tls !== undefined) {
        const t = msg.tls;
        writeU16(buf, off, t.suite);
        buf[off + 2] = t.secret.length;
        writeU16(buf, off + 4, t.fragment);
        writeU64(buf, off + 8, t.seq);
        buf.set(t.secret, off + TLS_BLOCK_FIXED);
      }
      return buf;
    }
    case ScType.CloneAck: {
      checkU32("cloneId", msg.cloneId);
      if (!Number.isSafeInteger(msg.responseLength) || msg.responseLength < 0)
        throw new RangeError("responseLength must be a non-negative safe integer");
      const total = cloneAckLength(msg.head.length);
      if (total > SC_MAX_MESSAGE)
        throw new RangeError(`clone-ack of ${total} bytes exceeds ${SC_MAX_MESSAGE}`);
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
    case ScType.Done: {
      const n = msg.cloneIds.length;
      if (n < 1 || n > DONE_MAX_IDS)
        throw new RangeError(`a DONE carries 1..${DONE_MAX_IDS} clone ids, got ${n}`);
      const buf = new Uint8Array(SC_HEADER_LEN + 4 * n);
      writeHeader(buf, msg.type, buf.length, 0);
      for (let i = 0; i < n; i++) {
        checkU32("cloneId", msg.cloneIds[i]!);
        writeU32(buf, SC_HEADER_LEN + 4 * i, msg.cloneIds[i]!);
      }
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
  if (type < ScType.Hello || type > ScType.Done) return new ScDecodeError("bad-type", `type ${type}`);
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
    case ScType.Challenge: {
      if (total < CHALLENGE_FIXED) return new ScDecodeError("bad-length", "challenge too short");
      if (cloneId !== 0) return new ScDecodeError("bad-field", "challenge with a clone id");
      const auth = decodeAuth(buf[12]!);
      if (auth instanceof ScDecodeError) return auth;
      const nodeId = decodeNodeId(buf, CHALLENGE_FIXED, buf[13]!);
      if (nodeId instanceof ScDecodeError) return nodeId;
      return { type, auth, nonce: buf.subarray(14, 14 + SC_NONCE_LEN), nodeId };
    }
    case ScType.Hello: {
      if (total < HELLO_FIXED) return new ScDecodeError("bad-length", "hello too short");
      if (cloneId !== 0) return new ScDecodeError("bad-field", "hello with a clone id");
      const auth = decodeAuth(buf[12]!);
      if (auth instanceof ScDecodeError) return auth;
      const nodeId = decodeNodeId(buf, HELLO_FIXED, buf[13]!);
      if (nodeId instanceof ScDecodeError) return nodeId;
      const mac = buf.subarray(14 + SC_NONCE_LEN, HELLO_FIXED);
      if (auth === ScAuth.Insecure && !isZero(mac))
        return new ScDecodeError("bad-field", "insecure hello with a mac");
      return { type, auth, nonce: buf.subarray(14, 14 + SC_NONCE_LEN), mac, nodeId };
    }
    case ScType.HelloAck: {
      if (total !== HELLO_ACK_LEN) return new ScDecodeError("bad-length", "hello-ack length");
      if (cloneId !== 0) return new ScDecodeError("bad-field", "hello-ack with a clone id");
      return { type, mac: buf.subarray(SC_HEADER_LEN, HELLO_ACK_LEN) };
    }
    case ScType.Keepalive: {
      if (total !== SC_HEADER_LEN) return new ScDecodeError("bad-length", "keepalive has a body");
      if (cloneId !== 0) return new ScDecodeError("bad-field", "keepalive with a clone id");
      return { type };
    }
    case ScType.Clone: {
      const fixed = SC_HEADER_LEN + CLONE_FIXED;
      if (total < fixed) return new ScDecodeError("bad-length", "clone too short");
      const startDeadline = readU64(buf, 12);
      const stateLen = readU16(buf, 20);
      const seedLen = readU16(buf, 22);
      const asfLen = readU32(buf, 24);
      const sentAtUs = readU64(buf, 28);
      if (!Number.isSafeInteger(startDeadline) || !Number.isSafeInteger(sentAtUs))
        return new ScDecodeError("bad-field", "clone time beyond 2^53");
      const flags = buf[36]!;
      if ((flags & ~CLONE_FLAGS) !== 0 || buf[37] !== 0 || buf[38] !== 0 || buf[39] !== 0)
        return new ScDecodeError("bad-field", `clone flags ${flags}`);
      const tlsAt = fixed + stateLen + seedLen + asfLen;
      const tlsLen = flags & CLONE_FLAG_TLS ? TLS_BLOCK_FIXED + (buf[tlsAt + 2] ?? 0) : 0;
      if (tlsAt + tlsLen !== total)
        return new ScDecodeError("bad-length", "clone field lengths do not add up to the total");
      if (seedLen < 40) return new ScDecodeError("bad-field", `socket seed of ${seedLen} bytes`);
      if (asfLen === 0) return new ScDecodeError("bad-field", "empty ASF");
      let off = fixed;
      const state = buf.subarray(off, off + stateLen);
      off += stateLen;
      const seed = buf.subarray(off, off + seedLen);
      off += seedLen;
      const asf = buf.subarray(off, off + asfLen);
      // Absent when not stamped (0) or not the last response: as encoders may leave them out.
      const msg: CloneMessage = { type, cloneId, startDeadline, state, seed, asf };
      if (sentAtUs > 0) msg.sentAtUs = sentAtUs;
      if (flags & CLONE_FLAG_LAST) msg.last = true;
      if (flags & CLONE_FLAG_TLS) {
        const tls = decodeCloneTls(buf, tlsAt);
        if (tls instanceof ScDecodeError) return tls;
        msg.tls = tls;
      }
      return msg;
    }
    case ScType.CloneAck: {
      if (total < SC_HEADER_LEN + 12) return new ScDecodeError("bad-length", "clone-ack too short");
      const status = buf[12]!;
      if (status > CloneStatus.WrongWorker) return new ScDecodeError("bad-field", `status ${status}`);
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
    case ScType.Done: {
      const n = (total - SC_HEADER_LEN) / 4;
      if (!Number.isInteger(n) || n < 1 || n > DONE_MAX_IDS)
        return new ScDecodeError("bad-length", `done of ${total} bytes`);
      if (cloneId !== 0) return new ScDecodeError("bad-field", "done with a header clone id");
      const cloneIds: number[] = new Array<number>(n);
      for (let i = 0; i < n; i++) cloneIds[i] = readU32(buf, SC_HEADER_LEN + 4 * i);
      return { type, cloneIds };
    }
  }
}

/**
 * Splits a byte stream into frames: a message and, once the link's handshake is done, its
 * tag (`tagLength` bytes after it). Push chunks as they arrive and take frames with next()
 * one at a time, since a frame may change the tag length of the ones after it. What stays
 * buffered is at most one partial frame (a header announcing more than SC_MAX_MESSAGE is an
 * error at once). After a framing error the stream cannot be resynchronised: the caller
 * closes the connection (and counts the error).
 */
export class ScFramer {
  /** Bytes of tag after each message from now on (0, or SC_TAG_LEN once authenticated). */
  tagLength = 0;
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private failed: ScDecodeError | null = null;

  push(chunk: Uint8Array): void {
    if (this.failed || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next whole frame, null if it has not all arrived, or the error that broke the stream. */
  next(): ScFrame | null | ScDecodeError {
    if (this.failed) return this.failed;
    if (this.buffered < SC_HEADER_LEN) return null;
    const total = peekScLength(this.peek(SC_HEADER_LEN));
    if (total instanceof ScDecodeError) return this.fail(total);
    if (this.buffered < total + this.tagLength) return null;
    const bytes = this.take(total);
    const tag = this.tagLength > 0 ? this.take(this.tagLength) : EMPTY;
    return { bytes, tag };
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  private fail(e: ScDecodeError): ScDecodeError {
    this.failed = e;
    this.chunks = [];
    this.buffered = 0;
    return e;
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
      out.set(k === c.length ? c : c.subarray(0, k), off);
      off += k;
      if (k === c.length) i++;
      else if (consume) this.chunks[i] = c.subarray(k);
    }
    // One splice for every whole chunk taken: a shift() each is O(n) past ~16K elements in V8,
    // quadratic for a message that arrived in many tiny reads.
    if (consume) {
      this.chunks.splice(0, i);
      this.buffered -= n;
    }
    return out;
  }
}

const EMPTY = new Uint8Array(0);

// The byte primitives and the header writer, for codecs of the same message family that live
// in their own modules (the LARD handoff messages: sc/handoff/message.ts).
export { writeHeader as writeScHeader, readU16, readU32, readU64, writeU16, writeU32, writeU64 };
