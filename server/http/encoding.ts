// Content negotiation of precompressed representations (RFC 9110 12.5.3 Accept-Encoding). Pure.
//
// `selectRepresentation(req, doc)` is THE choice of which bytes answer a request: the node a
// request arrives at, a Socket Cloning clone (which re-parses the forwarded request) and an
// original resuming a failed clone all call it with the same request head and the same
// document, so they pick the same representation, with the same ETag and length.
import type { HttpRequest } from "./parser.js";
import type { ContentCoding, Doc } from "./doc.js";

/** The codings served from precompressed siblings, in the server's order of preference. */
export const CODINGS: readonly ContentCoding[] = ["br", "gzip"];

/** A coding's q-value in thousandths (0..1000), or -1 when the header does not name it. */
export interface AcceptedCodings {
  br: number;
  gzip: number;
  identity: number;
  /** "*": any coding not named. */
  any: number;
}

const UNSET = -1;
const COMMA = 44;
const SEMI = 59;
const SP = 32;
const HTAB = 9;

const isOws = (c: number) => c === SP || c === HTAB;

/**
 * The q-value at s[i..end) ("0", "0.5", "1.000", ...) in thousandths, or -1 if malformed.
 * RFC 9110 12.4.2: ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ).
 */
function parseQ(s: string, i: number, end: number): number {
  const first = s.charCodeAt(i);
  if (end - i < 1 || end - i > 5 || (first !== 48 && first !== 49)) return -1;
  if (end - i === 1) return first === 48 ? 0 : 1000;
  if (s.charCodeAt(i + 1) !== 46) return -1;
  let frac = 0;
  let scale = 100;
  for (let j = i + 2; j < end; j++) {
    const d = s.charCodeAt(j) - 48;
    if (d < 0 || d > 9) return -1;
    frac += d * scale;
    scale /= 10;
  }
  if (first === 49) return frac === 0 ? 1000 : -1;
  return frac;
}

/**
 * Parses Accept-Encoding field values (each a comma list of `coding [; q=qvalue]`) in one pass,
 * linear in their length. Malformed elements are skipped; a coding named twice keeps its
 * highest q. Coding names are case-insensitive; "x-gzip" is gzip (RFC 9110 8.4.1.3).
 */
export function parseAcceptEncoding(values: readonly string[]): AcceptedCodings {
  const out: AcceptedCodings = { br: UNSET, gzip: UNSET, identity: UNSET, any: UNSET };
  for (const s of values) {
    let i = 0;
    const n = s.length;
    while (i < n) {
      while (i < n && (isOws(s.charCodeAt(i)) || s.charCodeAt(i) === COMMA)) i++;
      const nameStart = i;
      while (i < n && !isOws(s.charCodeAt(i)) && s.charCodeAt(i) !== COMMA && s.charCodeAt(i) !== SEMI) i++;
      const name = s.slice(nameStart, i).toLowerCase();
      let q = 1000;
      let valid = name.length > 0;
      // Parameters: only q matters; anything else makes the element not one we understand.
      for (;;) {
        while (i < n && isOws(s.charCodeAt(i))) i++;
        if (i >= n || s.charCodeAt(i) === COMMA) break;
        if (s.charCodeAt(i) !== SEMI) {
          valid = false;
          break;
        }
        i++;
        while (i < n && isOws(s.charCodeAt(i))) i++;
        const pStart = i;
        while (i < n && !isOws(s.charCodeAt(i)) && s.charCodeAt(i) !== COMMA && s.charCodeAt(i) !== SEMI) i++;
        const eq = s.indexOf("=", pStart);
        if (eq !== pStart + 1 || eq >= i || (s.charCodeAt(pStart) | 0x20) !== 113 /* q */) {
          valid = false;
          break;
        }
        q = parseQ(s, eq + 1, i);
        if (q < 0) valid = false;
      }
      // Skip the rest of a malformed element.
      while (i < n && s.charCodeAt(i) !== COMMA) i++;
      if (!valid) continue;
      const key: keyof AcceptedCodings | null =
        name === "br"
          ? "br"
          : name === "gzip" || name === "x-gzip"
            ? "gzip"
            : name === "identity"
              ? "identity"
              : name === "*"
                ? "any"
                : null;
      if (key !== null && q > out[key]) out[key] = q;
    }
  }
  return out;
}

/**
 * How acceptable `coding` is: its own q, else "*"'s, else 0; identity not named is acceptable
 * but least preferred (so `br;q=0.5` still gets br).
 */
function qualityOf(accepted: AcceptedCodings, coding: ContentCoding | "identity"): number {
  const own = accepted[coding];
  if (own !== UNSET) return own;
  if (accepted.any !== UNSET) return accepted.any;
  return coding === "identity" ? 1 : 0;
}

/**
 * The coding to answer with, given the request's Accept-Encoding values and the codings a
 * document has precompressed: the most acceptable, ties broken by CODINGS order, identity
 * last. Without an Accept-Encoding field: identity. When identity itself is refused (q=0) and
 * nothing else is acceptable, identity is still sent (a 406 helps no browser).
 */
export function chooseEncoding(
  acceptEncoding: readonly string[],
  available: readonly ContentCoding[],
): ContentCoding | "identity" {
  if (acceptEncoding.length === 0 || available.length === 0) return "identity";
  const accepted = parseAcceptEncoding(acceptEncoding);
  let best: ContentCoding | "identity" = "identity";
  let bestQ = qualityOf(accepted, "identity");
  for (const coding of CODINGS) {
    if (!available.includes(coding)) continue;
    const q = qualityOf(accepted, coding);
    if (q > 0 && (q > bestQ || (q === bestQ && best === "identity"))) {
      best = coding;
      bestQ = q;
    }
  }
  return best;
}

/** The values of every Accept-Encoding field of a request (usually zero or one). */
export function acceptEncodingOf(req: Pick<HttpRequest, "headers">): string[] {
  const out: string[] = [];
  const h = req.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i] === "accept-encoding") out.push(h[i + 1]!);
  return out;
}

/** The representation of `doc` that answers `req`: a precompressed variant or the document itself. */
export function selectRepresentation(req: Pick<HttpRequest, "headers">, doc: Doc): Doc {
  const variants = doc.variants;
  if (variants === null) return doc;
  const coding = chooseEncoding(acceptEncodingOf(req), variants.codings);
  return coding === "identity" ? doc : (variants[coding] ?? doc);
}
