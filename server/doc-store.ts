// The cache in front of a document source, with single-flight: concurrent misses on one path
// share one load, so a burst for a cold document costs the origin (or the disk) one fetch.
import type { DocCache } from "./cache/doc-cache.js";
import type { DocSource, Lookup } from "./source/source.js";
import { withVariants, type ContentCoding, type Doc } from "./cache/doc.js";
import { isCompressible } from "./http/mime.js";

/** The file name suffix of each coding's precompressed sibling (nginx gzip_static, Caddy). */
export const SIBLING_SUFFIX: Record<ContentCoding, string> = { br: ".br", gzip: ".gz" };

export class DocStore {
  private readonly inflight = new Map<string, Promise<Lookup>>();
  /** Misses that joined a load already in flight instead of starting one. */
  joined = 0;
  loads = 0;

  /**
   * `precompressed`: codings whose sibling files (`x.br`, `x.gz`) are looked for when a
   * compressible document is loaded, and kept with it as variants (one cache entry, one load).
   */
  constructor(
    readonly cache: DocCache,
    readonly source: DocSource,
    readonly precompressed: readonly ContentCoding[] = [],
  ) {}

  /** The document for a normalised path: synchronously when cached, else a shared load. */
  lookup(path: string): Lookup | Promise<Lookup> {
    const doc = this.cache.get(path);
    if (doc !== undefined) return { kind: "doc", doc };
    const pending = this.inflight.get(path);
    if (pending !== undefined) {
      this.joined++;
      return pending;
    }
    this.loads++;
    const p = this.source
      .load(path)
      .then((r) => (r.kind === "doc" ? this.withSiblings(r.doc) : r))
      .then(
        (r) => {
          this.inflight.delete(path);
          if (r.kind === "doc" && r.doc.body !== null) this.cache.set(path, r.doc);
          return r;
        },
        (err: unknown): Lookup => {
          this.inflight.delete(path);
          return { kind: "error", status: 500, reason: String(err) };
        },
      );
    this.inflight.set(path, p);
    return p;
  }

  /** The document with its precompressed siblings attached, when it is worth compressing. */
  private async withSiblings(doc: Doc): Promise<Lookup> {
    if (this.precompressed.length === 0 || doc.encoding !== null || !isCompressible(doc.contentType)) {
      return { kind: "doc", doc };
    }
    const key = doc.key;
    if (key.endsWith(".br") || key.endsWith(".gz")) return { kind: "doc", doc };
    const found = await Promise.all(
      this.precompressed.map((c) =>
        this.source.load(key + SIBLING_SUFFIX[c]).then(
          (r) => (r.kind === "doc" ? r.doc : undefined),
          () => undefined,
        ),
      ),
    );
    const siblings: Partial<Record<ContentCoding, Doc>> = {};
    this.precompressed.forEach((c, i) => {
      if (found[i] !== undefined) siblings[c] = found[i];
    });
    return { kind: "doc", doc: withVariants(doc, siblings) };
  }
}
