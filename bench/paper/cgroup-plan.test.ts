import { test } from "node:test";
import assert from "node:assert/strict";
import {
  cpuQuota,
  findCpuCgroup,
  ownGroup,
  parseCpuStat,
  planHostCpu,
  setupSteps,
  teardownSteps,
  throttledShare,
  type CpuCgroupRoot,
} from "./cgroup-plan.js";

// /proc/self/mounts of a v1 machine with the unified hierarchy beside it (as the test machine),
// of a pure v2 machine, and of one with no cpu controller anywhere.
const HYBRID = [
  "tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0",
  "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0",
  "cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0",
  "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0",
].join("\n");
const V2 = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n";

test("findCpuCgroup: v1's cpu hierarchy when mounted (cpuset is not cpu), else a cgroup2 mount offering cpu", () => {
  const controllers = (m: string) => (m === "/sys/fs/cgroup" ? "cpuset cpu io memory pids" : "");
  assert.deepEqual(findCpuCgroup(HYBRID, controllers), { version: 1, mount: "/sys/fs/cgroup/cpu,cpuacct" });
  assert.deepEqual(findCpuCgroup(V2, controllers), { version: 2, mount: "/sys/fs/cgroup" });
  assert.equal(
    findCpuCgroup(V2, () => "memory pids"),
    null,
  );
  assert.equal(
    findCpuCgroup(V2, () => undefined),
    null,
  );
  assert.equal(findCpuCgroup("cgroup /sys/fs/cgroup/cpuset cgroup rw,cpuset 0 0", controllers), null);
  assert.deepEqual(findCpuCgroup("cgroup /sys/fs/cgroup/my\\040cpu cgroup rw,cpu 0 0", controllers), {
    version: 1,
    mount: "/sys/fs/cgroup/my cpu",
  });
});

test("cpuQuota: SHARE cores per 100 ms period; under 1 ms or not positive is refused", () => {
  assert.deepEqual(cpuQuota(0.25), { quotaUs: 25_000, periodUs: 100_000 });
  assert.deepEqual(cpuQuota(2), { quotaUs: 200_000, periodUs: 100_000 });
  assert.deepEqual(cpuQuota(0.01), { quotaUs: 1000, periodUs: 100_000 });
  assert.throws(() => cpuQuota(0.005), /least is 1000 us/);
  assert.throws(() => cpuQuota(0), /must be > 0/);
  assert.throws(() => cpuQuota(Number.NaN), /must be > 0/);
});

const V1: CpuCgroupRoot = { version: 1, mount: "/sys/fs/cgroup/cpu" };

test("planHostCpu: one group per server-side host; the proxy joins the dispatcher's host, the client stays out", () => {
  const plan = planHostCpu(V1, "scbs-", 0.5, [
    { host: "origin", role: "origin", pid: 10 },
    { host: "node1", role: "node", pid: 11 },
    { host: "node2", role: "node", pid: 12 },
    { host: "dispatcher", role: "dispatcher", pid: 13 },
    { host: "dispatcher", role: "proxy", pid: 14 },
    { host: "dispatcher", role: "proxy", pid: 15 },
    { host: "dispatcher", role: "proxy", pid: 15 },
    { host: "client", role: "loadgen", pid: 16 },
  ]);
  assert.equal(plan.base, "/sys/fs/cgroup/cpu/sc-bench-scbs-");
  assert.equal(plan.quotaUs, 50_000);
  assert.deepEqual(
    plan.groups.map((g) => [g.host, g.dir, g.pids]),
    [
      ["origin", "/sys/fs/cgroup/cpu/sc-bench-scbs-/origin", [10]],
      ["node1", "/sys/fs/cgroup/cpu/sc-bench-scbs-/node1", [11]],
      ["node2", "/sys/fs/cgroup/cpu/sc-bench-scbs-/node2", [12]],
      ["dispatcher", "/sys/fs/cgroup/cpu/sc-bench-scbs-/dispatcher", [13, 14, 15]],
    ],
  );
  // A host name that could climb out of the base directory is refused.
  assert.throws(() => planHostCpu(V1, "p", 1, [{ host: "../x", role: "node", pid: 1 }]), /unexpected host/);
  // The prefix cannot either.
  assert.equal(planHostCpu(V1, "../a/b-", 1, []).base, "/sys/fs/cgroup/cpu/sc-bench-ab-");
});

test("setupSteps: v1 writes period and quota per group, v2 enables cpu for the base's children and writes cpu.max", () => {
  const procs = [
    { host: "node1", role: "node", pid: 11 },
    { host: "dispatcher", role: "dispatcher", pid: 13 },
  ];
  const b = "/sys/fs/cgroup/cpu/sc-bench-p";
  assert.deepEqual(setupSteps(planHostCpu(V1, "p", 0.25, procs)), [
    { op: "mkdir", path: b },
    { op: "mkdir", path: `${b}/node1` },
    { op: "write", path: `${b}/node1/cpu.cfs_period_us`, value: "100000" },
    { op: "write", path: `${b}/node1/cpu.cfs_quota_us`, value: "25000" },
    { op: "mkdir", path: `${b}/dispatcher` },
    { op: "write", path: `${b}/dispatcher/cpu.cfs_period_us`, value: "100000" },
    { op: "write", path: `${b}/dispatcher/cpu.cfs_quota_us`, value: "25000" },
    { op: "write", path: `${b}/node1/cgroup.procs`, value: "11" },
    { op: "write", path: `${b}/dispatcher/cgroup.procs`, value: "13" },
  ]);
  const v2 = setupSteps(planHostCpu({ version: 2, mount: "/sys/fs/cgroup" }, "p", 1.5, procs));
  assert.deepEqual(v2.slice(0, 4), [
    { op: "mkdir", path: "/sys/fs/cgroup/sc-bench-p" },
    { op: "write", path: "/sys/fs/cgroup/sc-bench-p/cgroup.subtree_control", value: "+cpu" },
    { op: "mkdir", path: "/sys/fs/cgroup/sc-bench-p/node1" },
    { op: "write", path: "/sys/fs/cgroup/sc-bench-p/node1/cpu.max", value: "150000 100000" },
  ]);
  assert.deepEqual(v2.at(-1), {
    op: "write",
    path: "/sys/fs/cgroup/sc-bench-p/dispatcher/cgroup.procs",
    value: "13",
  });
});

test("teardownSteps: remaining processes go home first, then the groups, then the base", () => {
  const b = "/cg/sc-bench-p";
  assert.deepEqual(teardownSteps(b, [`${b}/node1`, `${b}/node2`], new Map([[`${b}/node2`, [7, 8]]]), "/cg"), [
    { op: "write", path: "/cg/cgroup.procs", value: "7" },
    { op: "write", path: "/cg/cgroup.procs", value: "8" },
    { op: "rmdir", path: `${b}/node1` },
    { op: "rmdir", path: `${b}/node2` },
    { op: "rmdir", path: b },
  ]);
});

test("ownGroup: the benchmark's own group in the cpu hierarchy (v1 by controller, v2 the 0:: line)", () => {
  const v1 = "9:name=systemd:/\n4:memory:/x\n2:cpu,cpuacct:/user.slice\n1:cpuset:/\n0::/";
  assert.equal(ownGroup(v1, 1), "/user.slice");
  assert.equal(ownGroup("3:cpuset:/a\n1:cpu:/\n0::/", 1), "/");
  assert.equal(ownGroup("0::/system.slice/x.service\n", 2), "/system.slice/x.service");
  assert.equal(ownGroup("", 2), "/");
});

test("parseCpuStat and throttledShare: v1 (throttled_time ns) and v2 (throttled_usec) alike", () => {
  const v1 = parseCpuStat("nr_periods 100\nnr_throttled 40\nthrottled_time 5000000\n");
  assert.deepEqual(v1, { periods: 100, throttled: 40, throttledUs: 5000 });
  const v2 = parseCpuStat("usage_usec 1\nnr_periods 300\nnr_throttled 190\nthrottled_usec 7\n");
  assert.deepEqual(v2, { periods: 300, throttled: 190, throttledUs: 7 });
  assert.equal(throttledShare(v1, v2), 0.75);
  assert.ok(Number.isNaN(throttledShare(v1, v1)));
  assert.deepEqual(parseCpuStat(""), { periods: 0, throttled: 0, throttledUs: 0 });
});
