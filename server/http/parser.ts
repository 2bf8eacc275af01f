// Incremental HTTP/1.x request parser (RFC 9112), pure: no I/O, no clock. Bytes go in with
// feed() in any split; complete requests (head parsed, body skipped) come out of next() one at
// a time, so the caller decides how far to run ahead of its responses (pipelining with a bound).
//
// Strictness is deliberate: a static server has no reason to accept the ambiguous framings
// that enable request smuggling, so every one of them is a 400 and the connection closes.
// After an error the parser is dead: it returns nothing more and ignores further input.

/** A parsed request: the head's fields the server uses plus the raw head bytes. */
export interface HttpRequest {
  /** The method as sent (methods are case-sensitive). */
  method: string;
  /** The request-target as sent. */
  target: string;
  targetForm: "origin" | "absolute" | "authority" | "asterisk";
  /** The path part of the target, still percent-encoded ("/" for absolute-form without one). */
  path: string;
  /** The query including its "?", or "". */
  query: string;
  /** Minor version of HTTP/1.x; 1 stands for every 1.x with x >= 1. */
  versionMinor: number;
  /** Host from an absolute-form target, else the Host header; undefined when absent. */
  host: string | undefined;
  /** Whether the connection stays open after this response (Connection + version rules). */
  keepAlive: boolean;
  /** Every header field as [lower-case name, value, name, value, ...]. */
  headers: string[];
  range: string | undefined;
  ifRange: string | undefined;
  ifNoneMatch: string | undefined;
  ifModifiedSince: string | undefined;
  ifMatch: string | undefined;
  ifUnmodifiedSince: string | undefined;
  /** The request head exactly as received: request line through the empty line. */
  raw: Buffer;
  /** Body bytes that followed the head and were skipped (payload only, no chunk framing). */
  bodyBytes: number;
}

/** A request the parser rejects: the status to answer with before closing the connection. */
export class ParseError {
  constructor(
    readonly status: number,
    readonly reason: string,
  ) {}
}

export interface ParserLimits {
  /** Longest request line in bytes, without CRLF (longer: 414). */
  maxRequestLine: number;
  /** Most bytes of header fields (or trailer fields) after the request line (more: 431). */
  maxHeaderBytes: number;
  /** Most header fields (more: 431). */
  maxHeaders: number;
  /** Largest request body skipped; a larger one gets 413 and the connection closes. */
  maxBodyBytes: number;
}

export const DEFAULT_LIMITS: ParserLimits = {
  maxRequestLine: 8192,
  maxHeaderBytes: 16384,
  maxHeaders: 100,
  maxBodyBytes: 1 << 20,
};

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;
const SEMI = 59;

/** tchar (RFC 9110 5.6.2): the characters of a token. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = 1;
for (let c = 97; c <= 122; c++) TCHAR[c] = 1;

/** Bytes allowed in a field value: HTAB, SP, VCHAR, obs-text. */
const FIELD_VCHAR = new Uint8Array(256);
FIELD_VCHAR[HTAB] = 1;
for (let c = 32; c <= 126; c++) FIELD_VCHAR[c] = 1;
for (let c = 128; c <= 255; c++) FIELD_VCHAR[c] = 1;

/** Bytes allowed in a request-target: visible ASCII except "#" (fragments are never sent). */
const TARGET_CHAR = new Uint8Array(256);
for (let c = 33; c <= 126; c++) TARGET_CHAR[c] = 1;
TARGET_CHAR[35] = 0;

const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) HEX[65 + c] = HEX[97 + c] = 10 + c;

const enum Phase {
  Leading,
  RequestLine,
  Headers,
  BodyLength,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  Dead,
}

/** Longest chunk-size line (size + extensions) accepted. */
const MAX_CHUNK_LINE = 4096;

export class RequestParser {
  private readonly limits: ParserLimits;
  /** Holds unconsumed input in [keep, end); writable past end only when owned. */
  private buf: Buffer = Buffer.alloc(0);
  private owned = false;
  private end = 0;
  /** Parse position: bytes before it have been consumed by the state machine. */
  private pos = 0;
  /** Start of the current line (for line phases); the LF search resumes at `pos`. */
  private lineStart = 0;
  /** Start of the current request head, kept in the buffer until the head is complete. */
  private msgStart = 0;
  private phase = Phase.Leading;
  private leadingSkipped = 0;

  // The request being parsed.
  private req: HttpRequest | null = null;
  private headersStart = 0;
  private fieldCount = 0;
  private hostCount = 0;
  private contentLength = -1;
  private transferEncoding: string | undefined;
  private connection: string | undefined;
  private rangeCount = 0;
  private remaining = 0;

  constructor(limits: Partial<ParserLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Bytes received and not yet consumed by next() (whole pipelined requests included). */
  get buffered(): number {
    return this.end - this.pos;
  }

  /** True when part of a request has arrived but not the whole of it (or input awaits next()). */
  get midMessage(): boolean {
    return this.phase !== Phase.Leading || this.pos < this.end;
  }

  /** True once next() has returned a ParseError. */
  get failed(): boolean {
    return this.phase === Phase.Dead;
  }

  feed(chunk: Buffer): void {
    if (this.phase === Phase.Dead || chunk.length === 0) return;
    const keep = this.keepFrom();
    if (keep === this.end) {
      // Nothing retained: parse straight out of the caller's chunk, no copy.
      this.rebase(keep);
      this.buf = chunk;
      this.owned = false;
      this.end = chunk.length;
      return;
    }
    if (this.owned && this.end + chunk.length <= this.buf.length) {
      chunk.copy(this.buf, this.end);
      this.end += chunk.length;
      return;
    }
    // Grow into a fresh buffer: views already handed out (HttpRequest.raw) keep their bytes
    // because a region before `end` is never written again.
    const live = this.end - keep;
    const size = Math.max(4096, 2 * (live + chunk.length));
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, keep, this.end);
    chunk.copy(next, live);
    this.rebase(keep);
    this.buf = next;
    this.owned = true;
    this.end = live + chunk.length;
  }

  /** The next complete request, a ParseError (then nothing more), or null when more input is needed. */
  next(): HttpRequest | ParseError | null {
    for (;;) {
      switch (this.phase) {
        case Phase.Dead:
          return null;
        case Phase.Leading: {
          const r = this.skipLeadingEmptyLines();
          if (r !== undefined) return r;
          break;
        }
        case Phase.RequestLine:
        case Phase.Headers:
        case Phase.Trailers:
        case Phase.ChunkSize: {
          const lineEnd = this.findLine();
          if (lineEnd === -1) return this.checkPartialLine();
          if (lineEnd === -2) return this.fail(400, "bare LF line ending");
          const start = this.lineStart;
          this.pos = this.lineStart = lineEnd + 2;
          const r =
            this.phase === Phase.RequestLine
              ? this.requestLine(start, lineEnd)
              : this.phase === Phase.Headers
                ? this.headerLine(start, lineEnd)
                : this.phase === Phase.Trailers
                  ? this.trailerLine(start, lineEnd)
                  : this.chunkSizeLine(start, lineEnd);
          if (r !== undefined) return r;
          break;
        }
        case Phase.BodyLength:
        case Phase.ChunkData: {
          const n = Math.min(this.remaining, this.end - this.pos);
          this.pos += n;
          this.remaining -= n;
          if (this.remaining > 0) return null;
          if (this.phase === Phase.BodyLength) return this.complete();
          this.phase = Phase.ChunkDataEnd;
          break;
        }
        case Phase.ChunkDataEnd: {
          if (this.end - this.pos < 2) {
            if (this.end > this.pos && this.buf[this.pos] !== CR)
              return this.fail(400, "chunk data too long");
            return null;
          }
          if (this.buf[this.pos] !== CR || this.buf[this.pos + 1] !== LF) {
            return this.fail(400, "chunk data not followed by CRLF");
          }
          this.pos = this.lineStart = this.pos + 2;
          this.phase = Phase.ChunkSize;
          break;
        }
      }
    }
  }

  /** First byte that must stay buffered: the head being parsed, or the current partial line. */
  private keepFrom(): number {
    switch (this.phase) {
      case Phase.RequestLine:
      case Phase.Headers:
        return this.msgStart;
      case Phase.ChunkSize:
      case Phase.Trailers:
        return this.lineStart;
      default:
        return this.pos;
    }
  }

  /** Shifts every offset so that `keep` becomes 0 in the buffer about to replace this one. */
  private rebase(keep: number): void {
    this.pos -= keep;
    this.lineStart -= keep;
    this.msgStart -= keep;
    this.headersStart -= keep;
  }

  private fail(status: number, reason: string): ParseError {
    this.phase = Phase.Dead;
    this.req = null;
    this.buf = Buffer.alloc(0);
    this.owned = false;
    this.end = this.pos = this.lineStart = this.msgStart = 0;
    return new ParseError(status, reason);
  }

  /** RFC 9112 2.2: empty lines before a request line are ignored (a bounded number of them). */
  private skipLeadingEmptyLines(): ParseError | null | undefined {
    const buf = this.buf;
    while (this.pos < this.end) {
      const c = buf[this.pos];
      if (c === CR) {
        if (this.pos + 1 >= this.end) return null;
        if (buf[this.pos + 1] !== LF) return this.fail(400, "bare CR");
        this.pos += 2;
        this.leadingSkipped += 2;
        if (this.leadingSkipped > this.limits.maxRequestLine) return this.fail(400, "too many empty lines");
        continue;
      }
      if (c === LF) return this.fail(400, "bare LF line ending");
      this.leadingSkipped = 0;
      this.msgStart = this.lineStart = this.pos;
      this.phase = Phase.RequestLine;
      return undefined;
    }
    return null;
  }

  /** Index of the CR of the CRLF ending the current line; -1 if incomplete, -2 for a bare LF. */
  private findLine(): number {
    const i = this.buf.indexOf(LF, this.pos);
    if (i === -1 || i >= this.end) {
      this.pos = this.end;
      return -1;
    }
    if (i === this.lineStart || this.buf[i - 1] !== CR) return -2;
    return i - 1;
  }

  /** Limit checks while a line is still incomplete. */
  private checkPartialLine(): ParseError | null {
    const lineLen = this.end - this.lineStart;
    switch (this.phase) {
      case Phase.RequestLine:
        if (lineLen > this.limits.maxRequestLine + 1) return this.fail(414, "request line too long");
        break;
      case Phase.Headers:
      case Phase.Trailers:
        if (this.end - this.headersStart > this.limits.maxHeaderBytes + 2) {
          return this.fail(431, "header fields too large");
        }
        break;
      case Phase.ChunkSize:
        if (lineLen > MAX_CHUNK_LINE) return this.fail(400, "chunk size line too long");
        break;
    }
    return null;
  }

  private requestLine(start: number, end: number): ParseError | undefined {
    const buf = this.buf;
    if (end - start > this.limits.maxRequestLine) return this.fail(414, "request line too long");
    let i = start;
    while (i < end && TCHAR[buf[i]!] === 1) i++;
    if (i === start || i >= end || buf[i] !== SP) return this.fail(400, "malformed method");
    const method = buf.toString("latin1", start, i);
    const targetStart = ++i;
    while (i < end && TARGET_CHAR[buf[i]!] === 1) i++;
    if (i === targetStart) return this.fail(400, "missing request target");
    if (i === end) return this.fail(400, "missing HTTP version (HTTP/0.9 request)");
    if (buf[i] !== SP) return this.fail(400, "invalid character in request target");
    const target = buf.toString("latin1", targetStart, i);
    i++;
    // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive, nothing after it.
    if (
      end - i !== 8 ||
      buf[i] !== 72 ||
      buf[i + 1] !== 84 ||
      buf[i + 2] !== 84 ||
      buf[i + 3] !== 80 ||
      buf[i + 4] !== 47 ||
      buf[i + 6] !== 46
    ) {
      return this.fail(400, "malformed HTTP version");
    }
    const major = buf[i + 5]! - 48;
    const minor = buf[i + 7]! - 48;
    if (major < 0 || major > 9 || minor < 0 || minor > 9) return this.fail(400, "malformed HTTP version");
    if (major !== 1) return this.fail(505, `HTTP/${major}.${minor} not supported`);

    const req: HttpRequest = {
      method,
      target,
      targetForm: "origin",
      path: "/",
      query: "",
      versionMinor: minor === 0 ? 0 : 1,
      host: undefined,
      keepAlive: minor !== 0,
      headers: [],
      range: undefined,
      ifRange: undefined,
      ifNoneMatch: undefined,
      ifModifiedSince: undefined,
      ifMatch: undefined,
      ifUnmodifiedSince: undefined,
      raw: buf,
      bodyBytes: 0,
    };
    const err = parseTarget(req);
    if (err !== undefined) return this.fail(400, err);
    this.req = req;
    this.headersStart = this.pos;
    this.fieldCount = 0;
    this.hostCount = 0;
    this.contentLength = -1;
    this.transferEncoding = undefined;
    this.connection = undefined;
    this.rangeCount = 0;
    this.phase = Phase.Headers;
    return undefined;
  }

  /**
   * Validates one field line; returns [name (lower-case), value] or a ParseError.
   * Shared by header and trailer sections.
   */
  private fieldLine(start: number, end: number): [string, string] | ParseError {
    const buf = this.buf;
    if (this.pos - this.headersStart > this.limits.maxHeaderBytes + 2) {
      return this.fail(431, "header fields too large");
    }
    if (++this.fieldCount > this.limits.maxHeaders) return this.fail(431, "too many header fields");
    const first = buf[start];
    if (first === SP || first === HTAB) return this.fail(400, "obsolete line folding");
    let i = start;
    while (i < end && TCHAR[buf[i]!] === 1) i++;
    if (i === start) return this.fail(400, "malformed header field name");
    if (i === end || buf[i] !== COLON) {
      return this.fail(
        400,
        buf[i] === SP || buf[i] === HTAB ? "whitespace before colon" : "malformed header field",
      );
    }
    const nameEnd = i++;
    while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
    let valueEnd = end;
    while (valueEnd > i && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
    for (let j = i; j < valueEnd; j++) {
      if (FIELD_VCHAR[buf[j]!] !== 1) return this.fail(400, "invalid character in header field value");
    }
    const name = buf.toString("latin1", start, nameEnd).toLowerCase();
    return [name, buf.toString("latin1", i, valueEnd)];
  }

  private headerLine(start: number, end: number): HttpRequest | ParseError | undefined {
    if (start === end) return this.headComplete();
    const field = this.fieldLine(start, end);
    if (field instanceof ParseError) return field;
    const [name, value] = field;
    const req = this.req!;
    req.headers.push(name, value);
    switch (name) {
      case "host":
        if (++this.hostCount > 1) return this.fail(400, "more than one Host header");
        if (!validHost(value)) return this.fail(400, "invalid Host header");
        if (req.targetForm !== "absolute") req.host = value;
        break;
      case "content-length": {
        if (this.contentLength !== -1) return this.fail(400, "duplicate Content-Length");
        if (!/^\d{1,15}$/.test(value)) return this.fail(400, "invalid Content-Length");
        this.contentLength = Number(value);
        break;
      }
      case "transfer-encoding":
        this.transferEncoding =
          this.transferEncoding === undefined ? value : `${this.transferEncoding}, ${value}`;
        break;
      case "connection":
        this.connection = this.connection === undefined ? value : `${this.connection}, ${value}`;
        break;
      case "range":
        this.rangeCount++;
        req.range = value;
        break;
      case "if-range":
        req.ifRange = value;
        break;
      case "if-none-match":
        req.ifNoneMatch = req.ifNoneMatch === undefined ? value : `${req.ifNoneMatch}, ${value}`;
        break;
      case "if-match":
        req.ifMatch = req.ifMatch === undefined ? value : `${req.ifMatch}, ${value}`;
        break;
      case "if-modified-since":
        req.ifModifiedSince ??= value;
        break;
      case "if-unmodified-since":
        req.ifUnmodifiedSince ??= value;
        break;
    }
    return undefined;
  }

  private headComplete(): HttpRequest | ParseError | undefined {
    const req = this.req!;
    req.raw = this.buf.subarray(this.msgStart, this.pos);
    if (req.versionMinor === 1 && this.hostCount === 0) return this.fail(400, "missing Host header");
    // Two Range fields make the range ambiguous: ignore both (serve the whole document).
    if (this.rangeCount > 1) req.range = undefined;
    if (this.connection !== undefined) {
      const tokens = this.connection.toLowerCase();
      if (hasToken(tokens, "close")) req.keepAlive = false;
      else if (req.versionMinor === 0 && hasToken(tokens, "keep-alive")) req.keepAlive = true;
    }
    if (this.transferEncoding !== undefined) {
      if (this.contentLength !== -1) return this.fail(400, "both Content-Length and Transfer-Encoding");
      if (req.versionMinor === 0) return this.fail(400, "Transfer-Encoding in an HTTP/1.0 request");
      const codings = this.transferEncoding.toLowerCase().split(",");
      for (let k = 0; k < codings.length; k++) {
        const c = codings[k]!.trim();
        if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(c)) return this.fail(400, "invalid Transfer-Encoding");
        if ((c === "chunked") !== (k === codings.length - 1)) {
          return this.fail(400, "Transfer-Encoding must end with a single chunked");
        }
      }
      this.phase = Phase.ChunkSize;
      this.lineStart = this.pos;
      this.remaining = 0;
      return undefined;
    }
    if (this.contentLength > 0) {
      if (this.contentLength > this.limits.maxBodyBytes) return this.fail(413, "request body too large");
      req.bodyBytes = this.contentLength;
      this.remaining = this.contentLength;
      this.phase = Phase.BodyLength;
      return undefined;
    }
    return this.complete();
  }

  private chunkSizeLine(start: number, end: number): ParseError | undefined {
    const buf = this.buf;
    let size = 0;
    let i = start;
    while (i < end && HEX[buf[i]!]! >= 0) {
      size = size * 16 + HEX[buf[i]!]!;
      if (size > this.limits.maxBodyBytes) return this.fail(413, "request body too large");
      i++;
    }
    if (i === start) return this.fail(400, "invalid chunk size");
    if (i < end) {
      // chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ): checked for bytes only.
      let j = i;
      while (j < end && (buf[j] === SP || buf[j] === HTAB)) j++;
      if (j === end || buf[j] !== SEMI) return this.fail(400, "invalid chunk size");
      for (; j < end; j++) if (FIELD_VCHAR[buf[j]!] !== 1) return this.fail(400, "invalid chunk extension");
    }
    const req = this.req!;
    if (size === 0) {
      this.phase = Phase.Trailers;
      this.headersStart = this.pos;
      this.fieldCount = 0;
      return undefined;
    }
    req.bodyBytes += size;
    if (req.bodyBytes > this.limits.maxBodyBytes) return this.fail(413, "request body too large");
    this.remaining = size;
    this.phase = Phase.ChunkData;
    return undefined;
  }

  private trailerLine(start: number, end: number): HttpRequest | ParseError | undefined {
    if (start === end) return this.complete();
    const field = this.fieldLine(start, end);
    return field instanceof ParseError ? field : undefined;
  }

  private complete(): HttpRequest {
    const req = this.req!;
    this.req = null;
    this.phase = Phase.Leading;
    this.lineStart = this.msgStart = this.pos;
    return req;
  }
}

/** Whether a comma-separated, lower-cased token list contains `token`. */
function hasToken(list: string, token: string): boolean {
  let from = 0;
  for (;;) {
    const i = list.indexOf(token, from);
    if (i === -1) return false;
    const before = i === 0 ? "," : list[i - 1]!;
    const after = i + token.length >= list.length ? "," : list[i + token.length]!;
    if (
      (before === "," || before === " " || before === "\t") &&
      (after === "," || after === " " || after === "\t")
    ) {
      return true;
    }
    from = i + 1;
  }
}

// Bounded to 255 characters, and the port is unambiguous: the name's class has no ":".
const HOST_RE = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]*|\[[0-9A-Fa-f:.]+\])(?::\d{0,5})?$/;

function validHost(value: string): boolean {
  return value.length <= 255 && HOST_RE.test(value);
}

/** Splits the request-target into its form, path, query and (absolute-form) host. */
function parseTarget(req: HttpRequest): string | undefined {
  const t = req.target;
  const c = t.charCodeAt(0);
  if (c === 47 /* / */) {
    const q = t.indexOf("?");
    if (q === -1) req.path = t;
    else {
      req.path = t.slice(0, q);
      req.query = t.slice(q);
    }
    return undefined;
  }
  if (t === "*") {
    req.targetForm = "asterisk";
    return req.method === "OPTIONS" ? undefined : "asterisk-form target on a method other than OPTIONS";
  }
  const scheme = /^https?:\/\//i.exec(t);
  if (scheme) {
    req.targetForm = "absolute";
    const rest = t.slice(scheme[0].length);
    let a = rest.length;
    for (let k = 0; k < rest.length; k++) {
      const ch = rest.charCodeAt(k);
      if (ch === 47 || ch === 63) {
        a = k;
        break;
      }
    }
    const authority = rest.slice(0, a);
    if (authority === "" || authority.includes("@") || !validHost(authority)) {
      return "invalid authority in absolute-form target";
    }
    req.host = authority;
    const pathAndQuery = rest.slice(a);
    const q = pathAndQuery.indexOf("?");
    const path = q === -1 ? pathAndQuery : pathAndQuery.slice(0, q);
    req.path = path === "" ? "/" : path;
    req.query = q === -1 ? "" : pathAndQuery.slice(q);
    return undefined;
  }
  if (req.method === "CONNECT") {
    req.targetForm = "authority";
    // validHost bounds t first; the unanchored scan is linear anyway (\d+ cannot cross a ":").
    return validHost(t) && /:\d+$/.test(t) ? undefined : "invalid authority-form target";
  }
  return "invalid request target";
}
