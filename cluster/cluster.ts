// The local cluster launcher: a testbed, the origin, N nodes and the dispatcher, started in
// their hosts and checked healthy end to end (docs/cluster.md). `sc-cluster up/status/down`,
// tests and benchmarks are thin users of startCluster / withCluster / openCluster /
// destroyCluster / readClusterStatus.
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, readdir, rm, stat, writeFile } from "node:fs/promises";
import { generateSecretText, loadSecret, SecretError } from "../sc/auth/secret.js";
import { isMutation } from "../sc/auth/admin-access.js";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  checkEnvironment,
  createTestbed,
  destroyTestbed,
  openTestbed,
  readTestbedStatus,
  type DownReport,
  type Testbed,
} from "../testbed/testbed.js";
import type { TestbedStatus } from "../testbed/status.js";
import { alive } from "../testbed/netns.js";
import { makeDemoSite, type DemoSite } from "./demo-site.js";
import { makeDemoCertificates } from "../server/transport/tls-certs.js";
import { HostHttp, type HttpAnswer, type HttpRequestSpec } from "./http-agent.js";
import {
  ClusterOptionError,
  clusterDir,
  planCluster,
  type Capabilities,
  type ClusterOptions,
  type ClusterPlan,
  type ProcessPlan,
} from "./plan.js";
import {
  isRunning,
  logTail,
  processStartTime,
  spawnInHost,
  stopProcesses,
  type ProcessRecord,
} from "./processes.js";
import { readRecord, writeRecord, type ClusterRecord } from "./state.js";
import { DEFAULT_PREFIX, DISPATCHER_IP, VIP, validatePrefix } from "../testbed/topology.js";
import { UserError } from "../common/errors.js";

export interface StartOptions extends ClusterOptions {
  /** Aborting stops the start-up and removes everything started so far. */
  signal?: AbortSignal;
  /** Called with a short line per start-up step (the CLI prints them). */
  onProgress?: (message: string) => void;
}

/** `up` failed: a process died or never became healthy. Names the host and its log's last lines. */
export class ClusterStartError extends UserError {
  constructor(
    message: string,
    readonly host?: string,
    readonly log?: string,
  ) {
    super(message, "ERR_CLUSTER_START");
  }
}

/** One of the cluster's processes. */
export interface ClusterProcess {
  host: string;
  role: "origin" | "node" | "dispatcher";
  pid: number;
  netns: string;
  /** LAN address of its host. */
  ip: string;
  /** Control API base URL (reachable from the client hosts); the origin has none. */
  admin?: string;
  log: string;
}

/** A process that ended while the cluster was running (not during stop()). */
export interface ProcessExit {
  host: string;
  role: ClusterProcess["role"];
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  log: string;
}

export interface ClusterDownReport extends DownReport {
  /** Cluster processes stopped through their records (a subset of, or beside, `pids`). */
  processes: number[];
  /** Whether the cluster directory existed and was removed. */
  dir: boolean;
}

/** Health of one process, as `status` shows it. */
export interface ProcessHealth {
  host: string;
  role: ClusterProcess["role"];
  pid: number;
  /** The recorded process still runs (same PID, start time and namespace). */
  running: boolean;
  /** It answers its health check (node/dispatcher: /healthz 200; origin: any HTTP answer). */
  healthy: boolean;
  /** A short word or reason: "ok", "exited", "HTTP 503", "ECONNREFUSED", "timeout", ... */
  detail: string;
  /** Nodes: whether the dispatcher currently schedules new connections to it. */
  scheduled?: boolean;
  admin?: string;
  log: string;
}

/** `status --json`: the testbed's document (hosts with admin and pid) plus the cluster. */
export interface ClusterStatus extends TestbedStatus {
  /** The live dashboard's URL, while the `up` process that serves it runs; else null. */
  dashboard: string | null;
  cluster: {
    mode: string;
    scheduler: string;
    nodes: number;
    /** Data-path worker threads per node. */
    workers: number;
    cacheBytes: number;
    site: string;
    demo: { trace: string; manifest: string } | null;
    logDir: string;
    vipUrl: string;
    originUrl: string;
    launcherPid: number;
    /** A foreground `up` still watches the cluster. */
    launcherRunning: boolean;
    detached: boolean;
    startedAt: string;
    readyAt: string | null;
    startSeconds: number | null;
    /** Absent when health was not probed. */
    vip?: { answers: boolean; detail: string };
    processes: ProcessHealth[];
  } | null;
}

const POLL_MS = 100;
const PROBE_TIMEOUT_MS = 1000;

/** Modes, schedulers and node options as the programs themselves define them. */
export async function readCapabilities(): Promise<Capabilities> {
  const { MODE_NAMES } = await import("../server/modes/table.js");
  const { SCHEDULER_NAMES } = await import("../dispatcher/schedulers.js");
  const { NODE_SPEC } = await import("../server/node/options.js");
  const { MAX_NODE_WORKERS } = await import("../server/node/workers.js");
  return {
    modes: [...MODE_NAMES],
    schedulers: SCHEDULER_NAMES,
    nodeOptions: Object.keys(NODE_SPEC.options),
    maxNodeWorkers: MAX_NODE_WORKERS,
  };
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  | ${l}`)
    .join("\n");
}

async function describeLog(log: string): Promise<string> {
  const tail = await logTail(log);
  return tail ? `Last lines of ${log}:\n${indent(tail)}` : `(${log} is empty)`;
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new ClusterStartError("start-up interrupted");
}

/** How a process ended. */
interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The error for a process that ended during start-up, with its log's last lines. */
async function exitError(r: Running, exit: ExitStatus): Promise<ClusterStartError> {
  const how = exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return new ClusterStartError(
    `${r.plan.host} (${r.plan.role}, pid ${r.record.pid}, namespace ${r.record.netns}) ${how} during start-up.\n` +
      (await describeLog(r.plan.log)),
    r.plan.host,
    r.plan.log,
  );
}

/** The error for the first of these processes that ended, if one did. */
async function firstExitError(procs: readonly Running[]): Promise<ClusterStartError | undefined> {
  for (const r of procs) if (r.exit) return exitError(r, r.exit);
  return undefined;
}

interface Running {
  plan: ProcessPlan;
  child: ChildProcess;
  record: ProcessRecord;
  exit?: ExitStatus;
}

/** Starts one planned process in its host and records it (PID, start time, namespace). */
async function spawnProcess(tb: Testbed, p: ProcessPlan): Promise<Running> {
  const child = spawnInHost(tb, p.host, p.args, p.log);
  if (child.pid === undefined) throw new ClusterStartError(`could not start ${p.host}: no pid`, p.host);
  const r: Running = {
    plan: p,
    child,
    record: {
      host: p.host,
      role: p.role,
      pid: child.pid,
      startTime: (await processStartTime(child.pid)) ?? "",
      netns: tb.host(p.host).netns,
      log: p.log,
      ...(p.admin ? { admin: p.admin } : {}),
      args: p.args,
    },
  };
  child.once("exit", (code, sig) => (r.exit = { code, signal: sig }));
  return r;
}

/** Whether an answer means "ready" for a process plan. */
function readyAnswer(p: ProcessPlan, a: HttpAnswer): boolean {
  if (a.status === undefined) return false;
  return p.ready.expect === "any" || a.status === p.ready.expect;
}

function answerDetail(a: HttpAnswer): string {
  return a.status !== undefined ? `HTTP ${a.status}` : (a.error ?? "no answer");
}

/** A process's readiness from its answer: true, or why not yet. */
export function readiness(p: ProcessPlan, a: HttpAnswer): true | string {
  return readyAnswer(p, a) ? true : answerDetail(a);
}

/**
 * The dispatcher's readiness from its /healthz answer: true once it finds every node with a
 * weight above 0 eligible, or why not yet.
 */
export function dispatcherReadiness(a: HttpAnswer, eligible: number): true | string {
  if (a.status !== 200) return answerDetail(a);
  const h = JSON.parse(a.body) as { eligible?: number };
  return h.eligible === eligible ? true : `${h.eligible ?? 0} of ${eligible} nodes eligible`;
}

type ReadyCheck = (r: Running) => Promise<true | string>;

/** A process is ready once its plan's readiness URL answers as the plan expects. */
function readyCheck(http: HostHttp): ReadyCheck {
  return async (r) => readiness(r.plan, await http.get(r.plan.ready.url, PROBE_TIMEOUT_MS));
}

/**
 * Polls until `check` passes for every process, failing fast (with the log's last lines) when
 * one exits, and after the deadline naming the ones that never became ready.
 */
async function waitUntil(
  procs: Running[],
  check: ReadyCheck,
  deadline: number,
  signal: AbortSignal | undefined,
  what: string,
  http: HostHttp,
): Promise<void> {
  let pending = [...procs];
  const lastDetail = new Map<string, string>();
  for (;;) {
    checkAborted(signal);
    if (http.failure) throw new ClusterStartError(http.failure);
    const died = await firstExitError(pending);
    if (died) throw died;
    const results = await Promise.all(pending.map(async (r) => [r, await check(r)] as const));
    pending = [];
    for (const [r, res] of results) {
      if (res === true) continue;
      lastDetail.set(r.plan.host, res);
      pending.push(r);
    }
    const first = pending[0];
    if (first === undefined) return;
    if (Date.now() > deadline) {
      throw new ClusterStartError(
        `not ${what} in time: ${pending.map((r) => `${r.plan.host} (${lastDetail.get(r.plan.host)})`).join(", ")}.\n` +
          (await describeLog(first.plan.log)),
        first.plan.host,
        first.plan.log,
      );
    }
    await sleep(POLL_MS);
  }
}

/**
 * Removes everything a cluster with this prefix left, whether it runs (foreground or
 * detached), crashed, or is half gone: its recorded processes (SIGTERM, SIGKILL after
 * graceMs), every other process in its namespaces, the testbed, the cluster directory (and
 * the default logs in it). Idempotent.
 */
export async function destroyCluster(
  prefix: string = DEFAULT_PREFIX,
  options: { stateDir?: string; graceMs?: number } = {},
): Promise<ClusterDownReport> {
  validatePrefix(prefix);
  const dir = clusterDir(prefix, options.stateDir);
  const record = await readRecord(dir);
  const processes = record ? await stopProcesses(record.processes, options.graceMs ?? 5000) : [];
  const report = await destroyTestbed(prefix, options.stateDir);
  const hadDir = existsSync(dir);
  await rm(dir, { recursive: true, force: true });
  return { ...report, processes, dir: hadDir };
}

/** Brings a cluster up and returns once every process is healthy and the VIP answers. */
export async function startCluster(options: StartOptions = {}): Promise<Cluster> {
  const clock = new StartClock(options.onProgress);
  const plan = await planStart(options);
  const launch = new Launch(plan, options, clock);
  try {
    const demo = await launch.raiseTestbed();
    const http = launch.openAgent();
    // The origin and the nodes start together; the dispatcher once the nodes answer, so its
    // first health check already passes (a failed first check costs health-rise intervals).
    await launch.startServers(http);
    await launch.startDispatcher(http);
    await launch.probeVip(http);
    await launch.reportReady();
    return new Cluster(plan, launch.record, options.stateDir, launch.testbed, http, launch.running, demo);
  } catch (err) {
    await launch.abandon(err);
    throw err;
  }
}

/** Start-up's clock: progress lines carry the seconds since startCluster was called. */
class StartClock {
  readonly started = Date.now();
  constructor(private readonly onProgress: ((message: string) => void) | undefined) {}

  progress(message: string): void {
    this.onProgress?.(`${message} (${((Date.now() - this.started) / 1000).toFixed(1)} s)`);
  }
}

/** The plan, checked against the site and the machine; what an earlier run left removed. */
async function planStart(options: StartOptions): Promise<ClusterPlan> {
  const plan = planCluster(options, await readCapabilities());
  if (!plan.demoSite && !(await isDirectory(plan.site)))
    throw new ClusterOptionError(`site '${plan.site}' is not a directory`);
  await checkEnvironment(plan.testbed);
  // Leftovers of an earlier run with this prefix (also a crashed one) go first.
  await destroyCluster(plan.prefix, { stateDir: options.stateDir, graceMs: plan.stopGraceMs });
  checkAborted(options.signal);
  return plan;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** The cluster's state file as start-up begins: settings from the plan, no process yet. */
export function initialRecord(plan: ClusterPlan, startedMs: number, launcherPid: number): ClusterRecord {
  return {
    version: 1,
    prefix: plan.prefix,
    launcherPid,
    detached: false,
    startedAt: new Date(startedMs).toISOString(),
    readyAt: null,
    startSeconds: null,
    nodes: plan.testbed.nodes,
    workers: plan.workers,
    mode: plan.mode,
    scheduler: plan.scheduler,
    cacheBytes: plan.cacheBytes,
    weights: plan.weights,
    site: plan.site,
    demo: null,
    dir: plan.dir,
    logDir: plan.logDir,
    vipUrl: plan.vipUrl,
    originUrl: plan.originUrl,
    processes: [],
  };
}

/** The dispatcher's plan (every cluster plan has one). */
function dispatcherPlan(plan: ClusterPlan): ProcessPlan {
  const d = plan.processes.find((p) => p.role === "dispatcher");
  if (!d) throw new Error(`cluster '${plan.prefix}': the plan has no dispatcher`);
  return d;
}

/**
 * One start-up carried out phase by phase. What it made is known here, so a failure in any
 * phase is undone in one place (abandon).
 */
class Launch {
  readonly testbed: Testbed;
  readonly record: ClusterRecord;
  /** Every process started so far, in start order. */
  readonly running: Running[] = [];
  /** The HTTP helper in the client host, once the testbed is up. */
  private agent: HostHttp | undefined;
  private readonly deadline: number;

  constructor(
    private readonly plan: ClusterPlan,
    private readonly options: StartOptions,
    private readonly clock: StartClock,
  ) {
    this.testbed = createTestbed({
      prefix: plan.prefix,
      nodes: plan.testbed.nodes,
      clients: plan.testbed.clients,
      rate: plan.testbed.rate ?? undefined,
      loss: plan.testbed.loss,
      expose: plan.testbed.expose,
      multiQueueTun: plan.testbed.multiQueueTun,
      stateDir: options.stateDir,
    });
    this.record = initialRecord(plan, clock.started, process.pid);
    this.deadline = clock.started + plan.startTimeoutMs;
  }

  /** The cluster directory's files, then the testbed and the demo site (made side by side). */
  async raiseTestbed(): Promise<DemoSite | undefined> {
    await this.prepareFiles();
    const { plan } = this;
    // Both finish before a failure is handled: the cleanup must not race the demo site's
    // writes (a failed testbed would otherwise leave a half-written site behind).
    const [up, site] = await Promise.allSettled([
      this.testbed.up(),
      plan.demoSite
        ? makeDemoSite(plan.demoDir, { clientNetns: `${plan.prefix}client` })
        : Promise.resolve(undefined),
    ]);
    if (up.status === "rejected") throw up.reason;
    if (site.status === "rejected") throw site.reason;
    const demo = site.value;
    if (demo) this.record.demo = { trace: demo.trace, manifest: demo.manifest };
    this.clock.progress(
      `testbed '${plan.prefix}' up: ${plan.testbed.nodes} nodes` +
        (demo ? `; demo site: ${demo.documents} documents, ${demo.bytes} bytes` : ""),
    );
    return demo;
  }

  /** The directories, a fresh secret (and certificates), no old logs, the record. */
  private async prepareFiles(): Promise<void> {
    const { plan } = this;
    await mkdir(plan.dir, { recursive: true });
    await mkdir(plan.logDir, { recursive: true });
    await writeFile(plan.secretFile, `${generateSecretText()}\n`, { mode: 0o600 });
    await chmod(plan.secretFile, 0o600);
    // HTTPS: a fresh CA and VIP certificate per start (like the secret); clients trust tls/ca.crt.
    // The dispatcher's address too: a benchmark's TLS-terminating proxy listens there (bench micro --tls).
    if (plan.tls)
      await makeDemoCertificates(plan.tls.dir, { ips: [VIP, DISPATCHER_IP], names: ["localhost"] });
    for (const p of plan.processes) await rm(p.log, { force: true });
    await writeRecord(this.record);
  }

  /** The HTTP helper in the client host: every probe from here on goes through it. */
  openAgent(): HostHttp {
    checkAborted(this.options.signal);
    this.agent = new HostHttp(this.testbed, "client");
    return this.agent;
  }

  /** The origin and the nodes, started together; returns once each answers its readiness check. */
  async startServers(http: HostHttp): Promise<void> {
    const servers = this.plan.processes.filter((p) => p.role !== "dispatcher");
    const started: Running[] = [];
    for (const p of servers) started.push(await this.spawn(p));
    await this.recordProcesses();
    await waitUntil(started, readyCheck(http), this.deadline, this.options.signal, "healthy", http);
    this.clock.progress(`origin and ${started.length - 1} nodes healthy`);
  }

  /** The dispatcher; returns once it finds every weighted node eligible. */
  async startDispatcher(http: HostHttp): Promise<void> {
    const dispatcher = await this.spawn(dispatcherPlan(this.plan));
    await this.recordProcesses();
    const eligible = this.plan.weights.filter((w) => w > 0).length;
    await waitUntil(
      [dispatcher],
      async (r) => dispatcherReadiness(await http.get(r.plan.ready.url, PROBE_TIMEOUT_MS), eligible),
      this.deadline,
      this.options.signal,
      "healthy",
      http,
    );
    this.clock.progress(`dispatcher forwarding to ${eligible} nodes`);
  }

  /** End to end: a request from the client host through the VIP gets an HTTP answer. */
  async probeVip(http: HostHttp): Promise<void> {
    const { plan } = this;
    for (;;) {
      checkAborted(this.options.signal);
      const died = await firstExitError(this.running);
      if (died) throw died;
      if (http.failure) throw new ClusterStartError(http.failure);
      const a = await http.get(plan.vipUrl, PROBE_TIMEOUT_MS);
      if (a.status !== undefined) return;
      if (Date.now() > this.deadline) {
        const log = dispatcherPlan(plan).log;
        throw new ClusterStartError(
          `every process is healthy but ${plan.vipUrl} does not answer from the client host (${answerDetail(a)}).\n` +
            (await describeLog(log)),
          "dispatcher",
          log,
        );
      }
      await sleep(POLL_MS);
    }
  }

  /** Marks the cluster ready in its record. */
  async reportReady(): Promise<void> {
    this.record.readyAt = new Date().toISOString();
    this.record.startSeconds = (Date.now() - this.clock.started) / 1000;
    await writeRecord(this.record);
    this.clock.progress(`VIP ${this.plan.vipUrl} answers from the client host`);
  }

  /**
   * After a failure in any phase: the helper, every process started, the testbed and the
   * cluster directory go (its logs stay); a start error says so.
   */
  async abandon(err: unknown): Promise<void> {
    const { plan } = this;
    await this.agent?.close().catch(() => {});
    await stopProcesses(
      this.running.map((r) => r.record),
      1000,
    ).catch(() => {});
    await destroyTestbed(plan.prefix, this.options.stateDir).catch(() => {});
    await removeAllButLogs(plan.dir, plan.logDir);
    if (err instanceof ClusterStartError && this.running.length > 0)
      err.message +=
        `\nEverything up started was removed` +
        (plan.logDir === plan.dir ? `; the logs stay in ${plan.logDir} until \`sc-cluster down\`.` : ".");
  }

  private async spawn(p: ProcessPlan): Promise<Running> {
    const r = await spawnProcess(this.testbed, p);
    this.running.push(r);
    return r;
  }

  /** Writes the processes started so far to the record and to the testbed's hosts. */
  private async recordProcesses(): Promise<void> {
    this.record.processes = this.running.map((r) => r.record);
    await writeRecord(this.record);
    for (const r of this.running) {
      if (this.testbed.host(r.plan.host).pid === r.record.pid) continue;
      await this.testbed.annotate(r.plan.host, {
        pid: r.record.pid,
        ...(r.plan.admin ? { admin: r.plan.admin } : {}),
      });
    }
  }
}

/** After a failed start: the logs are kept for the user, everything else in the directory goes. */
async function removeAllButLogs(dir: string, logDir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  const keepLogs = resolve(logDir) === resolve(dir);
  for (const n of names)
    if (!(keepLogs && n.endsWith(".log"))) await rm(join(dir, n), { recursive: true, force: true });
  if (!keepLogs || (await readdir(dir)).length === 0) await rm(dir, { recursive: true, force: true });
}

/** Brings a cluster up, runs fn, and always stops it again (also when fn throws). */
export async function withCluster<T>(options: StartOptions, fn: (c: Cluster) => Promise<T>): Promise<T> {
  const c = await startCluster(options);
  let result: T;
  try {
    result = await fn(c);
  } catch (err) {
    try {
      await c.stop();
    } catch (stopErr) {
      throw new AggregateError(
        [err, stopErr],
        `${(err as Error).message} (and stopping the cluster failed: ${(stopErr as Error).message})`,
      );
    }
    throw err;
  }
  await c.stop();
  return result;
}

/** The cluster with this prefix that is up (e.g. after `up --detach`), or undefined. */
export async function openCluster(
  prefix: string = DEFAULT_PREFIX,
  options: { stateDir?: string } = {},
): Promise<Cluster | undefined> {
  const record = await readRecord(clusterDir(prefix, options.stateDir));
  const tb = await openTestbed(prefix, options.stateDir);
  if (!record || !tb || record.readyAt === null) return undefined;
  const plan = planCluster(
    {
      prefix,
      nodes: record.nodes,
      clients: tb.plan.clients,
      mode: record.mode,
      workers: record.workers,
      site: record.site,
      rate: tb.plan.rate ?? undefined,
      loss: tb.plan.loss,
      expose: tb.plan.expose,
      cacheBytes: record.cacheBytes,
      scheduler: record.scheduler,
      weights: record.weights,
      stateDir: options.stateDir,
      logDir: record.logDir,
    },
    await readCapabilities(),
  );
  return new Cluster(plan, record, options.stateDir, tb, undefined, [], undefined);
}

export class Cluster {
  private stopping = false;
  private stopped: Promise<ClusterDownReport> | undefined;
  private readonly exitListeners: ((e: ProcessExit) => void)[] = [];
  /** PIDs this program killed on purpose (signal SIGKILL, restart): their exit is not reported. */
  private readonly killed = new Set<number>();

  /** @internal use startCluster or openCluster */
  constructor(
    readonly plan: ClusterPlan,
    private readonly record: ClusterRecord,
    private readonly stateDir: string | undefined,
    readonly testbed: Testbed,
    private agent: HostHttp | undefined,
    private readonly children: Running[],
    /** The demo site (trace, manifest) when no site was given. */
    readonly demo: DemoSite | undefined,
  ) {
    for (const r of children) this.watch(r);
  }

  /** Reports the process's end to the onExit listeners, unless it was stopped on purpose. */
  private watch(r: Running): void {
    const report = (code: number | null, signal: NodeJS.Signals | null) => {
      if (this.stopping || this.killed.has(r.record.pid)) return;
      const e: ProcessExit = {
        host: r.plan.host,
        role: r.plan.role,
        pid: r.record.pid,
        code,
        signal,
        log: r.plan.log,
      };
      for (const l of this.exitListeners) l(e);
    };
    const exit = r.exit;
    if (exit) queueMicrotask(() => report(exit.code, exit.signal));
    else r.child.once("exit", report);
  }

  /** The running child of a host, when this program started it (startCluster). */
  private child(host: string): Running {
    const r = this.children.find((x) => x.plan.host === host);
    if (!r) throw new Error(`cluster '${this.prefix}': ${host} was not started by this program`);
    return r;
  }

  /**
   * Sends a signal to a process this program started: SIGSTOP/SIGCONT to freeze and thaw it,
   * SIGKILL to crash it (an exit caused here is not reported to onExit listeners).
   */
  signal(host: string, sig: NodeJS.Signals): void {
    const r = this.child(host);
    if (r.exit) throw new Error(`${host} (pid ${r.record.pid}) is not running`);
    if (sig === "SIGKILL") this.killed.add(r.record.pid);
    process.kill(r.record.pid, sig);
  }

  /**
   * Kills a process this program started (SIGKILL, when it still runs), starts it again with
   * the same arguments in its host, and resolves once it answers its readiness check (as
   * startCluster's). Rejects with ClusterStartError when it exits or is not ready in time.
   */
  async restart(host: string, timeoutMs = this.plan.startTimeoutMs): Promise<ClusterProcess> {
    const old = this.child(host);
    if (!old.exit) {
      const exited = new Promise<void>((res) => old.child.once("exit", () => res()));
      // Killed already (signal()) but its exit not seen yet: no second signal to a reaped PID.
      if (!this.killed.has(old.record.pid)) this.signal(host, "SIGKILL");
      await exited;
    }
    const r = await spawnProcess(this.testbed, old.plan);
    this.children[this.children.indexOf(old)] = r;
    const i = this.record.processes.findIndex((p) => p.host === host);
    this.record.processes[i] = r.record;
    await writeRecord(this.record);
    await this.testbed.annotate(host, { pid: r.record.pid });
    this.watch(r);
    const http = this.http();
    await waitUntil([r], readyCheck(http), Date.now() + timeoutMs, undefined, "ready after restart", http);
    return this.process(host);
  }

  get prefix(): string {
    return this.plan.prefix;
  }
  get vip(): string {
    return this.testbed.vip;
  }
  /** http://198.18.100.1/ */
  get vipUrl(): string {
    return this.plan.vipUrl;
  }
  /** HTTPS on the VIP: its URL and the CA certificate clients trust; null for HTTP only. */
  get tls(): { url: string; caCert: string } | null {
    return this.plan.tls ? { url: this.plan.tls.url, caCert: this.plan.tls.caCert } : null;
  }
  /** The demo certificate chain and key the nodes serve (e.g. for a benchmark's TLS proxy). */
  get tlsFiles(): { cert: string; key: string } | null {
    return this.plan.tls ? { cert: this.plan.tls.cert, key: this.plan.tls.key } : null;
  }
  get originUrl(): string {
    return this.plan.originUrl;
  }
  get site(): string {
    return this.record.site;
  }
  get logDir(): string {
    return this.record.logDir;
  }
  /** Seconds from the start of startCluster until healthy. */
  get startSeconds(): number | null {
    return this.record.startSeconds;
  }

  /** Every process: origin, node1..N, dispatcher. */
  get processes(): ClusterProcess[] {
    return this.record.processes.map((p) => ({
      host: p.host,
      role: p.role,
      pid: p.pid,
      netns: p.netns,
      ip: this.testbed.host(p.host).ip,
      ...(p.admin ? { admin: p.admin } : {}),
      log: p.log,
    }));
  }

  /** A process by host name ("origin", "dispatcher", "node2"). */
  process(host: string): ClusterProcess {
    const p = this.processes.find((x) => x.host === host);
    if (!p) throw new Error(`cluster '${this.prefix}' has no process in host '${host}'`);
    return p;
  }

  /** Names of the node hosts, in order. */
  get nodes(): string[] {
    return this.record.processes.filter((p) => p.role === "node").map((p) => p.host);
  }

  /** The HTTP helper in the client host (started on first use for an opened cluster). */
  private http(): HostHttp {
    this.agent ??= new HostHttp(this.testbed, "client");
    return this.agent;
  }

  /** GET a URL from the client host (a new connection; the LAN and the VIP are reachable there). */
  get(url: string, timeoutMs = 2000): Promise<HttpAnswer> {
    return this.http().get(url, timeoutMs);
  }

  /** GET a JSON document (e.g. `${admin}/stats`) from the client host. */
  json<T>(url: string, timeoutMs = 2000): Promise<T> {
    return this.http().json<T>(url, timeoutMs);
  }

  /**
   * Any request from the client host, e.g. a control API change (`json` is sent as the body).
   * A change (any method but GET/HEAD) carries the admin token of the cluster's secret.
   */
  async request(req: HttpRequestSpec): Promise<HttpAnswer> {
    if (!isMutation(req.method ?? "GET")) return this.http().request(req);
    const token = await this.adminToken();
    return this.http().request({ ...req, headers: { ...req.headers, authorization: `Bearer ${token}` } });
  }

  /** The admin APIs' bearer token, derived from the cluster's secret file (plan.secretFile). */
  async adminToken(): Promise<string> {
    const secret = await loadSecret({ kind: "file", path: this.plan.secretFile, from: "option" });
    if (secret === null || secret instanceof SecretError)
      throw new Error(`cluster '${this.prefix}': no admin token: ${secret?.message ?? "no secret"}`);
    return secret.adminToken();
  }

  /** The Prometheus text of a process's control API (`/metrics`). */
  async metrics(host: string): Promise<string> {
    const admin = this.process(host).admin;
    if (!admin) throw new Error(`${host} has no control API`);
    const a = await this.get(`${admin}/metrics`, 5000);
    if (a.status !== 200) throw new Error(`GET ${admin}/metrics: ${answerDetail(a)}`);
    return a.body;
  }

  /**
   * Records the URL of the dashboard this program serves for the cluster (`status` shows it
   * while this program runs), or null once it stopped serving it.
   */
  async setDashboard(url: string | null): Promise<void> {
    this.record.dashboard = url;
    await writeRecord(this.record);
  }

  /** Called when a process ends on its own while the cluster runs (not during stop()). */
  onExit(listener: (e: ProcessExit) => void): void {
    this.exitListeners.push(listener);
  }

  /** Topology, processes and their health now. */
  async status(): Promise<ClusterStatus> {
    const s = await readClusterStatus(this.prefix, { stateDir: this.stateDir, http: this.http() });
    if (!s) throw new Error(`cluster '${this.prefix}' is gone`);
    return s;
  }

  /**
   * Leaves the processes running after this program exits (`up --detach`): marks the cluster
   * detached and lets go of the children and the HTTP helper.
   */
  async detach(): Promise<void> {
    this.stopping = true;
    this.record.detached = true;
    await writeRecord(this.record);
    for (const r of this.children) r.child.unref();
    await this.close();
  }

  /**
   * Lets go of this handle and leaves the cluster as it is: ends the HTTP helper in the client
   * host (started again by the next get/json/metrics/status). Needed before a program that
   * opened a cluster (openCluster) can exit on its own.
   */
  async close(): Promise<void> {
    const a = this.agent;
    this.agent = undefined;
    await a?.close();
  }

  /** Stops every process (SIGTERM, then SIGKILL after the grace period) and removes the testbed. */
  stop(): Promise<ClusterDownReport> {
    this.stopping = true;
    this.stopped ??= (async () => {
      await this.agent?.close().catch(() => {});
      this.agent = undefined;
      return destroyCluster(this.prefix, { stateDir: this.stateDir, graceMs: this.plan.stopGraceMs });
    })();
    return this.stopped;
  }
}

/**
 * The status of the cluster with this prefix: undefined when no testbed is up. `cluster` is
 * null for a bare testbed. With `http` (or `probe: true`) every process's health is checked
 * from the client host, and the VIP too.
 */
export async function readClusterStatus(
  prefix: string = DEFAULT_PREFIX,
  options: { stateDir?: string; probe?: boolean; http?: HostHttp } = {},
): Promise<ClusterStatus | undefined> {
  const tbStatus = await readTestbedStatus(prefix, options.stateDir);
  if (!tbStatus) return undefined;
  const record = await readRecord(clusterDir(prefix, options.stateDir));
  if (!record) return { ...tbStatus, dashboard: null, cluster: null };
  // Without root, a process's namespace cannot be read, nor a probe run in the client host:
  // liveness then rests on PID + start time, and health is not checked.
  const root = process.getuid?.() === 0;
  const own = !options.http && options.probe && root ? await openProbe(prefix, options.stateDir) : undefined;
  const http = options.http ?? own;
  try {
    const running = await Promise.all(record.processes.map((p) => stillRunning(p, root)));
    const health = unprobedHealth(record.processes, running, root);
    const vip = http ? await probeHealth(http, health, record) : undefined;
    const launcherRunning = !record.detached && (await alive(record.launcherPid));
    return clusterStatusOf(tbStatus, record, health, vip, launcherRunning);
  } finally {
    await own?.close();
  }
}

/** An HTTP helper of our own in the client host, when the testbed is there. */
async function openProbe(prefix: string, stateDir: string | undefined): Promise<HostHttp | undefined> {
  const tb = await openTestbed(prefix, stateDir);
  return tb ? new HostHttp(tb, "client") : undefined;
}

/** Whether a recorded process still runs: by namespace as root, else by PID and start time. */
async function stillRunning(p: ProcessRecord, root: boolean): Promise<boolean> {
  return root ? isRunning(p) : (await alive(p.pid)) && (await processStartTime(p.pid)) === p.startTime;
}

/** Each process's health before (or without) a probe: running or not, healthy unknown. */
export function unprobedHealth(
  processes: readonly ProcessRecord[],
  running: readonly boolean[],
  root: boolean,
): ProcessHealth[] {
  return processes.map((p, i) => ({
    host: p.host,
    role: p.role,
    pid: p.pid,
    running: running[i] === true,
    healthy: false,
    detail: !running[i] ? "exited" : root ? "not checked" : "not checked (needs root)",
    ...(p.admin ? { admin: p.admin } : {}),
    log: p.log,
  }));
}

/**
 * Probes every running process from the client host (filling in `health`), the dispatcher's
 * view of which nodes it schedules, and the VIP, whose answer it returns.
 */
async function probeHealth(
  http: HostHttp,
  health: ProcessHealth[],
  record: Pick<ClusterRecord, "originUrl" | "vipUrl">,
): Promise<{ answers: boolean; detail: string }> {
  let scheduled: Map<string, boolean> | undefined;
  await Promise.all(
    health.map(async (ph) => {
      if (!ph.running) return;
      const url = ph.admin ? `${ph.admin}/healthz` : `${record.originUrl}/`;
      const a = await http.get(url, PROBE_TIMEOUT_MS);
      const ok = ph.admin ? a.status === 200 : a.status !== undefined;
      ph.healthy = ok;
      ph.detail = ok ? "ok" : answerDetail(a);
      if (ph.role === "dispatcher" && ok) scheduled = (await schedulingOf(http, ph.admin)) ?? scheduled;
    }),
  );
  for (const ph of health)
    if (ph.role === "node" && scheduled) ph.scheduled = scheduled.get(ph.host) ?? false;
  const a = await http.get(record.vipUrl, PROBE_TIMEOUT_MS);
  return { answers: a.status !== undefined, detail: answerDetail(a) };
}

/** Which nodes the dispatcher schedules new connections to; undefined when it does not say. */
async function schedulingOf(
  http: HostHttp,
  admin: string | undefined,
): Promise<Map<string, boolean> | undefined> {
  try {
    const nodes = await http.json<{ id: string; eligible: boolean }[]>(`${admin}/nodes`, PROBE_TIMEOUT_MS);
    return new Map(nodes.map((n) => [n.id, n.eligible]));
  } catch {
    return undefined; // the dispatcher's view stays unknown
  }
}

/** `status`'s document: the testbed's, plus the cluster as recorded and as found. */
export function clusterStatusOf(
  tbStatus: TestbedStatus,
  record: ClusterRecord,
  health: ProcessHealth[],
  vip: { answers: boolean; detail: string } | undefined,
  launcherRunning: boolean,
): ClusterStatus {
  return {
    ...tbStatus,
    dashboard: launcherRunning ? (record.dashboard ?? null) : null,
    cluster: {
      mode: record.mode,
      scheduler: record.scheduler,
      nodes: record.nodes,
      workers: record.workers,
      cacheBytes: record.cacheBytes,
      site: record.site,
      demo: record.demo,
      logDir: record.logDir,
      vipUrl: record.vipUrl,
      originUrl: record.originUrl,
      launcherPid: record.launcherPid,
      launcherRunning,
      detached: record.detached,
      startedAt: record.startedAt,
      readyAt: record.readyAt,
      startSeconds: record.startSeconds,
      ...(vip ? { vip } : {}),
      processes: health,
    },
  };
}
