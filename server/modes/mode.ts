// The hook through which a cluster mode sees each parsed request before it is served locally.
//
// The connection calls decide() for one request at a time, in order, and only once every
// earlier response has been written to the transport (ctx.flushed() waits until it has left
// the send buffer too). What decide() returns:
//   "serve"   serve it here (the local path);
//   "done"    the mode answered it itself (e.g. Socket Cloning: the clone on the mapped node sent
//             the response); the pipeline moves on to the next request; if the request was not
//             keep-alive the connection is then closed gracefully;
//   { doc }   answer with this document (e.g. cooperative caching: fetched from the mapped
//             peer's cache), with the usual conditional/range rules;
//   a Promise of one of these: the connection's pipeline is paused until it settles (later
//             requests stay queued in the parser, unread input stays in the socket), then
//             continues with the settled value; a rejection answers 500 and closes.
import type { Registry } from "prom-client";
import type { Conn } from "../transport/conn.js";
import type { HttpRequest } from "../http/parser.js";
import type { Doc } from "../http/doc.js";
import type { ClusterConfig } from "../membership/config.js";
import type { UrlMapper } from "../membership/mapper.js";
import type { DocStore } from "../store/doc-store.js";
import type { Responder } from "../store/responder.js";
import type { ServerStats } from "../http/stats.js";
import type { Logger } from "../log.js";
import type { UserStack } from "../transport/user-stack.js";
import type { DateCache } from "../http/date.js";
import type { CachePolicy } from "../cache/doc-cache.js";
import type { ClusterTrust } from "../../sc/auth/secret.js";
import type { Membership } from "../membership/runtime.js";

export type Decision = "serve" | "done" | { doc: Doc };

/** What a mode may do with the connection a request arrived on. */
export interface ConnectionControl {
  /** Per-process connection number (for logs and mode bookkeeping). */
  readonly id: number;
  /** The transport connection (socket) itself, e.g. to export its TCP state for cloning. */
  readonly conn: Conn;
  /** Resolves when everything written so far has left the send buffer (writableLength 0). */
  flushed(): Promise<void>;
  /**
   * The mode had this request answered from another node (Socket Cloning: the clone's node,
   * its response head and length from the SC-ACK), for the access log; before settling "done".
   */
  servedBy?(node: string, head: Uint8Array, length: number): void;
}

export interface Mode {
  readonly name: string;
  /** `req.raw` holds the request head bytes exactly as received. */
  decide(req: HttpRequest, ctx: ConnectionControl): Decision | Promise<Decision>;
  /** Extra fields for the node's /stats (the mode's own counters). */
  stats?(): Record<string, unknown>;
  /** Releases what the mode opened (peer links, listeners); called on node shutdown. */
  close?(): Promise<void>;
}

/** What a node hands a mode when it creates it. */
export interface ModeContext {
  readonly nodeId: string;
  /** Membership and ports; null for a stand-alone node. */
  readonly cluster: ClusterConfig | null;
  /** How peers are authenticated; never null for a mode that needs the cluster (startNode checks). */
  readonly trust: ClusterTrust | null;
  /** URL -> home node id over `cluster` (null for a stand-alone node). */
  readonly mapper: UrlMapper | null;
  readonly store: DocStore;
  readonly responder: Responder;
  readonly stats: ServerStats;
  readonly dates: DateCache;
  /** The node's metrics registry: modes register their own metrics here. */
  readonly registry: Registry;
  readonly log: Logger;
  /** The user-space stack (--stack user), null on the kernel stack. */
  readonly userStack: UserStack | null;
  /** The port HTTP is served on. */
  readonly httpPort: number;
  /** Mode-specific settings from the command line (each mode checks its own). */
  readonly modeSettings: Readonly<Record<string, unknown>>;
  /** Runtime membership: `mapper` follows it in place; "change" carries the new members. */
  readonly membership?: Membership;
}

export interface ModeDefinition {
  readonly name: string;
  /** One line for --help. */
  readonly summary: string;
  /** Needs --peer membership. */
  readonly needsCluster: boolean;
  /** Needs --stack user (owns the TCP state, e.g. to clone connections). */
  readonly needsUserStack: boolean;
  /** The cache policy the mode is defined with (cf-lru, cf-lfu); overrides --cache-policy. */
  readonly cachePolicy?: CachePolicy;
  create(ctx: ModeContext): Mode | Promise<Mode>;
}

/** --mode local: every request is served by the node it arrived at (RR with an L4 dispatcher). */
export const localMode: Mode = {
  name: "local",
  decide: () => "serve",
};

/** The modes `sc-cluster node --mode` accepts, by name. Cluster modes register themselves here. */
export const MODES: Record<string, ModeDefinition> = {
  local: {
    name: "local",
    summary: "serve every request on the node it arrived at",
    needsCluster: false,
    needsUserStack: false,
    create: () => localMode,
  },
};

export function registerMode(def: ModeDefinition): void {
  MODES[def.name] = def;
}
