// Writes generated documents under a document root, and nowhere else.
//
// Defences, each sufficient on its own for the common cases, together for the odd ones:
//  - document paths are canonical (url.ts, the servers' mapping): no "..", no ".", no empty or
//    dot segments, no control characters;
//  - the resolved path is checked to lie strictly inside the root;
//  - the root must be new or empty, and directories are created one level at a time and
//    checked with lstat, so no symlink (planted or pre-existing) is ever followed;
//  - files are opened O_CREAT|O_EXCL|O_NOFOLLOW: nothing existing is overwritten or followed.
import {
  closeSync,
  constants,
  futimesSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  realpathSync,
  rmdirSync,
  writeSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { dirname, resolve, sep } from "node:path";
import { documentChunks } from "./content.js";
import { ancestorDirs, MAX_SEGMENT_BYTES } from "./url.js";
import { encodePath, normalizePath, type PathResult } from "../server/http/url-path.js";
import { UserError } from "../common/errors.js";

export class SiteWriteError extends UserError {
  constructor(message: string) {
    super(message, "ERR_SITE_WRITE");
  }
}

/**
 * Rejects anything that is not a canonical document path, before it touches the disk: the path
 * must be what the servers' own mapping (server/http/url-path.ts) makes of its canonical
 * spelling, i.e. no "..", ".", empty or dot segments, no control character, no ".." between
 * backslashes, and a file (not the directory form) with names within NAME_MAX.
 */
export function checkDocPath(docPath: string): void {
  if (!docPath.startsWith("/") || docPath.length < 2 || docPath.endsWith("/"))
    throw new SiteWriteError(`bad document path '${docPath}'`);
  let mapped: PathResult;
  try {
    mapped = normalizePath(encodePath(docPath));
  } catch {
    mapped = { ok: false, status: 400, reason: "bad_encoding" }; // a lone surrogate: no UTF-8
  }
  if (!mapped.ok || mapped.path !== docPath) throw new SiteWriteError(`unsafe document path '${docPath}'`);
  for (const seg of docPath.slice(1).split("/")) {
    if (Buffer.byteLength(seg) > MAX_SEGMENT_BYTES)
      throw new SiteWriteError(`unsafe document path '${docPath}'`);
  }
}

export class SiteWriter {
  readonly root: string;
  private readonly dirs = new Set<string>();
  documents = 0;
  bytes = 0;
  /** The outermost directory this writer created for the root, if it created any. */
  private readonly created: string | undefined;
  private readonly absRoot: string;

  /** Creates (or takes over an empty) document root. */
  constructor(
    root: string,
    readonly mtime: number,
  ) {
    const abs = resolve(root);
    this.absRoot = abs;
    this.created = mkdirSync(abs, { recursive: true });
    const st = lstatSync(abs);
    if (!st.isDirectory()) throw new SiteWriteError(`'${root}' is not a directory`);
    if (readdirSync(abs).length > 0) {
      throw new SiteWriteError(`document root '${root}' is not empty (use a new directory)`);
    }
    this.root = realpathSync(abs);
  }

  /**
   * Undoes the root's creation when the build fails before writing anything: removes the
   * directories this writer created, and only while they are empty (never a user's files).
   */
  discardEmpty(): void {
    if (this.created === undefined || this.documents > 0) return;
    // mkdirSync made `created` and everything below it down to the root.
    for (let dir = this.absRoot; dir.startsWith(this.created); dir = dirname(dir)) {
      try {
        rmdirSync(dir);
      } catch {
        return; // not empty, or already gone: leave it
      }
      if (dir === this.created) return;
    }
  }

  /** Absolute file path for a document path, guaranteed to lie inside the root. */
  fsPath(docPath: string): string {
    checkDocPath(docPath);
    const p = resolve(this.root, "." + docPath);
    if (!p.startsWith(this.root + sep)) throw new SiteWriteError(`'${docPath}' escapes the document root`);
    return p;
  }

  private ensureDir(docDir: string): void {
    if (this.dirs.has(docDir)) return;
    const p = this.fsPath(docDir);
    try {
      mkdirSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const st = lstatSync(p);
      if (!st.isDirectory() || st.isSymbolicLink()) {
        throw new SiteWriteError(`'${docDir}' exists and is not a directory`);
      }
    }
    this.dirs.add(docDir);
  }

  /** Writes one document with its deterministic content; returns its SHA-256 (hex). */
  write(docPath: string, size: number): string {
    if (!Number.isSafeInteger(size) || size < 0)
      throw new SiteWriteError(`bad size ${size} for '${docPath}'`);
    const p = this.fsPath(docPath);
    for (const d of ancestorDirs(docPath)) this.ensureDir(d);
    let fd: number;
    try {
      fd = openSync(
        p,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o644,
      );
    } catch (err) {
      throw new SiteWriteError(`cannot create '${docPath}': ${(err as Error).message}`);
    }
    const hash = createHash("sha256");
    try {
      for (const chunk of documentChunks(docPath, size)) {
        hash.update(chunk);
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off);
      }
      futimesSync(fd, this.mtime, this.mtime);
    } finally {
      closeSync(fd);
    }
    this.documents++;
    this.bytes += size;
    return hash.digest("hex");
  }
}
