// The TLS 1.3 record protection (RFC 8446 5.1-5.5) after the handshake, one direction at a
// time: TLSInnerPlaintext (content, type, zero padding) sealed with the suite's AEAD under the
// per-record nonce (write IV XOR the 64-bit sequence number), the 5-byte outer header as the
// additional data. Pure: bytes in, bytes or a TlsError out, no I/O. This module owns the TLS
// record format; no other code writes record headers.
import type { CipherSuite } from "./suites.js";
import { nextTrafficSecret, trafficKeys, type TrafficKeys } from "./key-schedule.js";
import { loadAddon, type NativeAeadHandle } from "../tun/addon.js";

export const enum ContentType {
  ChangeCipherSpec = 20,
  Alert = 21,
  Handshake = 22,
  ApplicationData = 23,
}

/** The alert descriptions this layer sends or names (RFC 8446 6). */
export const ALERTS = {
  close_notify: 0,
  unexpected_message: 10,
  bad_record_mac: 20,
  record_overflow: 22,
  handshake_failure: 40,
  illegal_parameter: 47,
  decode_error: 50,
  internal_error: 80,
  user_canceled: 90,
} as const;
export type AlertName = keyof typeof ALERTS;

/** The outer header: opaque_type (23), legacy_record_version (0x0303), length. */
export const RECORD_HEADER_LEN = 5;
/** Largest TLSPlaintext.fragment (2^14). */
export const MAX_FRAGMENT = 16384;
/** Largest TLSCiphertext.length (2^14 + 256). */
export const MAX_CIPHERTEXT = MAX_FRAGMENT + 256;
const LEGACY_VERSION = 0x0303;

/**
 * A record that cannot be taken: what the peer is told (the alert) and why, for counters and
 * debug logs. A value, not an Error: a flood of bad records costs no stack traces.
 */
export class TlsError {
  readonly kind = "tls-error";
  constructor(
    readonly alert: AlertName,
    readonly detail: string,
  ) {}

  toString(): string {
    return `${this.alert}: ${this.detail}`;
  }
}

export function isTlsError(v: unknown): v is TlsError {
  return v instanceof TlsError;
}

/** One direction of a session: the suite, its current traffic secret, keys and next sequence number. */
export interface Direction {
  readonly suite: CipherSuite;
  /** The current application traffic secret (the next KeyUpdate derives from it). */
  secret: Buffer;
  keys: TrafficKeys;
  /** Sequence number of the next record (RFC 8446 5.3), 0 after every key change. */
  seq: number;
}

export function direction(suite: CipherSuite, secret: Uint8Array, seq = 0): Direction {
  if (secret.length !== suite.hashLength)
    throw new RangeError(`${suite.name} needs a ${suite.hashLength}-byte traffic secret`);
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`bad sequence number ${seq}`);
  const s = Buffer.from(secret);
  return { suite, secret: s, keys: trafficKeys(suite, s), seq };
}

/** KeyUpdate on this direction (RFC 8446 4.6.3): the next secret, new keys, sequence 0. */
export function rekey(d: Direction): void {
  const next = nextTrafficSecret(d.suite, d.secret);
  wipeDirection(d);
  d.secret = next;
  d.keys = trafficKeys(d.suite, next);
  d.seq = 0;
}

/** Overwrites the direction's secret, key and IV (the connection is done with them). */
export function wipeDirection(d: Direction): void {
  const ctx = contexts.get(d.keys);
  contexts.delete(d.keys);
  ctx?.seal?.destroy();
  ctx?.open?.destroy();
  d.secret.fill(0);
  d.keys.key.fill(0);
  d.keys.iv.fill(0);
}

/**
 * The AEAD contexts of a direction's current keys (the addon's aead.c: keyed once, where
 * node:crypto would build a cipher object per record), made on first use. Keyed by the keys
 * object, so a KeyUpdate's new keys get new contexts and the old ones go with their keys
 * (at once in wipeDirection, else when collected).
 */
const contexts = new WeakMap<TrafficKeys, { seal?: NativeAeadHandle; open?: NativeAeadHandle }>();

function context(d: Direction, side: "seal" | "open"): NativeAeadHandle {
  let ctx = contexts.get(d.keys);
  if (ctx === undefined) contexts.set(d.keys, (ctx = {}));
  return (ctx[side] ??= new (loadAddon().AeadHandle)(
    d.suite.aead,
    d.keys.key,
    side === "seal",
    d.suite.tagLength,
  ));
}

/** The per-record nonce: the IV with the sequence number XORed into its last 8 bytes. */
export function recordNonce(iv: Uint8Array, seq: number): Buffer {
  const n = Buffer.from(iv);
  const hi = Math.floor(seq / 2 ** 32);
  const lo = seq >>> 0;
  const at = n.length - 8;
  n.writeUInt32BE((n.readUInt32BE(at) ^ hi) >>> 0, at);
  n.writeUInt32BE((n.readUInt32BE(at + 4) ^ lo) >>> 0, at + 4);
  return n;
}

/**
 * Seals one record of `type` around `content` (at most 2^14 bytes) with `padding` zero bytes
 * after the inner type, and advances the sequence number. Returns the whole record.
 */
export function sealRecord(d: Direction, type: ContentType, content: Uint8Array, padding = 0): Buffer {
  const innerLen = content.length + 1 + padding;
  if (content.length > MAX_FRAGMENT || innerLen > MAX_FRAGMENT + 256 - d.suite.tagLength)
    throw new RangeError(`record content of ${content.length} + ${padding} padding is too long`);
  const len = innerLen + d.suite.tagLength;
  const out = Buffer.allocUnsafe(RECORD_HEADER_LEN + len);
  out[0] = ContentType.ApplicationData;
  out.writeUInt16BE(LEGACY_VERSION, 1);
  out.writeUInt16BE(len, 3);
  // TLSInnerPlaintext in place after the header (zeros: the padding), encrypted there.
  const innerEnd = RECORD_HEADER_LEN + innerLen;
  out.set(content, RECORD_HEADER_LEN);
  out[RECORD_HEADER_LEN + content.length] = type;
  out.fill(0, RECORD_HEADER_LEN + content.length + 1, innerEnd);
  context(d, "seal").seal(
    recordNonce(d.keys.iv, d.seq),
    RECORD_HEADER_LEN,
    out.subarray(0, innerEnd),
    out.subarray(innerEnd),
  );
  d.seq++;
  return out;
}

/** A record opened: its real content type and content. */
export interface InnerPlaintext {
  readonly type: ContentType;
  readonly content: Buffer;
}

/**
 * Opens one whole record (header included) with the direction's next sequence number; on
 * success the sequence number advances. A record that does not authenticate (corrupted,
 * replayed, reordered, or under another key) is bad_record_mac and leaves the direction as it
 * was; the caller must then close the connection (RFC 8446 5.2).
 */
export function openRecord(d: Direction, record: Uint8Array): InnerPlaintext | TlsError {
  if (record.length < RECORD_HEADER_LEN)
    return new TlsError("decode_error", "record shorter than its header");
  const type = record[0]!;
  const len = (record[3]! << 8) | record[4]!;
  if (len !== record.length - RECORD_HEADER_LEN)
    return new TlsError("decode_error", "record length mismatch");
  if (type !== ContentType.ApplicationData)
    return new TlsError("unexpected_message", `unprotected record of type ${type} after the handshake`);
  if (len > MAX_CIPHERTEXT) return new TlsError("record_overflow", `ciphertext of ${len} bytes`);
  const tagLen = d.suite.tagLength;
  if (len < tagLen + 1) return new TlsError("bad_record_mac", `ciphertext of ${len} bytes`);
  // Decrypted in a copy (header and ciphertext): the caller's record stays as it came.
  const opened = Buffer.from(record.subarray(0, record.length - tagLen));
  const tag = record.subarray(record.length - tagLen);
  if (!context(d, "open").open(recordNonce(d.keys.iv, d.seq), RECORD_HEADER_LEN, opened, tag))
    return new TlsError("bad_record_mac", `record ${d.seq} does not authenticate`);
  const inner = opened.subarray(RECORD_HEADER_LEN);
  d.seq++;
  // The real type is the last non-zero byte; the zeros after it are padding (RFC 8446 5.4).
  let end = inner.length;
  while (end > 0 && inner[end - 1] === 0) end--;
  if (end === 0) return new TlsError("unexpected_message", "inner plaintext is all padding");
  if (end - 1 > MAX_FRAGMENT) return new TlsError("record_overflow", `inner plaintext of ${end - 1} bytes`);
  return { type: inner[end - 1] as ContentType, content: inner.subarray(0, end - 1) };
}

/** Splits a byte stream into whole records; bounded: at most one incomplete record is held. */
export class RecordFramer {
  private buf: Buffer = Buffer.alloc(0);

  /** Bytes held that do not make a whole record yet. */
  get buffered(): number {
    return this.buf.length;
  }

  /** Hands over the bytes of the incomplete record held (another framer continues from them). */
  takeBuffered(): Buffer {
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    return b;
  }

  /**
   * Adds `bytes` and returns every whole record now available (views into one buffer), or a
   * TlsError for a header announcing more than a record may hold.
   */
  push(bytes: Uint8Array): Buffer[] | TlsError {
    this.buf = this.buf.length === 0 ? Buffer.from(bytes) : Buffer.concat([this.buf, bytes]);
    const out: Buffer[] = [];
    let off = 0;
    while (this.buf.length - off >= RECORD_HEADER_LEN) {
      const len = this.buf.readUInt16BE(off + 3);
      if (len > MAX_CIPHERTEXT)
        return new TlsError("record_overflow", `record header announces ${len} bytes`);
      if (this.buf.length - off < RECORD_HEADER_LEN + len) break;
      out.push(this.buf.subarray(off, off + RECORD_HEADER_LEN + len));
      off += RECORD_HEADER_LEN + len;
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(off);
    return out;
  }
}
