// Cluster membership as a node sees it: every node's id, internal (LAN) address and weight,
// and which one is this node. The URL mapper is built from it; cluster modes (sc, cf-*) reach
// their peers on the internal addresses. Pure.
import { UrlMapper } from "./mapper.js";
import { UserError } from "../../common/errors.js";

export interface ClusterMember {
  id: string;
  /** Internal IPv4 address (peer traffic: SC messages, cache forwarding, GUE between nodes). */
  addr: string;
  weight: number;
}

export interface ClusterConfig {
  /** This node's id (one of members). */
  self: string;
  members: ClusterMember[];
  /** TCP port of every node's SC server (Socket Cloning messages). */
  scPort: number;
  /** TCP port of every node's peer cache endpoint (cooperative caching). */
  peerPort: number;
  /** UDP port on which nodes take GUE (from the dispatcher and from peers). */
  guePort: number;
}

export const CLUSTER_DEFAULTS = { scPort: 6081, peerPort: 6082, guePort: 6080 };

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Parses one `--peer ID=ADDR[,weight=W]` value. */
export function parsePeer(spec: string): ClusterMember {
  const m = /^([^=]+)=([^,]+)((?:,[a-z]+=[^,]*)*)$/.exec(spec.trim());
  if (!m || !ID.test(m[1]!) || !IPV4.test(m[2]!)) {
    throw new UserError(`--peer must be ID=IPV4[,weight=W] (id: letters, digits, . _ -), got '${spec}'`);
  }
  let weight = 1;
  for (const kv of m[3]!.split(",").filter(Boolean)) {
    const [k, v] = kv.split("=") as [string, string];
    if (k !== "weight") throw new UserError(`--peer ${spec}: unknown attribute '${k}'`);
    weight = Number(v);
    if (!Number.isInteger(weight) || weight < 1 || weight > 1000) {
      throw new UserError(`--peer ${spec}: weight must be a whole number 1..1000`);
    }
  }
  return { id: m[1]!, addr: m[2]!, weight };
}

/** Checks a membership list: unique ids and addresses, and self among them. */
export function checkCluster(c: ClusterConfig): ClusterConfig {
  const ids = new Set<string>();
  const addrs = new Set<string>();
  for (const m of c.members) {
    if (ids.has(m.id)) throw new UserError(`node id '${m.id}' appears twice in --peer`);
    if (addrs.has(m.addr)) throw new UserError(`address ${m.addr} appears twice in --peer`);
    ids.add(m.id);
    addrs.add(m.addr);
  }
  if (!ids.has(c.self)) {
    throw new UserError(`this node's id '${c.self}' (--node-id) is not among the --peer entries`);
  }
  return c;
}

export function clusterMapper(c: ClusterConfig): UrlMapper {
  return new UrlMapper(c.members.map((m) => ({ id: m.id, weight: m.weight })));
}

export function selfMember(c: ClusterConfig): ClusterMember {
  return c.members.find((m) => m.id === c.self)!;
}

/**
 * With data-path workers (node --workers N, cluster modes) worker i of every node forms plane
 * i: it listens for SC links and peer cache requests on the cluster's ports plus
 * WORKER_PORT_STRIDE x i and talks only to the same plane of its peers. A client's
 * connection is on worker steer(client) mod N of every node (the GUE steering), so a clone or
 * a relayed packet of it always goes between the same planes; every member must run the
 * same N (a clone that reaches the wrong worker is refused: "wrong-worker").
 */
export const WORKER_PORT_STRIDE = 100;

/** The cluster as worker `index` of a node sees it: its plane's SC and peer ports. */
export function planeOf(c: ClusterConfig, index: number): ClusterConfig {
  const shift = WORKER_PORT_STRIDE * index;
  return { ...c, scPort: c.scPort + shift, peerPort: c.peerPort + shift };
}

/** Checks that `workers` planes' ports exist and never collide; the message says which. */
export function checkPlanes(c: ClusterConfig, workers: number): void {
  const last = WORKER_PORT_STRIDE * (workers - 1);
  for (const [name, port] of [
    ["SC", c.scPort],
    ["peer", c.peerPort],
  ] as const) {
    if (port + last > 65535)
      throw new UserError(
        `with --workers ${workers} the ${name} port of worker ${workers - 1} would be ${port + last} (> 65535): ` +
          `worker i uses the ${name} port + ${WORKER_PORT_STRIDE} x i`,
      );
  }
  if (workers > 1 && (c.scPort - c.peerPort) % WORKER_PORT_STRIDE === 0)
    throw new UserError(
      `with --workers ${workers} the SC port (${c.scPort}) and the peer port (${c.peerPort}) must not differ ` +
        `by a multiple of ${WORKER_PORT_STRIDE}: worker i uses each + ${WORKER_PORT_STRIDE} x i`,
    );
}
