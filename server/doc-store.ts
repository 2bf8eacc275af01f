// The cache in front of a document source, with single-flight: concurrent misses on one path
// share one load, so a burst for a cold document costs the origin (or the disk) one fetch.
import type { DocCache } from "./cache/doc-cache.js";
import type { DocSource, Lookup } from "./source/source.js";

export class DocStore {
  private readonly inflight = new Map<string, Promise<Lookup>>();
  /** Misses that joined a load already in flight instead of starting one. */
  joined = 0;
  loads = 0;

  constructor(
    readonly cache: DocCache,
    readonly source: DocSource,
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
    const p = this.source.load(path).then(
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
}
