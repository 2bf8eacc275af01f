// Authentication of peer cache requests (cooperative caching, protocol.ts). The requester
// signs each request with the cluster's "peer-cache" key:
//
//   x-sc-node: <requester id>
//   x-sc-time: <unix time, ms>
//   x-sc-auth: hex(HMAC-SHA-256(key, id, method, request target, time))   (secret.ts mac())
//
// and the home checks it: the id is a member, the connection comes from that member's
// address, the time is within the freshness window of its own clock, the MAC matches. Pure:
// the time is a parameter. A request replayed within the window gets the same document again
// (GET/HEAD change nothing but cache ranking); answers are not authenticated (docs/security.md).
import type { IncomingHttpHeaders } from "node:http";
import { mac, sameBytes } from "../../sc/auth/secret.js";
import type { ClusterMember } from "../membership/config.js";
import { H_AUTH, H_NODE, H_TIME } from "./protocol.js";

/**
 * How far a request's time may be from the home's clock, either way (ms): a request may wait
 * in the requester's pool for up to its peer timeout (5 s by default) before it is sent, plus
 * the clock difference between nodes.
 */
export const PEER_AUTH_WINDOW_MS = 10_000;

export type PeerAuthFailure =
  /** No (or a malformed) x-sc-node, x-sc-time or x-sc-auth. */
  | "missing"
  /** x-sc-node is not a member of the cluster. */
  | "unknown_node"
  /** The connection does not come from that member's address. */
  | "wrong_address"
  /** x-sc-time is outside the freshness window. */
  | "stale"
  /** The MAC does not match (another key, or a changed field). */
  | "bad_mac";

export const PEER_AUTH_FAILURES: readonly PeerAuthFailure[] = [
  "missing",
  "unknown_node",
  "wrong_address",
  "stale",
  "bad_mac",
];

const TIME = /^\d{1,15}$/;
const MAC_HEX = /^[0-9a-f]{64}$/;

function one(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return typeof v === "string" ? v : undefined;
}

export class PeerAuth {
  private readonly addrOf: ReadonlyMap<string, string>;

  constructor(
    private readonly key: Buffer,
    members: readonly ClusterMember[],
    private readonly windowMs = PEER_AUTH_WINDOW_MS,
  ) {
    this.addrOf = new Map(members.map((m) => [m.id, m.addr]));
  }

  /** The headers that authenticate a request of `selfId` made at `nowMs`. */
  sign(selfId: string, method: string, target: string, nowMs: number): Record<string, string> {
    const time = String(Math.floor(nowMs));
    return {
      [H_NODE]: selfId,
      [H_TIME]: time,
      [H_AUTH]: mac(this.key, selfId, method, target, time).toString("hex"),
    };
  }

  /** null when the request is authentic; else why not. */
  verify(
    headers: IncomingHttpHeaders,
    method: string,
    target: string,
    remoteAddr: string | undefined,
    nowMs: number,
  ): PeerAuthFailure | null {
    const id = one(headers, H_NODE);
    const time = one(headers, H_TIME);
    const auth = one(headers, H_AUTH);
    if (id === undefined || time === undefined || auth === undefined) return "missing";
    if (!TIME.test(time) || !MAC_HEX.test(auth)) return "missing";
    const addr = this.addrOf.get(id);
    if (addr === undefined) return "unknown_node";
    if (remoteAddr !== addr) return "wrong_address";
    if (Math.abs(Number(time) - nowMs) > this.windowMs) return "stale";
    const expected = mac(this.key, id, method, target, time);
    return sameBytes(expected, Buffer.from(auth, "hex")) ? null : "bad_mac";
  }
}
