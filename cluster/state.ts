// The cluster's state file, <stateDir>/<prefix>/cluster.json, beside the testbed's own
// <stateDir>/<prefix>.json (which carries `admin` and `pid` per host). It records what `up`
// started so that `status` can describe it and `down` can stop it from any process, also
// after the launcher crashed. `down` does not depend on it: the testbed's down ends every
// process inside the namespaces anyway.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ProcessRecord } from "./processes.js";

export const CLUSTER_STATE_VERSION = 1;

export interface ClusterRecord {
  version: typeof CLUSTER_STATE_VERSION;
  prefix: string;
  /** The `up` process (or the program that called startCluster). */
  launcherPid: number;
  /** True once `up --detach` handed the cluster over (no launcher watches it any more). */
  detached: boolean;
  startedAt: string;
  /** Set when every health check passed and the VIP answered. */
  readyAt: string | null;
  /** Seconds from the start of `up` to healthy. */
  startSeconds: number | null;
  nodes: number;
  /** Data-path worker threads per node (`--workers`). */
  workers: number;
  mode: string;
  scheduler: string;
  cacheBytes: number;
  weights: number[];
  site: string;
  /** The demo site's trace and manifest when no site was given. */
  demo: { trace: string; manifest: string } | null;
  dir: string;
  logDir: string;
  vipUrl: string;
  originUrl: string;
  processes: ProcessRecord[];
  /** The dashboard the launcher serves (URL), if any. */
  dashboard?: string | null;
}

/** A record as read: one written before the launcher ran node workers has no `workers`. */
type StoredRecord = Omit<ClusterRecord, "workers"> & { workers?: number };

export function recordPath(dir: string): string {
  return join(dir, "cluster.json");
}

export async function writeRecord(r: ClusterRecord): Promise<void> {
  await mkdir(r.dir, { recursive: true });
  const path = recordPath(r.dir);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(r, null, 2) + "\n");
  await rename(tmp, path);
}

export async function readRecord(dir: string): Promise<ClusterRecord | undefined> {
  try {
    const r = JSON.parse(await readFile(recordPath(dir), "utf8")) as StoredRecord;
    if (!(r && r.version === CLUSTER_STATE_VERSION && Array.isArray(r.processes))) return undefined;
    // Written before the launcher ran node workers: one per node.
    return { ...r, workers: r.workers ?? 1 };
  } catch {
    return undefined;
  }
}
