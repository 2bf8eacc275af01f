// The parts of the TLS 1.3 key schedule (RFC 8446 7.1-7.3) a record layer needs: HKDF-Extract,
// HKDF-Expand-Label, Derive-Secret, the traffic key and IV of a traffic secret, and the next
// application traffic secret of a KeyUpdate. node:crypto's HMAC does the hashing; HKDF-Expand is
// written out because node:crypto only offers Extract and Expand together.
import { createHash, createHmac } from "node:crypto";
import type { CipherSuite, HashName } from "./suites.js";

/** A direction's AEAD key and IV (RFC 8446 7.3). */
export interface TrafficKeys {
  readonly key: Buffer;
  readonly iv: Buffer;
}

const LABEL_PREFIX = "tls13 ";

/** HKDF-Extract(salt, IKM) (RFC 5869 2.2); an empty salt means Hash.length zero bytes. */
export function hkdfExtract(hash: HashName, salt: Uint8Array, ikm: Uint8Array): Buffer {
  const len = hashLength(hash);
  return createHmac(hash, salt.length === 0 ? Buffer.alloc(len) : salt)
    .update(ikm)
    .digest();
}

/** HKDF-Expand(PRK, info, L) (RFC 5869 2.3). */
export function hkdfExpand(hash: HashName, prk: Uint8Array, info: Uint8Array, length: number): Buffer {
  const hlen = hashLength(hash);
  if (length > 255 * hlen) throw new RangeError(`HKDF-Expand: ${length} bytes is beyond 255 * HashLen`);
  const out = Buffer.allocUnsafe(length);
  let t: Buffer = Buffer.alloc(0);
  for (let i = 1, off = 0; off < length; i++) {
    t = createHmac(hash, prk).update(t).update(info).update(Uint8Array.of(i)).digest();
    off += t.copy(out, off);
  }
  return out;
}

/**
 * The HkdfLabel structure (RFC 8446 7.1): uint16 length, opaque label<7..255> ("tls13 " + label),
 * opaque context<0..255>.
 */
export function hkdfLabel(label: string, context: Uint8Array, length: number): Buffer {
  const full = Buffer.from(LABEL_PREFIX + label, "latin1");
  if (full.length > 255 || context.length > 255 || length > 0xffff)
    throw new RangeError("HkdfLabel: label, context or length out of range");
  const out = Buffer.allocUnsafe(2 + 1 + full.length + 1 + context.length);
  out.writeUInt16BE(length, 0);
  out[2] = full.length;
  full.copy(out, 3);
  out[3 + full.length] = context.length;
  out.set(context, 4 + full.length);
  return out;
}

/** HKDF-Expand-Label(Secret, Label, Context, Length) (RFC 8446 7.1). */
export function hkdfExpandLabel(
  hash: HashName,
  secret: Uint8Array,
  label: string,
  context: Uint8Array,
  length: number,
): Buffer {
  return hkdfExpand(hash, secret, hkdfLabel(label, context, length), length);
}

/** Derive-Secret(Secret, Label, Messages), given Transcript-Hash(Messages) (RFC 8446 7.1). */
export function deriveSecret(
  hash: HashName,
  secret: Uint8Array,
  label: string,
  transcriptHash: Uint8Array,
): Buffer {
  return hkdfExpandLabel(hash, secret, label, transcriptHash, hashLength(hash));
}

/** Transcript-Hash of the given messages (the empty string's hash for Derive-Secret(., "derived", "")). */
export function transcriptHash(hash: HashName, ...messages: Uint8Array[]): Buffer {
  const h = createHash(hash);
  for (const m of messages) h.update(m);
  return h.digest();
}

/** The write key and IV of a traffic secret (RFC 8446 7.3). */
export function trafficKeys(suite: CipherSuite, secret: Uint8Array): TrafficKeys {
  const none = new Uint8Array(0);
  return {
    key: hkdfExpandLabel(suite.hash, secret, "key", none, suite.keyLength),
    iv: hkdfExpandLabel(suite.hash, secret, "iv", none, suite.ivLength),
  };
}

/** application_traffic_secret_N+1 after a KeyUpdate (RFC 8446 7.2). */
export function nextTrafficSecret(suite: CipherSuite, secret: Uint8Array): Buffer {
  return hkdfExpandLabel(suite.hash, secret, "traffic upd", new Uint8Array(0), suite.hashLength);
}

function hashLength(hash: HashName): number {
  return hash === "sha256" ? 32 : 48;
}
