// Purge: POST /purge on a node's admin API drops cached documents on every node of the
// cluster (docs/server.md "Content updates"). The body names one URL, a prefix, or all:
//   {"url": "/a/b.html"} | {"prefix": "/assets/"} | {"all": true}
// The node that takes it purges its own cache, then sends the same purge with "local": true to
// every other member's admin API with the same bearer token (the cluster secret's admin token:
// only a holder of the secret can purge, and forwarded purges are not forwarded again). It
// answers once every member answered (or failed): 200 when all purged, 502 naming the members
// that did not. A request arriving anywhere after a 200 gets the new version.
import { request } from "undici";
import { normalizePath } from "../http/url-path.js";
import type { PurgeTarget } from "../store/doc-store.js";

export interface PurgeRequest {
  target: PurgeTarget;
  /** Only this node (a purge forwarded by another member). */
  local: boolean;
}

/** JSON schema of the body (fastify checks it before purgeRequestFrom sees it). */
export const PURGE_BODY_SCHEMA = {
  type: "object",
  additionalProperties: false,
  properties: {
    url: { type: "string", minLength: 1, maxLength: 2048 },
    prefix: { type: "string", minLength: 1, maxLength: 2048 },
    all: { type: "boolean" },
    local: { type: "boolean" },
  },
} as const;

/** Checks a purge body; a string is the reason it is refused (400). Pure. */
export function purgeRequestFrom(body: unknown): PurgeRequest | string {
  if (typeof body !== "object" || body === null)
    return 'give {"url": PATH}, {"prefix": PATH} or {"all": true}';
  const b = body as { url?: unknown; prefix?: unknown; all?: unknown; local?: unknown };
  const given = [b.url !== undefined, b.prefix !== undefined, b.all === true].filter(Boolean).length;
  if (given !== 1) return 'give exactly one of {"url": PATH}, {"prefix": PATH}, {"all": true}';
  const local = b.local === true;
  if (b.all === true) return { target: { kind: "all" }, local };
  if (typeof b.url === "string") {
    // The cache key of a URL is its normalised path (the query is not part of it).
    const n = normalizePath(b.url.split("?")[0]!);
    if (!n.ok) return `url '${b.url.slice(0, 200)}' is not a document path (${n.reason})`;
    return { target: { kind: "url", path: n.path }, local };
  }
  if (typeof b.prefix === "string") {
    if (!b.prefix.startsWith("/")) return "prefix must start with '/'";
    // A prefix is compared with decoded keys: decode it like a path, keeping a trailing slash.
    const n = normalizePath(b.prefix);
    if (!n.ok) return `prefix '${b.prefix.slice(0, 200)}' is not a path (${n.reason})`;
    return { target: { kind: "prefix", prefix: n.path }, local };
  }
  return "url and prefix must be strings";
}

/** The body that sends `target` on to another member. */
export function forwardedBody(target: PurgeTarget): Record<string, unknown> {
  const what =
    target.kind === "all"
      ? { all: true }
      : target.kind === "url"
        ? { url: target.path }
        : { prefix: target.prefix };
  return { ...what, local: true };
}

export interface PeerPurgeResult {
  ok: boolean;
  purged?: number;
  error?: string;
}

/** Sends a purge to one member's admin API (I/O edge); never rejects. */
export async function sendPurge(
  adminUrl: string,
  token: string | undefined,
  body: Record<string, unknown>,
  timeoutMs: number,
): Promise<PeerPurgeResult> {
  try {
    const res = await request(`${adminUrl.replace(/\/+$/, "")}/purge`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(body),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) return { ok: false, error: `HTTP ${res.statusCode} ${text.slice(0, 200)}` };
    const parsed = JSON.parse(text) as { purged?: unknown };
    return { ok: true, purged: typeof parsed.purged === "number" ? parsed.purged : 0 };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}
