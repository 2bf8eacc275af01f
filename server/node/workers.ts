// `sc-cluster node --workers N` (--stack user; modes local, sc, cf-lru, cf-lfu): N worker
// threads (worker-main.ts), each a whole node data path: its own queue of the multi-queue TUN
// device, its own user-space TCP stack, HTTP server, responder and mode, and its own GUE
// socket in a SO_REUSEPORT group. The kernel steers each GUE datagram to a worker with a BPF
// program on the inner packet's source address and port (sc/gue/steering.ts, udp.c
// attach_steering), so every packet of a client connection reaches the worker whose stack
// holds it, whatever the front (dispatcher --output tun/udp/raw, IPVS, Katran) puts in the
// outer header. Each worker counts packets that reached it but belong to another
// (`gue.wrongWorker`, `sc_gue_wrong_worker_total`; must stay 0). Socket i of the group is the
// i-th bound, so the workers start one after the other.
//
// Cluster modes: worker i of every node is plane i (server/membership/config.ts planeOf): SC
// links and peer cache requests on the cluster's ports + 100 i, between the same planes only;
// the steering puts a connection on the same worker index on every node, so a clone and the
// packets relayed to it meet there (a clone that would not is refused: wrong-worker).
//
// This thread keeps the control plane: the admin API (/healthz, /stats added up over the
// workers with `perWorker` beside, /metrics aggregated with prom-client's AggregatorRegistry,
// POST /purge), drain and shutdown; and the node's one document cache, which the workers'
// stores are L1s of (shared-documents.ts, server/store/shared-cache.ts). Not supported with
// workers: --mode lard, --access-log, SIGHUP reloads.
import { Worker, type MessagePort } from "node:worker_threads";
import { fileURLToPath } from "node:url";
import { AggregatorRegistry, Registry, type MetricObjectWithValues, type MetricValue } from "prom-client";
import { startGuardedAdmin, type AdminServer } from "./admin.js";
import type { Logger } from "../log.js";
import { UserError } from "../../common/errors.js";
import type { NodeConfig } from "./node.js";
import { clusterPurge } from "./purge.js";
import { joinCluster, pollMembers } from "./node.js";
import { SharedDocuments } from "./shared-documents.js";
import { checkPlanes } from "../membership/config.js";
import { ClusterSecret, SecretError, type ClusterTrust } from "../../sc/auth/secret.js";

/** How often a worker posts its /stats snapshot (ms). */
export const WORKER_STATS_MS = 200;
const READY_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 3_000;
export const MAX_NODE_WORKERS = 64;

const WORKER_MAIN = fileURLToPath(new URL("./worker-main.js", import.meta.url));

type MetricJson = MetricObjectWithValues<MetricValue<string>>;

/** What a worker gets: the node's configuration without what cannot cross threads. */
export type WorkerNodeConfig = Omit<
  NodeConfig,
  "logger" | "trust" | "admin" | "mode" | "worker" | "sharedCache"
> & {
  mode: string;
  trust: WorkerTrust;
};

export interface NodeWorkerInit {
  config: WorkerNodeConfig;
  index: number;
  count: number;
  logLevel: string;
  /** The worker's end of its channel to the node's shared document cache. */
  cachePort: MessagePort;
}

export type NodeWorkerCommand =
  { op: "metrics"; id: number } | { op: "drain" } | { op: "stop"; graceMs: number };

export type NodeWorkerMessage =
  | { type: "ready"; address: { host: string; port: number } }
  | { type: "stats"; snapshot: Record<string, unknown> }
  | { type: "metrics"; id: number; json: MetricJson[] }
  | { type: "error"; message: string };

/** Numbers that are the same on every worker (settings, clocks): the first worker's, not a sum. */
const SHARED_NUMBERS = new Set(["uptimeSeconds", "ttlMs", "maxBytes", "changes", "version"]);
/** Percentiles and maxima of per-worker samples: the largest worker's (an upper bound), not a sum. */
const WORST_NUMBERS = new Set(["p50", "p90", "p99", "max"]);

/**
 * Adds up the numbers of objects of the same shape; other values are the first one's. Shared
 * settings keep the first value and percentiles the largest (SHARED_NUMBERS, WORST_NUMBERS).
 */
export function sumSnapshots(list: readonly Record<string, unknown>[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of list) {
    for (const [k, v] of Object.entries(o)) {
      const cur = out[k];
      if (typeof v === "number") {
        const prev = typeof cur === "number" ? cur : undefined;
        out[k] =
          prev === undefined
            ? v
            : SHARED_NUMBERS.has(k)
              ? prev
              : WORST_NUMBERS.has(k)
                ? Math.max(prev, v)
                : prev + v;
      } else if (v !== null && typeof v === "object" && !Array.isArray(v)) {
        out[k] = sumSnapshots([
          ...(cur !== null && typeof cur === "object" && !Array.isArray(cur)
            ? [cur as Record<string, unknown>]
            : []),
          v as Record<string, unknown>,
        ]);
      } else if (!(k in out)) out[k] = v;
    }
  }
  return out;
}

/** The modes that run on data-path workers (lard hands connections over by the dispatcher's id). */
const WORKER_MODES: readonly string[] = ["local", "sc", "cf-lru", "cf-lfu"];

/** Checks what `--workers N > 1` supports; throws a UserError that says what is not. */
export function checkWorkerConfig(cfg: NodeConfig, workers: number): void {
  if (!Number.isInteger(workers) || workers < 2 || workers > MAX_NODE_WORKERS) {
    throw new UserError(`--workers must be 1..${MAX_NODE_WORKERS}, got ${workers}`);
  }
  if (cfg.stack !== "user") throw new UserError("--workers N > 1 needs --stack user");
  if (typeof cfg.mode !== "string" || !WORKER_MODES.includes(cfg.mode)) {
    throw new UserError(
      `--workers N > 1 runs --mode ${WORKER_MODES.join(", ")} (not ${typeof cfg.mode === "string" ? cfg.mode : "this mode"})`,
    );
  }
  if (cfg.cluster) checkPlanes(cfg.cluster, workers);
  if (cfg.accessLog) throw new UserError("--workers N > 1 does not write an access log yet");
  if (!cfg.guePort) throw new UserError("--workers N > 1 takes client packets in GUE: give --gue-port");
}

/** The trust as it crosses to a worker thread (a ClusterSecret cannot). */
export type WorkerTrust = { kind: "secret"; text: string } | { kind: "insecure-dev" } | null;

export function trustForWorker(trust: ClusterTrust | null): WorkerTrust {
  if (trust === null || trust.kind === "insecure-dev") return trust;
  return { kind: "secret", text: trust.secret.textForWorkerThread() };
}

export function trustFromMain(t: WorkerTrust): ClusterTrust | null {
  if (t === null || t.kind === "insecure-dev") return t;
  const secret = ClusterSecret.parse(t.text);
  if (secret instanceof SecretError) throw new Error(secret.message);
  return { kind: "secret", secret };
}

interface Slot {
  worker: Worker;
  snapshot: Record<string, unknown> | undefined;
  exited: Promise<void>;
}

export interface RunningNodeWorkers {
  readonly nodeId: string;
  readonly workers: number;
  readonly address: { host: string; port: number };
  readonly adminAddress: { host: string; port: number } | null;
  /** Resolves with the error when a worker fails (the process should stop). */
  readonly failed: Promise<Error>;
  snapshot(): Record<string, unknown>;
  beginDrain(): void;
  shutdown(graceMs: number): Promise<void>;
}

export async function startNodeWorkers(
  cfg: NodeConfig,
  workers: number,
  logLevel: string,
): Promise<RunningNodeWorkers> {
  checkWorkerConfig(cfg, workers);
  const docs = await SharedDocuments.open(cfg);
  const pool = new WorkerPool(workerConfig(cfg), workers, logLevel, cfg.logger, docs);
  let address = { host: cfg.listen.host, port: cfg.listen.port };
  let leaving = false;
  let admin: AdminServer | null = null;
  let control: WorkersControl | null = null;
  try {
    // One after the other: worker i's GUE socket must be the i-th of the reuseport group.
    for (let index = 0; index < workers; index++) address = await pool.spawn(index);
    control = await workersControl(cfg, docs);
    const purge = control.purge;
    admin = cfg.admin
      ? await startGuardedAdmin(cfg.admin, cfg.trust, cfg.logger, pool.registry(cfg.nodeId), {
          stats: () => pool.snapshot(cfg.nodeId),
          healthy: () => !leaving && !pool.stopping,
          purge,
        })
      : null;
  } catch (err) {
    control?.stop();
    await pool.stopAll(0);
    await docs.close();
    throw err instanceof UserError ? err : new UserError((err as Error).message);
  }
  return {
    nodeId: cfg.nodeId,
    workers,
    address,
    adminAddress: admin?.address ?? null,
    failed: pool.failed,
    snapshot: () => pool.snapshot(cfg.nodeId),
    beginDrain() {
      leaving = true;
      pool.tell({ op: "drain" });
    },
    async shutdown(graceMs: number) {
      control?.stop();
      await pool.stopAll(graceMs);
      await admin?.close();
      await docs.close();
    },
  };
}

/** The node's configuration as its workers get it: the trust as text, the control token. */
function workerConfig(cfg: NodeConfig): WorkerNodeConfig {
  const { logger: _l, trust, admin: _a, mode, worker: _w, sharedCache: _s, ...rest } = cfg;
  const controlToken =
    cfg.admin?.token ??
    cfg.controlToken ??
    (trust?.kind === "secret" ? trust.secret.adminToken() : undefined);
  return {
    ...rest,
    mode: mode as string,
    trust: trustForWorker(trust),
    ...(controlToken !== undefined ? { controlToken } : {}),
  };
}

interface WorkersControl {
  purge: (body: unknown) => Promise<{ status: number; body: unknown }>;
  stop(): void;
}

/**
 * POST /purge on this thread: the shared cache (which tells every worker), then the other
 * members as on any node; the membership for that follows --members-from here too.
 */
async function workersControl(cfg: NodeConfig, docs: SharedDocuments): Promise<WorkersControl> {
  const members = await joinCluster({ ...cfg, worker: undefined });
  const poll = pollMembers(cfg, members, cfg.logger);
  return {
    purge: clusterPurge({
      ...members,
      nodeId: cfg.nodeId,
      purgeLocal: (target) => docs.owner.purge(target),
      admin: cfg.admin,
      log: cfg.logger,
    }),
    stop: () => poll?.stop(),
  };
}

/** The worker threads of one node, and the questions this thread asks them. */
class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, (m: NodeWorkerMessage) => void>();
  private nextId = 1;
  stopping = false;
  /** Resolves with the first worker failure after start-up. */
  readonly failed: Promise<Error>;
  private fail: (err: Error) => void = () => {};

  constructor(
    private readonly config: WorkerNodeConfig,
    private readonly count: number,
    private readonly logLevel: string,
    private readonly log: Logger,
    private readonly docs: SharedDocuments,
  ) {
    this.failed = new Promise<Error>((resolve) => (this.fail = resolve));
  }

  private onFatal(err: Error): void {
    if (this.stopping) return;
    this.log.error({ err: err.message }, "node worker failed");
    this.fail(err);
  }

  /** Starts worker `index`; resolves with the address it serves once it is ready. */
  spawn(index: number): Promise<{ host: string; port: number }> {
    const cachePort = this.docs.connectWorker();
    const init: NodeWorkerInit = {
      config: this.config,
      index,
      count: this.count,
      logLevel: this.logLevel,
      cachePort,
    };
    const worker = new Worker(WORKER_MAIN, { workerData: init, transferList: [cachePort] });
    const slot: Slot = {
      worker,
      snapshot: undefined,
      exited: new Promise((resolve) => worker.once("exit", () => resolve())),
    };
    this.slots.push(slot);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`node worker ${index} not ready within ${READY_TIMEOUT_MS} ms`)),
        READY_TIMEOUT_MS,
      );
      const failWith = (err: Error) => {
        clearTimeout(timer);
        reject(err);
        this.onFatal(err);
      };
      worker.on("message", (m: NodeWorkerMessage) => {
        if (m.type === "ready") {
          clearTimeout(timer);
          resolve(m.address);
        } else if (m.type === "stats") slot.snapshot = m.snapshot;
        else if (m.type === "error") failWith(new Error(`node worker ${index}: ${m.message}`));
        else this.pending.get(m.id)?.(m);
      });
      worker.on("error", (e: Error) =>
        failWith(new Error(`node worker ${index} failed: ${e.message}`, { cause: e })),
      );
      worker.on("exit", (code) => failWith(new Error(`node worker ${index} exited (${code})`)));
    });
  }

  tell(cmd: NodeWorkerCommand): void {
    for (const s of this.slots) s.worker.postMessage(cmd);
  }

  async stopAll(graceMs: number): Promise<void> {
    this.stopping = true;
    this.tell({ op: "stop", graceMs });
    await Promise.all(
      this.slots.map(async (s) => {
        const timer = setTimeout(() => void s.worker.terminate(), graceMs + 5000);
        await s.exited;
        clearTimeout(timer);
      }),
    );
  }

  /** Asks every worker; a worker that does not answer in time is left out. */
  private ask<T extends NodeWorkerMessage>(make: (id: number) => NodeWorkerCommand): Promise<T[]> {
    const one = (s: Slot) =>
      new Promise<T | undefined>((resolve) => {
        const id = this.nextId++;
        const timer = setTimeout(() => {
          this.pending.delete(id);
          resolve(undefined);
        }, REQUEST_TIMEOUT_MS);
        this.pending.set(id, (m) => {
          clearTimeout(timer);
          this.pending.delete(id);
          resolve(m as T);
        });
        s.worker.postMessage(make(id));
      });
    return Promise.all(this.slots.map(one)).then((list) =>
      list.filter((m): m is Awaited<T> => m !== undefined),
    );
  }

  /** /metrics added up over the workers, with the shared cache's beside. */
  registry(nodeId: string): Registry {
    return new WorkersRegistry(nodeId, this.docs, () =>
      this.ask<Extract<NodeWorkerMessage, { type: "metrics" }>>((id) => ({ op: "metrics", id })).then((l) =>
        l.map((m) => m.json),
      ),
    );
  }

  /** /stats: the workers' snapshots added up, with each worker's share beside. */
  snapshot(nodeId: string): Record<string, unknown> {
    const snaps = this.slots.flatMap((s) => (s.snapshot ? [s.snapshot] : []));
    return {
      ...sumSnapshots(snaps),
      // The workers' stores are L1s of the shared cache: the node's documents are its.
      ...this.docs.snapshot(),
      node: nodeId,
      workers: this.count,
      // Per worker: its share of the traffic, and the steering check.
      perWorker: this.slots.map((s, i) => {
        const snap = s.snapshot as
          | {
              http?: { requests?: unknown };
              connections?: unknown;
              tcp?: { gue?: { packets?: number; wrongWorker?: number } };
            }
          | undefined;
        return {
          worker: i,
          requests: snap?.http?.requests ?? null,
          connections: snap?.connections ?? null,
          guePackets: snap?.tcp?.gue?.packets ?? 0,
          wrongWorker: snap?.tcp?.gue?.wrongWorker ?? 0,
        };
      }),
    };
  }
}

/** /metrics of the workers added up (prom-client's cluster aggregation), plus this thread's. */
class WorkersRegistry extends Registry {
  constructor(
    nodeId: string,
    docs: SharedDocuments,
    private readonly fromWorkers: () => Promise<MetricJson[][]>,
  ) {
    super();
    this.setDefaultLabels({ node: nodeId });
    docs.registerMetrics(this);
  }

  override async metrics(): Promise<string> {
    const lists = (await this.fromWorkers()).map((l) => l.map(oncePerNode));
    const own = await this.getMetricsAsJSON();
    return AggregatorRegistry.aggregate([...lists, own] as never).metrics();
  }
}

/**
 * Metrics every worker counts for the node as a whole (each polls the membership itself):
 * one worker's value, not the sum over workers.
 */
const NODE_WIDE_METRICS = new Set([
  "sc_membership_changes_total",
  "sc_membership_polls_total",
  "sc_membership_poll_failures_total",
]);

function oncePerNode(m: MetricJson): MetricJson {
  return NODE_WIDE_METRICS.has(m.name) ? { ...m, aggregator: "first" } : m;
}
