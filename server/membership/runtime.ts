// Runtime membership: which nodes a node links to (SC links, peer caches, GUE senders) and
// which the URL mapper maps to, changed while the node runs. The source of truth is the
// dispatcher's membership API (GET /nodes, docs/dispatcher.md), which nodes pull with the
// admin bearer token (--members-from); without it the --peer list (reloaded on SIGHUP).
//
// A node the dispatcher lists keeps its links while it drains or is down (its in-flight
// clones finish there), but only nodes that take new connections (up, not draining, weight
// above 0) are mapped to, so every node stops cloning to a leaving node on its next poll.
// A node that disappears from the list loses its links (clones still on it are resumed by
// their originals: "peer-down"). The mapper is changed in place (UrlMapper.replace), so the
// modes see the new mapping through the object they hold; the "change" event carries the
// members for what else must follow (the SC transport's links, the GUE allow-list).
import { EventEmitter } from "node:events";
import { request } from "undici";
import { checkCluster, type ClusterConfig, type ClusterMember } from "./config.js";
import type { UrlMapper } from "./mapper.js";
import type { Logger } from "../log.js";

export interface MembershipView {
  /** Every member this node links to (itself included). */
  members: ClusterMember[];
  /** Ids the URL mapper maps to, in members' order. */
  mapped: string[];
  /** Admin base URLs by id, where known (the dispatcher's `admin`), for purge propagation. */
  admin: Record<string, string>;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** A dispatcher lists at most this many nodes (its slots fit in a byte); more is a bad answer. */
const MAX_MEMBERS = 256;

/** The view of a static --peer list: every member is mapped. Pure. */
export function staticView(c: ClusterConfig): MembershipView {
  return { members: [...c.members], mapped: c.members.map((m) => m.id), admin: {} };
}

/**
 * The view from the dispatcher's GET /nodes answer (NodeView[]), or an Error naming what is
 * wrong with it. `self` is always a member (it may not be listed yet: a node joining before
 * it was added), mapped only when the dispatcher schedules to it. Pure.
 */
export function viewFromDispatcher(answer: unknown, self: ClusterMember): MembershipView | Error {
  if (!Array.isArray(answer)) return new Error("GET /nodes did not answer a JSON array");
  if (answer.length > MAX_MEMBERS) return new Error(`GET /nodes lists more than ${MAX_MEMBERS} nodes`);
  const members: ClusterMember[] = [];
  const mapped: string[] = [];
  const admin: Record<string, string> = {};
  const seen = new Set<string>();
  for (const [i, n] of answer.entries()) {
    if (typeof n !== "object" || n === null) return new Error(`GET /nodes: entry ${i} is not an object`);
    const v = n as Record<string, unknown>;
    if (typeof v.id !== "string" || !ID.test(v.id))
      return new Error(`GET /nodes: entry ${i} has no valid id`);
    if (typeof v.addr !== "string" || !IPV4.test(v.addr))
      return new Error(`GET /nodes: node ${v.id} has no IPv4 addr`);
    if (seen.has(v.id)) return new Error(`GET /nodes: node ${v.id} listed twice`);
    seen.add(v.id);
    // This node's own entry keeps its configured address (the one its links come from).
    members.push(v.id === self.id ? self : { id: v.id, addr: v.addr, weight: 1 });
    const takesNew = v.state === "up" && v.draining !== true && typeof v.weight === "number" && v.weight > 0;
    if (takesNew) mapped.push(v.id);
    if (typeof v.admin === "string" && v.admin.startsWith("http")) admin[v.id] = v.admin;
  }
  if (!seen.has(self.id)) members.push(self);
  return { members, mapped, admin };
}

function sameView(a: MembershipView, b: MembershipView): boolean {
  const key = (v: MembershipView) =>
    JSON.stringify([v.members.map((m) => [m.id, m.addr, m.weight]), v.mapped, v.admin]);
  return key(a) === key(b);
}

/**
 * The node's current membership. apply() installs a view: checks it (unique ids and
 * addresses), replaces the mapper's nodes, and emits "change" (MembershipView) when it differs.
 */
export class Membership extends EventEmitter {
  private view: MembershipView;
  /** Views installed since start (the first one included). */
  changes = 1;

  constructor(
    private readonly cluster: ClusterConfig,
    readonly mapper: UrlMapper,
    initial: MembershipView = staticView(cluster),
  ) {
    super();
    this.view = initial;
    this.install(initial);
  }

  get current(): MembershipView {
    return this.view;
  }

  get self(): string {
    return this.cluster.self;
  }

  /** Installs `view`; false when nothing changed. Throws UserError for a bad view. */
  apply(view: MembershipView): boolean {
    if (sameView(view, this.view)) return false;
    checkCluster({ ...this.cluster, members: view.members });
    this.view = view;
    this.changes++;
    this.install(view);
    this.emit("change", view);
    return true;
  }

  private install(view: MembershipView): void {
    const byId = new Map(view.members.map((m) => [m.id, m]));
    this.mapper.replace(view.mapped.map((id) => ({ id, weight: byId.get(id)?.weight ?? 1 })));
    // Modes that read the cluster's member list (cf) see the current one.
    this.cluster.members = view.members;
  }
}

export interface MembershipPollOptions {
  /** The dispatcher's admin base URL (http://ADDR:PORT). */
  url: string;
  /** Bearer token (the cluster secret's admin token) sent with every poll. */
  token: string | undefined;
  intervalMs: number;
  timeoutMs: number;
  membership: Membership;
  selfMember: ClusterMember;
  log: Logger;
}

/** Largest GET /nodes answer read (a node entry is a few hundred bytes). */
const MAX_ANSWER_BYTES = 512 * 1024;

/** One GET /nodes: the view, or an Error. I/O edge. */
export async function fetchDispatcherView(
  url: string,
  token: string | undefined,
  timeoutMs: number,
  self: ClusterMember,
): Promise<MembershipView | Error> {
  try {
    const res = await request(`${url.replace(/\/+$/, "")}/nodes`, {
      headers: token !== undefined ? { authorization: `Bearer ${token}` } : {},
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return new Error(`GET /nodes answered ${res.statusCode}`);
    }
    const parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_ANSWER_BYTES) {
        res.body.destroy();
        return new Error(`GET /nodes answer larger than ${MAX_ANSWER_BYTES} bytes`);
      }
      parts.push(chunk as Buffer);
    }
    let json: unknown;
    try {
      json = JSON.parse(Buffer.concat(parts).toString("utf8"));
    } catch {
      return new Error("GET /nodes answer is not JSON");
    }
    return viewFromDispatcher(json, self);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

export interface MembershipPoll {
  polls: number;
  failures: number;
  /** Polls now (e.g. on SIGHUP), without waiting for the interval. */
  pollNow(): Promise<void>;
  stop(): void;
}

/** Polls the dispatcher every intervalMs (one poll at a time) and applies what it lists. */
export function startMembershipPoll(opts: MembershipPollOptions): MembershipPoll {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | null = null;
  let stopped = false;
  let lastError = "";
  const poll: MembershipPoll = {
    polls: 0,
    failures: 0,
    pollNow() {
      running ??= once().finally(() => {
        running = null;
      });
      return running;
    },
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
  const once = async () => {
    poll.polls++;
    const view = await fetchDispatcherView(opts.url, opts.token, opts.timeoutMs, opts.selfMember);
    if (view instanceof Error) {
      poll.failures++;
      // One line per distinct failure, not one per poll.
      if (view.message !== lastError) opts.log.warn({ error: view.message }, "membership poll failed");
      lastError = view.message;
      return;
    }
    lastError = "";
    try {
      if (opts.membership.apply(view))
        opts.log.info({ members: view.members.map((m) => m.id), mapped: view.mapped }, "membership changed");
    } catch (err) {
      poll.failures++;
      opts.log.warn({ error: (err as Error).message }, "membership from the dispatcher refused");
    }
  };
  const loop = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      void poll.pollNow().then(loop);
    }, opts.intervalMs);
    timer.unref();
  };
  loop();
  return poll;
}
