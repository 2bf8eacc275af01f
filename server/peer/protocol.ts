// The cache-forwarding protocol between nodes (cooperative caching, --mode cf-lru / cf-lfu):
// plain HTTP/1.1 on each node's internal address and peer port. Pure: header names, what a
// home node answers, and the requester's strict reading of that answer (a peer's answer
// ends up in our response heads, so nothing unchecked gets through).
//
//   request   GET|HEAD <percent-encoded normalised path>, signed (auth.ts): x-sc-node
//             (requester id), x-sc-time, x-sc-auth; unsigned with --insecure-dev
//   200       the document: Content-Length, Content-Type, ETag, x-sc-mtime (ms), x-sc-key
//             (encoded key: a directory's index.html), x-sc-from: cache | origin
//   301       the path names a directory: x-sc-redirect (encoded directory form)
//   403, 404  authoritative (the home asked the origin): answered as such
//   403 + x-sc-auth-error: <reason>   the home refused the request's authenticator: the
//             requester serves it from its own source (a secret mismatch must not become 403s)
//   413       the home does not hold the document in memory (too large): the requester
//             serves it from its own source
//   other     (5xx: the home's origin fetch failed; 400/405: a bug) the requester falls back
import type { IncomingHttpHeaders } from "node:http";
import { normalizePath } from "../http/url-path.js";

export const H_MTIME = "x-sc-mtime";
export const H_KEY = "x-sc-key";
export const H_FROM = "x-sc-from";
export const H_REDIRECT = "x-sc-redirect";
export const H_NODE = "x-sc-node";
export const H_TIME = "x-sc-time";
export const H_AUTH = "x-sc-auth";
export const H_AUTH_ERROR = "x-sc-auth-error";

/** Status of "not held in memory here: read it from your own source". */
export const STATUS_NOT_HELD = 413;

/** What a home node's answer says about a document (the requester builds its Doc from it). */
export interface PeerDocMeta {
  key: string;
  size: number;
  mtimeMs: number;
  etag: string;
  contentType: string;
  /** The home answered from its memory cache (else it loaded the document from the origin). */
  fromCache: boolean;
}

export type PeerAnswer =
  | { kind: "doc"; meta: PeerDocMeta }
  | { kind: "redirect"; path: string }
  | { kind: "error"; status: 403 | 404 }
  | { kind: "not-held" }
  | { kind: "failed"; reason: "status" | "protocol" | "auth"; detail: string };

// The strong-ETag form the sources produce (origin-source.ts accepts the same).
const ETAG = /^"[\x21\x23-\x7e]*"$/;
const CONTENT_TYPE = /^[\x21-\x7e][\x20-\x7e]*$/;

function one(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return typeof v === "string" ? v : undefined;
}

/** Reads a home node's answer (status and headers). `maxBytes` bounds what a requester accepts. */
export function readPeerAnswer(status: number, headers: IncomingHttpHeaders, maxBytes: number): PeerAnswer {
  const bad = (detail: string): PeerAnswer => ({ kind: "failed", reason: "protocol", detail });
  switch (status) {
    case 200:
      break;
    case 301: {
      const target = normalizePath(one(headers, H_REDIRECT) ?? "");
      if (!target.ok || !target.path.endsWith("/")) return bad("301 without a valid x-sc-redirect");
      return { kind: "redirect", path: target.path };
    }
    case 403:
      if (headers[H_AUTH_ERROR] !== undefined)
        return {
          kind: "failed",
          reason: "auth",
          detail: `peer refused our authenticator (${String(headers[H_AUTH_ERROR])})`,
        };
      return { kind: "error", status };
    case 404:
      return { kind: "error", status };
    case STATUS_NOT_HELD:
      return { kind: "not-held" };
    default:
      return { kind: "failed", reason: "status", detail: `peer answered ${status}` };
  }
  const lenText = one(headers, "content-length") ?? "";
  const size = /^\d{1,15}$/.test(lenText) ? Number(lenText) : NaN;
  if (!Number.isSafeInteger(size)) return bad("200 without a valid Content-Length");
  if (size > maxBytes) return bad(`document of ${size} bytes exceeds ${maxBytes}`);
  const etag = one(headers, "etag") ?? "";
  if (!ETAG.test(etag)) return bad("200 without a strong ETag");
  const mtimeText = one(headers, H_MTIME) ?? "";
  const mtimeMs = /^-?\d{1,16}(\.\d{1,20})?$/.test(mtimeText) ? Number(mtimeText) : NaN;
  if (!Number.isFinite(mtimeMs)) return bad(`200 without a valid ${H_MTIME}`);
  const contentType = one(headers, "content-type") ?? "";
  if (!CONTENT_TYPE.test(contentType)) return bad("200 without a valid Content-Type");
  const key = normalizePath(one(headers, H_KEY) ?? "");
  if (!key.ok || key.path.endsWith("/")) return bad(`200 without a valid ${H_KEY}`);
  const from = one(headers, H_FROM);
  if (from !== "cache" && from !== "origin") return bad(`200 without a valid ${H_FROM}`);
  return {
    kind: "doc",
    meta: { key: key.path, size, mtimeMs, etag, contentType, fromCache: from === "cache" },
  };
}
