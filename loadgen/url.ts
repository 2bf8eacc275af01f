// Request-target canonicalization for `site` (which turns URLs into files) and the replay engine
// (which turns trace lines into requests), so both agree on every URL, and agree with the
// servers: the path is mapped by server/http/url-path.ts, the servers' own definition.
//
// A logged target becomes:
//   url      the canonical path we replay: the servers' document path in their canonical
//            spelling (encodePath), so every server decodes it to the same file name
//   docPath  the document it names, from the root: "/a/b.html"; a trailing slash names the
//            directory's index.html, as every static server does
// A log may hold the target as the client sent it or already decoded: raw spaces, controls and
// non-ASCII characters are taken as the client's %XX (UTF-8) before mapping. Anything a server
// refuses, or that could name a file outside the document root, is refused with the mapping's
// reason; names and paths too long for the file system are refused too.
import { encodePath, encodeSegment, normalizePath, type PathRejectReason } from "../server/http/url-path.js";

export { encodeSegment };

export type UrlRejectReason = PathRejectReason | "name_too_long" | "path_too_long";

export type CanonicalUrl =
  | { ok: true; url: string; docPath: string; isDirectory: boolean; hadQuery: boolean }
  | { ok: false; reason: UrlRejectReason };

/** Linux NAME_MAX: a longer path segment cannot be a file name. */
export const MAX_SEGMENT_BYTES = 255;
/** Longest document path accepted; keeps DIR + path well under PATH_MAX and URL limits. */
export const MAX_DOC_PATH_BYTES = 1024;
export const INDEX_FILE = "index.html";

/**
 * The target as a client would have sent it: characters no request-target carries raw (space,
 * controls, DEL, non-ASCII) as %XX of their UTF-8. Null for a lone surrogate (no UTF-8).
 */
function escapeUnsendable(t: string): string | null {
  let out = "";
  let from = 0;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c > 32 && c < 127) continue;
    // A surrogate pair is one character: escape both halves together.
    const n = c >= 0xd800 && c <= 0xdbff && i + 1 < t.length ? 2 : 1;
    let enc: string;
    try {
      enc = encodeURIComponent(t.slice(i, i + n));
    } catch {
      return null;
    }
    out += t.slice(from, i) + enc;
    i += n - 1;
    from = i + 1;
  }
  return from === 0 ? t : out + t.slice(from);
}

/** The end of an absolute-form prefix "scheme://authority" (0 if there is none). Linear. */
function absolutePrefixEnd(t: string): number {
  const sep = t.indexOf("://");
  if (sep <= 0 || !/^[a-z][a-z0-9+.-]*$/i.test(t.slice(0, sep))) return 0;
  let i = sep + 3;
  while (i < t.length && t[i] !== "/" && t[i] !== "?" && t[i] !== "#") i++;
  return i;
}

/**
 * Canonicalizes a logged request target. `target` may be origin-form ("/a?b") or
 * absolute-form ("http://host/a"), as proxies log it. The query (if any) is dropped from
 * the result and reported in `hadQuery`; the fragment is dropped silently.
 */
export function canonicalizeTarget(target: string): CanonicalUrl {
  let t = target;
  const abs = absolutePrefixEnd(t);
  if (abs > 0) t = t.slice(abs) || "/";
  if (!t.startsWith("/")) return { ok: false, reason: "not_origin_form" };
  const hash = t.indexOf("#");
  if (hash >= 0) t = t.slice(0, hash);
  const q = t.indexOf("?");
  const hadQuery = q >= 0;
  if (hadQuery) t = t.slice(0, q);

  const sendable = escapeUnsendable(t);
  if (sendable === null) return { ok: false, reason: "bad_encoding" };
  const norm = normalizePath(sendable);
  if (!norm.ok) return { ok: false, reason: norm.reason };
  const path = norm.path;
  const isDirectory = path.endsWith("/");
  const docPath = isDirectory ? path + INDEX_FILE : path;
  let segStart = 1;
  for (let i = 1; i <= docPath.length; i++) {
    if (i < docPath.length && docPath.charCodeAt(i) !== 47) continue;
    // Cheap bound first: a segment of at most 85 UTF-16 units is at most 255 UTF-8 bytes.
    if (
      i - segStart > MAX_SEGMENT_BYTES / 3 &&
      Buffer.byteLength(docPath.slice(segStart, i)) > MAX_SEGMENT_BYTES
    )
      return { ok: false, reason: "name_too_long" };
    segStart = i + 1;
  }
  if (docPath.length > MAX_DOC_PATH_BYTES / 3 && Buffer.byteLength(docPath, "utf8") > MAX_DOC_PATH_BYTES) {
    return { ok: false, reason: "path_too_long" };
  }
  const url = encodePath(path);
  if (url.length > 4 * MAX_DOC_PATH_BYTES) return { ok: false, reason: "path_too_long" };
  return { ok: true, url, docPath, isDirectory, hadQuery };
}

/** The directories that must exist for docPath: "/a/b/c.html" -> ["/a", "/a/b"]. */
export function ancestorDirs(docPath: string): string[] {
  const out: string[] = [];
  let i = docPath.indexOf("/", 1);
  while (i > 0) {
    out.push(docPath.slice(0, i));
    i = docPath.indexOf("/", i + 1);
  }
  return out;
}
