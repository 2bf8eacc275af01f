// The cache in front of a document source, with single-flight: concurrent misses on one path
// share one load, so a burst for a cold document costs the origin (or the disk) one fetch.
//
// Content updates (docs/server.md "Content updates"):
// - Revalidation: a cached document older than `ttlMs` (since it was fetched or last
//   revalidated) is checked with the source before it is served again: a conditional request
//   (the source's revalidate(), e.g. If-None-Match at the origin) or, for a source without
//   one, a fresh load. One check per path at a time (the same single-flight as misses); a 304
//   keeps the cached body; an origin that fails (5xx, timeout) keeps it too, for another TTL.
// - Purge: drops one path, a prefix or everything, and detaches the loads in flight for them,
//   so a request arriving after the purge starts a fresh load and a load that started before
//   it does not put its (possibly old) document back in the cache.
// - A source that knows when its documents were last validated (a worker's client of the node's
//   cache owner, shared-cache.ts: a DatedSource) gives that time, not the time of the answer,
//   so a copy is not served longer than the TTL allows from the original check.
import type { DocCache } from "../cache/doc-cache.js";
import type { DocSource, Lookup } from "../source/source.js";
import { withVariants, type ContentCoding, type Doc } from "../http/doc.js";
import { isCompressible } from "../http/mime.js";

/** The file name suffix of each coding's precompressed sibling (nginx gzip_static, Caddy). */
export const SIBLING_SUFFIX: Record<ContentCoding, string> = { br: ".br", gzip: ".gz" };

export type PurgeTarget =
  { kind: "url"; path: string } | { kind: "prefix"; prefix: string } | { kind: "all" };

export interface DocStoreOptions {
  /** Revalidate cached documents older than this (ms); 0: never. */
  ttlMs?: number;
  /** Clock (ms), for the documents' ages. */
  now?: () => number;
  /**
   * Codings whose sibling files (`x.br`, `x.gz`) are looked for when a compressible document
   * is loaded, and kept with it as variants (one cache entry, one load).
   */
  precompressed?: readonly ContentCoding[];
}

/**
 * A source whose documents were validated before they were handed over (a worker's client of
 * the cache owner): when, for a document it gave, or undefined if it does not know.
 */
export interface DatedSource extends DocSource {
  validatedAt(doc: Doc): number | undefined;
}

function isDated(source: DocSource): source is DatedSource {
  return typeof (source as Partial<DatedSource>).validatedAt === "function";
}

/** What a revalidation (or the load standing in for one) gives. */
type Revalidated = Lookup | { kind: "unchanged" };

export interface RevalidationStats {
  /** Checks started (expired documents). */
  checks: number;
  /** The source said unchanged (304): the cached body stays. */
  unchanged: number;
  /** The source gave a new version (or the document is gone). */
  changed: number;
  /** The source failed: the cached document is served for another TTL. */
  errors: number;
}

export class DocStore {
  private readonly inflight = new Map<string, Promise<Lookup>>();
  /** When each cached document was fetched or last revalidated (dropped with the document). */
  private readonly validatedAt = new WeakMap<Doc, number>();
  private readonly now: () => number;
  private readonly dated: DatedSource | null;
  /** Revalidation TTL in ms (0: off); SIGHUP may change it. */
  ttlMs: number;
  /** Misses that joined a load already in flight instead of starting one. */
  joined = 0;
  loads = 0;
  readonly revalidation: RevalidationStats = { checks: 0, unchanged: 0, changed: 0, errors: 0 };
  purges = 0;
  purgedEntries = 0;

  readonly precompressed: readonly ContentCoding[];

  constructor(
    readonly cache: DocCache,
    readonly source: DocSource,
    opts: DocStoreOptions = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 0;
    this.now = opts.now ?? Date.now;
    this.precompressed = opts.precompressed ?? [];
    this.dated = isDated(source) ? source : null;
  }

  /** When a cached document was fetched or last revalidated (undefined: not known here). */
  validatedAtOf(doc: Doc): number | undefined {
    return this.validatedAt.get(doc);
  }

  /** The validation time of a document the source just gave (or confirmed): its own, or now. */
  private validatedNow(doc: Doc): number {
    return this.dated?.validatedAt(doc) ?? this.now();
  }

  /** The document for a normalised path: synchronously when cached (and fresh), else a shared load. */
  lookup(path: string): Lookup | Promise<Lookup> {
    const doc = this.cache.get(path);
    if (doc !== undefined) {
      if (this.ttlMs <= 0) return { kind: "doc", doc };
      const at = this.validatedAt.get(doc);
      const now = this.now();
      // A document put in the cache by someone else starts its TTL when first seen here.
      if (at === undefined) this.validatedAt.set(doc, now);
      if (at === undefined || now - at < this.ttlMs) return { kind: "doc", doc };
    }
    const pending = this.inflight.get(path);
    if (pending !== undefined) {
      this.joined++;
      return pending;
    }
    const p = doc === undefined ? this.load(path) : this.revalidate(path, doc);
    this.inflight.set(path, p);
    return p;
  }

  private load(path: string): Promise<Lookup> {
    this.loads++;
    const p: Promise<Lookup> = this.source
      .load(path)
      // (Without codings the source's answer passes as it is: it may say `cached`.)
      .then((r) => (r.kind === "doc" && this.precompressed.length > 0 ? this.withSiblings(r.doc) : r))
      .then(
        (r) => {
          if (this.finish(path, p) && r.kind === "doc" && r.doc.body !== null) this.store(path, r.doc);
          return r;
        },
        (err: unknown): Lookup => {
          this.finish(path, p);
          return { kind: "error", status: 500, reason: String(err) };
        },
      );
    return p;
  }

  private revalidate(path: string, doc: Doc): Promise<Lookup> {
    this.revalidation.checks++;
    const check = this.source.revalidate?.(path, doc) ?? this.source.load(path);
    const p: Promise<Lookup> = check
      .then((r): Promise<Revalidated> | Revalidated => (r.kind === "doc" ? this.withSiblings(r.doc) : r))
      .then(
        (r): Lookup => {
          const current = this.finish(path, p);
          if (r.kind === "unchanged") {
            this.revalidation.unchanged++;
            if (current) this.validatedAt.set(doc, this.validatedNow(doc));
            return { kind: "doc", doc };
          }
          if (r.kind === "error" && r.status >= 500) {
            this.revalidation.errors++;
            if (current) this.validatedAt.set(doc, this.now());
            return { kind: "doc", doc };
          }
          this.revalidation.changed++;
          if (current) {
            if (r.kind === "doc" && r.doc.body !== null) this.store(path, r.doc);
            else this.cache.delete(path);
          }
          return r;
        },
        (): Lookup => {
          this.revalidation.errors++;
          this.finish(path, p);
          return { kind: "doc", doc };
        },
      );
    return p;
  }

  /** Ends a load; true if it is still the path's current one (no purge detached it). */
  private finish(path: string, p: Promise<Lookup>): boolean {
    if (this.inflight.get(path) !== p) return false;
    this.inflight.delete(path);
    return true;
  }

  private store(path: string, doc: Doc): void {
    if (this.cache.set(path, doc)) this.validatedAt.set(doc, this.validatedNow(doc));
  }

  private async withSiblings(doc: Doc): Promise<Lookup> {
    return { kind: "doc", doc: await attachSiblings(this.source, doc, this.precompressed) };
  }

  /** The store's counters, as /stats shows them. */
  snapshot(): Record<string, unknown> {
    return {
      loads: this.loads,
      joined: this.joined,
      revalidation: { ttlMs: this.ttlMs, ...this.revalidation },
      purges: this.purges,
      purgedEntries: this.purgedEntries,
    };
  }

  /** Drops cached documents and detaches their loads in flight; returns the entries dropped. */
  purge(target: PurgeTarget): number {
    this.purges++;
    const matches = purgeMatcher(target);
    let n = 0;
    if (target.kind === "all") {
      n = this.cache.stats().entries;
      this.cache.clear();
    } else {
      for (const key of [...this.cache.keys()]) {
        if (matches(key) && this.cache.delete(key)) n++;
      }
    }
    for (const key of [...this.inflight.keys()]) if (matches(key)) this.inflight.delete(key);
    this.purgedEntries += n;
    return n;
  }

  /**
   * Drops cache entries someone else says are gone (the cache owner evicted them) and detaches
   * their loads in flight, so an answer already on its way is served but not cached; not
   * counted as a purge. Returns the entries dropped.
   */
  drop(keys: Iterable<string> | "all"): number {
    if (keys === "all") {
      const n = this.cache.stats().entries;
      this.cache.clear();
      this.inflight.clear();
      return n;
    }
    let n = 0;
    for (const key of keys) {
      if (this.cache.delete(key)) n++;
      this.inflight.delete(key);
    }
    return n;
  }
}

/** `doc` with its precompressed siblings (loaded from `source`) attached, when worth compressing. */
export async function attachSiblings(
  source: DocSource,
  doc: Doc,
  codings: readonly ContentCoding[],
): Promise<Doc> {
  if (codings.length === 0 || doc.encoding !== null || !isCompressible(doc.contentType)) return doc;
  const key = doc.key;
  if (key.endsWith(".br") || key.endsWith(".gz")) return doc;
  const found = await Promise.all(
    codings.map((c) =>
      source.load(key + SIBLING_SUFFIX[c]).then(
        (r) => (r.kind === "doc" ? r.doc : undefined),
        () => undefined,
      ),
    ),
  );
  const siblings: Partial<Record<ContentCoding, Doc>> = {};
  codings.forEach((c, i) => {
    if (found[i] !== undefined) siblings[c] = found[i];
  });
  return withVariants(doc, siblings);
}

/**
 * Which cache keys a purge covers. A URL covers both names of a directory's index: "/d/" and
 * "/d/index.html". Pure.
 */
export function purgeMatcher(target: PurgeTarget): (key: string) => boolean {
  if (target.kind === "all") return () => true;
  if (target.kind === "prefix") return (key) => key.startsWith(target.prefix);
  const p = target.path;
  const other = p.endsWith("/") ? `${p}index.html` : p.endsWith("/index.html") ? p.slice(0, -10) : p;
  return (key) => key === p || key === other;
}
