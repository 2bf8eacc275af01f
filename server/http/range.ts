// The Range header for a single byte range (RFC 9110 14.1-14.2). Pure.

export type RangeResult =
  | { kind: "none" } // no usable Range: serve the whole representation (200)
  | { kind: "range"; start: number; end: number } // inclusive end: 206
  | { kind: "unsatisfiable" }; // 416 with Content-Range: bytes */size

const NONE: RangeResult = { kind: "none" };
const UNSATISFIABLE: RangeResult = { kind: "unsatisfiable" };
const SPEC = /^[ \t]*(\d{0,15})[ \t]*-[ \t]*(\d{0,15})[ \t]*$/;

/**
 * Syntactically invalid ranges, other units and multiple ranges are ignored (the whole
 * document is served, which RFC 9110 allows); a single range that cannot be satisfied is 416.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return NONE;
  const eq = header.indexOf("=");
  if (eq === -1 || header.slice(0, eq).trim().toLowerCase() !== "bytes") return NONE;
  const spec = header.slice(eq + 1);
  if (spec.includes(",")) return NONE;
  const m = SPEC.exec(spec);
  if (!m) return NONE;
  const [, first, last] = m as unknown as [string, string, string];
  if (first === "") {
    if (last === "") return NONE;
    const n = Number(last);
    if (n === 0 || size === 0) return UNSATISFIABLE;
    return { kind: "range", start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  if (last !== "" && Number(last) < start) return NONE;
  if (start >= size) return UNSATISFIABLE;
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  return { kind: "range", start, end };
}
