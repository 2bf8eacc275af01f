// Cache validators shared by the nodes and the origin, so a client sees the same ETag and
// Last-Modified for a document whichever process served it.

/**
 * The strong ETag of a file: size and mtime (ms) in hex, the format @fastify/send uses for its
 * weak tag (W/"size-mtime", mtime rounded as fs.Stats.mtime does); the origin strips the W/ so
 * origin and nodes agree byte for byte.
 */
export function fileEtag(size: number, mtimeMs: number): string {
  return `"${size.toString(16)}-${Math.round(mtimeMs).toString(16)}"`;
}

/** IMF-fixdate (RFC 9110 5.6.7), e.g. "Sun, 06 Nov 1994 08:49:37 GMT". */
export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/** Parses an HTTP-date (IMF-fixdate and the obsolete forms Date.parse accepts); NaN if invalid. */
export function parseHttpDate(value: string): number {
  if (value.length < 20 || value.length > 40) return NaN;
  return Date.parse(value);
}
