// Per-host CPU budgets for the benchmarks (pure): which cgroup hierarchy has the cpu controller
// (v1 or v2), which processes of a contender go into which host's group, the CFS quota of a
// share of one core, and the file operations that create, fill and remove the groups. The I/O
// is in host-cpu.ts. The paper's nodes each had a CPU of their own; on the testbed every host
// shares the machine's cores, so a host that takes more work (the original node of a clone,
// a proxy) borrows CPU that a separate machine would not have. A CFS quota per host gives each
// one a fixed budget instead.

export type CgroupVersion = 1 | 2;

/** Where the cpu controller is: a v1 hierarchy of its own, or the unified (v2) hierarchy. */
export interface CpuCgroupRoot {
  version: CgroupVersion;
  /** Mount point of that hierarchy ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup"). */
  mount: string;
}

/**
 * The hierarchy to use, from /proc/self/mounts: a v1 mount with the `cpu` option (the kernel
 * binds a controller to one hierarchy only, so if v1 has it v2 cannot), else a cgroup2 mount
 * whose `cgroup.controllers` lists `cpu` (`controllersOf` reads that file; undefined if absent).
 */
export function findCpuCgroup(
  mounts: string,
  controllersOf: (mount: string) => string | undefined,
): CpuCgroupRoot | null {
  const rows = mounts
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => f.length >= 4);
  for (const [, mount, type, options] of rows)
    if (type === "cgroup" && options!.split(",").includes("cpu"))
      return { version: 1, mount: unescape(mount!) };
  for (const [, mount, type] of rows) {
    if (type !== "cgroup2") continue;
    const m = unescape(mount!);
    if ((controllersOf(m) ?? "").split(/\s+/).includes("cpu")) return { version: 2, mount: m };
  }
  return null;
}

/** /proc/mounts writes spaces and a few others as octal escapes (\040). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The CFS period of every group, us (the kernel's default). */
export const CFS_PERIOD_US = 100_000;

/**
 * The quota of `share` cores per period (0.5: half a core; 2: two cores). The kernel refuses
 * quotas under 1 ms.
 */
export function cpuQuota(share: number, periodUs = CFS_PERIOD_US): { quotaUs: number; periodUs: number } {
  if (!(share > 0) || !Number.isFinite(share)) throw new RangeError(`CPU share must be > 0, got ${share}`);
  const quotaUs = Math.round(share * periodUs);
  if (quotaUs < 1000)
    throw new RangeError(
      `CPU share ${share} is a quota of ${quotaUs} us per ${periodUs} us; the least is 1000 us`,
    );
  return { quotaUs, periodUs };
}

/** A process of a contender, as the cluster and the proxy report them. */
export interface HostProcess {
  host: string;
  role: string;
  pid: number;
}

/** Hosts whose processes stay outside any budget: the client side is not the paper's server. */
const UNBUDGETED = new Set(["client"]);

export interface HostGroup {
  host: string;
  /** The group's directory. */
  dir: string;
  pids: number[];
}

export interface HostCpuPlan {
  root: CpuCgroupRoot;
  /** Directory that holds the hosts' groups (removed with them). */
  base: string;
  share: number;
  quotaUs: number;
  periodUs: number;
  groups: HostGroup[];
}

/** The directory of a contender's groups: one per namespace prefix, so a leftover is found again. */
export function baseDir(root: CpuCgroupRoot, prefix: string): string {
  return `${root.mount}/sc-bench-${prefix.replace(/[^A-Za-z0-9_-]/g, "")}`;
}

/**
 * One group per server-side host (every node, the dispatcher's host with the dispatcher and any
 * proxy in it, the origin), each with the quota of `share` cores; client-side processes stay
 * where they are. Groups are in host order as first seen.
 */
export function planHostCpu(
  root: CpuCgroupRoot,
  prefix: string,
  share: number,
  processes: readonly HostProcess[],
  periodUs = CFS_PERIOD_US,
): HostCpuPlan {
  const { quotaUs } = cpuQuota(share, periodUs);
  const base = baseDir(root, prefix);
  const byHost = new Map<string, number[]>();
  for (const p of processes) {
    if (UNBUDGETED.has(p.host)) continue;
    if (!/^[a-z][a-z0-9-]*$/.test(p.host)) throw new Error(`unexpected host name '${p.host}'`);
    const pids = byHost.get(p.host) ?? [];
    if (!pids.includes(p.pid)) pids.push(p.pid);
    byHost.set(p.host, pids);
  }
  return {
    root,
    base,
    share,
    quotaUs,
    periodUs,
    groups: [...byHost].map(([host, pids]) => ({ host, dir: `${base}/${host}`, pids })),
  };
}

export type CgroupStep =
  | { op: "mkdir"; path: string }
  | { op: "write"; path: string; value: string }
  | { op: "rmdir"; path: string };

/**
 * The steps that set a plan up, in order. v1: the quota in cpu.cfs_period_us and
 * cpu.cfs_quota_us of each group. v2: the cpu controller enabled for the base's children
 * (the base itself holds no process, as v2 requires), then cpu.max "QUOTA PERIOD". Last, every
 * process is moved into its host's group (cgroup.procs moves all of a process's threads).
 */
export function setupSteps(p: HostCpuPlan): CgroupStep[] {
  const steps: CgroupStep[] = [{ op: "mkdir", path: p.base }];
  if (p.root.version === 2)
    steps.push({ op: "write", path: `${p.base}/cgroup.subtree_control`, value: "+cpu" });
  for (const g of p.groups) {
    steps.push({ op: "mkdir", path: g.dir });
    if (p.root.version === 1)
      steps.push(
        { op: "write", path: `${g.dir}/cpu.cfs_period_us`, value: String(p.periodUs) },
        { op: "write", path: `${g.dir}/cpu.cfs_quota_us`, value: String(p.quotaUs) },
      );
    else steps.push({ op: "write", path: `${g.dir}/cpu.max`, value: `${p.quotaUs} ${p.periodUs}` });
  }
  for (const g of p.groups)
    for (const pid of g.pids) steps.push({ op: "write", path: `${g.dir}/cgroup.procs`, value: String(pid) });
  return steps;
}

/**
 * The steps that remove a base directory whose groups still hold `remaining` (by group
 * directory): every remaining process back to `home` (the group the benchmark itself runs in),
 * then each group, then the base. A group can only be removed once it is empty.
 */
export function teardownSteps(
  base: string,
  groups: readonly string[],
  remaining: ReadonlyMap<string, readonly number[]>,
  home: string,
): CgroupStep[] {
  const steps: CgroupStep[] = [];
  for (const dir of groups)
    for (const pid of remaining.get(dir) ?? [])
      steps.push({ op: "write", path: `${home}/cgroup.procs`, value: String(pid) });
  for (const dir of groups) steps.push({ op: "rmdir", path: dir });
  steps.push({ op: "rmdir", path: base });
  return steps;
}

/**
 * The benchmark's own group in the cpu hierarchy, from /proc/self/cgroup: v1 the line whose
 * controllers include `cpu` ("4:cpu,cpuacct:/x"), v2 the "0::/x" line. "/" when none is found.
 */
export function ownGroup(procSelfCgroup: string, version: CgroupVersion): string {
  for (const line of procSelfCgroup.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (version === 2 ? m[1] === "0" && m[2] === "" : m[2]!.split(",").includes("cpu")) return m[3] || "/";
  }
  return "/";
}

/** A group's cpu.stat: periods, throttled periods, throttled time (v1 ns, v2 us; here us). */
export interface CpuStat {
  periods: number;
  throttled: number;
  throttledUs: number;
}

export function parseCpuStat(text: string): CpuStat {
  const v: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const [k, n] = line.trim().split(/\s+/);
    if (k && n !== undefined && /^\d+$/.test(n)) v[k] = Number(n);
  }
  return {
    periods: v.nr_periods ?? 0,
    throttled: v.nr_throttled ?? 0,
    throttledUs: v.throttled_usec ?? (v.throttled_time !== undefined ? v.throttled_time / 1000 : 0),
  };
}

/** Share of a run's CFS periods in which the host used up its budget (0-1; NaN without periods). */
export function throttledShare(before: CpuStat, after: CpuStat): number {
  const periods = after.periods - before.periods;
  return periods > 0 ? (after.throttled - before.throttled) / periods : NaN;
}
