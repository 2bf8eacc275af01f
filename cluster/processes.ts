// The cluster's long-running processes: started detached inside their hosts' namespaces with
// output to log files, recognised again later by PID *and* start time *and* namespace (so a
// recycled PID is never signalled), and stopped with SIGTERM then SIGKILL.
import type { ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { open, readFile, readlink, stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { alive, killPids, NETNS_DIR } from "../testbed/netns.js";
import type { Testbed } from "../testbed/testbed.js";

/** The CLI entry point the processes run (`node bin/sc-cluster.js <command> ...`). */
export const CLI_BIN = fileURLToPath(new URL("../../bin/sc-cluster.js", import.meta.url));

/** A process as recorded in the cluster's state file. */
export interface ProcessRecord {
  host: string;
  role: "origin" | "node" | "dispatcher";
  pid: number;
  /** Start time in clock ticks since boot (/proc/PID/stat field 22): tells a reused PID apart. */
  startTime: string;
  /** Network namespace it runs in. */
  netns: string;
  log: string;
  admin?: string;
  /** Arguments after `sc-cluster`. */
  args: string[];
}

/**
 * Starts `sc-cluster <args>` inside a host, in its own session (so a Ctrl-C meant for the
 * launcher does not reach it and it outlives the launcher when detached), stdout and stderr
 * appended to `log`.
 */
export function spawnInHost(tb: Testbed, host: string, args: string[], log: string): ChildProcess {
  const fd = openSync(log, "a");
  try {
    const child = tb.spawn(host, process.execPath, [CLI_BIN, ...args], {
      detached: true,
      stdio: ["ignore", fd, fd],
    });
    child.on("error", () => {
      /* surfaces as an exit with no pid; callers check child.pid */
    });
    return child;
  } finally {
    closeSync(fd);
  }
}

/** Field 22 of /proc/PID/stat, or undefined when the process is gone. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const s = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields after the ")" that closes the command name: state is field 3, starttime 22.
    return s.slice(s.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

async function netnsOf(pid: number): Promise<number | undefined> {
  try {
    const m = /^net:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/ns/net`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the recorded process still runs: same PID, same start time, in its namespace. */
export async function isRunning(p: ProcessRecord): Promise<boolean> {
  if (!(await alive(p.pid))) return false;
  if ((await processStartTime(p.pid)) !== p.startTime) return false;
  let ino: number;
  try {
    ino = (await stat(`${NETNS_DIR}/${p.netns}`)).ino;
  } catch {
    return false;
  }
  return (await netnsOf(p.pid)) === ino;
}

/**
 * Stops the recorded processes that are still ours: SIGTERM, SIGKILL after graceMs, waits
 * until they are gone. Returns the PIDs signalled.
 */
export async function stopProcesses(records: ProcessRecord[], graceMs: number): Promise<number[]> {
  const ours: number[] = [];
  for (const r of records) if (await isRunning(r)) ours.push(r.pid);
  if (ours.length === 0) return [];
  return killPids(ours, graceMs);
}

/** The last `lines` lines of a log file (at most its last 64 KiB), or "" when unreadable. */
export async function logTail(path: string, lines = 15): Promise<string> {
  let fh;
  try {
    fh = await open(path, "r");
  } catch {
    return "";
  }
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    const text = buf.toString("utf8").replace(/\n+$/, "");
    return text.split("\n").slice(-lines).join("\n");
  } finally {
    await fh.close();
  }
}
