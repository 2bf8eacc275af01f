// Finding the testbed's namespaces and the processes inside them straight from /run/netns
// and /proc (what `ip netns list` and `ip netns pids` read), without a process per query.
import { readdir, readlink, readFile, stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

export const NETNS_DIR = "/run/netns";

/** Names of the named network namespaces (`ip netns list`). */
export async function listNetns(): Promise<string[]> {
  try {
    return (await readdir(NETNS_DIR)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
}

/** Inode of a named namespace (the id `/proc/<pid>/ns/net` links to), or undefined. */
async function netnsInode(name: string): Promise<number | undefined> {
  try {
    return (await stat(`${NETNS_DIR}/${name}`)).ino;
  } catch {
    return undefined;
  }
}

/** PIDs of the processes whose network namespace is one of `names` (`ip netns pids`). */
export async function pidsInNetns(names: string[]): Promise<Map<string, number[]>> {
  const byInode = new Map<number, string>();
  for (const name of names) {
    const ino = await netnsInode(name);
    if (ino !== undefined) byInode.set(ino, name);
  }
  const found = new Map<string, number[]>();
  if (byInode.size === 0) return found;
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let link: string;
    try {
      link = await readlink(`/proc/${entry}/ns/net`);
    } catch {
      continue; // exited meanwhile, or a zombie
    }
    const m = /^net:\[(\d+)\]$/.exec(link);
    const name = m ? byInode.get(Number(m[1])) : undefined;
    if (name === undefined) continue;
    const list = found.get(name) ?? [];
    list.push(Number(entry));
    found.set(name, list);
  }
  return found;
}

/** True while the process exists and is not a zombie. */
export async function alive(pid: number): Promise<boolean> {
  try {
    const s = await readFile(`/proc/${pid}/stat`, "utf8");
    // The state letter follows the ")" that closes the command name.
    return s.slice(s.lastIndexOf(")") + 2, s.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Ends the given processes: SIGTERM, then SIGKILL for those still alive after
 * `graceMs`; waits (bounded) until they are gone. Returns the PIDs that were signalled.
 */
export async function killPids(pids: number[], graceMs = 1000): Promise<number[]> {
  const own = pids.filter((p) => p !== process.pid);
  for (const pid of own) signal(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  let left = own;
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(20);
    left = (await Promise.all(left.map(async (p) => ((await alive(p)) ? p : -1)))).filter((p) => p > 0);
  }
  for (const pid of left) signal(pid, "SIGKILL");
  const killDeadline = Date.now() + 2000;
  while (left.length > 0 && Date.now() < killDeadline) {
    await sleep(10);
    left = (await Promise.all(left.map(async (p) => ((await alive(p)) ? p : -1)))).filter((p) => p > 0);
  }
  return own;
}
