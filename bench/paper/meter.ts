// Measures what every process, the machine and the links did during one benchmark run:
// CPU per process (of one core), machine CPU busy (of all cores), bytes per link. Snapshots are
// taken every few hundred ms, so the usage can be cut to the load generator's own measuring
// window (its start-up, trace loading and exit are left out).
import {
  childPids,
  linkCounters,
  machineTicks,
  processTicks,
  ticksPerSecond,
  type LinkCounters,
  type MachineTicks,
} from "./procstat.js";

export interface Watched {
  /** Host or program name shown in the report ("node3", "nginx", "loadgen", ...). */
  label: string;
  /** Group for summaries: "node", "dispatcher", "origin", "proxy", "loadgen". */
  role: string;
  pid: number;
  /** Count the CPU of its children too (nginx workers under the master). */
  withChildren?: boolean;
  /** Also count the bytes of this link in the process's network namespace. */
  link?: string;
}

export interface ProcessUsage {
  label: string;
  role: string;
  /** Percent of one core over the window. */
  cpu: number;
}

export interface LinkUsage {
  label: string;
  /** Megabits (10^6) per second the host sent and received over the window. */
  txMbps: number;
  rxMbps: number;
}

export interface RunUsage {
  seconds: number;
  cpus: number;
  /** Busy share of all cores, percent (100 = every core busy all the time). */
  machineBusy: number;
  processes: ProcessUsage[];
  links: LinkUsage[];
}

interface Snapshot {
  at: number;
  machine: MachineTicks;
  ticks: Map<string, number>;
  links: Map<string, LinkCounters>;
}

export class RunMeter {
  private readonly watched: Watched[];
  private readonly snapshots: Snapshot[] = [];
  private readonly lastTicks = new Map<string, number>();
  private readonly lastLinks = new Map<string, LinkCounters>();
  private timer?: NodeJS.Timeout;

  constructor(
    watched: readonly Watched[],
    private readonly intervalMs = 250,
  ) {
    this.watched = [...watched];
  }

  /** Watches one more process from the next snapshot on (e.g. the load generator once spawned). */
  add(w: Watched): void {
    this.watched.push(w);
    this.sample();
  }

  private sample(): void {
    const ticks = new Map<string, number>();
    const links = new Map<string, LinkCounters>();
    for (const w of this.watched) {
      let t = processTicks(w.pid);
      if (t !== undefined && w.withChildren) for (const c of childPids(w.pid)) t += processTicks(c) ?? 0;
      // A process that has exited keeps its last reading.
      if (t !== undefined) this.lastTicks.set(w.label, t);
      const last = this.lastTicks.get(w.label);
      if (last !== undefined) ticks.set(w.label, last);
      if (w.link) {
        const l = linkCounters(w.pid, w.link);
        if (l) this.lastLinks.set(w.label, l);
        const ll = this.lastLinks.get(w.label);
        if (ll) links.set(w.label, ll);
      }
    }
    this.snapshots.push({ at: performance.now(), machine: machineTicks(), ticks, links });
  }

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
  }

  /** Usage from the first snapshot at or after `from` (performance.now() ms) to the last one. */
  usage(from = -Infinity): RunUsage {
    const b = this.snapshots[this.snapshots.length - 1];
    if (!b) throw new Error("RunMeter: no snapshots");
    const a = this.snapshots.find((s) => s.at >= from) ?? b;
    const seconds = (b.at - a.at) / 1000;
    const hz = ticksPerSecond();
    const pct = (ticks: number) => (seconds > 0 ? (100 * ticks) / hz / seconds : 0);
    const processes = this.watched.map((w) => ({
      label: w.label,
      role: w.role,
      cpu: pct(
        Math.max(0, (b.ticks.get(w.label) ?? 0) - (a.ticks.get(w.label) ?? b.ticks.get(w.label) ?? 0)),
      ),
    }));
    const links: LinkUsage[] = [];
    for (const [label, l1] of b.links) {
      const l0 = a.links.get(label);
      if (!l0 || seconds <= 0) continue;
      links.push({
        label,
        txMbps: ((l1.txBytes - l0.txBytes) * 8) / seconds / 1e6,
        rxMbps: ((l1.rxBytes - l0.rxBytes) * 8) / seconds / 1e6,
      });
    }
    const total = b.machine.total - a.machine.total;
    return {
      seconds,
      cpus: b.machine.cpus,
      machineBusy: total > 0 ? (100 * (b.machine.busy - a.machine.busy)) / total : 0,
      processes,
      links,
    };
  }
}
