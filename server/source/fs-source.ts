// Documents from a local directory (--root). Files up to `maxInMemory` bytes are read whole
// (and may be cached); larger ones become documents that stream from disk on demand in 64 KiB
// positional reads. Whole-file reads run through a semaphore so a burst of misses cannot open
// unbounded files at once. The real path of every file must stay under the real root: a symlink
// leading out of it is a 404, like a missing file (nothing about the outside is revealed).
import { open, realpath, stat } from "node:fs/promises";
import { constants, type Stats } from "node:fs";
import { join, sep } from "node:path";
import { makeDoc, type Doc } from "../http/doc.js";
import { contentTypeFor } from "../http/mime.js";
import { fileEtag } from "../http/validators.js";
import { Semaphore, type DocSource, type Lookup } from "./source.js";

const STREAM_CHUNK = 64 * 1024;

export interface FsSourceOptions {
  /** Absolute, existing directory (realpath taken here). */
  root: string;
  /** Files larger than this are streamed from disk instead of read into memory. */
  maxInMemory: number;
  /** Whole-file reads in flight at once. */
  concurrency: number;
}

export class FsSource implements DocSource {
  private readonly sem: Semaphore;
  private reads = 0;
  private readBytes = 0;
  private streams = 0;
  private errors = 0;

  private constructor(
    private readonly root: string,
    private readonly opts: FsSourceOptions,
  ) {
    this.sem = new Semaphore(opts.concurrency);
  }

  static async create(opts: FsSourceOptions): Promise<FsSource> {
    return new FsSource(await realpath(opts.root), opts);
  }

  get describe(): string {
    return `root ${this.root}`;
  }

  /**
   * Unchanged while the file keeps its size and mtime (what its ETag is made of), checked with
   * one stat; else a fresh load (which also re-checks that the path stays under the root).
   */
  async revalidate(path: string, doc: Doc): Promise<Lookup | { kind: "unchanged" }> {
    try {
      const st = await stat(join(this.root, doc.key));
      if (st.isFile() && fileEtag(st.size, st.mtimeMs) === doc.etag) return { kind: "unchanged" };
    } catch {
      // Gone or unreadable: load() says which.
    }
    return this.load(path);
  }

  async load(path: string): Promise<Lookup> {
    const dirForm = path.endsWith("/");
    const key = dirForm ? `${path}index.html` : path;
    let real: string;
    let st: Stats;
    try {
      real = await realpath(join(this.root, key));
      if (real !== this.root && !real.startsWith(this.root + sep)) {
        return { kind: "error", status: 404, reason: "resolves outside the document root" };
      }
      st = await stat(real);
    } catch (err) {
      return this.fsError(err);
    }
    if (st.isDirectory()) {
      return dirForm
        ? { kind: "error", status: 404, reason: "index.html is a directory" }
        : { kind: "redirect", path: `${path}/` };
    }
    if (!st.isFile()) return { kind: "error", status: 403, reason: "not a regular file" };
    const base = { key, mtimeMs: st.mtimeMs, contentType: contentTypeFor(key) };
    if (st.size > this.opts.maxInMemory) {
      return {
        kind: "doc",
        doc: makeDoc({
          ...base,
          size: st.size,
          etag: fileEtag(st.size, st.mtimeMs),
          body: null,
          read: this.reader(real),
        }),
      };
    }
    try {
      const body = await this.sem.run(() => readWhole(real, st.size));
      this.reads++;
      this.readBytes += body.length;
      // A file that changed size while being read gets the size actually read (and its own ETag).
      return {
        kind: "doc",
        doc: makeDoc({ ...base, size: body.length, etag: fileEtag(body.length, st.mtimeMs), body }),
      };
    } catch (err) {
      return this.fsError(err);
    }
  }

  private reader(real: string) {
    return (start: number, end: number): AsyncIterable<Buffer> => {
      this.streams++;
      return readRange(real, start, end);
    };
  }

  private fsError(err: unknown): Lookup {
    const code = (err as NodeJS.ErrnoException).code;
    switch (code) {
      case "ENOENT":
      case "ENOTDIR":
      case "ELOOP":
      case "ENAMETOOLONG":
        return { kind: "error", status: 404, reason: code };
      case "EACCES":
      case "EPERM":
        return { kind: "error", status: 403, reason: code };
      default:
        this.errors++;
        return { kind: "error", status: 500, reason: String(code ?? err) };
    }
  }

  stats(): Record<string, number> {
    return { reads: this.reads, readBytes: this.readBytes, streams: this.streams, errors: this.errors };
  }

  async close(): Promise<void> {}
}

async function readWhole(path: string, size: number): Promise<Buffer> {
  const fh = await open(path, constants.O_RDONLY);
  try {
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const { bytesRead } = await fh.read(buf, off, size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === size ? buf : buf.subarray(0, off);
  } finally {
    await fh.close();
  }
}

async function* readRange(path: string, start: number, end: number): AsyncGenerator<Buffer> {
  const fh = await open(path, constants.O_RDONLY);
  try {
    let pos = start;
    while (pos <= end) {
      const n = Math.min(STREAM_CHUNK, end - pos + 1);
      const buf = Buffer.allocUnsafe(n);
      const { bytesRead } = await fh.read(buf, 0, n, pos);
      if (bytesRead === 0) throw new Error("file shrank while being sent");
      pos += bytesRead;
      yield bytesRead === n ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
