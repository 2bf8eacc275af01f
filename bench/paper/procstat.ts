// CPU time of processes and of the whole machine, and a network namespace's link counters,
// read from /proc (Linux). Benchmarks snapshot these around every measured run so the report
// can say what limited a point: a process's CPU, the machine's, or a link.
import { readFileSync, readdirSync } from "node:fs";
import { execFileSync } from "node:child_process";

let clockTicks: number | undefined;

/** Clock ticks per second of /proc's CPU times (getconf CLK_TCK; 100 on Linux). */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** Fields of /proc/PID/stat after the command name (which may contain spaces). */
function statFields(pid: number | "self"): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** User + system CPU ticks of a process (all its threads); undefined when it is gone. */
export function processTicks(pid: number): number | undefined {
  const f = statFields(pid);
  // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
  return f ? Number(f[11]) + Number(f[12]) : undefined;
}

/** PIDs whose parent is `pid` (e.g. nginx's workers under its master). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (f && Number(f[1]) === pid) out.push(Number(name));
  }
  return out;
}

export interface MachineTicks {
  busy: number;
  total: number;
  cpus: number;
}

/** Busy and total ticks over all CPUs since boot (/proc/stat; idle and iowait are not busy). */
export function machineTicks(): MachineTicks {
  const text = readFileSync("/proc/stat", "utf8");
  const first = text.slice(0, text.indexOf("\n")).trim().split(/\s+/).slice(1).map(Number);
  const total = first.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = first[3]! + first[4]!;
  const cpus = text.split("\n").filter((l) => /^cpu\d+ /.test(l)).length;
  return { busy: total - idle, total, cpus };
}

export interface LinkCounters {
  rxBytes: number;
  txBytes: number;
}

/** Byte counters of `dev` in the network namespace of process `pid` (/proc/PID/net/dev). */
export function linkCounters(pid: number, dev = "eth0"): LinkCounters | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/net/dev`, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m || m[1] !== dev) continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    return { rxBytes: f[0]!, txBytes: f[8]! };
  }
  return undefined;
}

export function loadAverage(): number[] {
  try {
    return readFileSync("/proc/loadavg", "utf8").trim().split(/\s+/).slice(0, 3).map(Number);
  } catch {
    return [];
  }
}

/** Name of a process (/proc/PID/comm), or "?" when it is gone. */
function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "?";
  }
}

function allTicks(): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const t = processTicks(Number(name));
    if (t !== undefined) out.set(Number(name), t);
  }
  return out;
}

export interface QuietWait {
  /** Seconds spent waiting for the machine to calm down (0: it was quiet). */
  waitedS: number;
  /** Machine busy percent in the last sample. */
  busy: number;
  /** The busiest processes in the last busy sample ("tsc 63%"). */
  busiest: string[];
}

/**
 * Waits (at most `maxWaitS`) until the whole machine is at most `maxBusyPct` busy over a
 * one-second sample, so a benchmark run does not start while other work fills the CPUs.
 */
export async function waitForQuiet(
  maxBusyPct: number,
  maxWaitS: number,
  signal?: AbortSignal,
): Promise<QuietWait> {
  const t0 = performance.now();
  let busiest: string[] = [];
  for (;;) {
    signal?.throwIfAborted();
    const m0 = machineTicks();
    const p0 = allTicks();
    await new Promise((r) => setTimeout(r, 1000));
    const m1 = machineTicks();
    const p1 = allTicks();
    const total = m1.total - m0.total;
    const busy = total > 0 ? (100 * (m1.busy - m0.busy)) / total : 0;
    const waitedS = (performance.now() - t0) / 1000;
    if (busy <= maxBusyPct || waitedS >= maxWaitS)
      return { waitedS: waitedS < 1.5 ? 0 : waitedS, busy, busiest };
    const hz = ticksPerSecond();
    busiest = [...p1]
      .map(([pid, t]) => ({ pid, cpu: (100 * (t - (p0.get(pid) ?? t))) / hz }))
      .filter((x) => x.cpu >= 5)
      .sort((a, b) => b.cpu - a.cpu)
      .slice(0, 3)
      .map((x) => `${comm(x.pid)} ${x.cpu.toFixed(0)}%`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}
