// URL-hash mapper: which node's cache should hold a URL. Weighted rendezvous (highest random
// weight) hashing: each node scores each key and the best score wins, so removing a node moves
// exactly that node's keys and adding one moves only the keys it now wins (about 1/N).
// Deterministic everywhere: MurmurHash3 (x86, 32-bit) of the key's UTF-8 bytes, combined with a
// per-node hash of its id; no process seed, no Math.random. Pure.
import { fmix32 } from "../../common/hash.js";

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/** One MurmurHash3 body round: mixes the 32-bit block k into h. */
function round(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = rotl(k, 15);
  k = Math.imul(k, C2);
  h ^= k;
  h = rotl(h, 13);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** The mixing applied to the last 1-3 bytes. */
function tail(k: number): number {
  return Math.imul(rotl(Math.imul(k, C1), 15), C2);
}

const encoder = new TextEncoder();

/** MurmurHash3_x86_32 of the UTF-8 bytes of `key` (or of the given bytes). */
export function murmur3(key: string | Uint8Array, seed = 0): number {
  let bytes: Uint8Array;
  if (typeof key === "string") {
    let ascii = true;
    for (let i = 0; i < key.length; i++) {
      if (key.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (ascii) return murmur3Ascii(key, seed);
    bytes = encoder.encode(key);
  } else bytes = key;
  const n = bytes.length;
  let h = seed | 0;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    h = round(h, bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
  }
  const rem = n & 3;
  if (rem > 0) {
    let k = bytes[blocks]!;
    if (rem > 1) k ^= bytes[blocks + 1]! << 8;
    if (rem > 2) k ^= bytes[blocks + 2]! << 16;
    h ^= tail(k);
  }
  return fmix32(h ^ n);
}

/** The same function for an ASCII string, without encoding it first (the common case). */
function murmur3Ascii(s: string, seed: number): number {
  const n = s.length;
  let h = seed | 0;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    h = round(
      h,
      s.charCodeAt(i) |
        (s.charCodeAt(i + 1) << 8) |
        (s.charCodeAt(i + 2) << 16) |
        (s.charCodeAt(i + 3) << 24),
    );
  }
  const rem = n & 3;
  if (rem > 0) {
    let k = s.charCodeAt(blocks);
    if (rem > 1) k ^= s.charCodeAt(blocks + 1) << 8;
    if (rem > 2) k ^= s.charCodeAt(blocks + 2) << 16;
    h ^= tail(k);
  }
  return fmix32(h ^ n);
}

export interface MapperNode {
  /** Stable node identity (e.g. "node3"); its hash decides which keys the node wins. */
  id: string;
  /** Relative share of keys, > 0 (default 1). */
  weight?: number;
}

/** A node's score for a key: the key hash and the node hash mixed like two Murmur blocks. */
function score(keyHash: number, nodeHash: number): number {
  return fmix32(round(keyHash, nodeHash));
}

export class UrlMapper {
  // Replaced as a whole by replace() (runtime membership); lookups read them in one pass.
  private current: readonly MapperNode[] = [];
  private hashes = new Uint32Array(0);
  private weights = new Float64Array(0);
  private weighted = false;

  constructor(nodes: readonly MapperNode[]) {
    this.replace(nodes);
  }

  get nodes(): readonly MapperNode[] {
    return this.current;
  }

  /**
   * Changes the node set in place (every holder of this mapper sees it). Rendezvous hashing
   * moves only the keys of removed nodes and the keys added nodes now win.
   */
  replace(nodes: readonly MapperNode[]): void {
    const ids = new Set<string>();
    for (const n of nodes) {
      if (ids.has(n.id)) throw new Error(`duplicate node id '${n.id}'`);
      ids.add(n.id);
      if (n.weight !== undefined && !(n.weight > 0 && Number.isFinite(n.weight))) {
        throw new Error(`node '${n.id}': weight must be a positive number`);
      }
    }
    this.current = [...nodes];
    this.hashes = Uint32Array.from(nodes, (n) => murmur3(n.id, 0x5c_c1_0e_d0));
    this.weights = Float64Array.from(nodes, (n) => n.weight ?? 1);
    this.weighted = nodes.some((n) => (n.weight ?? 1) !== 1);
  }

  /** Index into `nodes` of the node for `key`; -1 when there are no nodes. */
  lookupIndex(key: string): number {
    const n = this.hashes.length;
    const nodes = this.current;
    if (n === 0) return -1;
    const h = murmur3(key);
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i < n; i++) {
      const s = score(h, this.hashes[i]!);
      // Weighted: w / -ln(u) with u uniform in (0, 1) gives each node a share proportional to w.
      const v = this.weighted ? this.weights[i]! / -Math.log((s + 0.5) / 4294967296) : s;
      if (v > bestScore || (v === bestScore && nodes[i]!.id < nodes[best]!.id)) {
        best = i;
        bestScore = v;
      }
    }
    return best;
  }

  /** Id of the node for `key` (the normalised request path); undefined when there are no nodes. */
  lookup(key: string): string | undefined {
    const i = this.lookupIndex(key);
    return i === -1 ? undefined : this.nodes[i]!.id;
  }
}
