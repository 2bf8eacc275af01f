// How a request path names a file: the one definition shared by the node (its fs source, the
// cluster modes' home and cache key, the peer server, the clone's re-parsed request), the origin
// server and the load generator's site builder. Pure, linear in the path's length.
//
// normalizePath(raw) turns the percent-encoded path of a request-target into the document path
// (decoded, "/"-separated, what the file source joins to its root and the cache/mapper key):
//   - the raw path is visible ASCII (what the node's parser admits) without "#" and "\": a raw
//     backslash is a separator to some clients and servers, so its meaning is ambiguous: 400;
//   - it is split on "/" before decoding, so an encoded slash (%2F) can never create a
//     separator: a decoded "/" inside a segment is a 400;
//   - each segment is percent-decoded once (UTF-8); an invalid escape or invalid UTF-8, a decoded
//     NUL or other control character is a 400;
//   - "." segments vanish and ".." removes the previous segment (RFC 3986 remove_dot_segments,
//     also when written %2e%2e); a ".." that would climb above the root is a 400;
//   - a decoded backslash is an ordinary file-name character (Linux), but a segment with a ".."
//     part between backslashes ("..\x", "a\..\b") is a 400: servers that read "\" as "/" would
//     climb there, so no spelling of ".." is ever served;
//   - any other segment starting with "." (dotfiles: .git, .env) is a 404.
// Every other character is literal, so "/a+b", "/a%2Bb" and "/a%2bb" are one document "/a+b".
// Symlinks are the file source's business (it checks the real path stays under the root).
//
// encodePath(path) is the canonical spelling of a document path: every character outside
// RFC 3986 pchar is %XX-encoded (UTF-8, upper-case hex), and so is ";" (a parameter delimiter to
// some servers); unreserved characters, the other sub-delims, ":" and "@" stay literal. It is
// what a node sends to the origin and to a peer, what redirects carry and what the site manifest
// records, and normalizePath(encodePath(p)) === p for every document path p.

/** Why a path is refused: the status says what the client gets, the reason which rule said so. */
export type PathRejectReason =
  | "not_origin_form" // does not start with "/"
  | "invalid_char" // a raw space, control, non-ASCII or "#"
  | "backslash" // a raw "\", or ".." between decoded backslashes
  | "bad_encoding" // a bad escape or invalid UTF-8 (overlong %c0%ae included)
  | "control_char" // a decoded NUL or other control character
  | "encoded_slash" // %2F
  | "escapes_root" // ".." above "/", in any spelling
  | "dotfile"; // a segment starting with "." (404)

export type PathResult =
  { ok: true; path: string } | { ok: false; status: 400 | 404; reason: PathRejectReason };

const refuse = (reason: PathRejectReason): PathResult => ({
  ok: false,
  status: reason === "dotfile" ? 404 : 400,
  reason,
});

const SLASH = 47;
const DOT = 46;
const PERCENT = 37;
const BACKSLASH = 92;
const HASH = 35;

export function normalizePath(raw: string): PathResult {
  if (raw.charCodeAt(0) !== SLASH) return refuse("not_origin_form");
  // One pass over the raw path: refuse what no request-target carries, and see whether the
  // path is already its own document path (no escape, dot segment or empty segment).
  let plain = true;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c <= 32 || c >= 127) return refuse("invalid_char");
    if (c === BACKSLASH) return refuse("backslash");
    if (c === HASH) return refuse("invalid_char");
    if (c === PERCENT || (c === SLASH && (raw.charCodeAt(i + 1) === SLASH || raw.charCodeAt(i + 1) === DOT)))
      plain = false;
  }
  if (plain) return { ok: true, path: raw };
  const parts = raw.split("/");
  const out: string[] = [];
  let dirForm = false;
  for (let i = 1; i < parts.length; i++) {
    let seg = parts[i]!;
    if (seg.includes("%")) {
      try {
        seg = decodeURIComponent(seg);
      } catch {
        return refuse("bad_encoding");
      }
      const bad = checkDecoded(seg);
      if (bad !== undefined) return refuse(bad);
    }
    dirForm = true;
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length === 0) return refuse("escapes_root");
      out.pop();
      continue;
    }
    dirForm = false;
    if (seg.charCodeAt(0) === DOT) return refuse("dotfile");
    out.push(seg);
  }
  if (out.length === 0) return { ok: true, path: "/" };
  return { ok: true, path: "/" + out.join("/") + (dirForm ? "/" : "") };
}

/** Why a decoded segment is refused, or undefined. One pass. */
function checkDecoded(seg: string): PathRejectReason | undefined {
  // Start of the current backslash-separated part, and whether it is ".." so far.
  let partStart = 0;
  for (let k = 0; k <= seg.length; k++) {
    const c = k < seg.length ? seg.charCodeAt(k) : BACKSLASH;
    if (c < 32 || c === 127) return "control_char";
    if (c === SLASH) return "encoded_slash";
    if (c === BACKSLASH) {
      // Only a segment that contains a backslash can hide a ".." part; a plain ".." segment is
      // remove_dot_segments' business.
      if (k - partStart === 2 && seg.charCodeAt(partStart) === DOT && seg.charCodeAt(partStart + 1) === DOT) {
        if (k < seg.length || partStart > 0) return "backslash";
      }
      partStart = k + 1;
    }
  }
  return undefined;
}

/** encodeURIComponent leaves these escaped; pchar allows them literally (";" stays escaped). */
const PCHAR_ESCAPES = /%(?:2[46BC]|3[AD]|40)/g;
const PCHAR_OF: Record<string, string> = {
  "%24": "$",
  "%26": "&",
  "%2B": "+",
  "%2C": ",",
  "%3A": ":",
  "%3D": "=",
  "%40": "@",
};

/** The canonical spelling of one decoded path segment (see the header). */
export function encodeSegment(segment: string): string {
  // encodeURIComponent already keeps the unreserved characters and !'()* literal, escapes every
  // other character as UTF-8 upper-case %XX, and turns "%" into "%25", so every "%" in its
  // output starts an escape it made: un-escaping the pchar sub-delims is exact.
  const enc = encodeURIComponent(segment);
  return enc.includes("%") ? enc.replace(PCHAR_ESCAPES, (e) => PCHAR_OF[e]!) : enc;
}

/** The canonical request path of a document path (see the header). */
export function encodePath(path: string): string {
  return path.split("/").map(encodeSegment).join("/");
}
