// A cluster mode: what a node does with each request before (or instead of) serving it locally.
// A mode is a RequestHook (server/http/hook.ts) with a name, its own /stats and a close().
//
// Each mode is defined with the context it needs, and the node builds that context once at
// start-up (createMode): a mode that works with peers gets the membership, the URL mapper and
// the cluster's trust, never null; one that clones or takes over connections also gets the
// user-space stack. The modes a node accepts are the static table in ./table.ts.
import type { Registry } from "prom-client";
import type { RequestHook } from "../http/hook.js";
import type { ServerStats } from "../http/stats.js";
import type { DateCache } from "../http/date.js";
import type { ClusterConfig } from "../membership/config.js";
import type { UrlMapper } from "../membership/mapper.js";
import type { Membership } from "../membership/runtime.js";
import type { DocStore } from "../store/doc-store.js";
import type { Responder } from "../store/responder.js";
import type { CachePolicy } from "../cache/doc-cache.js";
import type { UserStack } from "../transport/user-stack.js";
import type { ClusterTrust } from "../../sc/auth/secret.js";
import type { Logger } from "../log.js";
import { UserError } from "../../common/errors.js";

export type { ConnectionControl, Decision } from "../http/hook.js";

export interface Mode extends RequestHook {
  /** Extra fields for the node's /stats (the mode's own counters). */
  stats?(): Record<string, unknown>;
  /** Releases what the mode opened (peer links, listeners); called on node shutdown. */
  close?(): Promise<void>;
}

/** What every mode gets from its node. */
export interface NodeContext {
  readonly nodeId: string;
  readonly store: DocStore;
  readonly responder: Responder;
  readonly stats: ServerStats;
  readonly dates: DateCache;
  /** The node's metrics registry: modes register their own metrics here. */
  readonly registry: Registry;
  readonly log: Logger;
  /** The port HTTP is served on. */
  readonly httpPort: number;
  /** The port HTTPS is served on (--tls-port), if the node serves HTTPS. */
  readonly tlsPort?: number;
  /**
   * --workers N: this node is data-path worker `index` of `count`; the GUE steering sends a
   * client's packets to worker steerClient(client) mod count (sc/gue/steering.ts).
   */
  readonly worker?: { readonly index: number; readonly count: number };
  /** Mode-specific settings from the command line (each mode checks its own). */
  readonly modeSettings: Readonly<Record<string, unknown>>;
}

/** A mode that works with its peers. */
export interface ClusterContext extends NodeContext {
  /** Members and ports. */
  readonly cluster: ClusterConfig;
  /** How peers are authenticated. */
  readonly trust: ClusterTrust;
  /** URL -> home node id over the members; follows `membership` in place. */
  readonly mapper: UrlMapper;
  /** Runtime membership: "change" carries the new members. */
  readonly membership: Membership;
}

/** A cluster mode that owns the TCP state of its connections (clones or takes them over). */
export interface UserStackContext extends ClusterContext {
  readonly userStack: UserStack;
}

interface ModeInfo {
  readonly name: string;
  /** One line for --help. */
  readonly summary: string;
  /** The cache policy the mode is defined with (cf-lru, cf-lfu); overrides --cache-policy. */
  readonly cachePolicy?: CachePolicy;
}

/** What a mode needs: "node" alone, "cluster" (--peer members), "user-stack" (and --stack user). */
export type ModeDefinition =
  | (ModeInfo & { readonly needs: "node"; create(ctx: NodeContext): Mode | Promise<Mode> })
  | (ModeInfo & { readonly needs: "cluster"; create(ctx: ClusterContext): Mode | Promise<Mode> })
  | (ModeInfo & { readonly needs: "user-stack"; create(ctx: UserStackContext): Mode | Promise<Mode> });

export function needsCluster(def: ModeDefinition): boolean {
  return def.needs !== "node";
}

/** Everything a node has for its mode; null where this node has no such part. */
export interface ModeParts extends NodeContext {
  readonly cluster: ClusterConfig | null;
  readonly trust: ClusterTrust | null;
  readonly membership: Membership | null;
  readonly userStack: UserStack | null;
}

/** What `def` lacks among what a node has, as the message for the user; null when nothing. */
export function missingForMode(
  def: ModeDefinition,
  has: { cluster: boolean; trust: boolean; userStack: boolean },
): string | null {
  if (def.needs === "node") return null;
  if (!has.cluster) return `--mode ${def.name} needs the cluster's members (--peer ID=ADDR, one per node)`;
  if (def.needs === "user-stack" && !has.userStack)
    return `--mode ${def.name} needs --stack user (it owns the TCP state of connections)`;
  if (!has.trust)
    return (
      `--mode ${def.name} needs the cluster secret (--secret-file FILE, same file on every member; ` +
      "`sc-cluster secret --out FILE` makes one), or --insecure-dev to run unauthenticated"
    );
  return null;
}

/** Builds the context `def` is defined with from what the node has, and creates the mode. */
export function createMode(def: ModeDefinition, parts: ModeParts): Mode | Promise<Mode> {
  const { cluster, trust, membership, userStack } = parts;
  if (def.needs === "node") return def.create(parts);
  if (cluster !== null && trust !== null && membership !== null) {
    const ctx: ClusterContext = { ...parts, cluster, trust, membership, mapper: membership.mapper };
    if (def.needs === "cluster") return def.create(ctx);
    if (userStack !== null) return def.create({ ...ctx, userStack });
  }
  const has = {
    cluster: cluster !== null && membership !== null,
    trust: trust !== null,
    userStack: userStack !== null,
  };
  throw new UserError(missingForMode(def, has) ?? `--mode ${def.name}: cannot start`);
}
