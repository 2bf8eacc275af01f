// A document as the server holds it: the bytes (when in memory) and the metadata its responses
// need, with the constant part of its 200 response head formatted once, when it is created.
import { httpDate } from "./validators.js";

/** Reads [start, end] (inclusive) of a document that is not held in memory. */
export type RangeReader = (start: number, end: number) => AsyncIterable<Buffer>;

/** Content codings served from precompressed siblings (`x.br`, `x.gz`). */
export type ContentCoding = "br" | "gzip";

/** A document's precompressed representations (each a Doc with its own bytes and ETag). */
export interface DocVariants {
  /** The codings present, in CODINGS order (http/encoding.ts). */
  readonly codings: readonly ContentCoding[];
  readonly br?: Doc;
  readonly gzip?: Doc;
}

export interface Doc {
  /** The normalised path of the file served (a directory's is its index.html). */
  key: string;
  size: number;
  mtimeMs: number;
  etag: string;
  contentType: string;
  /** The whole content, or null for a large file read on demand through `read`. */
  body: Buffer | null;
  read: RangeReader | null;
  /** The coding of these bytes (a precompressed variant), or null for the file itself. */
  encoding: ContentCoding | null;
  /** Precompressed variants of this document (null: none; responses then carry no Vary). */
  variants: DocVariants | null;
  /**
   * "Content-Type", ["Content-Encoding"], "ETag", "Last-Modified", ["Vary"] and
   * "Accept-Ranges" lines, CRLF-terminated, in that order (a 304 repeats from Last-Modified).
   */
  fieldLines: string;
  /** "HTTP/1.1 200 OK" ... through Accept-Ranges: every 200 line except Date and Connection. */
  head200: Buffer;
}

export const SERVER_LINE = "Server: sc-cluster\r\n";

export function makeDoc(fields: {
  key: string;
  size: number;
  mtimeMs: number;
  etag: string;
  contentType: string;
  body: Buffer | null;
  read?: RangeReader | null;
  encoding?: ContentCoding | null;
  variants?: DocVariants | null;
}): Doc {
  const encoding = fields.encoding ?? null;
  const variants = fields.variants ?? null;
  // Every representation of a document that has variants says that Accept-Encoding chose it.
  const vary = encoding !== null || variants !== null;
  const fieldLines =
    `Content-Type: ${fields.contentType}\r\n` +
    (encoding !== null ? `Content-Encoding: ${encoding}\r\n` : "") +
    `ETag: ${fields.etag}\r\nLast-Modified: ${httpDate(fields.mtimeMs)}\r\n` +
    (vary ? "Vary: Accept-Encoding\r\n" : "") +
    "Accept-Ranges: bytes\r\n";
  const head200 = Buffer.from(
    `HTTP/1.1 200 OK\r\n${SERVER_LINE}${fieldLines}Content-Length: ${fields.size}\r\n`,
    "latin1",
  );
  return { ...fields, read: fields.read ?? null, encoding, variants, fieldLines, head200 };
}

/**
 * The ETag of a precompressed variant: the sibling file's own tag with the coding appended
 * inside the quotes, so it never equals the tag of the file itself or of another coding (a
 * 304 for one representation must not validate another) and is the same on every node.
 */
export function codingEtag(siblingEtag: string, coding: ContentCoding): string {
  return `${siblingEtag.slice(0, -1)}-${coding}"`;
}

/**
 * `base` with its precompressed siblings attached: each sibling becomes a variant with the
 * base's Content-Type, its coding, its own ETag (codingEtag) and Vary; the base gains Vary.
 */
export function withVariants(base: Doc, siblings: Partial<Record<ContentCoding, Doc>>): Doc {
  const codings: ContentCoding[] = [];
  const made: { br?: Doc; gzip?: Doc } = {};
  for (const coding of ["br", "gzip"] as const) {
    const s = siblings[coding];
    if (s === undefined) continue;
    codings.push(coding);
    made[coding] = makeDoc({
      key: base.key,
      size: s.size,
      mtimeMs: s.mtimeMs,
      etag: codingEtag(s.etag, coding),
      contentType: base.contentType,
      body: s.body,
      read: s.read,
      encoding: coding,
    });
  }
  if (codings.length === 0) return base;
  return makeDoc({ ...base, variants: { codings, ...made } });
}

/** Bytes a cached document accounts for: its content (and its variants') plus a fixed overhead. */
export function docCost(doc: Doc): number {
  const own = (doc.body?.length ?? 0) + doc.head200.length + doc.key.length * 2 + 256;
  const v = doc.variants;
  if (v === null) return own;
  return own + (v.br ? docCost(v.br) : 0) + (v.gzip ? docCost(v.gzip) : 0);
}
