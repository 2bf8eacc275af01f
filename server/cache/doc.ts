// A document as the server holds it: the bytes (when in memory) and the metadata its responses
// need, with the constant part of its 200 response head formatted once, when it is created.
import { httpDate } from "../http/validators.js";

/** Reads [start, end] (inclusive) of a document that is not held in memory. */
export type RangeReader = (start: number, end: number) => AsyncIterable<Buffer>;

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
  /** "Content-Type", "ETag", "Last-Modified" and "Accept-Ranges" lines, CRLF-terminated. */
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
}): Doc {
  const fieldLines =
    `Content-Type: ${fields.contentType}\r\nETag: ${fields.etag}\r\n` +
    `Last-Modified: ${httpDate(fields.mtimeMs)}\r\nAccept-Ranges: bytes\r\n`;
  const head200 = Buffer.from(
    `HTTP/1.1 200 OK\r\n${SERVER_LINE}${fieldLines}Content-Length: ${fields.size}\r\n`,
    "latin1",
  );
  return { ...fields, read: fields.read ?? null, fieldLines, head200 };
}

/** Bytes a cached document accounts for: its content plus a fixed estimate of its overhead. */
export function docCost(doc: Doc): number {
  return (doc.body?.length ?? 0) + doc.head200.length + doc.key.length * 2 + 256;
}
