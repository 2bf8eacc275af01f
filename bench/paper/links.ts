// The benchmarks' link set-up (pure): which rate each testbed host's link gets, and the one
// sentence every result table carries about it. The default models the paper's testbed: every
// server-side machine (the nodes, the front-end that runs the dispatcher or a proxy, the origin)
// had one Fast Ethernet interface on one switch, so every server-side host gets the same rate;
// the client side (the paper's 19 client machines) is not the bottleneck and stays unshaped.
import { parseRate } from "../../testbed/topology.js";

/** A link's rate in tc syntax ("10mbit"), or null for unshaped. */
export type Rate = string | null;

export interface LinkRates {
  /** Every node's link. */
  node: Rate;
  /** The dispatcher's host, where the proxies (nginx, haproxy) and the LARD front-end run too. */
  frontend: Rate;
  origin: Rate;
  client: Rate;
}

/** The testbed hosts of a cluster of `nodes` nodes with their rates, and a queue for shaped ones. */
export interface HostLink {
  host: string;
  rate: Rate;
  queueBytes?: number;
}

/**
 * Rates from the options: the front-end and the origin default to the nodes' rate (equal hosts),
 * the client to unshaped.
 */
export function linkRates(o: {
  rate: Rate;
  frontendRate?: Rate | undefined;
  originRate?: Rate | undefined;
  clientRate?: Rate | undefined;
}): LinkRates {
  return {
    node: o.rate,
    frontend: o.frontendRate === undefined ? o.rate : o.frontendRate,
    origin: o.originRate === undefined ? o.rate : o.originRate,
    client: o.clientRate === undefined ? null : o.clientRate,
  };
}

/**
 * Every host's link for a cluster of `nodes` nodes. `queueBytes` is given to the shaped server-side
 * links (nodes and origin as a switch port's buffer; the front-end too, so it queues like a node).
 */
export function hostLinks(nodes: number, r: LinkRates, queueBytes?: number): HostLink[] {
  const q = queueBytes === undefined ? {} : { queueBytes };
  return [
    ...Array.from({ length: nodes }, (_, i) => ({ host: `node${i + 1}`, rate: r.node, ...q })),
    { host: "dispatcher", rate: r.frontend, ...q },
    { host: "origin", rate: r.origin, ...q },
    { host: "client", rate: r.client },
  ];
}

/** Bits per second of a rate, null for unshaped. */
export function rateBps(rate: Rate): number | null {
  return rate === null ? null : parseRate(rate);
}

/** A link's rate in Mbit/s, null for unshaped. */
export function rateMbps(rate: Rate): number | null {
  const bps = rateBps(rate);
  return bps === null ? null : bps / 1e6;
}

/** "10 Mbit/s", "1.5 Mbit/s", "512 kbit/s", "unshaped". */
export function rateLabel(rate: Rate | "unshaped"): string {
  if (rate === null || rate === "unshaped") return "unshaped";
  const bps = parseRate(rate);
  if (bps >= 1e9 && bps % 1e8 === 0) return `${bps / 1e9} Gbit/s`;
  if (bps >= 1e6) return `${Number((bps / 1e6).toPrecision(6))} Mbit/s`;
  if (bps >= 1e3) return `${Number((bps / 1e3).toPrecision(6))} kbit/s`;
  return `${bps} bit/s`;
}

/** `rate` times `k` in tc syntax (the sweep's front-end: k times a node's rate). */
export function scaleRate(rate: string, k: number): string {
  const bps = Math.round(parseRate(rate) * k);
  if (bps % 1_000_000 === 0) return `${bps / 1_000_000}mbit`;
  if (bps % 1000 === 0) return `${bps / 1000}kbit`;
  return `${bps}bit`;
}

/** The params' form of a rate: tc syntax or "unshaped". */
export const rateParam = (rate: Rate): string => rate ?? "unshaped";

/** A rate from the params' form. */
export const paramRate = (v: unknown): Rate => (typeof v !== "string" || v === "unshaped" ? null : v);

/** True when every server-side host (nodes, front-end, origin) has the same rate. */
export function equalHosts(r: LinkRates): boolean {
  const same = (a: Rate, b: Rate) => (a === null || b === null ? a === b : parseRate(a) === parseRate(b));
  return same(r.node, r.frontend) && same(r.node, r.origin);
}

/** "at 10 Mbit/s", or "unshaped". */
function atRate(rate: Rate): string {
  return rate === null ? "unshaped" : `at ${rateLabel(rate)}`;
}

/** "10x a node's", "0.5x a node's"; "" when either side is unshaped. */
function ratioTo(rate: Rate, node: Rate): string {
  if (rate === null || node === null) return "";
  const k = parseRate(rate) / parseRate(node);
  return ` (${Number(k.toPrecision(3))}x a node's)`;
}

/**
 * The sentence every result table carries: the link set-up, and whether it models the paper's
 * equal hosts. `frontend` may be "per row" for the sensitivity sweep, whose rows vary it.
 */
export function linkSentence(r: LinkRates, nodes: string, frontend?: "per row"): string {
  const client = `the client ${atRate(r.client)}`;
  if (frontend === "per row")
    return (
      `Links: each of ${nodes} ${atRate(r.node)}, the origin ${atRate(r.origin)}` +
      `${ratioTo(r.origin, r.node)}, the dispatcher/proxy host at the row's multiple of a node's rate ` +
      `(unshaped: no limit), ${client}.`
    );
  if (equalHosts(r))
    return (
      `Links: equal hosts as in the paper's testbed: every server-side host (${nodes}, the dispatcher/proxy host, ` +
      `the origin) ${atRate(r.node)}, ${client}.`
    );
  return (
    `Links: not equal hosts: each of ${nodes} ${atRate(r.node)}, the dispatcher/proxy host ` +
    `${atRate(r.frontend)}${ratioTo(r.frontend, r.node)}, the origin ${atRate(r.origin)}` +
    `${ratioTo(r.origin, r.node)}, ${client}.`
  );
}

/** The link rates recorded in a result's params (rate, frontend_rate, origin_rate, client_rate). */
export function paramsLinkRates(p: Record<string, unknown>): LinkRates {
  return {
    node: paramRate(p.rate),
    frontend: paramRate(p.frontend_rate),
    origin: paramRate(p.origin_rate),
    client: paramRate(p.client_rate),
  };
}
