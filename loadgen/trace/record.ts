// The record every trace reader produces, the bounded set of reasons a line is bad, and the
// field parsers the readers share (request strings, statuses, sizes). Pure, no I/O.

export interface TraceRecord {
  /** 1-based line number in the trace file. */
  line: number;
  /** Client host, when the format has one. */
  host: string | null;
  /**
   * Seconds: Unix epoch (with a fraction where the log has one: JSON, W3C) for every format
   * but epa (seconds since its month began) and urls (none).
   */
  time: number | null;
  /** Request method as logged, upper-cased. */
  method: string;
  /** Request target exactly as logged (origin-form path, possibly absolute-form URL). */
  url: string;
  /** Protocol token if logged ("HTTP/1.0"); null for HTTP/0.9-style "GET /x". */
  protocol: string | null;
  /** Response status; null when the format does not log one (urls). */
  status: number | null;
  /** Response body bytes; null when logged as "-" or not logged. */
  bytes: number | null;
}

/** Why a line could not be parsed. A bounded set, so counts by reason stay small. */
export type BadLineReason =
  | "syntax"
  | "bad_date"
  | "bad_request"
  | "bad_status"
  | "bad_bytes"
  | "bad_time"
  | "bad_url"
  | "too_long"
  /** A data line before the header that names the columns (W3C `#Fields:`). */
  | "no_header";

export type LineResult =
  | { kind: "record"; record: TraceRecord }
  /** Blank lines, comments and header rows: not data, not errors. */
  | { kind: "ignore" }
  | { kind: "bad"; reason: BadLineReason };

/** A line parser; readers with a header (NASA TSV, W3C) keep its columns between calls. */
export type LineParser = (text: string, line: number) => LineResult;

/** Lines longer than this are rejected before any parsing (a log is not a DoS vector). */
export const MAX_LINE_LENGTH = 65536;

export const IGNORE: LineResult = { kind: "ignore" };
export const bad = (reason: BadLineReason): LineResult => ({ kind: "bad", reason });

const METHOD = /^[A-Za-z][A-Za-z-]{0,19}$/;

export function isMethod(s: string): boolean {
  return METHOD.test(s);
}

/**
 * Splits a logged request string: "METHOD TARGET [PROTOCOL]". HTTP/0.9-style requests
 * ("GET /ksc.html") have no protocol. A target containing spaces (seen in old logs) is kept
 * whole: the protocol is only taken from the last token when it looks like one.
 */
export function parseRequestLine(
  text: string,
): { method: string; url: string; protocol: string | null } | null {
  const trimmed = text.trim();
  const firstSpace = trimmed.indexOf(" ");
  if (firstSpace <= 0) return null;
  const method = trimmed.slice(0, firstSpace);
  if (!isMethod(method)) return null;
  let rest = trimmed.slice(firstSpace + 1).trim();
  let protocol: string | null = null;
  const lastSpace = rest.lastIndexOf(" ");
  if (lastSpace > 0 && /^HTTP\/\S*$/i.test(rest.slice(lastSpace + 1))) {
    protocol = rest.slice(lastSpace + 1);
    rest = rest.slice(0, lastSpace).trim();
  }
  if (rest.length === 0 || /\s/.test(rest.replace(/ /g, ""))) return null;
  return { method: method.toUpperCase(), url: rest, protocol };
}

/** "200" -> 200; null unless three digits in 100..599. */
export function parseStatus(text: string): number | null {
  if (!/^\d{3}$/.test(text)) return null;
  const n = Number(text);
  return n >= 100 && n <= 599 ? n : null;
}

/** "-" -> null (CLF: no body bytes); digits -> number; anything else -> undefined (bad). */
export function parseBytes(text: string): number | null | undefined {
  if (text === "-") return null;
  if (!/^\d{1,15}$/.test(text)) return undefined;
  return Number(text);
}

/** JavaScript's \s: WhiteSpace and LineTerminator (what String.prototype.trim removes). */
export function isSpace(c: number): boolean {
  return c <= 32
    ? c === 32 || (c >= 9 && c <= 13)
    : c === 0xa0 ||
        c === 0x1680 ||
        (c >= 0x2000 && c <= 0x200a) ||
        c === 0x2028 ||
        c === 0x2029 ||
        c === 0x202f ||
        c === 0x205f ||
        c === 0x3000 ||
        c === 0xfeff;
}

/** What a regex "." does not match. */
export function isLineTerminator(c: number): boolean {
  return c === 10 || c === 13 || c === 0x2028 || c === 0x2029;
}

export function isBlank(s: string, from = 0): boolean {
  for (let i = from; i < s.length; i++) if (!isSpace(s.charCodeAt(i))) return false;
  return true;
}

/** A target as a replay sends it: non-empty, no whitespace. */
export function isTarget(url: string): boolean {
  if (url.length === 0) return false;
  for (let i = 0; i < url.length; i++) if (isSpace(url.charCodeAt(i))) return false;
  return true;
}
