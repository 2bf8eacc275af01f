// The readable form of `sc-cluster status` (and of what `up` prints): the testbed's line, one
// row per host with its process and health, and the cluster's settings. Pure.
import type { ClusterStatus } from "./cluster.js";

function bytesText(n: number): string {
  for (const [unit, size] of [
    ["GiB", 1024 ** 3],
    ["MiB", 1024 ** 2],
    ["KiB", 1024],
  ] as const)
    if (n >= size && n % (size / 1024) === 0) return `${+(n / size).toFixed(2)} ${unit}`;
  return `${n} B`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) =>
    r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  "),
  );
}

export function formatClusterStatus(s: ClusterStatus): string {
  const shaping = [
    s.rate ? `rate ${s.rate}` : "unshaped",
    s.loss > 0 ? `loss ${s.loss}%` : "no loss",
    s.expose ? "exposed" : "not exposed",
  ].join(", ");
  const c = s.cluster;
  const lines = [`testbed '${s.prefix}': subnet ${s.subnet}, VIP ${s.vip} -> ${s.vipHost}; ${shaping}`];
  if (!c) {
    lines.push("no cluster processes (a bare testbed: sc-cluster testbed up)");
  } else {
    const state = c.detached
      ? "detached"
      : c.launcherRunning
        ? `watched by launcher pid ${c.launcherPid}`
        : `launcher pid ${c.launcherPid} is gone`;
    lines.push(
      `cluster: ${c.nodes} node${c.nodes === 1 ? "" : "s"}` +
        (c.workers > 1 ? ` x ${c.workers} workers` : "") +
        `, mode ${c.mode}, scheduler ${c.scheduler}, ` +
        `cache ${bytesText(c.cacheBytes)} per node; ${state}` +
        (c.startSeconds !== null
          ? `; healthy ${c.startSeconds.toFixed(1)} s after start`
          : "; never became healthy"),
      `site ${c.site}${c.demo ? " (demo)" : ""}; logs in ${c.logDir}`,
    );
  }
  const byHost = new Map((c?.processes ?? []).map((p) => [p.host, p]));
  // URL: the control API, or for the origin the server itself.
  const rows = [["HOST", "ROLE", "NETNS", "IP", "PID", "HEALTH", "URL"]];
  for (const h of s.hosts) {
    const p = byHost.get(h.name);
    let health = "-";
    if (p) {
      health = !p.running ? "exited" : p.detail;
      if (p.scheduled !== undefined && p.running) health += p.scheduled ? ", scheduled" : ", NOT scheduled";
    }
    rows.push([
      h.name,
      h.role,
      h.netns,
      h.ip,
      h.pid === undefined ? "-" : String(h.pid),
      health,
      h.admin ?? (p?.role === "origin" ? (c?.originUrl ?? "-") : "-"),
    ]);
  }
  lines.push(...table(rows));
  if (c?.vip)
    lines.push(
      `VIP ${c.vipUrl}: ${c.vip.answers ? `answers (${c.vip.detail})` : `no answer (${c.vip.detail})`}`,
    );
  return lines.join("\n");
}
