// The chaos run: a cluster started as `up` starts it (cluster/), a verified trace replay
// against its VIP from the client host (replay-main.ts), and the faults of a seeded schedule
// (schedule.ts) carried out on their time: kill -9 and restart of a node or the dispatcher,
// SIGSTOP/SIGCONT of a node or the origin, a burst of packet loss on one node's link (an
// nftables rule in the testbed's switch namespace). Every fault is undone however the run
// ends. report.ts turns what happened into the timeline, the verdict and the plot.
import type { ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { startCluster, type Cluster } from "../index.js";
import { run } from "../../testbed/run.js";
import type { ReplayResult } from "../../loadgen/replay/run.js";
import type { ReplayChildLine, ReplayChildOptions } from "./replay-main.js";
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
  type TimelineRow,
} from "./report.js";
import { planFaults, type Fault, type FaultKind, type FaultScheduleOptions } from "./schedule.js";

const REPLAY_MAIN = fileURLToPath(new URL("./replay-main.js", import.meta.url));
/** nftables table (bridge family, in the switch namespace) of the loss bursts. */
export const CHAOS_NFT_TABLE = "sc_chaos";
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

/** Runs `ip netns exec <switch> nft <cmd>`: the loss bursts live in the testbed's switch. */
async function nft(c: Cluster, cmd: string): Promise<void> {
  await run(["ip", "netns", "exec", c.testbed.plan.switchNetns, "nft", cmd], { timeoutMs: 10_000 });
}

/** Drops `percent` of the IPv4 frames to and from one host's bridge port. */
export function lossBurstRules(port: string, percent: number): string {
  const threshold = Math.round(percent * 100);
  const rule = (dir: "iifname" | "oifname") =>
    `add rule bridge ${CHAOS_NFT_TABLE} forward ${dir} "${port}" ether type ip numgen random mod 10000 < ${threshold} drop`;
  return [
    `add table bridge ${CHAOS_NFT_TABLE}`,
    `add chain bridge ${CHAOS_NFT_TABLE} forward { type filter hook forward priority -10; policy accept; }`,
    rule("iifname"),
    rule("oifname"),
  ].join("; ");
}

interface ActiveFault {
  undo: () => Promise<void>;
}

/** Carries one fault out; returns how to undo it and what was done. */
async function inflict(c: Cluster, f: Fault): Promise<{ undo: () => Promise<string>; detail: string }> {
  const pid = () => c.process(f.target).pid;
  switch (f.kind) {
    case "node_kill":
    case "dispatcher_restart": {
      const old = pid();
      c.signal(f.target, "SIGKILL");
      return {
        detail: `kill -9 ${f.target} (pid ${old})`,
        undo: async () => {
          const t0 = Date.now();
          const p = await c.restart(f.target);
          return `${f.target} restarted as pid ${p.pid}, ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`;
        },
      };
    }
    case "node_stop":
    case "origin_stop": {
      c.signal(f.target, "SIGSTOP");
      return {
        detail: `SIGSTOP ${f.target} (pid ${pid()})`,
        undo: async () => {
          c.signal(f.target, "SIGCONT");
          return `SIGCONT ${f.target} after ${f.durationS} s`;
        },
      };
    }
    case "purge": {
      // The target node purges its cache and every other member's (server/node/purge.ts).
      const admin = c.process(f.target).admin;
      if (!admin) throw new Error(`${f.target} has no control API to purge through`);
      const a = await c.request({
        url: `${admin}/purge`,
        method: "POST",
        json: { all: true },
        timeoutMs: 10_000,
      });
      const answer = `POST /purge {"all":true} to ${f.target}: ${a.status ?? a.error ?? "no answer"} ${a.body.trim().slice(0, 200)}`;
      return {
        detail: answer,
        // A purge that not every member carried out is the fault's failure (the report's verdict).
        undo: () => (a.status === 200 ? Promise.resolve("purged") : Promise.reject(new Error(answer))),
      };
    }
    case "link_loss": {
      const pct = f.lossPercent ?? 10;
      await nft(c, lossBurstRules(f.target, pct));
      return {
        detail: `${pct}% loss on ${f.target}'s link`,
        undo: async () => {
          await nft(c, `delete table bridge ${CHAOS_NFT_TABLE}`);
          return `loss on ${f.target}'s link removed after ${f.durationS} s`;
        },
      };
    }
  }
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
  const prefix = o.prefix ?? DEFAULT_CHAOS_PREFIX;
  const nodes = o.nodes ?? 3;
  const scheduler = o.scheduler ?? "mh";
  const mode = o.mode ?? "local";
  const clients = o.clients ?? 1;
  const conns = o.conns ?? 16;
  const keepalive = o.keepalive ?? true;
  const timeoutMs = o.timeoutMs ?? 30_000;
  const nodeNames = Array.from({ length: nodes }, (_, i) => `node${i + 1}`);
  const planned = planFaults({
    seed: o.seed,
    durationS: o.durationS,
    nodes: nodeNames,
    kinds: o.kinds,
    maxFaults: o.maxFaults,
    ...o.schedule,
  });
  const kinds = o.kinds ?? [...new Set(planned.map((f) => f.kind))];
  say(`chaos: ${planned.length} faults planned over ${o.durationS} s (seed ${o.seed}):`);
  for (const f of planned) say(`  #${f.index} at ${f.atS} s: ${describeFault(f)}`);

  const startedAt = new Date().toISOString();
  const c = await startCluster({
    prefix,
    nodes,
    mode,
    scheduler,
    cacheBytes: o.cacheBytes ?? "256M",
    extraArgs: o.extraArgs,
    // Beside the report, and kept when the cluster is removed: what the processes said.
    ...(o.outDir ? { logDir: join(o.outDir, "logs") } : {}),
    signal: o.signal,
    onProgress: (m) => say(`chaos: ${m}`),
  });
  const samples: ReplaySample[] = [];
  const events: FaultEvent[] = [];
  const unexpectedExits: string[] = [];
  let result: ReplayResult | null = null;
  let replayError: string | null = null;
  let stoppedBy = "duration";
  let active: ActiveFault | undefined;
  let child: ChildProcess | undefined;
  const rows: TimelineRow[] = [];
  let stats: Record<string, unknown> = {};
  // Cancels the bounding timers at the end, so none keeps the process alive.
  const naps = new AbortController();
  const nap = (ms: number, signal?: AbortSignal) =>
    sleep(Math.max(0, ms), undefined, {
      signal: signal ? AbortSignal.any([signal, naps.signal]) : naps.signal,
    }).catch(() => {});
  try {
    c.onExit((e) =>
      unexpectedExits.push(`${e.host} (pid ${e.pid}) exited: code ${e.code}, signal ${e.signal}`),
    );
    const demo = c.demo;
    if (!demo) throw new Error("the chaos run replays the demo site's trace (no --site)");
    const childOpts: ReplayChildOptions = {
      target: c.vipUrl,
      trace: demo.trace,
      verify: demo.manifest,
      clients,
      conns,
      keepalive,
      timeoutMs,
      durationS: o.durationS,
      ...(o.rate !== undefined ? { rate: o.rate } : {}),
    };
    const proc = c.testbed.spawn("client", process.execPath, [REPLAY_MAIN, JSON.stringify(childOpts)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = proc;
    let stderr = "";
    proc.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const exited = new Promise<void>((res) => proc.once("exit", () => res()));
    let startEpoch: number | undefined;
    let resolveStarted!: () => void;
    const started = new Promise<void>((res) => (resolveStarted = res));
    const lines = createInterface({ input: proc.stdout! });
    say(TIMELINE_HEADER);
    lines.on("line", (text) => {
      let msg: ReplayChildLine;
      try {
        msg = JSON.parse(text) as ReplayChildLine;
      } catch {
        return;
      }
      if (msg.type === "progress") {
        startEpoch ??= msg.epochMs - msg.elapsedS * 1000;
        resolveStarted();
        const s: ReplaySample = {
          elapsedS: msg.elapsedS,
          requests: msg.requests,
          ok: msg.ok,
          errors: msg.errors,
          verifyFailures: msg.verifyFailures,
          bytes: msg.bytes,
          errorsByKind: msg.errorsByKind,
          verifyFailuresByKind: msg.verifyFailuresByKind,
        };
        samples.push(s);
        // Live row: deltas against the previous sample.
        say(formatRow(buildTimeline(samples.slice(-2), events).at(-1)!, []));
      } else if (msg.type === "result") result = msg.result;
      else replayError = msg.message;
    });
    const lineDone = new Promise<void>((res) => lines.once("close", () => res()));

    // Faults run on the replay's clock, once it reports its start.
    const hardStop = AbortSignal.timeout((o.durationS + REPLAY_GRACE_S + 60) * 1000);
    const stop = o.signal ? AbortSignal.any([o.signal, hardStop]) : hardStop;
    await Promise.race([started, exited, nap(60_000, stop)]);
    if (startEpoch === undefined)
      throw new Error(`the replay did not start: ${replayError ?? stderr.trim()}`);
    const now = () => (Date.now() - startEpoch!) / 1000;
    const until = async (s: number) => {
      const ms = startEpoch! + s * 1000 - Date.now();
      if (ms > 0) await sleep(ms, undefined, { signal: stop });
    };
    let replayEnded = false;
    void exited.then(() => (replayEnded = true));
    try {
      for (const f of planned) {
        await until(f.atS);
        if (replayEnded) break;
        const startedS = now();
        const done = await inflict(c, f);
        say(`  [${startedS.toFixed(1)} s] #${f.index} ${describeFault(f)}: ${done.detail}`);
        let detail = done.detail;
        let failure: string | undefined;
        let undone = false;
        active = {
          undo: async () => {
            if (undone) return;
            undone = true;
            try {
              detail = `${done.detail}; ${await done.undo()}`;
            } catch (err) {
              failure = (err as Error).message.split("\n")[0];
            }
          },
        };
        try {
          await until(f.atS + f.durationS);
        } finally {
          await active.undo();
          active = undefined;
          const ev: FaultEvent = {
            fault: f,
            startedS,
            endedS: now(),
            detail,
            ...(failure ? { failure } : {}),
          };
          events.push(ev);
          say(
            `  [${ev.endedS.toFixed(1)} s] #${f.index} ends: ${detail}${failure ? ` (FAILED: ${failure})` : ""}`,
          );
        }
      }
    } catch (err) {
      if (!stop.aborted) throw err;
      stoppedBy = o.signal?.aborted ? "interrupted" : "time_limit";
    }
    if (stop.aborted && stoppedBy === "duration")
      stoppedBy = o.signal?.aborted ? "interrupted" : "time_limit";
    if (stoppedBy !== "duration") proc.kill("SIGTERM");
    // The replay ends by its duration; bounded anyway.
    const bound = nap((o.durationS + REPLAY_GRACE_S) * 1000 - (Date.now() - startEpoch), hardStop);
    await Promise.race([exited, bound]);
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      await Promise.race([exited, nap(15_000)]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      if (stoppedBy === "duration") stoppedBy = "time_limit";
    }
    await Promise.race([lineDone, nap(5000)]);
    if (!result && !replayError) replayError = `the replay gave no result: ${stderr.trim().slice(-500)}`;
  } finally {
    naps.abort();
    await active?.undo().catch(() => {});
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    stats = await collectStats(c);
    await c.stop();
  }
  const attributionS = timeoutMs / 1000 + 2;
  rows.push(...buildTimeline(samples, events, attributionS, timeoutMs / 1000));
  const finalResult = result as ReplayResult | null;
  const last = samples.at(-1);
  const totals = finalResult
    ? {
        requests: finalResult.requests,
        ok: finalResult.ok,
        errors: finalResult.errors,
        errorsByKind: finalResult.errors_by_kind,
        verifyFailures: finalResult.verify_failures,
        verifyFailuresByKind: finalResult.verify_failures_by_kind as Record<string, number>,
      }
    : {
        requests: last?.requests ?? 0,
        ok: last?.ok ?? 0,
        errors: last?.errors ?? 0,
        errorsByKind: last?.errorsByKind ?? {},
        verifyFailures: last?.verifyFailures ?? 0,
        verifyFailuresByKind: last?.verifyFailuresByKind ?? {},
      };
  const summary = summarize(rows, events, totals, finalResult?.error_samples ?? [], attributionS);
  for (const u of unexpectedExits) summary.violations.push(`unexpected exit: ${u}`);
  if (replayError) summary.violations.push(`replay: ${replayError}`);
  const report: ChaosReport = {
    tool: "sc-cluster chaos",
    params: {
      prefix,
      nodes,
      mode,
      scheduler,
      seed: o.seed,
      duration_s: o.durationS,
      max_faults: o.maxFaults,
      kinds,
      rate: o.rate ?? null,
      clients,
      conns,
      keepalive,
      timeout_ms: timeoutMs,
    },
    startedAt,
    partial: stoppedBy !== "duration" || finalResult === null,
    stoppedBy,
    planned,
    events,
    unexpectedExits,
    summary,
    timeline: rows,
    replay: finalResult ? slimResult(finalResult) : null,
    stats,
  };
  if (o.outDir) await writeReport(report, o.outDir);
  return report;
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
