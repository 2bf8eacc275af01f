// The Range header for a single byte range (RFC 9110 14.1-14.2). Pure.
//
// Scanned by hand in one pass: the previous regex (OWS digits OWS "-" OWS digits OWS) backtracked
// cubically on runs of spaces and tabs, seconds of the node's only thread for one header.

export type RangeResult =
  | { kind: "none" } // no usable Range: serve the whole representation (200)
  | { kind: "range"; start: number; end: number } // inclusive end: 206
  | { kind: "unsatisfiable" }; // 416 with Content-Range: bytes */size

const NONE: RangeResult = { kind: "none" };
const UNSATISFIABLE: RangeResult = { kind: "unsatisfiable" };

/** Most digits in a position (15 digits stay exact in a double). */
const MAX_DIGITS = 15;
const SP = 32;
const HTAB = 9;
const DASH = 45;

/**
 * Syntactically invalid ranges, other units and multiple ranges are ignored (the whole
 * document is served, which RFC 9110 allows); a single range that cannot be satisfied is 416.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return NONE;
  const eq = header.indexOf("=");
  if (eq === -1 || header.slice(0, eq).trim().toLowerCase() !== "bytes") return NONE;
  // Several ranges (a comma) are served whole, like any form we do not parse.
  if (header.includes(",", eq + 1)) return NONE;
  const spec = scanSpec(header, eq + 1);
  if (spec === null) return NONE;
  const { first, last } = spec;
  if (first === null) {
    if (last === null) return NONE;
    if (last === 0 || size === 0) return UNSATISFIABLE;
    return { kind: "range", start: Math.max(0, size - last), end: size - 1 };
  }
  if (last !== null && last < first) return NONE;
  if (first >= size) return UNSATISFIABLE;
  const end = last === null ? size - 1 : Math.min(last, size - 1);
  return { kind: "range", start: first, end };
}

/**
 * `OWS [first] OWS "-" OWS [last] OWS` from `from` to the end of `s`, each position 0-15
 * digits (null when absent); null if `s` has any other shape.
 */
function scanSpec(s: string, from: number): { first: number | null; last: number | null } | null {
  let i = skipOws(s, from);
  const first = scanNumber(s, i);
  if (first === undefined) return null;
  i = skipOws(s, first === null ? i : first.end);
  if (s.charCodeAt(i) !== DASH) return null;
  i = skipOws(s, i + 1);
  const last = scanNumber(s, i);
  if (last === undefined) return null;
  i = skipOws(s, last === null ? i : last.end);
  if (i !== s.length) return null;
  return { first: first === null ? null : first.value, last: last === null ? null : last.value };
}

function skipOws(s: string, i: number): number {
  while (i < s.length && (s.charCodeAt(i) === SP || s.charCodeAt(i) === HTAB)) i++;
  return i;
}

/** The digits at `i`: null if none, undefined if more than MAX_DIGITS. */
function scanNumber(s: string, i: number): { value: number; end: number } | null | undefined {
  let value = 0;
  let j = i;
  for (let d = s.charCodeAt(j) - 48; d >= 0 && d <= 9; d = s.charCodeAt(++j) - 48) {
    if (j - i === MAX_DIGITS) return undefined;
    value = value * 10 + d;
  }
  return j === i ? null : { value, end: j };
}
