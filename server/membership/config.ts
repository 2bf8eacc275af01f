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
