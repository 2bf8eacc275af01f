// The chaos run: a cluster started as `up` starts it (cluster/), a verified trace replay
// against its VIP from the client host (replay-main.ts, seen through replay-child.ts), and the
// faults of a seeded schedule (schedule.ts) carried out on their time (faults.ts): kill -9 and
// restart of a node or the dispatcher, SIGSTOP/SIGCONT of a node or the origin, a burst of
// packet loss on one node's link. Every fault is undone however the run ends. report.ts turns
// what happened into the timeline, the verdict and the plot.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { startCluster, type Cluster, type StartOptions } from "../index.js";
import type { ReplayResult } from "../../loadgen/replay/run.js";
import type { ReplayChildOptions } from "./replay-main.js";
import {
  buildTimeline,
  describeFault,
  formatRow,
  formatTimeline,
  renderTimelineSvg,
  summarize,
  TIMELINE_HEADER,
  type ChaosSummary,
  type FaultEvent,
  type ReplaySample,
  type ReplayTotals,
  type TimelineRow,
} from "./report.js";
import { planFaults, type Fault, type FaultKind, type FaultScheduleOptions } from "./schedule.js";
import { FaultRunner, ReplayClock } from "./faults.js";
import { ReplayChild } from "./replay-child.js";

const REPLAY_MAIN = fileURLToPath(new URL("./replay-main.js", import.meta.url));
export const DEFAULT_CHAOS_PREFIX = "scchaos-";
/** After the replay's duration: its in-flight requests end (timeout), the result comes. */
const REPLAY_GRACE_S = 60;

export interface ChaosOptions {
  prefix?: string;
  nodes?: number;
  mode?: string;
  scheduler?: string;
  cacheBytes?: string;
  seed: number;
  durationS: number;
  maxFaults: number;
  kinds?: readonly FaultKind[];
  /** Open loop at this many requests/s; undefined: closed loop. */
  rate?: number;
  clients?: number;
  conns?: number;
  /** Keep-alive connections (default true: established connections live through the faults). */
  keepalive?: boolean;
  timeoutMs?: number;
  /** Schedule knobs (warm-up, settle time, durations, loss). */
  schedule?: Partial<Pick<FaultScheduleOptions, "warmupS" | "settleS" | "durations" | "lossPercent">>;
  /** Where report.json, timeline.txt and timeline.svg go. */
  outDir?: string;
  /** Extra arguments per role or host (as startCluster's). */
  extraArgs?: Partial<Record<string, string[]>>;
  /** A line of output (progress, timeline rows, fault events). */
  onLine?: (line: string) => void;
  signal?: AbortSignal;
}

export interface ChaosReport {
  tool: "sc-cluster chaos";
  params: {
    prefix: string;
    nodes: number;
    mode: string;
    scheduler: string;
    seed: number;
    duration_s: number;
    max_faults: number;
    kinds: readonly FaultKind[];
    rate: number | null;
    clients: number;
    conns: number;
    keepalive: boolean;
    timeout_ms: number;
  };
  startedAt: string;
  /** The run ended early (interrupted, or the replay failed): the report covers what ran. */
  partial: boolean;
  stoppedBy: string;
  planned: Fault[];
  events: FaultEvent[];
  /** Processes that ended without a fault causing it. */
  unexpectedExits: string[];
  summary: ChaosSummary;
  timeline: TimelineRow[];
  replay: Omit<ReplayResult, "by_url" | "by_class" | "per_second"> | null;
  /** Each process's /stats at the end (the dispatcher's drops and RSTs, the nodes' counters). */
  stats: Record<string, unknown>;
}

/** Every process's /stats (control API) at the end of the run; an error text where none came. */
async function collectStats(c: Cluster): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const p of c.processes) {
    if (!p.admin) continue;
    try {
      out[p.host] = await c.json(`${p.admin}/stats`, 3000);
    } catch (err) {
      out[p.host] = { error: (err as Error).message };
    }
  }
  return out;
}

/**
 * Strips the per-class and per-URL tables (long, and not what a chaos report is about) and the
 * per-second table (the timeline is made from the same samples).
 */
function slimResult(r: ReplayResult): ChaosReport["replay"] {
  const { by_url: _u, by_class: _c, per_second: _s, ...rest } = r;
  return rest;
}

/**
 * report.json's text: indented, but a timeline row per line with its empty fields left out
 * (no errors, no fault): an hour is 3600 rows, a few hundred kB instead of a few MB.
 */
export function reportJson(report: ChaosReport): string {
  const rows = report.timeline.map((row) =>
    JSON.stringify(
      Object.fromEntries(
        Object.entries(row).filter(
          ([, v]) => v !== null && !(typeof v === "object" && Object.keys(v as object).length === 0),
        ),
      ),
    ),
  );
  const text = JSON.stringify({ ...report, timeline: "\u0000rows" }, null, 1);
  return text.replace(`"timeline": "\\u0000rows"`, () => `"timeline": [\n  ${rows.join(",\n  ")}\n ]`) + "\n";
}

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const say = o.onLine ?? (() => {});
  const plan = planChaos(o);
  for (const line of describeChaosPlan(plan, o)) say(line);
  const startedAt = new Date().toISOString();
  const c = await startCluster(chaosClusterOptions(o, plan.settings, say));
  const run = new ChaosRun(c, o, plan, say);
  try {
    await run.replayUnderFaults();
  } finally {
    await run.cleanUp();
  }
  const report = buildChaosReport(o, plan, { startedAt, ...run.outcome() });
  if (o.outDir) await writeReport(report, o.outDir);
  return report;
}

/** The options with their defaults. */
export interface ChaosSettings {
  prefix: string;
  nodes: number;
  scheduler: string;
  mode: string;
  clients: number;
  conns: number;
  keepalive: boolean;
  timeoutMs: number;
}

export interface ChaosPlan {
  settings: ChaosSettings;
  planned: Fault[];
  /** The kinds asked for, else those planned. */
  kinds: readonly FaultKind[];
}

/** The settings and the seeded schedule of faults. */
export function planChaos(o: ChaosOptions): ChaosPlan {
  const settings: ChaosSettings = {
    prefix: o.prefix ?? DEFAULT_CHAOS_PREFIX,
    nodes: o.nodes ?? 3,
    scheduler: o.scheduler ?? "mh",
    mode: o.mode ?? "local",
    clients: o.clients ?? 1,
    conns: o.conns ?? 16,
    keepalive: o.keepalive ?? true,
    timeoutMs: o.timeoutMs ?? 30_000,
  };
  const planned = planFaults({
    seed: o.seed,
    durationS: o.durationS,
    nodes: Array.from({ length: settings.nodes }, (_, i) => `node${i + 1}`),
    kinds: o.kinds,
    maxFaults: o.maxFaults,
    ...o.schedule,
  });
  return { settings, planned, kinds: o.kinds ?? [...new Set(planned.map((f) => f.kind))] };
}

/** The lines that announce the plan. */
export function describeChaosPlan(plan: ChaosPlan, o: Pick<ChaosOptions, "durationS" | "seed">): string[] {
  return [
    `chaos: ${plan.planned.length} faults planned over ${o.durationS} s (seed ${o.seed}):`,
    ...plan.planned.map((f) => `  #${f.index} at ${f.atS} s: ${describeFault(f)}`),
  ];
}

/** The cluster as `up` would start it, with the run's settings. */
export function chaosClusterOptions(
  o: ChaosOptions,
  s: ChaosSettings,
  say: (line: string) => void,
): StartOptions {
  return {
    prefix: s.prefix,
    nodes: s.nodes,
    mode: s.mode,
    scheduler: s.scheduler,
    cacheBytes: o.cacheBytes ?? "256M",
    extraArgs: o.extraArgs,
    // Beside the report, and kept when the cluster is removed: what the processes said.
    ...(o.outDir ? { logDir: join(o.outDir, "logs") } : {}),
    signal: o.signal,
    onProgress: (m) => say(`chaos: ${m}`),
  };
}

/** Sleeps that end early when asked, and all of them at the end (so none keeps the process alive). */
class Naps {
  private readonly all = new AbortController();

  nap(ms: number, signal?: AbortSignal): Promise<void> {
    return sleep(Math.max(0, ms), undefined, {
      signal: signal ? AbortSignal.any([signal, this.all.signal]) : this.all.signal,
    }).catch(() => {});
  }

  cancel(): void {
    this.all.abort();
  }
}

/** Why the run ended: its duration, an interrupt, or its time limit. */
type StoppedBy = "duration" | "interrupted" | "time_limit";

/** What a run leaves for its report. */
export interface ChaosOutcome {
  startedAt: string;
  stoppedBy: string;
  samples: readonly ReplaySample[];
  events: FaultEvent[];
  result: ReplayResult | null;
  replayError: string | null;
  unexpectedExits: string[];
  stats: Record<string, unknown>;
}

/** One chaos run on a started cluster: the replay, the faults on its clock, the clean-up. */
class ChaosRun {
  private readonly faults: FaultRunner;
  private readonly naps = new Naps();
  private readonly unexpectedExits: string[] = [];
  private replay: ReplayChild | undefined;
  private stoppedBy: StoppedBy = "duration";
  private stats: Record<string, unknown> = {};

  constructor(
    private readonly c: Cluster,
    private readonly o: ChaosOptions,
    private readonly plan: ChaosPlan,
    private readonly say: (line: string) => void,
  ) {
    this.faults = new FaultRunner(c, say);
  }

  /** The replay from start to end, the planned faults carried out while it runs. */
  async replayUnderFaults(): Promise<void> {
    const { c, o } = this;
    c.onExit((e) =>
      this.unexpectedExits.push(`${e.host} (pid ${e.pid}) exited: code ${e.code}, signal ${e.signal}`),
    );
    const demo = c.demo;
    if (!demo) throw new Error("the chaos run replays the demo site's trace (no --site)");
    const replay = this.spawnReplay(demo);
    // Faults run on the replay's clock, once it reports its start.
    const hardStop = AbortSignal.timeout((o.durationS + REPLAY_GRACE_S + 60) * 1000);
    const stop = o.signal ? AbortSignal.any([o.signal, hardStop]) : hardStop;
    await Promise.race([replay.started, replay.exited, this.naps.nap(60_000, stop)]);
    if (replay.startEpoch === undefined)
      throw new Error(`the replay did not start: ${replay.error ?? replay.stderrText}`);
    const clock = new ReplayClock(replay.startEpoch, stop);
    try {
      await this.faults.runAll(this.plan.planned, clock, () => replay.ended);
    } catch (err) {
      if (!stop.aborted) throw err;
    }
    if (stop.aborted) this.stoppedBy = o.signal?.aborted ? "interrupted" : "time_limit";
    await this.endReplay(replay, clock, hardStop);
  }

  /** The replay child in the client host, each of its samples printed as a live timeline row. */
  private spawnReplay(demo: { trace: string; manifest: string }): ReplayChild {
    const { c, o, plan } = this;
    const childOpts: ReplayChildOptions = {
      target: c.vipUrl,
      trace: demo.trace,
      verify: demo.manifest,
      clients: plan.settings.clients,
      conns: plan.settings.conns,
      keepalive: plan.settings.keepalive,
      timeoutMs: plan.settings.timeoutMs,
      durationS: o.durationS,
      ...(o.rate !== undefined ? { rate: o.rate } : {}),
    };
    const proc = c.testbed.spawn("client", process.execPath, [REPLAY_MAIN, JSON.stringify(childOpts)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    // Live row: deltas against the previous sample.
    this.replay = new ReplayChild(proc, (samples) => {
      const row = buildTimeline(samples.slice(-2), this.faults.events).at(-1);
      if (row) this.say(formatRow(row, []));
    });
    this.say(TIMELINE_HEADER);
    return this.replay;
  }

  /** The replay ends by its duration (bounded anyway) or is stopped; then its output is read. */
  private async endReplay(replay: ReplayChild, clock: ReplayClock, hardStop: AbortSignal): Promise<void> {
    const { o, naps } = this;
    if (this.stoppedBy !== "duration") replay.proc.kill("SIGTERM");
    // The replay ends by its duration; bounded anyway.
    const bound = naps.nap((o.durationS + REPLAY_GRACE_S) * 1000 - (Date.now() - clock.startEpoch), hardStop);
    await Promise.race([replay.exited, bound]);
    if (replay.running) {
      replay.proc.kill("SIGTERM");
      await Promise.race([replay.exited, naps.nap(15_000)]);
      if (replay.running) replay.proc.kill("SIGKILL");
      if (this.stoppedBy === "duration") this.stoppedBy = "time_limit";
    }
    await Promise.race([replay.linesDone, naps.nap(5000)]);
    if (!replay.result && !replay.error)
      replay.error = `the replay gave no result: ${replay.stderrText.slice(-500)}`;
  }

  /** However the run ended: the fault undone, the replay gone, the counters read, the cluster stopped. */
  async cleanUp(): Promise<void> {
    this.naps.cancel();
    await this.faults.undoActive();
    if (this.replay?.running) this.replay.proc.kill("SIGKILL");
    this.stats = await collectStats(this.c);
    await this.c.stop();
  }

  outcome(): Omit<ChaosOutcome, "startedAt"> {
    return {
      stoppedBy: this.stoppedBy,
      samples: this.replay?.samples ?? [],
      events: this.faults.events,
      result: this.replay?.result ?? null,
      replayError: this.replay?.error ?? null,
      unexpectedExits: this.unexpectedExits,
      stats: this.stats,
    };
  }
}

/** The replay's totals at the end: its result's, or the last sample's when no result came. */
export function replayTotals(result: ReplayResult | null, last: ReplaySample | undefined): ReplayTotals {
  return result
    ? {
        requests: result.requests,
        ok: result.ok,
        errors: result.errors,
        errorsByKind: result.errors_by_kind,
        verifyFailures: result.verify_failures,
        verifyFailuresByKind: result.verify_failures_by_kind as Record<string, number>,
      }
    : {
        requests: last?.requests ?? 0,
        ok: last?.ok ?? 0,
        errors: last?.errors ?? 0,
        errorsByKind: last?.errorsByKind ?? {},
        verifyFailures: last?.verifyFailures ?? 0,
        verifyFailuresByKind: last?.verifyFailuresByKind ?? {},
      };
}

/** The report: the timeline, the verdict (with unexpected exits and a failed replay), the parameters. */
export function buildChaosReport(o: ChaosOptions, plan: ChaosPlan, run: ChaosOutcome): ChaosReport {
  const s = plan.settings;
  const attributionS = s.timeoutMs / 1000 + 2;
  const rows = buildTimeline(run.samples, run.events, attributionS, s.timeoutMs / 1000);
  const result = run.result;
  const totals = replayTotals(result, run.samples.at(-1));
  const summary = summarize(rows, run.events, totals, result?.error_samples ?? [], attributionS);
  for (const u of run.unexpectedExits) summary.violations.push(`unexpected exit: ${u}`);
  if (run.replayError) summary.violations.push(`replay: ${run.replayError}`);
  return {
    tool: "sc-cluster chaos",
    params: {
      prefix: s.prefix,
      nodes: s.nodes,
      mode: s.mode,
      scheduler: s.scheduler,
      seed: o.seed,
      duration_s: o.durationS,
      max_faults: o.maxFaults,
      kinds: plan.kinds,
      rate: o.rate ?? null,
      clients: s.clients,
      conns: s.conns,
      keepalive: s.keepalive,
      timeout_ms: s.timeoutMs,
    },
    startedAt: run.startedAt,
    partial: run.stoppedBy !== "duration" || result === null,
    stoppedBy: run.stoppedBy,
    planned: plan.planned,
    events: run.events,
    unexpectedExits: run.unexpectedExits,
    summary,
    timeline: rows,
    replay: result ? slimResult(result) : null,
    stats: run.stats,
  };
}

/** report.json, timeline.txt and timeline.svg in `dir`. */
export async function writeReport(report: ChaosReport, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "report.json"), reportJson(report));
  await writeFile(join(dir, "timeline.txt"), formatTimeline(report.timeline, report.events));
  const p = report.params;
  const t = report.summary;
  const caption = `Chaos run${report.partial ? " (partial)" : ""}: ${p.nodes} nodes, ${p.mode}, ${p.scheduler}, seed ${p.seed}`;
  const notes = [
    `${t.requests} requests, ${t.faults} faults, ${t.verifyFailures} verification failures, ` +
      `${t.errors} errors ${JSON.stringify(t.errorsByKind)}`,
  ];
  await writeFile(
    join(dir, "timeline.svg"),
    renderTimelineSvg(report.timeline, report.events, caption, notes),
  );
}
