// Pure line parsers for web server access logs. No I/O: the streaming reader (reader.ts)
// feeds them one line at a time, so traces of any size are parsed in constant memory.
//
// Formats:
//   clf       host ident user [01/Aug/1995:00:00:01 -0400] "GET /x HTTP/1.0" 200 1839
//   combined  clf + ` "referer" "user-agent"` (parsed by the same parser as clf)
//   nasa-tsv  host \t logname \t epoch \t method \t url \t status \t bytes  (optional header row)
//   epa       host [29:23:53:25] "GET /x HTTP/1.0" 200 1497   (day:hour:min:sec, no year)
//   urls      one absolute URL or /path per line (http_load's input); # comments allowed

export const TRACE_FORMATS = ["clf", "combined", "nasa-tsv", "epa", "urls"] as const;
export type TraceFormat = (typeof TRACE_FORMATS)[number];

export interface TraceRecord {
  /** 1-based line number in the trace file. */
  line: number;
  /** Client host, when the format has one. */
  host: string | null;
  /** Seconds: Unix epoch for clf/combined/nasa-tsv, seconds since the month began for epa. */
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
  "syntax" | "bad_date" | "bad_request" | "bad_status" | "bad_bytes" | "bad_time" | "bad_url" | "too_long";

export type LineResult =
  | { kind: "record"; record: TraceRecord }
  /** Blank lines, comments and header rows: not data, not errors. */
  | { kind: "ignore" }
  | { kind: "bad"; reason: BadLineReason };

/** Lines longer than this are rejected before any regex runs (a log is not a DoS vector). */
export const MAX_LINE_LENGTH = 65536;

const IGNORE: LineResult = { kind: "ignore" };
const bad = (reason: BadLineReason): LineResult => ({ kind: "bad", reason });

const MONTHS: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};

/** "01/Aug/1995:00:00:01 -0400" -> Unix seconds, or null if malformed. */
export function parseClfDate(text: string): number | null {
  const m = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text);
  if (!m) return null;
  const month = MONTHS[m[2]!];
  if (month === undefined) return null;
  const [day, year, hh, mm, ss] = [m[1], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60) return null;
  const offset = (Number(m[8]) * 60 + Number(m[9])) * 60 * (m[7] === "-" ? -1 : 1);
  return Date.UTC(year, month, day, hh, mm, ss) / 1000 - offset;
}

// Log lines come in time order, so consecutive lines share the date up to the minute:
// parse "DD/Mon/YYYY:HH:MM" + zone once per minute and add the seconds.
let lastMinuteKey = "";
let lastMinuteBase: number | null = null;

function parseClfDateFast(text: string): number | null {
  if (text.length !== 26 || text.charCodeAt(17) !== 58 /* : */) return parseClfDate(text);
  const s1 = text.charCodeAt(18) - 48;
  const s2 = text.charCodeAt(19) - 48;
  if (s1 < 0 || s2 < 0 || s2 > 9 || s1 * 10 + s2 > 60) return null;
  const key = text.slice(0, 17) + text.slice(20);
  if (key !== lastMinuteKey) {
    lastMinuteBase = parseClfDate(text.slice(0, 18) + "00" + text.slice(20));
    lastMinuteKey = key;
  }
  return lastMinuteBase === null ? null : lastMinuteBase + s1 * 10 + s2;
}

/** Unix seconds -> "01/Jan/2001:00:00:00 +0000" (UTC), the inverse of parseClfDate. */
export function formatClfDate(seconds: number): string {
  const d = new Date(seconds * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  const month = Object.keys(MONTHS)[d.getUTCMonth()]!;
  return (
    `${p(d.getUTCDate())}/${month}/${d.getUTCFullYear()}:` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`
  );
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
  if (!/^[A-Za-z][A-Za-z-]{0,19}$/.test(method)) return null;
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

function parseStatus(text: string): number | null {
  if (!/^\d{3}$/.test(text)) return null;
  const n = Number(text);
  return n >= 100 && n <= 599 ? n : null;
}

/** "-" -> null (CLF: no body bytes); digits -> number; anything else -> undefined (bad). */
function parseBytes(text: string): number | null | undefined {
  if (text === "-") return null;
  if (!/^\d{1,15}$/.test(text)) return undefined;
  return Number(text);
}

// CLF, Combined and EPA lines are split by hand in one pass: fields are runs of non-space (\s)
// characters, the date runs to the first "]", the request is a quoted string with backslash
// escapes (Apache). The regexes these scanners replace accepted exactly the same lines, but
// their "(\S+)(.*)$" backtracked quadratically on a long last field before a stray CR.

const SP = 32;
const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_BRACKET = 91;

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
function isLineTerminator(c: number): boolean {
  return c === 10 || c === 13 || c === 0x2028 || c === 0x2029;
}

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

function isBlank(s: string, from: number): boolean {
  for (let i = from; i < s.length; i++) if (!isSpace(s.charCodeAt(i))) return false;
  return true;
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

/** `host ident user [date] "request" status bytes` + a tail without line ends; null if not. */
export function splitClfLine(s: string): ClfFields | null {
  const hostEnd = fieldEnd(s, 0);
  if (hostEnd === -1) return null;
  const identEnd = fieldEnd(s, hostEnd + 1);
  if (identEnd === -1) return null;
  const userEnd = fieldEnd(s, identEnd + 1);
  if (userEnd === -1 || s.charCodeAt(userEnd + 1) !== OPEN_BRACKET) return null;
  const close = s.indexOf("]", userEnd + 2);
  if (close <= userEnd + 2 || s.charCodeAt(close + 1) !== SP) return null;
  const reqEnd = quotedEnd(s, close + 2);
  if (reqEnd === -1 || s.charCodeAt(reqEnd) !== SP) return null;
  const statusEnd = fieldEnd(s, reqEnd + 1);
  if (statusEnd === -1) return null;
  const bytesEnd = tokenEnd(s, statusEnd + 1);
  if (bytesEnd === statusEnd + 1 || hasLineTerminator(s, bytesEnd)) return null;
  return {
    host: s.slice(0, hostEnd),
    date: s.slice(userEnd + 2, close),
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

function unescapeQuoted(s: string): string {
  return s.includes("\\") ? s.replace(/\\(.)/g, "$1") : s;
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

/** Common Log Format, and Combined (referer and user agent after the bytes are accepted). */
export function parseClfLine(text: string, line: number): LineResult {
  if (text.trim() === "") return IGNORE;
  if (text.length > MAX_LINE_LENGTH) return bad("too_long");
  const f = splitClfLine(text);
  if (!f) return bad("syntax");
  if (!isBlank(f.tail, 0) && !isCombinedTail(f.tail)) return bad("syntax");
  const time = parseClfDateFast(f.date);
  if (time === null) return bad("bad_date");
  return requestRecord(line, f.host, time, f.request, f.status, f.bytes);
}

/** True if the line carries Combined's referer and user-agent fields. */
export function hasCombinedFields(text: string): boolean {
  const f = splitClfLine(text);
  return f !== null && isCombinedTail(f.tail);
}

const NASA_TSV_HEADER = /^host\tlogname\ttime\tmethod\turl\tresponse\tbytes$/i;

/** The NASA TSV variant: host, logname, epoch, method, url, status, bytes (tab-separated). */
export function parseNasaTsvLine(text: string, line: number): LineResult {
  if (text.trim() === "") return IGNORE;
  if (text.length > MAX_LINE_LENGTH) return bad("too_long");
  if (NASA_TSV_HEADER.test(text.trim())) return IGNORE;
  // At most 8 pieces: a line of 64K tabs must not become an array of 64K fields.
  const f = text.split("\t", 8);
  if (f.length !== 7) return bad("syntax");
  const [host, , epoch, method, url, statusText, bytesText] = f as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (!/^\d{1,12}$/.test(epoch)) return bad("bad_time");
  if (!/^[A-Za-z][A-Za-z-]{0,19}$/.test(method)) return bad("bad_request");
  if (url === "" || /\s/.test(url)) return bad("bad_request");
  const status = parseStatus(statusText);
  if (status === null) return bad("bad_status");
  const bytes = parseBytes(bytesText.trim());
  if (bytes === undefined) return bad("bad_bytes");
  return {
    kind: "record",
    record: {
      line,
      host,
      time: Number(epoch),
      method: method.toUpperCase(),
      url,
      protocol: null,
      status,
      bytes,
    },
  };
}

/** The EPA-HTTP format: host [DD:HH:MM:SS] "request" status bytes. */
export function parseEpaLine(text: string, line: number): LineResult {
  if (text.trim() === "") return IGNORE;
  if (text.length > MAX_LINE_LENGTH) return bad("too_long");
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
  const t = text.trim();
  if (t === "" || t.startsWith("#")) return IGNORE;
  if (t.length > MAX_LINE_LENGTH) return bad("too_long");
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

export function lineParser(format: TraceFormat): (text: string, line: number) => LineResult {
  switch (format) {
    case "clf":
    case "combined":
      return parseClfLine;
    case "nasa-tsv":
      return parseNasaTsvLine;
    case "epa":
      return parseEpaLine;
    case "urls":
      return parseUrlLine;
  }
}

/**
 * Picks the format that parses the most of the given sample lines (the first lines of a
 * trace). Ties go to the more specific format. Returns null if no format parses a single
 * line, so the caller can say so instead of reporting every line as bad.
 */
export function detectFormat(sample: readonly string[]): TraceFormat | null {
  const lines = sample.filter((l) => l.trim() !== "");
  if (lines.length === 0) return null;
  // Most specific first: a URL list never matches the others, CLF never matches nasa-tsv.
  const candidates: TraceFormat[] = ["nasa-tsv", "clf", "epa", "urls"];
  let best: TraceFormat | null = null;
  let bestCount = 0;
  for (const format of candidates) {
    const parse = lineParser(format);
    let count = 0;
    for (const [i, l] of lines.entries()) if (parse(l, i + 1).kind === "record") count++;
    if (count > bestCount) {
      best = format;
      bestCount = count;
    }
  }
  if (best === "clf") {
    const combined = lines.filter(hasCombinedFields).length;
    if (combined * 2 > bestCount) best = "combined";
  }
  return best;
}
