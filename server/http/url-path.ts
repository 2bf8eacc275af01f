// Turns the percent-encoded path of a request-target into a normalised document path, and
// back. Pure. The rules are what keeps every request inside the document root:
//   - segments are split on "/" before decoding, so an encoded slash (%2F) can never create a
//     path separator: a decoded "/" or "\" inside a segment is a 400, as are raw backslashes;
//   - invalid escapes, invalid UTF-8, and decoded NUL or other control characters are 400;
//   - "." segments vanish and ".." removes the previous segment (RFC 3986 remove_dot_segments,
//     also when written %2e%2e); a ".." that would climb above the root is a 400;
//   - any other segment starting with "." (dotfiles: .git, .env) is a 404, like the origin.
// Symlinks are the file source's business (it checks the real path stays under the root).

export type PathResult = { ok: true; path: string } | { ok: false; status: 400 | 404; reason: string };

export function normalizePath(raw: string): PathResult {
  if (raw.charCodeAt(0) !== 47) return { ok: false, status: 400, reason: "path must start with /" };
  // Fast path, the common case: nothing to decode, no dot segment or dotfile, no empty segment.
  if (!raw.includes("%") && !raw.includes("/.") && !raw.includes("//") && !raw.includes("\\")) {
    return { ok: true, path: raw };
  }
  if (raw.includes("\\")) return { ok: false, status: 400, reason: "backslash in path" };
  const parts = raw.split("/");
  const out: string[] = [];
  let dirForm = false;
  for (let i = 1; i < parts.length; i++) {
    let seg = parts[i]!;
    if (seg.includes("%")) {
      try {
        seg = decodeURIComponent(seg);
      } catch {
        return { ok: false, status: 400, reason: "invalid percent-encoding" };
      }
      for (let k = 0; k < seg.length; k++) {
        const c = seg.charCodeAt(k);
        if (c < 32 || c === 127) return { ok: false, status: 400, reason: "control character in path" };
        if (c === 47 || c === 92) return { ok: false, status: 400, reason: "encoded slash in path" };
      }
    }
    dirForm = true;
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length === 0) return { ok: false, status: 400, reason: "path escapes the document root" };
      out.pop();
      continue;
    }
    dirForm = false;
    if (seg.charCodeAt(0) === 46) return { ok: false, status: 404, reason: "hidden file" };
    out.push(seg);
  }
  if (out.length === 0) return { ok: true, path: "/" };
  return { ok: true, path: "/" + out.join("/") + (dirForm ? "/" : "") };
}

/** Percent-encodes a normalised path for a Location header or an origin request. */
export function encodePath(path: string): string {
  return path
    .split("/")
    .map((s) => encodeURIComponent(s))
    .join("/");
}
