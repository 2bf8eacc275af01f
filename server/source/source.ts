// Where documents come from on a cache miss: a local directory (fs-source.ts) or an origin
// server over HTTP (origin-source.ts).
import type { Doc } from "../http/doc.js";

export type Lookup =
  /** `cached`: answered from the node's memory (a shared cache's owner), not loaded now. */
  | { kind: "doc"; doc: Doc; cached?: boolean }
  /** The path names a directory: redirect to this path (the directory form, ending in "/"). */
  | { kind: "redirect"; path: string }
  | { kind: "error"; status: 403 | 404 | 500 | 502 | 504; reason: string };

export interface DocSource {
  /**
   * Loads the document for a normalised path (see http/url-path.ts); a path ending in "/"
   * means the directory's index.html. Never rejects: failures are error lookups.
   */
  load(path: string): Promise<Lookup>;
  /**
   * Checks a cached document with the source (a conditional request): "unchanged", or what
   * load() would give now. Optional: without it a revalidation is a fresh load.
   */
  revalidate?(path: string, doc: Doc): Promise<Lookup | { kind: "unchanged" }>;
  /** Where the documents come from, for logs. */
  readonly describe: string;
  stats(): Record<string, number>;
  close(): Promise<void>;
}

/** Runs at most `limit` tasks at once; the rest wait in FIFO order. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}
