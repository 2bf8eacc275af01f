// Conditional requests (RFC 9110 13.1-13.2), in the order 13.2.2 prescribes. Pure.
import type { HttpRequest } from "./parser.js";
import { parseHttpDate } from "./validators.js";

/**
 * One entity-tag of a list: optional W/, then a quoted opaque tag. Sticky and unambiguous (each
 * quantifier stops at a character it cannot match), so a whole list costs linear time.
 */
const TAG = /[ \t]*(W\/)?("[\x21\x23-\x7e\x80-\xff]*")[ \t]*(?:,|$)/y;

/** Whether `list` (an If-Match / If-None-Match value other than "*") contains `etag`. */
export function etagListMatches(list: string, etag: string, weak: boolean): boolean {
  const strongEtag = !etag.startsWith("W/");
  const opaque = strongEtag ? etag : etag.slice(2);
  TAG.lastIndex = 0;
  while (TAG.lastIndex < list.length) {
    const start = TAG.lastIndex;
    const m = TAG.exec(list);
    if (!m) {
      // Skip an empty list element or a malformed one.
      const comma = list.indexOf(",", start);
      if (comma === -1) return false;
      TAG.lastIndex = comma + 1;
      continue;
    }
    if (m[2] === opaque && (weak || (m[1] === undefined && strongEtag))) return true;
  }
  return false;
}

export type Precondition = "proceed" | "not-modified" | "failed";

/** Evaluates If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since for GET/HEAD. */
export function evaluatePreconditions(req: HttpRequest, etag: string, lastModifiedMs: number): Precondition {
  const lastModifiedS = Math.floor(lastModifiedMs / 1000);
  if (req.ifMatch !== undefined) {
    if (req.ifMatch.trim() !== "*" && !etagListMatches(req.ifMatch, etag, false)) return "failed";
  } else if (req.ifUnmodifiedSince !== undefined) {
    const d = parseHttpDate(req.ifUnmodifiedSince);
    if (!Number.isNaN(d) && lastModifiedS * 1000 > d) return "failed";
  }
  if (req.ifNoneMatch !== undefined) {
    if (req.ifNoneMatch.trim() === "*" || etagListMatches(req.ifNoneMatch, etag, true)) return "not-modified";
  } else if (req.ifModifiedSince !== undefined) {
    const d = parseHttpDate(req.ifModifiedSince);
    if (!Number.isNaN(d) && lastModifiedS * 1000 <= d) return "not-modified";
  }
  return "proceed";
}

/** If-Range (RFC 9110 13.1.5): a strong ETag match, or an exact Last-Modified date. */
export function ifRangeHolds(ifRange: string | undefined, etag: string, lastModifiedMs: number): boolean {
  if (ifRange === undefined) return true;
  const v = ifRange.trim();
  if (v.startsWith('"')) return !etag.startsWith("W/") && v === etag;
  if (v.startsWith("W/")) return false;
  const d = parseHttpDate(v);
  return !Number.isNaN(d) && d === Math.floor(lastModifiedMs / 1000) * 1000;
}
