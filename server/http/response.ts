// Response heads and the choice of status for a document request. Pure: the Date line is
// passed in (DateCache), bytes are assembled into Buffers, nothing is written here.
import type { HttpRequest } from "./parser.js";
import type { Doc } from "./doc.js";
import { SERVER_LINE } from "./doc.js";
import { evaluatePreconditions, ifRangeHolds } from "./conditional.js";
import { parseRange } from "./range.js";
import { reason } from "./status.js";

const KEEP_ALIVE = Buffer.from("Connection: keep-alive\r\n\r\n", "latin1");
const CLOSE = Buffer.from("Connection: close\r\n\r\n", "latin1");
const EMPTY = Buffer.alloc(0);

/** A response ready to write: exact bytes of the head, and the body as bytes or a range to read. */
export interface PreparedResponse {
  status: number;
  head: Buffer;
  /** In-memory body (already sliced to the range), or null. */
  body: Buffer | null;
  /** For a document not in memory: the inclusive byte range to stream from `doc.read`. */
  stream: { doc: Doc; start: number; end: number } | null;
  /** Bytes this response puts on the wire: head plus body. */
  length: number;
  /** The connection closes after this response. */
  close: boolean;
}

function concatHead(parts: (Buffer | string)[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : p)));
}

/**
 * A response for a document: 200, 206, 304, 412 or 416, per the request's conditions and range.
 * `doc` is the representation already chosen (http/encoding.ts); `extraLines` are per-path
 * caching fields (Cache-Control, Expires), sent with 200, 206 and 304 (RFC 9110 15.4.5).
 */
export function docResponse(
  req: HttpRequest,
  doc: Doc,
  keepAlive: boolean,
  dateLine: Buffer,
  extraLines: Buffer | null = null,
  whole: WholeResponses | null = null,
): PreparedResponse {
  const conn = keepAlive ? KEEP_ALIVE : CLOSE;
  const isHead = req.method === "HEAD";
  const pre = evaluatePreconditions(req, doc.etag, doc.mtimeMs);
  if (pre === "not-modified") {
    // RFC 9110 15.4.5: the validator fields, no Content-Length and no body.
    const head = concatHead([
      `HTTP/1.1 304 Not Modified\r\n${SERVER_LINE}ETag: ${doc.etag}\r\n`,
      doc.fieldLines.slice(doc.fieldLines.indexOf("Last-Modified:")),
      extraLines ?? "",
      dateLine,
      conn,
    ]);
    return { status: 304, head, body: null, stream: null, length: head.length, close: !keepAlive };
  }
  if (pre === "failed") return errorResponse(412, keepAlive, dateLine);

  if (!isHead && req.range !== undefined && ifRangeHolds(req.ifRange, doc.etag, doc.mtimeMs)) {
    const r = parseRange(req.range, doc.size);
    if (r.kind === "unsatisfiable") {
      return errorResponse(416, keepAlive, dateLine, `Content-Range: bytes */${doc.size}\r\n`);
    }
    if (r.kind === "range") {
      const n = r.end - r.start + 1;
      const head = concatHead([
        `HTTP/1.1 206 Partial Content\r\n${SERVER_LINE}${doc.fieldLines}`,
        `Content-Range: bytes ${r.start}-${r.end}/${doc.size}\r\nContent-Length: ${n}\r\n`,
        extraLines ?? "",
        dateLine,
        conn,
      ]);
      return bodyResponse(206, head, doc, r.start, r.end, keepAlive);
    }
  }
  const extra = extraLines ?? EMPTY;
  const body = doc.body;
  if (!isHead && body !== null && body.length > 0 && body.length <= WHOLE_MAX) {
    const wire =
      whole?.get(doc, extra, dateLine, conn) ?? joinWhole(doc.head200, extra, dateLine, conn, body);
    const h = wire.length - body.length;
    return {
      status: 200,
      head: wire.subarray(0, h),
      body: wire.subarray(h),
      stream: null,
      length: wire.length,
      close: !keepAlive,
    };
  }
  const head = Buffer.allocUnsafe(doc.head200.length + extra.length + dateLine.length + conn.length);
  let at = doc.head200.copy(head, 0);
  at += extra.copy(head, at);
  at += dateLine.copy(head, at);
  conn.copy(head, at);
  if (isHead || doc.size === 0) {
    return { status: 200, head, body: null, stream: null, length: head.length, close: !keepAlive };
  }
  return bodyResponse(200, head, doc, 0, doc.size - 1, keepAlive);
}

/**
 * In-memory documents up to this size get their 200 response as one buffer (head and body
 * adjacent: PreparedResponse.head and .body are views of it), so the connection writes it
 * with one call and copies nothing (server/http/connection.ts).
 */
export const WHOLE_MAX = 16 * 1024;

function joinWhole(head200: Buffer, extra: Buffer, dateLine: Buffer, conn: Buffer, body: Buffer): Buffer {
  const wire = Buffer.allocUnsafeSlow(
    head200.length + extra.length + dateLine.length + conn.length + body.length,
  );
  let at = head200.copy(wire, 0);
  at += extra.copy(wire, at);
  at += dateLine.copy(wire, at);
  at += conn.copy(wire, at);
  body.copy(wire, at);
  return wire;
}

interface WholeEntry {
  extra: Buffer;
  conn: Buffer;
  wire: Buffer;
}

/**
 * Whole 200 responses (head and body) of small in-memory documents for the current Date
 * line, so a hot document costs no allocation or copy per request. Entries are keyed by the
 * Doc object (a new version is a new object) and dropped when the Date line changes (once a
 * second), and their bytes are capped: past the cap a response is built per request.
 * Buffers handed out are never written again (a socket may still hold them unacknowledged).
 */
export class WholeResponses {
  private dateLine: Buffer | null = null;
  private readonly byDoc = new Map<Doc, WholeEntry>();
  private bytes = 0;

  constructor(private readonly maxBytes = 4 * 1024 * 1024) {}

  /** The whole response for doc with these lines (doc.body must be set, <= WHOLE_MAX). */
  get(doc: Doc, extra: Buffer, dateLine: Buffer, conn: Buffer): Buffer {
    if (dateLine !== this.dateLine) {
      this.byDoc.clear();
      this.bytes = 0;
      this.dateLine = dateLine;
    }
    const e = this.byDoc.get(doc);
    if (e !== undefined && e.extra === extra && e.conn === conn) return e.wire;
    const wire = joinWhole(doc.head200, extra, dateLine, conn, doc.body!);
    if (e !== undefined) {
      this.bytes -= e.wire.length;
      this.byDoc.delete(doc);
    }
    if (this.bytes + wire.length <= this.maxBytes) {
      this.byDoc.set(doc, { extra, conn, wire });
      this.bytes += wire.length;
    }
    return wire;
  }

  /** Bytes held (for tests). */
  get size(): number {
    return this.bytes;
  }
}

function bodyResponse(
  status: number,
  head: Buffer,
  doc: Doc,
  start: number,
  end: number,
  keepAlive: boolean,
): PreparedResponse {
  const n = end - start + 1;
  if (doc.body !== null) {
    const body = start === 0 && n === doc.body.length ? doc.body : doc.body.subarray(start, end + 1);
    return { status, head, body, stream: null, length: head.length + n, close: !keepAlive };
  }
  return {
    status,
    head,
    body: null,
    stream: { doc, start, end },
    length: head.length + n,
    close: !keepAlive,
  };
}

/** A short text/plain error (or other bodiless-by-nature status) with optional extra field lines. */
export function errorResponse(
  status: number,
  keepAlive: boolean,
  dateLine: Buffer,
  extraLines = "",
  isHead = false,
): PreparedResponse {
  const text = `${status} ${reason(status)}\n`;
  const head = concatHead([
    `HTTP/1.1 ${status} ${reason(status)}\r\n${SERVER_LINE}${extraLines}`,
    `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${text.length}\r\n`,
    dateLine,
    keepAlive ? KEEP_ALIVE : CLOSE,
  ]);
  const body = isHead ? null : Buffer.from(text, "latin1");
  return { status, head, body, stream: null, length: head.length + (body?.length ?? 0), close: !keepAlive };
}

/**
 * A 404 with a custom page's content (`--not-found-page`): its Content-Type and bytes, no
 * validators or ranges (it is not the resource asked for).
 */
export function notFoundPageResponse(
  page: Doc & { body: Buffer },
  keepAlive: boolean,
  dateLine: Buffer,
  isHead: boolean,
): PreparedResponse {
  const head = concatHead([
    `HTTP/1.1 404 ${reason(404)}\r\n${SERVER_LINE}`,
    `Content-Type: ${page.contentType}\r\nContent-Length: ${page.body.length}\r\n`,
    dateLine,
    keepAlive ? KEEP_ALIVE : CLOSE,
  ]);
  const body = isHead ? null : page.body;
  return {
    status: 404,
    head,
    body,
    stream: null,
    length: head.length + (body?.length ?? 0),
    close: !keepAlive,
  };
}

/** 301 (or 308) to `location`, which must already be a valid URI reference. */
export function redirectResponse(
  status: 301 | 308,
  location: string,
  keepAlive: boolean,
  dateLine: Buffer,
  isHead = false,
): PreparedResponse {
  return errorResponse(status, keepAlive, dateLine, `Location: ${location}\r\n`, isHead);
}

/** The status code of a response head ("HTTP/1.1 200 ..."), or 0 if it has none. */
export function statusOfHead(head: Uint8Array): number {
  if (head.length < 12) return 0;
  let n = 0;
  for (let i = 9; i < 12; i++) {
    const d = head[i]! - 48;
    if (d < 0 || d > 9) return 0;
    n = n * 10 + d;
  }
  return n;
}
