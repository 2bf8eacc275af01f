// The commands that build a testbed, generated from its plan as text: `ip -batch` input
// and small /bin/sh scripts run inside each namespace (one process per namespace keeps
// `up` fast). Pure, so tests can read exactly what would run.
import {
  BRIDGE_DEV,
  EXPOSE_IP,
  EXPOSE_PORT,
  LAN_DEV,
  PREFIX_LEN,
  TUN_DEV,
  VIP,
  shQuote,
  type TestbedPlan,
} from "./topology.js";
import type { HostStatus } from "./status.js";

/** nftables table (bridge family) in the switch namespace that injects loss. */
export const LOSS_TABLE = "sc_testbed";

/** `ip -batch` input that creates every namespace. */
export function netnsAddBatch(plan: TestbedPlan): string {
  return [plan.switchNetns, ...plan.hosts.map((h) => h.netns)].map((n) => `netns add ${n}\n`).join("");
}

/**
 * `ip -n <switch> -batch` input: the bridge, and one veth per host whose far end is
 * created directly inside the host's namespace as eth0 (nothing appears in the root
 * namespace, so testbeds never collide on link names).
 */
export function switchBatch(plan: TestbedPlan): string {
  const lines = [`link add name ${BRIDGE_DEV} type bridge`, `link set dev ${BRIDGE_DEV} up`];
  for (const h of plan.hosts) {
    // "name" is explicit: a bare short name can parse as a keyword abbreviation ("b" = broadcast).
    lines.push(`link add name ${h.name} type veth peer name ${LAN_DEV} netns ${h.netns}`);
    lines.push(`link set dev ${h.name} master ${BRIDGE_DEV}`, `link set dev ${h.name} up`);
  }
  if (plan.expose)
    lines.push(`link set dev ${EXPOSE_PORT} master ${BRIDGE_DEV}`, `link set dev ${EXPOSE_PORT} up`);
  return lines.join("\n") + "\n";
}

/** Root-namespace `ip -batch` that creates the expose veth (its far end in the switch). */
export function exposeLinkBatch(plan: TestbedPlan): string {
  return `link add name ${plan.exposeDev} type veth peer name ${EXPOSE_PORT} netns ${plan.switchNetns}\n`;
}

/** Root-namespace `ip -batch` that addresses the expose veth and routes the VIP into the LAN. */
export function exposeAddrBatch(plan: TestbedPlan): string {
  return [
    `addr add ${EXPOSE_IP}/${PREFIX_LEN} dev ${plan.exposeDev}`,
    `link set dev ${plan.exposeDev} up`,
    `route add ${VIP}/32 via ${vipHostIp(plan)} dev ${plan.exposeDev}`,
  ]
    .map((l) => l + "\n")
    .join("");
}

export function vipHostIp(plan: TestbedPlan): string {
  const h = plan.hosts.find((x) => x.name === plan.vipHost);
  if (!h) throw new Error(`vip host ${plan.vipHost} is not in the plan`);
  return h.ip;
}

/**
 * Token bucket for a link of `bps`: the bucket holds ~2 ms of traffic (at least a few
 * full frames, so GSO bursts pass), the queue ~20 ms; measured in docs/testbed.md.
 */
export function tbfArgs(bps: number): string[] {
  const bytesPerSecond = bps / 8;
  const burst = Math.max(4 * 1514, Math.ceil(bytesPerSecond * 0.002));
  const limit = Math.max(8 * 1514, Math.ceil(bytesPerSecond * 0.02));
  return ["tbf", "rate", `${bps}bit`, "burst", `${burst}b`, "limit", `${limit}b`];
}

/**
 * DSCP classes a shaped link sends first (`u32 match ip dsfield VALUE MASK`): 101xxx (CS5, the
 * SC traffic's class, sc/net/priority.ts; also EF and VOICE-ADMIT) and 11xxxx (CS6, CS7:
 * network control). Classified on the IP header, so it works for forwarded and bridged
 * packets as well as for the host's own.
 */
export const PRIORITY_DSFIELDS: readonly { value: number; mask: number }[] = [
  { value: 0xa0, mask: 0xe0 },
  { value: 0xc0, mask: 0xc0 },
];

/**
 * `tc` argument lists that shape `dev` to `bps` with a priority stage under the rate limit:
 *
 *   tbf 1: (rate, ~2 ms bucket)               the link's rate, as without the stage
 *     htb 10: default 2                       only for its strict priority between classes
 *       10:1 prio 0 -> bfifo 11:   IP packets with DSCP CS5..CS7 (u32 filters)
 *       10:2 prio 1 -> bfifo 12:   everything else (the bulk)
 *
 * The htb classes run at twice the link's rate with a bucket larger than the tbf's bursts, so
 * htb never throttles (the tbf does) and only decides the order: a marked packet waits at most
 * for the one bulk packet the tbf already holds. Each band holds `limit` bytes (~20 ms of the
 * rate, at least `queueBytes`), so unmarked traffic sees the same queue as with the plain tbf.
 * htb and u32 rather than prio: this machine's kernel has no sch_prio (nor fq, sfq, ets, drr;
 * htb, tbf, pfifo_fast, [bp]fifo and cls_u32 are built in). The dev must have no root qdisc yet.
 */
export function linkShaping(dev: string, bps: number, queueBytes = 0): string[][] {
  const tbf = tbfArgs(bps);
  const at = tbf.indexOf("limit") + 1;
  if (queueBytes > parseInt(tbf[at]!, 10)) tbf[at] = `${queueBytes}b`;
  const limit = tbf[at]!;
  const classBurst = `${2 * parseInt(tbf[tbf.indexOf("burst") + 1]!, 10)}b`;
  const htbClass = (minor: number, prio: number) => [
    "class",
    "add",
    "dev",
    dev,
    "parent",
    "10:",
    "classid",
    `10:${minor}`,
    "htb",
    "rate",
    `${2 * bps}bit`,
    "burst",
    classBurst,
    "cburst",
    classBurst,
    "quantum",
    "1514",
    "prio",
    String(prio),
  ];
  const q = (...args: string[]) => ["qdisc", "add", "dev", dev, ...args];
  return [
    q("root", "handle", "1:", ...tbf),
    q("parent", "1:1", "handle", "10:", "htb", "default", "2"),
    htbClass(1, 0),
    htbClass(2, 1),
    q("parent", "10:1", "handle", "11:", "bfifo", "limit", limit),
    q("parent", "10:2", "handle", "12:", "bfifo", "limit", limit),
    ...PRIORITY_DSFIELDS.map((f, i) => [
      "filter",
      "add",
      "dev",
      dev,
      "parent",
      "10:",
      "protocol",
      "ip",
      "prio",
      String(i + 1),
      "u32",
      "match",
      "ip",
      "dsfield",
      `0x${f.value.toString(16)}`,
      `0x${f.mask.toString(16)}`,
      "flowid",
      "10:1",
    ]),
  ];
}

/** linkShaping as shell lines (`tc ...`). */
function shapingLines(dev: string, bps: number): string[] {
  return linkShaping(dev, bps).map((args) => `tc ${args.join(" ")}`);
}

/** linkShaping as `tc -batch` input. */
export function shapingBatch(dev: string, bps: number, queueBytes = 0): string {
  return linkShaping(dev, bps, queueBytes)
    .map((args) => args.join(" ") + "\n")
    .join("");
}

function sysctl(path: string, value: number): string {
  return `echo ${value} > /proc/sys/${path}`;
}

/** Sysctls every namespace gets: IPv4 only, no reverse-path filter. */
function commonSysctls(): string[] {
  return [
    // IPv4-only product: no link-local addresses, DAD, MLD or router solicitations on the LAN or into TUNs.
    `if [ -d /proc/sys/net/ipv6 ]; then ${sysctl("net/ipv6/conf/all/disable_ipv6", 1)}; ${sysctl("net/ipv6/conf/default/disable_ipv6", 1)}; fi`,
    // Explicit, so hosts behave the same whatever the root's defaults (devconf_inherit_init_net).
    sysctl("net/ipv4/conf/all/rp_filter", 0),
    sysctl("net/ipv4/conf/default/rp_filter", 0),
  ];
}

/** The /bin/sh script run inside a host's namespace. */
export function hostScript(plan: TestbedPlan, host: HostStatus): string {
  const lines = commonSysctls();
  // Direct return: a node's user-space stack writes packets with the VIP as source into
  // its TUN and the kernel forwards them to the client; the dispatcher (or vip-host)
  // forwards client packets for the VIP into its TUN.
  lines.push(sysctl("net/ipv4/ip_forward", host.tun ? 1 : 0));
  if (host.tun) {
    lines.push(
      sysctl("net/ipv4/conf/all/send_redirects", 0),
      sysctl("net/ipv4/conf/default/send_redirects", 0),
    );
  }
  lines.push(
    "ip link set dev lo up",
    `ip addr add ${host.ip}/${PREFIX_LEN} dev ${LAN_DEV}`,
    `ip link set dev ${LAN_DEV} up`,
  );
  if (host.tun) {
    lines.push(
      // Multi-queue from the start: the flag is fixed when the device is made.
      `ip tuntap add dev ${host.tun} mode tun${host.tunMultiQueue ? " multi_queue" : ""}`,
      `ip link set dev ${host.tun} mtu 1500 up`,
      // The kernel uses max(all, dev): both must be 0 (strict drops every direct-return
      // packet; loose fails while the TUN has no IPv4 address).
      sysctl(`net/ipv4/conf/${host.tun}/rp_filter`, 0),
    );
  }
  if (host.name === plan.vipHost) lines.push(`ip route add ${VIP}/32 dev ${TUN_DEV}`);
  if (host.role === "client") lines.push(`ip route add ${VIP}/32 via ${vipHostIp(plan)} dev ${LAN_DEV}`);
  if (plan.rateBitsPerSecond !== null) lines.push(...shapingLines(LAN_DEV, plan.rateBitsPerSecond));
  return lines.join("\n") + "\n";
}

/** nft commands (one argument) that drop `loss` percent of IPv4 frames crossing the bridge. */
export function lossRules(loss: number): string {
  // ARP is spared so neighbour resolution does not add its own failures; per 10000 so 0.01% steps work.
  const threshold = Math.round(loss * 100);
  return [
    `add table bridge ${LOSS_TABLE}`,
    `add chain bridge ${LOSS_TABLE} forward { type filter hook forward priority 0; policy accept; }`,
    `add rule bridge ${LOSS_TABLE} forward ether type ip numgen random mod 10000 < ${threshold} drop`,
  ].join("; ");
}

/** The /bin/sh script run inside the switch namespace: shaping toward hosts, loss. */
export function switchScript(plan: TestbedPlan): string {
  const lines = [
    `if [ -d /proc/sys/net/ipv6 ]; then ${sysctl("net/ipv6/conf/all/disable_ipv6", 1)}; ${sysctl("net/ipv6/conf/default/disable_ipv6", 1)}; fi`,
    "ip link set dev lo up",
  ];
  if (plan.rateBitsPerSecond !== null) {
    // Each port's egress is the host's download direction; the host's own eth0 egress
    // (hostScript) is its upload direction.
    for (const h of plan.hosts) lines.push(...shapingLines(h.name, plan.rateBitsPerSecond));
  }
  if (plan.loss > 0) lines.push(`nft ${shQuote(lossRules(plan.loss))}`);
  return lines.join("\n") + "\n";
}
