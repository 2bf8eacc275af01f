// `--host-cpu` against the kernel (needs root; no testbed): a process is moved into its host's
// group with the quota set, a leftover of a killed run is cleared, and removal leaves nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { detectCpuCgroup, HostCpuBudget } from "./host-cpu.js";
import { ownGroup } from "./cgroup-plan.js";

const PREFIX = `hct${process.pid.toString(36)}-`;

/** The process's group in the cpu hierarchy, from /proc/PID/cgroup. */
function groupOf(pid: number, version: 1 | 2): string {
  return ownGroup(readFileSync(`/proc/${pid}/cgroup`, "utf8"), version);
}

test("HostCpuBudget: a process goes into its host's group with the quota set; removal brings it home and leaves nothing", async () => {
  const root = detectCpuCgroup();
  const child = spawn("sleep", ["60"], { stdio: "ignore" });
  await once(child, "spawn");
  const pid = child.pid!;
  const home = groupOf(pid, root.version);
  let budget: HostCpuBudget | undefined;
  try {
    budget = await HostCpuBudget.apply(root, PREFIX, 0.3, [
      { host: "node1", role: "node", pid },
      { host: "client", role: "loadgen", pid: process.pid },
    ]);
    const dir = budget.plan.groups[0]!.dir;
    assert.equal(budget.plan.groups.length, 1, "the client's process stays out");
    assert.equal(`${root.mount}${groupOf(pid, root.version)}`, dir);
    assert.equal(groupOf(process.pid, root.version), home);
    if (root.version === 1) {
      assert.equal(readFileSync(`${dir}/cpu.cfs_quota_us`, "utf8").trim(), "30000");
      assert.equal(readFileSync(`${dir}/cpu.cfs_period_us`, "utf8").trim(), "100000");
    } else assert.equal(readFileSync(`${dir}/cpu.max`, "utf8").trim(), "30000 100000");
    assert.deepEqual(await budget.readBack(), [
      { host: "node1", quota_us: 30_000, period_us: 100_000, pids: [pid] },
    ]);
    // The process is still running: removal moves it home before removing the groups.
    await budget.remove();
    assert.equal(existsSync(budget.plan.base), false);
    assert.equal(groupOf(pid, root.version), home);
  } finally {
    child.kill("SIGKILL");
    await budget?.remove();
  }
});

test("HostCpuBudget: a leftover of the same prefix (a killed run) is removed before the groups are made again", async () => {
  const root = detectCpuCgroup();
  const base = `${root.mount}/sc-bench-${PREFIX}`;
  // What a run killed by SIGKILL leaves behind: its base and a group, with a process still in it.
  const child = spawn("sleep", ["60"], { stdio: "ignore" });
  await once(child, "spawn");
  let budget: HostCpuBudget | undefined;
  try {
    await mkdir(`${base}/node7`, { recursive: true });
    await writeFile(`${base}/node7/cgroup.procs`, String(child.pid));
    budget = await HostCpuBudget.apply(root, PREFIX, 1, [{ host: "node1", role: "node", pid: child.pid! }]);
    assert.equal(existsSync(`${base}/node7`), false);
    assert.ok(existsSync(`${base}/node1`));
  } finally {
    child.kill("SIGKILL");
    await budget?.remove();
  }
  assert.equal(existsSync(base), false);
});
