// Request-target canonicalization, shared by `site` (which turns URLs into files) and the
// replay engine (which turns trace lines into requests), so both agree on every URL.
//
// A logged target becomes:
//   url      the canonical path we replay: decoded, dot segments resolved, "//" merged,
//            re-encoded with one fixed encoder (so every server decodes it to the same bytes)
//   docPath  the document it names, from the root: "/a/b.html"; a trailing slash names the
//            directory's index.html, as every static server does
// Anything a static server could answer differently, or that could name a file outside the
// document root, is refused with a reason instead.

export type UrlRejectReason =
  | "not_origin_form"
  | "bad_encoding"
  | "encoded_slash"
  | "control_char"
  | "backslash"
  | "escapes_root"
  | "dotfile"
  | "name_too_long"
  | "path_too_long";

export type CanonicalUrl =
  | { ok: true; url: string; docPath: string; isDirectory: boolean; hadQuery: boolean }
  | { ok: false; reason: UrlRejectReason };

/** Linux NAME_MAX: a longer path segment cannot be a file name. */
export const MAX_SEGMENT_BYTES = 255;
/** Longest document path accepted; keeps DIR + path well under PATH_MAX and URL limits. */
export const MAX_DOC_PATH_BYTES = 1024;
export const INDEX_FILE = "index.html";

// Characters left literal in a path segment (RFC 3986 pchar minus ";" which some servers
// treat as a parameter delimiter). Everything else is %XX-encoded (UTF-8, upper-case hex).
const SEGMENT_SAFE = /^[A-Za-z0-9\-._~!$&'()*+,=:@]$/;
const SEGMENT_ALL_SAFE = /^[A-Za-z0-9\-._~!$&'()*+,=:@]*$/;

export function encodeSegment(segment: string): string {
  if (SEGMENT_ALL_SAFE.test(segment)) return segment;
  let out = "";
  for (const ch of segment) {
    if (SEGMENT_SAFE.test(ch)) {
      out += ch;
    } else {
      for (const b of Buffer.from(ch, "utf8")) out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
    }
  }
  return out;
}

function decodeSegment(raw: string): string | null {
  if (!raw.includes("%")) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

/**
 * Canonicalizes a logged request target. `target` may be origin-form ("/a?b") or
 * absolute-form ("http://host/a"), as proxies log it. The query (if any) is dropped from
 * the result and reported in `hadQuery`; the fragment is dropped silently.
 */
export function canonicalizeTarget(target: string): CanonicalUrl {
  let t = target;
  const abs = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(t);
  if (abs) t = t.slice(abs[0].length) || "/";
  if (!t.startsWith("/")) return { ok: false, reason: "not_origin_form" };
  const hash = t.indexOf("#");
  if (hash >= 0) t = t.slice(0, hash);
  const q = t.indexOf("?");
  const hadQuery = q >= 0;
  if (hadQuery) t = t.slice(0, q);

  const raw = t.split("/").slice(1);
  const segments: string[] = [];
  // A trailing "/" (or a trailing "." / "..") names a directory.
  let isDirectory = raw.length === 0;
  for (const [i, r] of raw.entries()) {
    const last = i === raw.length - 1;
    const seg = decodeSegment(r);
    if (seg === null) return { ok: false, reason: "bad_encoding" };
    if (seg.includes("/")) return { ok: false, reason: "encoded_slash" };
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f]/.test(seg)) return { ok: false, reason: "control_char" };
    if (seg.includes("\\")) return { ok: false, reason: "backslash" };
    if (seg === "" || seg === ".") {
      if (last) isDirectory = true;
      continue;
    }
    if (seg === "..") {
      if (segments.length === 0) return { ok: false, reason: "escapes_root" };
      segments.pop();
      if (last) isDirectory = true;
      continue;
    }
    if (seg.startsWith(".")) return { ok: false, reason: "dotfile" };
    if (seg.length > MAX_SEGMENT_BYTES / 3 && Buffer.byteLength(seg, "utf8") > MAX_SEGMENT_BYTES) {
      return { ok: false, reason: "name_too_long" };
    }
    segments.push(seg);
  }
  if (segments.length === 0) isDirectory = true;
  const docPath = "/" + [...segments, ...(isDirectory ? [INDEX_FILE] : [])].join("/");
  if (docPath.length > MAX_DOC_PATH_BYTES / 3 && Buffer.byteLength(docPath, "utf8") > MAX_DOC_PATH_BYTES) {
    return { ok: false, reason: "path_too_long" };
  }
  const encoded = segments.map(encodeSegment).join("/");
  const url = segments.length === 0 ? "/" : "/" + encoded + (isDirectory ? "/" : "");
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
