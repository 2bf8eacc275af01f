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
import type { Membership } from "../membership/runtime.js";
import type { Logger } from "../log.js";

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

export interface ClusterPurgeOptions {
  nodeId: string;
  /** Purges this node's cache (its store, or with workers the cache they share); the entries dropped. */
  purgeLocal(target: PurgeTarget): number;
  /** The members to pass the purge on to; null for a stand-alone node. */
  membership: Membership | null;
  /** This node's admin endpoint: the port other members' admin APIs are assumed to use too. */
  admin: { port: number } | null;
  controlToken: string | undefined;
  controlTimeoutMs: number;
  log: Logger;
}

/** POST /purge: this node's cache, then every other member's unless it came from one. */
export function clusterPurge(
  o: ClusterPurgeOptions,
): (body: unknown) => Promise<{ status: number; body: unknown }> {
  return async (body) => {
    const req = purgeRequestFrom(body);
    if (typeof req === "string") return { status: 400, body: { error: req } };
    const purged = o.purgeLocal(req.target);
    o.log.info({ target: req.target, purged, forwarded: req.local }, "purge");
    if (req.local || o.membership === null || o.admin === null)
      return { status: 200, body: { node: o.nodeId, purged } };
    const adminPort = o.admin.port;
    const view = o.membership.current;
    const others = view.members.filter((m) => m.id !== o.nodeId);
    const results = await Promise.all(
      others.map((m) =>
        sendPurge(
          view.admin[m.id] ?? `http://${m.addr}:${adminPort}`,
          o.controlToken,
          forwardedBody(req.target),
          o.controlTimeoutMs,
        ),
      ),
    );
    const peers = Object.fromEntries(others.map((m, i) => [m.id, results[i]!]));
    const failed = others.filter((_, i) => !results[i]!.ok).map((m) => m.id);
    return {
      status: failed.length === 0 ? 200 : 502,
      body: {
        node: o.nodeId,
        purged,
        peers,
        ...(failed.length ? { error: `not purged on ${failed.join(", ")}` } : {}),
      },
    };
  };
}
