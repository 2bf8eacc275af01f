// The state file of a running testbed (<stateDir>/<prefix>.json): what `status` prints and
// what later commands extend. `down` never depends on it: it discovers by prefix.
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TestbedStatus } from "./status.js";

export const DEFAULT_STATE_DIR = "/run/sc-cluster";

/** SC_CLUSTER_STATE_DIR overrides the default directory (e.g. without /run). */
export function stateDir(dir?: string): string {
  return dir ?? process.env.SC_CLUSTER_STATE_DIR ?? DEFAULT_STATE_DIR;
}

export function statePath(prefix: string, dir?: string): string {
  return join(stateDir(dir), `${prefix}.json`);
}

export async function writeState(status: TestbedStatus, dir?: string): Promise<void> {
  const path = statePath(status.prefix, dir);
  await mkdir(stateDir(dir), { recursive: true });
  // Write then rename, so a reader never sees half a file.
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(status, null, 2) + "\n");
  await rename(tmp, path);
}

/** The saved status, or undefined when there is no (readable) state file. */
export async function readState(prefix: string, dir?: string): Promise<TestbedStatus | undefined> {
  let text: string;
  try {
    text = await readFile(statePath(prefix, dir), "utf8");
  } catch {
    return undefined;
  }
  try {
    const s = JSON.parse(text) as TestbedStatus;
    return s && s.prefix === prefix && Array.isArray(s.hosts) ? s : undefined;
  } catch {
    return undefined;
  }
}

export async function removeState(prefix: string, dir?: string): Promise<void> {
  await rm(statePath(prefix, dir), { force: true });
}
