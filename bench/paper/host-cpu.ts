// `--host-cpu SHARE`: the cgroups that give each server-side host of a contender its own CPU
// budget (the plan is cgroup-plan.ts; this file does the file I/O). A contender's groups live
// under one directory named after its namespace prefix; they are removed when it stops, and a
// leftover of a killed run is removed before the same prefix is used again.
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import {
  baseDir,
  cpuQuota,
  findCpuCgroup,
  ownGroup,
  parseCpuStat,
  planHostCpu,
  setupSteps,
  teardownSteps,
  type CgroupStep,
  type CpuCgroupRoot,
  type CpuStat,
  type HostCpuPlan,
  type HostProcess,
} from "./cgroup-plan.js";
import { UserError } from "../../common/errors.js";

export class HostCpuError extends UserError {
  constructor(message: string) {
    super(message, "ERR_HOST_CPU");
  }
}

/** The cpu controller's hierarchy on this machine, or a clear error why there is none to use. */
export function detectCpuCgroup(): CpuCgroupRoot {
  const mounts = readFileSync("/proc/self/mounts", "utf8");
  const read = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : undefined);
  const root = findCpuCgroup(mounts, (m) => read(`${m}/cgroup.controllers`));
  if (!root)
    throw new HostCpuError("--host-cpu: no cgroup hierarchy (v1 or v2) with the cpu controller is mounted");
  if (
    root.version === 2 &&
    !(read(`${root.mount}/cgroup.subtree_control`) ?? "").split(/\s+/).includes("cpu")
  )
    throw new HostCpuError(
      `--host-cpu: the cpu controller is not enabled for ${root.mount}'s children ` +
        `(as root: echo +cpu > ${root.mount}/cgroup.subtree_control)`,
    );
  return root;
}

/** The group the benchmark itself runs in: where processes go back before a group is removed. */
function home(root: CpuCgroupRoot): string {
  const own = ownGroup(readFileSync("/proc/self/cgroup", "utf8"), root.version);
  return own === "/" ? root.mount : `${root.mount}${own}`;
}

async function runStep(s: CgroupStep, tolerate: (e: NodeJS.ErrnoException) => boolean): Promise<void> {
  try {
    if (s.op === "mkdir") await mkdir(s.path);
    else if (s.op === "rmdir") await rmdir(s.path);
    else await writeFile(s.path, s.value);
  } catch (e) {
    if (!tolerate(e as NodeJS.ErrnoException)) throw e;
  }
}

async function procsOf(dir: string): Promise<number[]> {
  const text = await readFile(`${dir}/cgroup.procs`, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((l) => /^\d+$/.test(l.trim()))
    .map(Number);
}

/**
 * Removes a base directory and its groups, moving any process still in them back home first.
 * A group of a process that is just exiting may stay busy for a moment: retried a few times.
 */
export async function removeBase(root: CpuCgroupRoot, base: string): Promise<void> {
  if (!existsSync(base)) return;
  for (let attempt = 0; ; attempt++) {
    const groups = (await readdir(base, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => `${base}/${d.name}`);
    const remaining = new Map<string, number[]>();
    for (const g of groups) remaining.set(g, await procsOf(g));
    // Moving a process that exited meanwhile fails with ESRCH: nothing to move.
    for (const s of teardownSteps(base, groups, remaining, home(root)))
      await runStep(
        s,
        (e) => e.code === "ESRCH" || e.code === "ENOENT" || (s.op === "rmdir" && attempt < 20),
      );
    if (!existsSync(base)) return;
    await sleep(50);
  }
}

/** A contender's budgets, set up; `remove()` takes them away again. */
export class HostCpuBudget {
  private removed = false;

  private constructor(readonly plan: HostCpuPlan) {}

  /**
   * Creates one group per server-side host with the quota of `share` cores and moves the
   * processes in. A leftover of the same prefix is removed first; on failure, what was created is.
   */
  static async apply(
    root: CpuCgroupRoot,
    prefix: string,
    share: number,
    processes: readonly HostProcess[],
  ): Promise<HostCpuBudget> {
    await removeBase(root, baseDir(root, prefix));
    const plan = planHostCpu(root, prefix, share, processes);
    const budget = new HostCpuBudget(plan);
    try {
      for (const s of setupSteps(plan))
        // A process that exited between listing and moving: the cluster's own checks report it.
        await runStep(s, (e) => e.code === "ESRCH" && s.op === "write" && s.path.endsWith("cgroup.procs"));
    } catch (e) {
      await budget.remove();
      throw new HostCpuError(`--host-cpu: setting up ${plan.base} failed: ${(e as Error).message}`);
    }
    return budget;
  }

  /** What the kernel holds now, read back from the groups' files: quota, period and processes. */
  async readBack(): Promise<{ host: string; quota_us: number; period_us: number; pids: number[] }[]> {
    return Promise.all(
      this.plan.groups.map(async (g) => {
        let quota: number;
        let period: number;
        if (this.plan.root.version === 1) {
          quota = Number((await readFile(`${g.dir}/cpu.cfs_quota_us`, "utf8")).trim());
          period = Number((await readFile(`${g.dir}/cpu.cfs_period_us`, "utf8")).trim());
        } else {
          const [q, p] = (await readFile(`${g.dir}/cpu.max`, "utf8")).trim().split(/\s+/);
          quota = q === "max" ? -1 : Number(q);
          period = Number(p);
        }
        return { host: g.host, quota_us: quota, period_us: period, pids: await procsOf(g.dir) };
      }),
    );
  }

  /** Each host's cpu.stat now (throttled periods tell a host that used up its budget). */
  async cpuStats(): Promise<Map<string, CpuStat>> {
    const out = new Map<string, CpuStat>();
    for (const g of this.plan.groups)
      out.set(g.host, parseCpuStat(await readFile(`${g.dir}/cpu.stat`, "utf8").catch(() => "")));
    return out;
  }

  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    await removeBase(this.plan.root, this.plan.base);
  }
}

/** What a result's params record about --host-cpu. */
export function hostCpuParams(root: CpuCgroupRoot, share: number): Record<string, unknown> {
  const { quotaUs, periodUs } = cpuQuota(share);
  return {
    share_of_a_core: share,
    cgroup_version: root.version,
    hierarchy: root.mount,
    quota_us: quotaUs,
    period_us: periodUs,
    scope:
      "one group per server-side host (each node; the dispatcher's host with the dispatcher and any proxy; the origin); the client's processes unconstrained",
  };
}

/**
 * A contender's groups as the kernel holds them once it is up (read back from the files): the
 * processes the plan put in each, those the group holds, its quota and period.
 */
export async function hostCpuReadBack(
  contender: string,
  budget: HostCpuBudget,
): Promise<Record<string, unknown>> {
  const now = await budget.readBack();
  return {
    contender,
    groups: now.map((g) => ({
      ...g,
      expected_pids: budget.plan.groups.find((x) => x.host === g.host)?.pids ?? [],
    })),
  };
}
