// The dispatcher's node set: what the admin API and the health checker change, and what the
// scheduler and the data path read. Pure logic.
//
// A node is identified by its id. It gets a small slot number (an index the connection
// table stores per connection) that stays fixed while any connection refers to it. A node
// takes new connections only when it is healthy, not removed and has a positive weight;
// existing connections keep going to it whatever happens to its weight or membership (a
// removed node drains and its slot is freed when its last connection ends), and also while
// its health checks fail, for a grace period (the forwarder decides, from `downSince` and
// `gone`, when they are reset instead).
import { GUE_PORT, ipv4FromString, ipv4ToString, isWireError } from "../sc/wire/index.js";
import { UserError } from "../common/errors.js";

export const MAX_WEIGHT = 65535;

/** How a node is configured (command line, admin API). */
export interface NodeSpec {
  id: string;
  /** uint32 IPv4 address the GUE packets go to. */
  addr: number;
  /** UDP port of the node's GUE receiver. */
  port: number;
  /** 0..65535; 0 = take no new connections (quiesce). */
  weight: number;
  /** Base URL of the node's control API; health checks GET `${admin}/healthz`. None: no checks. */
  admin?: string;
}

/**
 * What the health checks say about a node: up; down (checks fail: no new connections, its
 * established ones keep flowing for a grace period); gone (its admin port refuses
 * connections: the node's host answers but its process is not there, so its connections are
 * lost and are reset at once).
 */
export type NodeHealthState = "up" | "down" | "gone";

export interface Node extends NodeSpec {
  readonly slot: number;
  /** The address as text (for sockets and reports). */
  addrText: string;
  /** Result of the health checks ("up"); nodes without an admin URL are always healthy. */
  healthy: boolean;
  /** Its first health verdict (up, down or gone) is in; always true without checks. */
  checked: boolean;
  /** Down with its admin port refusing connections (see NodeHealthState). */
  gone: boolean;
  /** When it went down (the caller's clock, ms); meaningful while !healthy. */
  downSince: number;
  /** Client packets of existing connections forwarded while it was down (within the grace). */
  downForwarded: number;
  /** Deleted through the admin API: takes no new connections, drains, then disappears. */
  removed: boolean;
  /** Client packets / bytes (inner IPv4 packets) forwarded to it. */
  packets: number;
  bytes: number;
  /** New connections scheduled to it. */
  scheduled: number;
  /** RSTs sent to its clients: it was removed while down, gone, or down past the grace. */
  rsts: number;
}

export class NodeSpecError extends UserError {
  constructor(message: string) {
    super(message, "ERR_NODE_SPEC");
  }
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function checkNodeId(id: string): void {
  if (!ID_RE.test(id)) {
    throw new NodeSpecError(
      `node id '${id}' must be 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit`,
    );
  }
}

export function parseWeight(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > MAX_WEIGHT) {
    throw new NodeSpecError(`weight must be a whole number 0..${MAX_WEIGHT}, got '${text}'`);
  }
  return Number(text);
}

export function parseAddrPort(text: string, defaultPort: number): { addr: number; port: number } {
  const m = /^([0-9.]+)(?::(\d{1,5}))?$/.exec(text);
  const addr = m ? ipv4FromString(m[1]!) : null;
  if (!m || addr === null || isWireError(addr)) throw new NodeSpecError(`'${text}' is not IPV4[:PORT]`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (port < 1 || port > 65535) throw new NodeSpecError(`port in '${text}' must be 1..65535`);
  return { addr, port };
}

/**
 * Checks a node's admin URL (health checks GET `${url}/healthz`) and returns it without
 * trailing slashes. Its host must be the node's own address, written as an IPv4 literal: the
 * checker only ever talks to the members' admin ports, so an admin URL cannot make the
 * dispatcher probe other hosts (a port scanner) or follow a name elsewhere.
 */
export function checkAdminUrl(text: string, nodeAddr: number): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new NodeSpecError(`admin URL '${text.slice(0, 200)}' is not a URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new NodeSpecError(`admin URL '${text.slice(0, 200)}' must be http:// or https://`);
  }
  if (u.username !== "" || u.password !== "" || u.search !== "" || u.hash !== "") {
    throw new NodeSpecError(`admin URL '${text.slice(0, 200)}' must have no user, query or fragment`);
  }
  const host = ipv4FromString(u.hostname);
  if (isWireError(host) || host !== nodeAddr >>> 0) {
    throw new NodeSpecError(
      `admin URL '${text.slice(0, 200)}' must be on the node's own address ${ipv4ToString(nodeAddr >>> 0)}`,
    );
  }
  // A loop, not /\/+$/: that regex retries from every slash of a long run (quadratic on a
  // PUT body of slashes followed by one other character).
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x2f) end--;
  return text.slice(0, end);
}

/**
 * Parses `--node ID=ADDR[:PORT][,weight=W][,admin=URL]`, e.g.
 * `node1=198.18.0.11,weight=2,admin=http://198.18.0.11:9100`. PORT defaults to the GUE port.
 */
export function parseNodeSpec(text: string, defaultPort = GUE_PORT): NodeSpec {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new NodeSpecError(`--node '${text}': expected ID=ADDR[:PORT][,weight=W][,admin=URL]`);
  const id = text.slice(0, eq);
  checkNodeId(id);
  const [target, ...attrs] = text.slice(eq + 1).split(",");
  const { addr, port } = parseAddrPort(target ?? "", defaultPort);
  const spec: NodeSpec = { id, addr, port, weight: 1 };
  for (const attr of attrs) {
    const i = attr.indexOf("=");
    const key = i < 0 ? attr : attr.slice(0, i);
    const value = i < 0 ? "" : attr.slice(i + 1);
    if (key === "weight") spec.weight = parseWeight(value);
    else if (key === "admin") spec.admin = checkAdminUrl(value, addr);
    else throw new NodeSpecError(`--node '${text}': unknown attribute '${key}' (known: weight, admin)`);
  }
  return spec;
}

export function formatNodeSpec(n: NodeSpec, defaultPort = GUE_PORT): string {
  let s = `${n.id}=${ipv4ToString(n.addr)}${n.port === defaultPort ? "" : `:${n.port}`}`;
  if (n.weight !== 1) s += `,weight=${n.weight}`;
  if (n.admin !== undefined) s += `,admin=${n.admin}`;
  return s;
}

export class NodePool {
  private readonly slots: (Node | undefined)[];
  private readonly byId = new Map<string, Node>();
  /** Bumped on every change that affects scheduling. */
  version = 0;

  constructor(readonly maxNodes = 256) {
    this.slots = new Array<Node | undefined>(maxNodes);
  }

  /** Live node records (removed ones included while they drain), in slot order. */
  list(): Node[] {
    return this.slots.filter((n): n is Node => n !== undefined);
  }

  get(id: string): Node | undefined {
    return this.byId.get(id);
  }

  bySlot(slot: number): Node | undefined {
    return this.slots[slot];
  }

  /**
   * Adds a node or changes one (address, port, weight, admin URL). A node that was removed
   * and is still draining comes back with its slot. A node with checks starts unhealthy until
   * its first check passes; without checks it is healthy at once.
   */
  upsert(spec: NodeSpec): { node: Node; created: boolean } {
    checkNodeId(spec.id);
    if (!Number.isInteger(spec.weight) || spec.weight < 0 || spec.weight > MAX_WEIGHT) {
      throw new NodeSpecError(`weight must be 0..${MAX_WEIGHT}`);
    }
    if (spec.admin !== undefined) checkAdminUrl(spec.admin, spec.addr);
    const existing = this.byId.get(spec.id);
    if (existing) {
      existing.addr = spec.addr >>> 0;
      existing.addrText = ipv4ToString(existing.addr);
      existing.port = spec.port;
      existing.weight = spec.weight;
      // A new admin URL keeps the health state until its first check (which counts at
      // once); without one the node is no longer checked and counts as up.
      existing.admin = spec.admin;
      if (spec.admin === undefined) this.markUp(existing);
      existing.removed = false;
      this.version++;
      return { node: existing, created: false };
    }
    const slot = this.slots.findIndex((n) => n === undefined);
    if (slot < 0) throw new NodeSpecError(`at most ${this.maxNodes} nodes`);
    const node: Node = {
      ...spec,
      addr: spec.addr >>> 0,
      slot,
      addrText: ipv4ToString(spec.addr),
      healthy: spec.admin === undefined,
      checked: spec.admin === undefined,
      gone: false,
      // Never up: it has no connections a grace could apply to.
      downSince: -Infinity,
      downForwarded: 0,
      removed: false,
      packets: 0,
      bytes: 0,
      scheduled: 0,
      rsts: 0,
    };
    this.slots[slot] = node;
    this.byId.set(spec.id, node);
    this.version++;
    return { node, created: true };
  }

  /** Takes a node out of scheduling; it is forgotten once `connections(slot)` is 0 (reap). */
  remove(id: string): boolean {
    const node = this.byId.get(id);
    if (!node || node.removed) return false;
    node.removed = true;
    this.version++;
    return true;
  }

  /**
   * Records a health-check verdict at `now` (the data path's clock, ms). Returns whether
   * anything changed; only up <-> not up changes scheduling.
   */
  setHealth(id: string, state: NodeHealthState, now: number): boolean {
    const node = this.byId.get(id);
    if (!node) return false;
    const first = !node.checked;
    if (first) {
      node.checked = true;
      // A first verdict of down starts the grace too: after a dispatcher restart the node may
      // hold connections (stopped for a moment) that its home placement sends to it.
      if (state !== "up") node.downSince = now;
      this.version++;
    }
    if (state === "up") {
      if (node.healthy) return first;
      this.markUp(node);
      return true;
    }
    // Gone stays gone until the node is up again: the connections it lost stay lost.
    const gone = state === "gone" || (!node.healthy && node.gone);
    if (!node.healthy && node.gone === gone) return first;
    if (node.healthy) {
      node.healthy = false;
      node.downSince = now;
      this.version++;
    }
    node.gone = gone;
    return true;
  }

  private markUp(node: Node): void {
    if (!node.healthy) this.version++;
    node.healthy = true;
    node.checked = true;
    node.gone = false;
  }

  /** Frees the slots of removed nodes that have no connection left; returns their ids. */
  reap(connections: (slot: number) => number): string[] {
    const gone: string[] = [];
    for (const node of this.list()) {
      if (node.removed && connections(node.slot) === 0) {
        this.slots[node.slot] = undefined;
        this.byId.delete(node.id);
        gone.push(node.id);
      }
    }
    return gone;
  }

  /**
   * Some node (not removed) still waits for its first health verdict: right after a start the
   * eligible set is partial, so a consistent scheduler's pick may differ from the one a
   * dispatcher with every verdict made (e.g. the one before a restart).
   */
  awaitingFirstVerdict(): boolean {
    return this.list().some((n) => !n.checked && !n.removed);
  }

  /**
   * The nodes a consistent scheduler's home placement is built from: every node not removed
   * with a positive weight, up or not (handover.ts).
   */
  home(): { slot: number; id: string; weight: number }[] {
    return this.list()
      .filter((n) => !n.removed && n.weight > 0)
      .map((n) => ({ slot: n.slot, id: n.id, weight: n.weight }));
  }

  /** Nodes that may take new connections. */
  eligible(): { slot: number; id: string; weight: number }[] {
    return this.list()
      .filter((n) => n.healthy && !n.removed && n.weight > 0)
      .map((n) => ({ slot: n.slot, id: n.id, weight: n.weight }));
  }
}

/**
 * What a reload (SIGHUP) changes in the node set: the --node list `after` compared with the
 * list it replaces, `before`. Nodes added or changed there are put, nodes taken out are
 * deleted (they drain); nodes the admin API added are in neither list and stay. Pure.
 */
export function nodeListChanges(
  before: readonly NodeSpec[],
  after: readonly NodeSpec[],
): { put: NodeSpec[]; remove: string[] } {
  const old = new Map(before.map((n) => [n.id, n]));
  const put = after.filter((n) => {
    const o = old.get(n.id);
    return (
      o === undefined ||
      o.addr !== n.addr ||
      o.port !== n.port ||
      o.weight !== n.weight ||
      o.admin !== n.admin
    );
  });
  const kept = new Set(after.map((n) => n.id));
  return { put, remove: before.filter((n) => !kept.has(n.id)).map((n) => n.id) };
}
