// Initial sequence numbers (RFC 6528) and SYN cookies (RFC 4987 section 3.6), both from a
// keyed hash of the connection's 4-tuple. The hash is HalfSipHash-2-4 (32-bit words, 64-bit
// key, 32-bit output): fast in JavaScript's 32-bit integer arithmetic, and keyed so that an
// off-path attacker cannot predict ISNs or forge cookies. Each stack has its own secret.

import type { FourTuple } from "./types.js";

function rotl(x: number, b: number): number {
  return (x << b) | (x >>> (32 - b));
}

/**
 * HalfSipHash-2-4 of the 32-bit words `m` (each taken as 4 little-endian bytes) under the
 * 64-bit key (k0, k1). Returns a uint32.
 */
export function halfSipHash(k0: number, k1: number, m: ArrayLike<number>): number {
  let v0 = k0 | 0;
  let v1 = k1 | 0;
  let v2 = 0x6c796765 ^ k0;
  let v3 = 0x74656462 ^ k1;
  const round = (): void => {
    v0 = (v0 + v1) | 0;
    v1 = rotl(v1, 5) ^ v0;
    v0 = rotl(v0, 16);
    v2 = (v2 + v3) | 0;
    v3 = rotl(v3, 8) ^ v2;
    v0 = (v0 + v3) | 0;
    v3 = rotl(v3, 7) ^ v0;
    v2 = (v2 + v1) | 0;
    v1 = rotl(v1, 13) ^ v2;
    v2 = rotl(v2, 16);
  };
  for (let i = 0; i < m.length; i++) {
    const w = m[i] | 0;
    v3 ^= w;
    round();
    round();
    v0 ^= w;
  }
  const b = (m.length * 4) << 24;
  v3 ^= b;
  round();
  round();
  v0 ^= b;
  v2 ^= 0xff;
  round();
  round();
  round();
  round();
  return (v1 ^ v3) >>> 0;
}

/** A stack's secret: four 32-bit words (two HalfSipHash keys: ISNs and cookies). */
export class TcpSecret {
  readonly words: Uint32Array;

  constructor(bytes?: Uint8Array) {
    this.words = new Uint32Array(4);
    if (bytes === undefined) {
      crypto.getRandomValues(this.words);
    } else {
      if (bytes.length < 16) throw new RangeError("a TCP secret needs 16 bytes");
      const v = new DataView(bytes.buffer, bytes.byteOffset, 16);
      for (let i = 0; i < 4; i++) this.words[i] = v.getUint32(i * 4);
    }
  }
}

const scratch = new Uint32Array(6);

function tupleWords(t: FourTuple, extra0: number, extra1: number): Uint32Array {
  scratch[0] = t.localAddr;
  scratch[1] = t.remoteAddr;
  scratch[2] = ((t.localPort << 16) | t.remotePort) >>> 0;
  scratch[3] = extra0 >>> 0;
  scratch[4] = extra1 >>> 0;
  return scratch;
}

/**
 * RFC 6528: ISN = M + F(4-tuple, secret), M a timer ticking every 4 microseconds (here
 * derived from `now` in milliseconds), F a keyed hash. Different 4-tuples get unrelated
 * sequence spaces; the same 4-tuple's ISN keeps increasing, as RFC 9293 wants for reuse.
 */
export function initialSequenceNumber(secret: TcpSecret, tuple: FourTuple, now: number): number {
  const m = Math.floor(now * 250);
  const f = halfSipHash(secret.words[0], secret.words[1], tupleWords(tuple, 0, 0).subarray(0, 3));
  return (f + m) >>> 0;
}

// ------------------------------------------------------------------ SYN cookies
//
// A cookie is our ISN for a SYN we did not keep state for. Its 32 bits:
//   31..30  counter: (now / COOKIE_PERIOD) mod 4, so a cookie is valid for 1 to 2 periods
//   29..27  index into COOKIE_MSS (the peer's MSS rounded down)
//   26..23  the peer's window scale 0..14, or 15 when it sent none
//   22..0   MAC: keyed hash of the 4-tuple, the peer's ISN, the full counter and bits 31..23
// The cookie SYN-ACK carries our MSS and, when the peer offered it, our window scale; the
// ACK that returns cookie + 1 recreates the connection from these bits (connection.ts
// TcpConnection.fromCookie).

export const COOKIE_PERIOD = 64_000;
/** MSS values a cookie can encode (a peer's MSS is rounded down to one of them). */
export const COOKIE_MSS: readonly number[] = [536, 1200, 1360, 1400, 1440, 1452, 1460, 8960];
const NO_WSCALE = 15;
const MAC_MASK = 0x7fffff;

export interface CookieInfo {
  iss: number;
  mss: number;
  wscale: number | undefined;
}

function cookieMac(
  secret: TcpSecret,
  tuple: FourTuple,
  peerIsn: number,
  counter: number,
  meta: number,
): number {
  return (
    halfSipHash(secret.words[2], secret.words[3], tupleWords(tuple, peerIsn, (counter << 9) | meta)) &
    MAC_MASK
  );
}

function mssIndex(mss: number | undefined): number {
  const m = mss === undefined || mss === 0 ? 536 : mss;
  let idx = 0;
  for (let i = 0; i < COOKIE_MSS.length; i++) if (COOKIE_MSS[i] <= m) idx = i;
  return idx;
}

/** The cookie (our ISN) for a SYN from `tuple` with sequence number `peerIsn`. */
export function makeSynCookie(
  secret: TcpSecret,
  tuple: FourTuple,
  peerIsn: number,
  peerMss: number | undefined,
  peerWscale: number | undefined,
  now: number,
): number {
  const counter = Math.floor(now / COOKIE_PERIOD);
  const ws = peerWscale === undefined ? NO_WSCALE : Math.min(peerWscale, 14);
  const meta = ((counter & 3) << 7) | (mssIndex(peerMss) << 4) | ws;
  return ((meta << 23) | cookieMac(secret, tuple, peerIsn, counter, meta)) >>> 0;
}

/**
 * Checks the ACK that should complete a cookie handshake: `ack` is SEG.ACK (cookie + 1),
 * `seq` is SEG.SEQ (peer ISN + 1). Returns what the cookie encodes, or undefined.
 */
export function checkSynCookie(
  secret: TcpSecret,
  tuple: FourTuple,
  seq: number,
  ack: number,
  now: number,
): CookieInfo | undefined {
  const cookie = (ack - 1) >>> 0;
  const peerIsn = (seq - 1) >>> 0;
  const meta = cookie >>> 23;
  const nowCounter = Math.floor(now / COOKIE_PERIOD);
  const age = (nowCounter - (meta >>> 7)) & 3;
  if (age > 1) return undefined;
  const counter = nowCounter - age;
  if (cookieMac(secret, tuple, peerIsn, counter, meta) !== (cookie & MAC_MASK)) return undefined;
  const ws = meta & 15;
  return {
    iss: cookie,
    mss: COOKIE_MSS[(meta >>> 4) & 7],
    wscale: ws === NO_WSCALE ? undefined : ws,
  };
}
