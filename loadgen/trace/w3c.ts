// W3C extended log format (IIS, CloudFront, ...): `#Fields:` directives name the columns of
// the data lines that follow, which are separated by spaces or tabs ("-" means empty; a
// quoted field may hold spaces, "" inside it is a quote). Pure; the parser keeps the last
// `#Fields:` and `#Date:` seen, so concatenated logs with a header each are read right.
import {
  bad,
  IGNORE,
  isMethod,
  isTarget,
  MAX_LINE_LENGTH,
  parseBytes,
  parseStatus,
  type LineParser,
  type LineResult,
} from "./record.js";
import { parseIsoTime } from "./time.js";

const SP = 32;
const TAB = 9;
const QUOTE = 34;

/** Where the fields the records need sit in a data line (-1: not logged). */
interface Columns {
  count: number;
  date: number;
  time: number;
  host: number;
  method: number;
  uri: number;
  stem: number;
  query: number;
  protocol: number;
  status: number;
  bytes: number;
}

/** Column names -> positions; names are case-insensitive. CloudFront calls cs-version cs-protocol-version. */
export function w3cColumns(names: readonly string[]): Columns {
  const index = (...alts: string[]) => {
    for (const a of alts) {
      const i = names.findIndex((n) => n.toLowerCase() === a);
      if (i !== -1) return i;
    }
    return -1;
  };
  return {
    count: names.length,
    date: index("date"),
    time: index("time"),
    host: index("c-ip"),
    method: index("cs-method"),
    uri: index("cs-uri"),
    stem: index("cs-uri-stem"),
    query: index("cs-uri-query"),
    protocol: index("cs-version", "cs-protocol-version"),
    status: index("sc-status"),
    bytes: index("sc-bytes"),
  };
}

function isSeparator(c: number): boolean {
  return c === SP || c === TAB;
}

/**
 * The fields of a data line, at most `max` (one more means too many): runs of characters
 * other than space and tab, or quoted strings. Null if a quote is left open or a quoted
 * field runs into the next one.
 */
export function splitW3cFields(s: string, max: number): string[] | null {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    while (i < s.length && isSeparator(s.charCodeAt(i))) i++;
    if (i >= s.length || out.length > max) return out;
    if (s.charCodeAt(i) === QUOTE) {
      let value = "";
      let from = i + 1;
      let j = from;
      for (;;) {
        j = s.indexOf('"', j);
        if (j === -1) return null;
        if (s.charCodeAt(j + 1) !== QUOTE) break;
        value += s.slice(from, j + 1);
        from = j = j + 2;
      }
      out.push(value + s.slice(from, j));
      i = j + 1;
      if (i < s.length && !isSeparator(s.charCodeAt(i))) return null;
    } else {
      const start = i;
      while (i < s.length && !isSeparator(s.charCodeAt(i))) i++;
      out.push(s.slice(start, i));
    }
  }
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DIRECTIVE_DATE = /^#Date:[ \t]*(\d{4}-\d{2}-\d{2})/i;

/** A W3C extended parser with its own header state (one per trace). */
export function w3cLineParser(): LineParser {
  let columns: Columns | null = null;
  let directiveDate: string | null = null;
  return (line: string, n: number): LineResult => {
    if (line.length > MAX_LINE_LENGTH) return bad("too_long");
    if (line.charCodeAt(0) === 35 /* # */) {
      if (/^#Fields:/i.test(line)) {
        const names = splitW3cFields(line.slice(8), MAX_LINE_LENGTH);
        columns = names && names.length > 0 ? w3cColumns(names) : null;
      } else {
        const d = DIRECTIVE_DATE.exec(line);
        if (d) directiveDate = d[1]!;
      }
      return IGNORE;
    }
    if (line.trim() === "") return IGNORE;
    if (columns === null) return bad("no_header");
    const c = columns;
    const f = splitW3cFields(line, c.count);
    if (!f || f.length !== c.count) return bad("syntax");
    const get = (i: number) => (i === -1 || f[i] === "-" ? null : f[i]!);

    const method = get(c.method);
    let url = get(c.uri);
    if (url === null) {
      const stem = get(c.stem);
      const query = get(c.query);
      url = stem === null ? null : query === null ? stem : `${stem}?${query}`;
    }
    if (method === null || url === null || !isMethod(method) || !isTarget(url)) return bad("bad_request");
    const statusText = get(c.status);
    const status = statusText === null ? null : parseStatus(statusText);
    if (statusText !== null && status === null) return bad("bad_status");
    const bytes = parseBytes(get(c.bytes) ?? "-");
    if (bytes === undefined) return bad("bad_bytes");
    let time: number | null = null;
    const clock = get(c.time);
    if (clock !== null) {
      // W3C times are UTC; the date comes from the date column or else the #Date directive.
      const date = get(c.date) ?? directiveDate;
      if (date === null || !DATE.test(date)) return bad("bad_date");
      time = parseIsoTime(`${date}T${clock}Z`);
      if (time === null) return bad("bad_date");
    }
    return {
      kind: "record",
      record: {
        line: n,
        host: get(c.host),
        time,
        method: method.toUpperCase(),
        url,
        protocol: get(c.protocol),
        status,
        bytes,
      },
    };
  };
}
