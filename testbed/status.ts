// The status document of a testbed (`sc-cluster testbed status --json`) and its table
// form. Tools and tests read this shape; later commands add `admin` and `pid` to hosts.

export type HostRole = "client" | "dispatcher" | "node" | "origin";

export interface HostStatus {
  name: string;
  role: HostRole;
  /** Network namespace of the host (`ip netns exec <netns> ...`). */
  netns: string;
  /** LAN address (198.18.0.0/24). */
  ip: string;
  /** Persistent TUN device in the host's namespace (dispatcher and nodes). */
  tun?: string;
  /** The TUN device is multi-queue (IFF_MULTI_QUEUE: one queue per `sc-cluster node --workers` thread). */
  tunMultiQueue?: boolean;
  /** URL of the host's control API, set by the cluster launcher. */
  admin?: string;
  /** PID of the host's main process, set by the cluster launcher. */
  pid?: number;
}

export interface TestbedStatus {
  prefix: string;
  vip: string;
  subnet: string;
  hosts: HostStatus[];
  /** Host whose TUN the VIP is routed to. */
  vipHost: string;
  /** tc rate of every host link, e.g. "100mbit", or null when unshaped. */
  rate: string | null;
  /** Percent of IPv4 packets dropped per pass through the switch (0 = none). */
  loss: number;
  /** Whether the root namespace has a veth into the LAN and a route to the VIP. */
  expose: boolean;
}

/** Readable table for `status` without --json. */
export function formatStatus(s: TestbedStatus): string {
  const shaping = [
    s.rate ? `rate ${s.rate}` : "unshaped",
    s.loss > 0 ? `loss ${s.loss}%` : "no loss",
    s.expose ? "exposed to the root namespace" : "not exposed",
  ].join(", ");
  const rows = [
    ["HOST", "ROLE", "NETNS", "IP", "TUN", "PID", "ADMIN"],
    ...s.hosts.map((h) => [
      h.name,
      h.role,
      h.netns,
      h.ip,
      h.tun === undefined ? "-" : `${h.tun}${h.tunMultiQueue ? " multi_queue" : ""}`,
      h.pid === undefined ? "-" : String(h.pid),
      h.admin ?? "-",
    ]),
  ];
  // Drop the launcher's columns while nothing fills them.
  const keep = rows[0]!.map((_, c) => c < 5 || rows.slice(1).some((r) => r[c] !== "-"));
  const cols = rows.map((r) => r.filter((_, c) => keep[c]));
  const widths = cols[0]!.map((_, c) => Math.max(...cols.map((r) => r[c]!.length)));
  const table = cols.map((r) =>
    r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  "),
  );
  return [
    `testbed '${s.prefix}': subnet ${s.subnet}, VIP ${s.vip} -> ${s.vipHost}; ${shaping}`,
    ...table,
  ].join("\n");
}
