// The document cache: bounded in bytes, with hit/miss/byte statistics. Two policies behind one
// interface: LRU (lru-cache with maxSize + sizeCalculation) and LFU with dynamic ageing
// (lfu.ts); the cooperative-caching baseline (CF-LRU / CF-LFU) needs both.
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

  protected counted(doc: Doc | undefined): Doc | undefined {
    if (doc === undefined) this.misses++;
    else {
      this.hits++;
      this.hitBytes += doc.size;
    }
    return doc;
  }

  protected base(bytes: number, entries: number, maxBytes: number): CacheStats {
    const { hits, misses, hitBytes, insertions, evictions, rejected } = this;
    return { hits, misses, hitBytes, insertions, evictions, rejected, bytes, entries, maxBytes };
  }
}

export class LruDocCache extends CountingCache implements DocCache {
  readonly policy = "lru";
  private lru: LRUCache<string, Doc>;

  constructor(public maxBytes: number) {
    super();
    this.lru = this.makeLru(maxBytes);
  }

  private makeLru(maxBytes: number): LRUCache<string, Doc> {
    return new LRUCache<string, Doc>({
      maxSize: maxBytes,
      sizeCalculation: docCost,
      dispose: (_doc, _key, reason) => {
        if (reason === "evict") this.evictions++;
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
      if (doc !== undefined && fitsIn(doc, maxBytes)) this.lru.set(k, doc);
    }
  }

  get(key: string): Doc | undefined {
    return this.counted(this.lru.get(key));
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
    this.lru.clear();
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
    this.lfu = new LfuCache<Doc>(maxBytes, () => this.evictions++);
  }

  get(key: string): Doc | undefined {
    return this.counted(this.lfu.get(key));
  }

  peek(key: string): Doc | undefined {
    return this.lfu.peek(key);
  }

  set(key: string, doc: Doc): boolean {
    if (!this.lfu.set(key, doc, docCost(doc))) {
      this.rejected++;
      return false;
    }
    this.insertions++;
    return true;
  }

  delete(key: string): boolean {
    return this.lfu.delete(key);
  }

  clear(): void {
    this.lfu.clear();
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

export function createDocCache(policy: CachePolicy, maxBytes: number): DocCache {
  return policy === "lfu" ? new LfuDocCache(maxBytes) : new LruDocCache(maxBytes);
}
