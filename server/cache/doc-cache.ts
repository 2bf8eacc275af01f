// The document cache: bounded in bytes, with hit/miss/byte statistics. Two policies behind one
// interface: LRU (lru-cache with maxSize + sizeCalculation) and LFU with dynamic ageing
// (lfu.ts); the cooperative-caching baseline (CF-LRU / CF-LFU) needs both. Listeners see hits
// and removals: a node's cache owner (store/shared-cache.ts) tells its workers what it dropped,
// and a worker's L1 reports its hits back to the owner.
import { LRUCache } from "lru-cache";
import { docCost, type Doc } from "../http/doc.js";
import { LfuCache } from "./lfu.js";

export type CachePolicy = "lru" | "lfu";
export const CACHE_POLICIES: readonly CachePolicy[] = ["lru", "lfu"];

export interface CacheStats {
  hits: number;
  misses: number;
  /** Document bytes returned by hits. */
  hitBytes: number;
  insertions: number;
  evictions: number;
  /** set() calls refused because the document alone is larger than the cache. */
  rejected: number;
  /** Bytes accounted for by the entries now held (docCost). */
  bytes: number;
  entries: number;
  maxBytes: number;
}

/** Why an entry left the cache: pushed out by the bound, deleted, replaced by set(), cleared. */
export type RemovalReason = "evict" | "delete" | "replace" | "clear";
export type RemovalListener = (key: string, reason: RemovalReason) => void;
export type HitListener = (key: string, doc: Doc) => void;

export interface DocCache {
  readonly policy: CachePolicy;
  readonly maxBytes: number;
  /** Looks a document up, counting a hit or a miss and updating the policy's ranking. */
  get(key: string): Doc | undefined;
  /** Looks a document up without statistics or ranking. */
  peek(key: string): Doc | undefined;
  /** Stores a document (replacing one under the same key); false if it can never fit. */
  set(key: string, doc: Doc): boolean;
  delete(key: string): boolean;
  clear(): void;
  stats(): CacheStats;
  /** The keys held now (purge by prefix walks them). */
  keys(): IterableIterator<string>;
  /** Changes the byte bound at run time (SIGHUP); a smaller one evicts at once. */
  resize(maxBytes: number): void;
  /**
   * Counts `count` hits on a cached document that were served elsewhere (a worker's copy) and
   * ranks it as used that often: LRU makes it the most recent, LFU adds to its frequency.
   * False (nothing counted) if the key is not held.
   */
  touch(key: string, count: number): boolean;
  /** Calls `listener` (synchronously) for every entry that leaves or is replaced; returns its removal. */
  onRemove(listener: RemovalListener): () => void;
  /** Calls `listener` (synchronously) for every hit of get(); returns its removal. */
  onHit(listener: HitListener): () => void;
}

/** Whether a document can be cached at all under this byte bound. */
export function fitsIn(doc: Doc, maxBytes: number): boolean {
  return docCost(doc) <= maxBytes;
}

abstract class CountingCache {
  hits = 0;
  misses = 0;
  hitBytes = 0;
  insertions = 0;
  evictions = 0;
  rejected = 0;
  private removalListeners: RemovalListener[] = [];
  private hitListeners: HitListener[] = [];

  protected counted(key: string, doc: Doc | undefined): Doc | undefined {
    if (doc === undefined) this.misses++;
    else {
      this.hits++;
      this.hitBytes += doc.size;
      for (const l of this.hitListeners) l(key, doc);
    }
    return doc;
  }

  /** `count` hits served elsewhere (touch). */
  protected countedElsewhere(doc: Doc | undefined, count: number): boolean {
    if (doc === undefined) return false;
    this.hits += count;
    this.hitBytes += doc.size * count;
    return true;
  }

  protected removed(key: string, reason: RemovalReason): void {
    for (const l of this.removalListeners) l(key, reason);
  }

  onRemove(listener: RemovalListener): () => void {
    this.removalListeners = [...this.removalListeners, listener];
    return () => (this.removalListeners = this.removalListeners.filter((l) => l !== listener));
  }

  onHit(listener: HitListener): () => void {
    this.hitListeners = [...this.hitListeners, listener];
    return () => (this.hitListeners = this.hitListeners.filter((l) => l !== listener));
  }

  protected base(bytes: number, entries: number, maxBytes: number): CacheStats {
    const { hits, misses, hitBytes, insertions, evictions, rejected } = this;
    return { hits, misses, hitBytes, insertions, evictions, rejected, bytes, entries, maxBytes };
  }
}

export class LruDocCache extends CountingCache implements DocCache {
  readonly policy = "lru";
  private lru: LRUCache<string, Doc>;
  /** clear() runs: lru-cache reports its removals as "delete". */
  private clearing = false;

  constructor(public maxBytes: number) {
    super();
    this.lru = this.makeLru(maxBytes);
  }

  private makeLru(maxBytes: number): LRUCache<string, Doc> {
    return new LRUCache<string, Doc>({
      maxSize: maxBytes,
      sizeCalculation: docCost,
      dispose: (_doc, key, reason) => {
        if (reason === "evict") this.evictions++;
        this.removed(key, removalReason(reason, this.clearing));
      },
    });
  }

  keys(): IterableIterator<string> {
    return this.lru.keys();
  }

  /** lru-cache's bound is fixed: a new one takes the entries, least recent first (so recency stays). */
  resize(maxBytes: number): void {
    const old = this.lru;
    this.lru = this.makeLru(maxBytes);
    this.maxBytes = maxBytes;
    for (const k of old.rkeys()) {
      const doc = old.peek(k);
      if (doc === undefined) continue;
      if (fitsIn(doc, maxBytes)) this.lru.set(k, doc);
      else this.removed(k, "evict");
    }
  }

  get(key: string): Doc | undefined {
    return this.counted(key, this.lru.get(key));
  }

  touch(key: string, count: number): boolean {
    return this.countedElsewhere(this.lru.get(key), count);
  }

  peek(key: string): Doc | undefined {
    return this.lru.peek(key);
  }

  set(key: string, doc: Doc): boolean {
    if (!fitsIn(doc, this.maxBytes)) {
      this.rejected++;
      return false;
    }
    this.lru.set(key, doc);
    this.insertions++;
    return true;
  }

  delete(key: string): boolean {
    return this.lru.delete(key);
  }

  clear(): void {
    this.clearing = true;
    try {
      this.lru.clear();
    } finally {
      this.clearing = false;
    }
  }

  stats(): CacheStats {
    return this.base(this.lru.calculatedSize, this.lru.size, this.maxBytes);
  }
}

export class LfuDocCache extends CountingCache implements DocCache {
  readonly policy = "lfu";
  private readonly lfu: LfuCache<Doc>;

  constructor(public maxBytes: number) {
    super();
    this.lfu = new LfuCache<Doc>(maxBytes, (key) => {
      this.evictions++;
      this.removed(key, "evict");
    });
  }

  get(key: string): Doc | undefined {
    return this.counted(key, this.lfu.get(key));
  }

  touch(key: string, count: number): boolean {
    return this.countedElsewhere(this.lfu.touch(key, count), count);
  }

  peek(key: string): Doc | undefined {
    return this.lfu.peek(key);
  }

  set(key: string, doc: Doc): boolean {
    const old = this.lfu.peek(key);
    if (!this.lfu.set(key, doc, docCost(doc))) {
      this.rejected++;
      return false;
    }
    this.insertions++;
    if (old !== undefined && old !== doc) this.removed(key, "replace");
    return true;
  }

  delete(key: string): boolean {
    if (!this.lfu.delete(key)) return false;
    this.removed(key, "delete");
    return true;
  }

  clear(): void {
    const keys = [...this.lfu.keys()];
    this.lfu.clear();
    for (const key of keys) this.removed(key, "clear");
  }

  stats(): CacheStats {
    return this.base(this.lfu.bytes, this.lfu.size, this.maxBytes);
  }

  keys(): IterableIterator<string> {
    return this.lfu.keys();
  }

  resize(maxBytes: number): void {
    this.maxBytes = maxBytes;
    this.lfu.resize(maxBytes);
  }
}

/** lru-cache's dispose reason as ours ("set": replaced; "delete" from clear(): cleared). */
function removalReason(reason: LRUCache.DisposeReason, clearing: boolean): RemovalReason {
  if (reason === "evict") return "evict";
  if (reason === "set") return "replace";
  return clearing ? "clear" : "delete";
}

export function createDocCache(policy: CachePolicy, maxBytes: number): DocCache {
  return policy === "lfu" ? new LfuDocCache(maxBytes) : new LruDocCache(maxBytes);
}
