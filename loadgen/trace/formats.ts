// Pure line parsers for web server access logs. No I/O: the streaming reader (reader.ts)
// feeds them one line at a time, so traces of any size are parsed in constant memory.
//
// Formats:
//   clf       host ident user [01/Aug/1995:00:00:01 -0400] "GET /x HTTP/1.0" 200 1839
//             (+ any trailing fields: nginx $request_time, upstream fields, "$http_x_forwarded_for";
//             fields before host: Apache vhost_combined; ISO 8601 or epoch dates in the brackets)
//   combined  clf + ` "referer" "user-agent"` (parsed by the same parser as clf)
//   nasa-tsv  host \t logname \t epoch \t method \t url \t status \t bytes; a header row naming
//             the columns (extra ones such as referer, useragent) places them
//   epa       host [29:23:53:25] "GET /x HTTP/1.0" 200 1497   (day:hour:min:sec, no year)
//   urls      one absolute URL or /path per line (http_load's input); # comments allowed
//   json      one JSON object per line (nginx escape=json, Caddy, Traefik, ...; json.ts)
//   w3c       W3C extended: `#Fields:` names the columns (IIS, CloudFront; w3c.ts)
import { jsonLineParser, DEFAULT_JSON_FIELDS, type JsonFieldMap } from "./json.js";
import {
  bad,
  IGNORE,
  isBlank,
  isLineTerminator,
  isMethod,
  isSpace,
  MAX_LINE_LENGTH,
  parseBytes,
  parseRequestLine,
  parseStatus,
  type BadLineReason,
  type LineParser,
  type LineResult,
} from "./record.js";
import { parseLoggedTime } from "./time.js";
import { w3cLineParser } from "./w3c.js";

export {
  isSpace,
  MAX_LINE_LENGTH,
  parseRequestLine,
  type BadLineReason,
  type LineParser,
  type LineResult,
  type TraceRecord,
} from "./record.js";
export { formatClfDate, parseClfDate } from "./time.js";

export const TRACE_FORMATS = ["clf", "combined", "nasa-tsv", "epa", "urls", "json", "w3c"] as const;
export type TraceFormat = (typeof TRACE_FORMATS)[number];

/** What a parser needs beyond its format: the JSON field names (defaults otherwise). */
export interface ParserOptions {
  jsonFields?: JsonFieldMap;
}

// CLF, Combined and EPA lines are split by hand in one pass: fields are runs of non-space (\s)
// characters, the date runs to the first "]", the request is a quoted string with backslash
// escapes (Apache, nginx). The regexes these scanners replaced backtracked quadratically on a
// long last field before a stray CR ("(\S+)(.*)$").

const SP = 32;
const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_BRACKET = 91;

/** End of the run of non-space characters starting at i (i when there is none). */
function tokenEnd(s: string, i: number): number {
  while (i < s.length && !isSpace(s.charCodeAt(i))) i++;
  return i;
}

/** The end of a non-empty token at i that a single " " follows, or -1. */
function fieldEnd(s: string, i: number): number {
  const end = tokenEnd(s, i);
  return end > i && s.charCodeAt(end) === SP ? end : -1;
}

/**
 * Just past the closing quote of the quoted string opening at s[i], or -1. Inside, a backslash
 * escapes the next character (but not a line end); an unescaped quote closes the string.
 */
function quotedEnd(s: string, i: number): number {
  if (s.charCodeAt(i) !== QUOTE) return -1;
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === QUOTE) return j + 1;
    if (c === BACKSLASH) {
      if (j + 1 >= s.length || isLineTerminator(s.charCodeAt(j + 1))) return -1;
      j++;
    }
  }
  return -1;
}

function hasLineTerminator(s: string, from: number): boolean {
  for (let i = from; i < s.length; i++) if (isLineTerminator(s.charCodeAt(i))) return true;
  return false;
}

/** The fields of a CLF line; `tail` is what follows the bytes field (Combined's fields). */
export interface ClfFields {
  host: string;
  date: string;
  /** The request, still escaped as logged. */
  request: string;
  status: string;
  bytes: string;
  tail: string;
}

/**
 * `[prefix ...] host ident user [date] "request" status bytes` + a tail without line ends;
 * null if not. Fields are single-space separated; the date is the first field opening with
 * "[" after at least three, and the host is the third field before it (so Apache's
 * vhost_combined `%v:%p %h %l %u %t ...` and a leading X-Forwarded-For list are read too).
 */
export function splitClfLine(s: string): ClfFields | null {
  let pos = 0;
  let fields = 0;
  // Start and end of the last three fields before the date.
  let hostStart = 0;
  let hostEnd = 0;
  let identStart = 0;
  let identEnd = 0;
  let userStart = 0;
  let userEnd = 0;
  while (fields < 3 || s.charCodeAt(pos) !== OPEN_BRACKET) {
    const end = fieldEnd(s, pos);
    if (end === -1) return null;
    [hostStart, hostEnd, identStart, identEnd, userStart, userEnd] = [
      identStart,
      identEnd,
      userStart,
      userEnd,
      pos,
      end,
    ];
    fields++;
    pos = end + 1;
  }
  const close = s.indexOf("]", pos + 1);
  if (close <= pos + 1 || s.charCodeAt(close + 1) !== SP) return null;
  const reqEnd = quotedEnd(s, close + 2);
  if (reqEnd === -1 || s.charCodeAt(reqEnd) !== SP) return null;
  const statusEnd = fieldEnd(s, reqEnd + 1);
  if (statusEnd === -1) return null;
  const bytesEnd = tokenEnd(s, statusEnd + 1);
  if (bytesEnd === statusEnd + 1 || hasLineTerminator(s, bytesEnd)) return null;
  return {
    host: s.slice(hostStart, hostEnd),
    date: s.slice(pos + 1, close),
    request: s.slice(close + 3, reqEnd - 1),
    status: s.slice(reqEnd + 1, statusEnd),
    bytes: s.slice(statusEnd + 1, bytesEnd),
    tail: s.slice(bytesEnd),
  };
}

/** Combined's tail: ` "referer" "user-agent"`, then nothing or whitespace and anything. */
export function isCombinedTail(tail: string): boolean {
  if (tail.charCodeAt(0) !== SP) return false;
  const refererEnd = quotedEnd(tail, 1);
  if (refererEnd === -1 || tail.charCodeAt(refererEnd) !== SP) return false;
  const agentEnd = quotedEnd(tail, refererEnd + 1);
  if (agentEnd === -1) return false;
  return (
    agentEnd === tail.length || (isSpace(tail.charCodeAt(agentEnd)) && !hasLineTerminator(tail, agentEnd + 1))
  );
}

/**
 * Any other tail a log_format appends after the bytes (nginx $request_time,
 * $upstream_response_time, "$http_x_forwarded_for", k=v pairs): whitespace-separated fields,
 * each a quoted string (backslash escapes) or a run of non-space characters. No line ends
 * (splitClfLine has checked).
 */
export function isClfTail(tail: string): boolean {
  let i = 0;
  for (;;) {
    const gap = i;
    while (i < tail.length && isSpace(tail.charCodeAt(i))) i++;
    if (i >= tail.length) return true;
    if (i === gap) return false;
    if (tail.charCodeAt(i) === QUOTE) {
      i = quotedEnd(tail, i);
      if (i === -1 || (i < tail.length && !isSpace(tail.charCodeAt(i)))) return false;
    } else {
      i = tokenEnd(tail, i);
    }
  }
}

/** The fields of an EPA line: `host [date] "request" status bytes`, then only whitespace. */
export function splitEpaLine(s: string): Omit<ClfFields, "tail"> | null {
  const hostEnd = fieldEnd(s, 0);
  if (hostEnd === -1 || s.charCodeAt(hostEnd + 1) !== OPEN_BRACKET) return null;
  const close = s.indexOf("]", hostEnd + 2);
  if (close === -1 || s.charCodeAt(close + 1) !== SP) return null;
  const reqEnd = quotedEnd(s, close + 2);
  if (reqEnd === -1 || s.charCodeAt(reqEnd) !== SP) return null;
  const statusEnd = fieldEnd(s, reqEnd + 1);
  if (statusEnd === -1) return null;
  const bytesEnd = tokenEnd(s, statusEnd + 1);
  if (bytesEnd === statusEnd + 1 || !isBlank(s, bytesEnd)) return null;
  return {
    host: s.slice(0, hostEnd),
    date: s.slice(hostEnd + 2, close),
    request: s.slice(close + 3, reqEnd - 1),
    status: s.slice(reqEnd + 1, statusEnd),
    bytes: s.slice(statusEnd + 1, bytesEnd),
  };
}

const HEX = /^[0-9A-Fa-f]{2}$/;
const CONTROL_ESCAPES: Record<string, string> = { n: "%0A", r: "%0D", t: "%09" };

/**
 * A quoted field as logged -> its text. Apache writes \" \\ \n \t and \xHH, nginx \xHH for
 * '"', '\' and bytes outside printable ASCII: printable characters come back as themselves,
 * the others as %HH, so a target stays one token and replays with the bytes it was sent with.
 */
export function unescapeQuoted(s: string): string {
  let i = s.indexOf("\\");
  if (i === -1) return s;
  let out = "";
  let from = 0;
  for (; i !== -1 && i + 1 < s.length; i = s.indexOf("\\", from)) {
    const next = s[i + 1]!;
    let value: string;
    let used = 2;
    if (next === "x" && HEX.test(s.slice(i + 2, i + 4))) {
      const code = parseInt(s.slice(i + 2, i + 4), 16);
      value =
        code > 0x20 && code < 0x7f ? String.fromCharCode(code) : `%${s.slice(i + 2, i + 4).toUpperCase()}`;
      used = 4;
    } else {
      value = Object.hasOwn(CONTROL_ESCAPES, next) ? CONTROL_ESCAPES[next]! : next;
    }
    out += s.slice(from, i) + value;
    from = i + used;
  }
  return out + s.slice(from);
}

function requestRecord(
  line: number,
  host: string,
  time: number | null,
  request: string,
  statusText: string,
  bytesText: string,
): LineResult {
  const req = parseRequestLine(unescapeQuoted(request));
  if (!req) return bad("bad_request");
  const status = parseStatus(statusText);
  if (status === null) return bad("bad_status");
  const bytes = parseBytes(bytesText);
  if (bytes === undefined) return bad("bad_bytes");
  return { kind: "record", record: { line, host, time, ...req, status, bytes } };
}

/** Common Log Format, Combined, and their variants with more fields (see splitClfLine, isClfTail). */
export function parseClfLine(text: string, line: number): LineResult {
  if (text.length > MAX_LINE_LENGTH) return bad("too_long");
  if (isBlank(text)) return IGNORE;
  const f = splitClfLine(text);
  if (!f) return bad("syntax");
  if (!isClfTail(f.tail) && !isCombinedTail(f.tail)) return bad("syntax");
  const time = parseLoggedTime(f.date);
  if (time === null) return bad("bad_date");
  return requestRecord(line, f.host, time, f.request, f.status, f.bytes);
}

/** True if the line carries Combined's referer and user-agent fields. */
export function hasCombinedFields(text: string): boolean {
  const f = splitClfLine(text);
  return f !== null && isCombinedTail(f.tail);
}

/** Where a NASA TSV row keeps each field (null: not logged); `last` is the rightmost needed. */
interface TsvColumns {
  host: number | null;
  time: number | null;
  method: number;
  url: number;
  status: number | null;
  bytes: number | null;
  last: number;
}

/** The NASA layout when no header row says otherwise; columns after bytes are ignored. */
const NASA_COLUMNS: TsvColumns = { host: 0, time: 2, method: 3, url: 4, status: 5, bytes: 6, last: 6 };

/** Header names -> the field they hold (others, e.g. logname, referer, useragent, are kept out). */
const TSV_NAMES: Record<string, Exclude<keyof TsvColumns, "last">> = {
  host: "host",
  time: "time",
  method: "method",
  url: "url",
  response: "status",
  status: "status",
  bytes: "bytes",
};

const MAX_TSV_COLUMNS = 256;

/** A header row's layout: names only (no digits), among them method and url; else null. */
export function tsvHeader(text: string): TsvColumns | null {
  if (/\d/.test(text)) return null;
  const names = text.trim().split("\t", MAX_TSV_COLUMNS + 1);
  if (names.length > MAX_TSV_COLUMNS) return null;
  const at: Partial<Record<keyof TsvColumns, number>> = {};
  for (const [i, raw] of names.entries()) {
    const name = raw.trim().toLowerCase();
    if (!/^[a-z_-]{1,32}$/.test(name)) return null;
    if (Object.hasOwn(TSV_NAMES, name)) at[TSV_NAMES[name]!] ??= i;
  }
  if (at.method === undefined || at.url === undefined) return null;
  const cols = {
    host: at.host ?? null,
    time: at.time ?? null,
    method: at.method,
    url: at.url,
    status: at.status ?? null,
    bytes: at.bytes ?? null,
  };
  return { ...cols, last: Math.max(...Object.values(cols).map((v) => v ?? 0)) };
}

/**
 * The NASA TSV parser: host, logname, epoch, method, url, status, bytes, tab-separated, any
 * columns after them ignored; a header row (every line that is one) sets the layout of the
 * rows after it.
 */
export function nasaTsvLineParser(): LineParser {
  let cols = NASA_COLUMNS;
  return (text: string, line: number): LineResult => {
    if (text.length > MAX_LINE_LENGTH) return bad("too_long");
    if (isBlank(text)) return IGNORE;
    const header = tsvHeader(text);
    if (header) {
      cols = header;
      return IGNORE;
    }
    // At most last+1 pieces: a line of 64K tabs must not become an array of 64K fields.
    const f = text.split("\t", cols.last + 1);
    if (f.length !== cols.last + 1) return bad("syntax");
    const get = (i: number | null) => (i === null ? null : f[i]!);
    const epoch = get(cols.time);
    if (epoch !== null && !/^\d{1,12}$/.test(epoch)) return bad("bad_time");
    const method = f[cols.method]!;
    const url = f[cols.url]!;
    if (!isMethod(method)) return bad("bad_request");
    if (url === "" || /\s/.test(url)) return bad("bad_request");
    const statusText = get(cols.status);
    const status = statusText === null ? null : parseStatus(statusText);
    if (statusText !== null && status === null) return bad("bad_status");
    const bytesText = get(cols.bytes)?.trim() ?? "";
    const bytes = parseBytes(bytesText === "" ? "-" : bytesText);
    if (bytes === undefined) return bad("bad_bytes");
    return {
      kind: "record",
      record: {
        line,
        host: get(cols.host),
        time: epoch === null ? null : Number(epoch),
        method: method.toUpperCase(),
        url,
        protocol: null,
        status,
        bytes,
      },
    };
  };
}

/** A NASA TSV line on its own (the default layout; header rows are ignored). */
export function parseNasaTsvLine(text: string, line: number): LineResult {
  return nasaTsvLineParser()(text, line);
}

/** The EPA-HTTP format: host [DD:HH:MM:SS] "request" status bytes. */
export function parseEpaLine(text: string, line: number): LineResult {
  if (text.length > MAX_LINE_LENGTH) return bad("too_long");
  if (isBlank(text)) return IGNORE;
  const f = splitEpaLine(text);
  if (!f) return bad("syntax");
  const t = /^(\d{2}):(\d{2}):(\d{2}):(\d{2})$/.exec(f.date);
  if (!t) return bad("bad_date");
  const [dd, hh, mi, ss] = [t[1], t[2], t[3], t[4]].map(Number) as [number, number, number, number];
  if (dd > 31 || hh > 23 || mi > 59 || ss > 60) return bad("bad_date");
  const time = ((dd * 24 + hh) * 60 + mi) * 60 + ss;
  return requestRecord(line, f.host, time, f.request, f.status, f.bytes);
}

/** http_load's URL file: one absolute http(s) URL or origin-form /path per line. */
export function parseUrlLine(text: string, line: number): LineResult {
  if (text.length > MAX_LINE_LENGTH) return bad("too_long");
  const t = text.trim();
  if (t === "" || t.startsWith("#")) return IGNORE;
  if (/\s/.test(t)) return bad("bad_url");
  let url: string;
  if (t.startsWith("/")) {
    url = t;
  } else {
    // Linear: with no \s left in t, "(.*)$" always matches, so the host run is never given back.
    const m = /^https?:\/\/[^/?#\s]+(.*)$/i.exec(t);
    if (!m) return bad("bad_url");
    url = m[1] === "" ? "/" : m[1]!;
    if (!url.startsWith("/")) url = "/" + url;
  }
  return {
    kind: "record",
    record: { line, host: null, time: null, method: "GET", url, protocol: null, status: null, bytes: null },
  };
}

/** A fresh parser for one trace (parsers with a header keep it between lines). */
export function lineParser(format: TraceFormat, options: ParserOptions = {}): LineParser {
  switch (format) {
    case "clf":
    case "combined":
      return parseClfLine;
    case "nasa-tsv":
      return nasaTsvLineParser();
    case "epa":
      return parseEpaLine;
    case "urls":
      return parseUrlLine;
    case "json":
      return jsonLineParser(options.jsonFields ?? DEFAULT_JSON_FIELDS);
    case "w3c":
      return w3cLineParser();
  }
}

/** How one format fares on the first lines of a trace. */
export interface FormatGuess {
  format: TraceFormat;
  records: number;
  ignored: number;
  bad: number;
  /** The first line it could not parse, and why. */
  firstBad: { line: number; reason: BadLineReason } | null;
}

/** Tried in this order; ties go to the earlier, more specific, format. */
const DETECT_ORDER: readonly TraceFormat[] = ["nasa-tsv", "w3c", "json", "clf", "epa", "urls"];

/**
 * Every format run over the first lines of a trace (`sample[i]` is line i + 1), in detection
 * order, with "combined" right after "clf" counting the clf records that carry its fields.
 */
export function guessFormats(sample: readonly string[], options: ParserOptions = {}): FormatGuess[] {
  const out: FormatGuess[] = [];
  for (const format of DETECT_ORDER) {
    const parse = lineParser(format, options);
    const g: FormatGuess = { format, records: 0, ignored: 0, bad: 0, firstBad: null };
    let combined = 0;
    for (const [i, text] of sample.entries()) {
      const r = parse(text, i + 1);
      if (r.kind === "record") {
        g.records++;
        if (format === "clf" && hasCombinedFields(text)) combined++;
      } else if (r.kind === "ignore") {
        g.ignored++;
      } else {
        g.bad++;
        g.firstBad ??= { line: i + 1, reason: r.reason };
      }
    }
    out.push(g);
    if (format === "clf") out.push({ ...g, format: "combined", records: combined });
  }
  return out;
}

/**
 * Picks the format that parses the most of the given sample lines (the first lines of a
 * trace). Ties go to the more specific format; Combined wins over CLF when most CLF records
 * carry its fields. Returns null if no format parses a single line, so the caller can say so
 * instead of reporting every line as bad.
 */
export function detectFormat(sample: readonly string[], options: ParserOptions = {}): TraceFormat | null {
  return pickFormat(guessFormats(sample, options));
}

export function pickFormat(guesses: readonly FormatGuess[]): TraceFormat | null {
  let best: FormatGuess | null = null;
  for (const g of guesses) if (g.format !== "combined" && g.records > (best?.records ?? 0)) best = g;
  if (!best) return null;
  const combined = guesses.find((g) => g.format === "combined");
  if (best.format === "clf" && combined && combined.records * 2 > best.records) return "combined";
  return best.format;
}

/** "nasa-tsv 49 of 50, clf 0 (line 1: syntax), ...": the guesses in one line. */
export function describeGuesses(guesses: readonly FormatGuess[]): string {
  return guesses
    .map((g) => {
      const data = g.records + g.bad;
      const why = g.firstBad && g.records === 0 ? ` (line ${g.firstBad.line}: ${g.firstBad.reason})` : "";
      return `${g.format} ${g.records} of ${data}${why}`;
    })
    .join(", ");
}
