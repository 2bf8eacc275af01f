// Content-Type by file extension, from the `mime-types` package (mime-db's table, pinned by
// package-lock.json) rather than the system's mime.types, so every node and the origin give the
// same type for the same path on any machine. Also says which types are worth compressing
// (mime-db's `compressible`), which decides where precompressed siblings are looked for.
import { createRequire } from "node:module";
import mime from "mime-types";

// mime-db is what mime-types reads; resolved from mime-types' own location so it is the same copy.
const fromMimeTypes = createRequire(createRequire(import.meta.url).resolve("mime-types"));
const mimeDb = fromMimeTypes("mime-db") as Record<string, { compressible?: boolean } | undefined>;

export const DEFAULT_TYPE = "application/octet-stream";

/** Extension -> Content-Type, filled on first use (bounded: at most one entry per extension seen). */
const byExtension = new Map<string, string>();
const MEMO_MAX = 4096;
/** Longest extension looked up; a longer one is no known type (and is not memoised). */
const MAX_EXTENSION = 32;

/** The Content-Type for a path, from its last extension (case-insensitive). Linear in the path. */
export function contentTypeFor(path: string): string {
  const slash = path.lastIndexOf("/");
  const dot = path.lastIndexOf(".");
  if (dot <= slash + 1 || path.length - dot - 1 > MAX_EXTENSION) return DEFAULT_TYPE;
  const ext = path.slice(dot + 1).toLowerCase();
  let type = byExtension.get(ext);
  if (type === undefined) {
    type = mime.contentType(ext) || DEFAULT_TYPE;
    if (byExtension.size < MEMO_MAX) byExtension.set(ext, type);
  }
  return type;
}

/** Whether a response of this Content-Type is worth compressing (mime-db; text/* by default). */
export function isCompressible(contentType: string): boolean {
  const semi = contentType.indexOf(";");
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  const entry = mimeDb[type];
  return entry?.compressible ?? type.startsWith("text/");
}
