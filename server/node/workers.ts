// `sc-cluster node --workers N` (--stack user, --mode local): N worker threads
// (node-worker-main.ts), each a whole node data path: its own queue of the multi-queue TUN
// device, its own user-space TCP stack, HTTP server, responder, document store and cache,
// and its own GUE socket in a SO_REUSEPORT group. The kernel steers each GUE datagram to a
// worker with a BPF program on the inner packet's source address and port (sc/gue/steering.ts,
// udp.c attach_steering), so every packet of a client connection reaches the worker whose
// stack holds it, whatever the front (dispatcher --output tun/udp/raw, IPVS, Katran) puts in
// the outer header. Each worker counts packets that reached it but belong to another
// (`gue.wrongWorker`, `sc_gue_wrong_worker_total`; must stay 0). Socket i of the group is the
// i-th bound, so the workers start one after the other.
//
// This thread keeps the control plane: the admin API (/healthz, /stats added up over the
// workers with `perWorker` beside, /metrics aggregated with prom-client's AggregatorRegistry,
// POST /purge sent to every worker), drain and shutdown.
//
// Not shared between workers (yet): the document cache. Each worker caches what it serves,
// so a document is held once per worker (N times per node) and each worker loads it from the
// source once. Not supported with workers: cluster modes (sc, cf-*: clones and relays would
// have to address the owning worker), --access-log, SIGHUP reloads.
import { Worker } from "node:worker_threads";
import { fileURLToPath } from "node:url";
import { AggregatorRegistry, Registry, type MetricObjectWithValues, type MetricValue } from "prom-client";
import type { PurgeTarget } from "../store/doc-store.js";
import { AdminGuard, adminAuthFrom } from "../../sc/auth/admin-access.js";
import { startAdmin, type AdminServer } from "./admin.js";
import { UserError } from "../../common/errors.js";
import type { NodeConfig } from "./node.js";
import { purgeRequestFrom } from "./purge.js";

/** How often a worker posts its /stats snapshot (ms). */
export const WORKER_STATS_MS = 200;
const READY_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 3_000;
export const MAX_NODE_WORKERS = 64;

const WORKER_MAIN = fileURLToPath(new URL("./worker-main.js", import.meta.url));

type MetricJson = MetricObjectWithValues<MetricValue<string>>;

/** What a worker gets: the node's configuration without what cannot cross threads. */
export type WorkerNodeConfig = Omit<NodeConfig, "logger" | "trust" | "admin" | "mode" | "worker"> & {
  mode: string;
};

export interface NodeWorkerInit {
  config: WorkerNodeConfig;
  index: number;
  count: number;
  logLevel: string;
}

export type NodeWorkerCommand =
  | { op: "metrics"; id: number }
  | { op: "purge"; id: number; target: PurgeTarget }
  | { op: "drain" }
  | { op: "stop"; graceMs: number };

export type NodeWorkerMessage =
  | { type: "ready"; address: { host: string; port: number } }
  | { type: "stats"; snapshot: Record<string, unknown> }
  | { type: "metrics"; id: number; json: MetricJson[] }
  | { type: "purged"; id: number; purged: number }
  | { type: "error"; message: string };

/** Adds up the numbers of objects of the same shape; other values are the first one's. */
export function sumSnapshots(list: readonly Record<string, unknown>[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of list) {
    for (const [k, v] of Object.entries(o)) {
      const cur = out[k];
      if (typeof v === "number") out[k] = (typeof cur === "number" ? cur : 0) + v;
      else if (v !== null && typeof v === "object" && !Array.isArray(v)) {
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

/** Checks what `--workers N > 1` supports; throws a UserError that says what is not. */
export function checkWorkerConfig(cfg: NodeConfig, workers: number): void {
  if (!Number.isInteger(workers) || workers < 2 || workers > MAX_NODE_WORKERS) {
    throw new UserError(`--workers must be 1..${MAX_NODE_WORKERS}, got ${workers}`);
  }
  if (cfg.stack !== "user") throw new UserError("--workers N > 1 needs --stack user");
  if (typeof cfg.mode !== "string" || cfg.mode !== "local" || cfg.cluster) {
    throw new UserError(
      "--workers N > 1 runs --mode local only (in the cluster modes clones and relays would have to " +
        "address the worker that owns a connection; not done yet)",
    );
  }
  if (cfg.accessLog) throw new UserError("--workers N > 1 does not write an access log yet");
  if (!cfg.guePort) throw new UserError("--workers N > 1 takes client packets in GUE: give --gue-port");
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
  const log = cfg.logger;
  const { logger: _l, trust: _t, admin: _a, mode, worker: _w, ...rest } = cfg;
  const config: WorkerNodeConfig = { ...rest, mode: mode as string };
  const slots: Slot[] = [];
  let stopping = false;
  let fail: (err: Error) => void = () => {};
  const failed = new Promise<Error>((resolve) => (fail = resolve));
  const onFatal = (err: Error) => {
    if (stopping) return;
    log.error({ err: err.message }, "node worker failed");
    fail(err);
  };
  let nextId = 1;
  const pending = new Map<number, (m: NodeWorkerMessage) => void>();
  let address = { host: cfg.listen.host, port: cfg.listen.port };

  const stopAll = async (graceMs: number) => {
    stopping = true;
    for (const s of slots) s.worker.postMessage({ op: "stop", graceMs } satisfies NodeWorkerCommand);
    await Promise.all(
      slots.map(async (s) => {
        const timer = setTimeout(() => void s.worker.terminate(), graceMs + 5000);
        await s.exited;
        clearTimeout(timer);
      }),
    );
  };

  // One after the other: worker i's GUE socket must be the i-th of the reuseport group.
  for (let index = 0; index < workers; index++) {
    const init: NodeWorkerInit = { config, index, count: workers, logLevel };
    const worker = new Worker(WORKER_MAIN, { workerData: init });
    const slot: Slot = {
      worker,
      snapshot: undefined,
      exited: new Promise((resolve) => worker.once("exit", () => resolve())),
    };
    slots.push(slot);
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`node worker ${index} not ready within ${READY_TIMEOUT_MS} ms`)),
        READY_TIMEOUT_MS,
      );
      worker.on("message", (m: NodeWorkerMessage) => {
        switch (m.type) {
          case "ready":
            clearTimeout(timer);
            address = m.address;
            resolve();
            break;
          case "stats":
            slot.snapshot = m.snapshot;
            break;
          case "metrics":
          case "purged":
            pending.get(m.id)?.(m);
            break;
          case "error": {
            clearTimeout(timer);
            const err = new Error(`node worker ${index}: ${m.message}`);
            reject(err);
            onFatal(err);
          }
        }
      });
      worker.on("error", (e: Error) => {
        clearTimeout(timer);
        const err = new Error(`node worker ${index} failed: ${e.message}`, { cause: e });
        reject(err);
        onFatal(err);
      });
      worker.on("exit", (code) => {
        clearTimeout(timer);
        const err = new Error(`node worker ${index} exited (${code})`);
        reject(err);
        onFatal(err);
      });
    });
    try {
      await ready;
    } catch (err) {
      await stopAll(0);
      throw new UserError((err as Error).message);
    }
  }

  /** Asks every worker; a worker that does not answer in time is left out. */
  const ask = <T extends NodeWorkerMessage>(make: (id: number) => NodeWorkerCommand): Promise<T[]> =>
    Promise.all(
      slots.map(
        (s) =>
          new Promise<T | undefined>((resolve) => {
            const id = nextId++;
            const timer = setTimeout(() => {
              pending.delete(id);
              resolve(undefined);
            }, REQUEST_TIMEOUT_MS);
            pending.set(id, (m) => {
              clearTimeout(timer);
              pending.delete(id);
              resolve(m as T);
            });
            s.worker.postMessage(make(id));
          }),
      ),
    ).then((list) => list.filter((m): m is Awaited<T> => m !== undefined) as T[]);

  const snapshot = (): Record<string, unknown> => {
    const snaps = slots.flatMap((s) => (s.snapshot ? [s.snapshot] : []));
    return {
      ...sumSnapshots(snaps),
      node: cfg.nodeId,
      workers,
      // Per worker: its share of the traffic, and the steering check.
      perWorker: slots.map((s, i) => {
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
  };

  let leaving = false;
  let admin: AdminServer | null = null;
  if (cfg.admin) {
    const guard = new AdminGuard(adminAuthFrom(cfg.trust, cfg.admin.token), [
      cfg.admin.host,
      ...(cfg.admin.names ?? []),
    ]);
    if (guard.auth.kind === "open") log.warn(guard.describe());
    else log.info(guard.describe());
    const registry = new WorkersRegistry(() =>
      ask<Extract<NodeWorkerMessage, { type: "metrics" }>>((id) => ({ op: "metrics", id })).then((l) =>
        l.map((m) => m.json),
      ),
    );
    try {
      admin = await startAdmin({
        host: cfg.admin.host,
        port: cfg.admin.port,
        logger: log,
        registry,
        guard,
        stats: snapshot,
        healthy: () => !leaving && !stopping,
        purge: async (body) => {
          const req = purgeRequestFrom(body);
          if (typeof req === "string") return { status: 400, body: { error: req } };
          const answers = await ask<Extract<NodeWorkerMessage, { type: "purged" }>>((id) => ({
            op: "purge",
            id,
            target: req.target,
          }));
          const purged = answers.reduce((sum, a) => sum + a.purged, 0);
          log.info({ target: req.target, purged }, "purge");
          return answers.length === slots.length
            ? { status: 200, body: { node: cfg.nodeId, purged } }
            : { status: 502, body: { node: cfg.nodeId, purged, error: "a worker did not answer" } };
        },
      });
    } catch (err) {
      await stopAll(0);
      throw err;
    }
  }

  return {
    nodeId: cfg.nodeId,
    workers,
    address,
    adminAddress: admin?.address ?? null,
    failed,
    snapshot,
    beginDrain() {
      leaving = true;
      for (const s of slots) s.worker.postMessage({ op: "drain" } satisfies NodeWorkerCommand);
    },
    async shutdown(graceMs: number) {
      await stopAll(graceMs);
      await admin?.close();
    },
  };
}

/** /metrics of the workers added up (prom-client's cluster aggregation), plus this thread's. */
class WorkersRegistry extends Registry {
  constructor(private readonly fromWorkers: () => Promise<MetricJson[][]>) {
    super();
  }

  override async metrics(): Promise<string> {
    const lists = await this.fromWorkers();
    const own = await this.getMetricsAsJSON();
    return AggregatorRegistry.aggregate([...lists, own] as never).metrics();
  }
}
