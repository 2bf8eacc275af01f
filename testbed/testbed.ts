// The testbed library: bring a network-namespace cluster up and down, describe it, and
// run commands inside its hosts. The CLI (cli/testbed.ts) and tests are thin users of this.
import { spawn as spawnChild, type ChildProcess, type SpawnOptions } from "node:child_process";
import { constants, accessSync, existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import {
  CommandError,
  describeCommand,
  findExecutable,
  run,
  type RunOptions,
  type RunResult,
} from "./run.js";
import { killPids, listNetns, pidsInNetns } from "./netns.js";
import {
  EXPOSE_IP,
  SUBNET,
  VIP,
  ownsNetns,
  planStatus,
  planTestbed,
  validatePrefix,
  DEFAULT_PREFIX,
  type TestbedOptions,
  type TestbedPlan,
} from "./topology.js";
import {
  exposeAddrBatch,
  exposeLinkBatch,
  hostScript,
  netnsAddBatch,
  switchBatch,
  switchScript,
  shapingBatch,
} from "./scripts.js";
import { readState, removeState, writeState } from "./state.js";
import type { HostStatus, TestbedStatus } from "./status.js";
import { UserError } from "../common/errors.js";

export interface CreateOptions extends TestbedOptions {
  /** Directory of the state file; default /run/sc-cluster (or $SC_CLUSTER_STATE_DIR). */
  stateDir?: string;
}

/** The environment cannot run a testbed (not root, a tool missing, no /dev/net/tun). */
export class TestbedEnvironmentError extends UserError {
  constructor(message: string) {
    super(message, "ERR_TESTBED_ENVIRONMENT");
  }
}

export interface DownReport {
  /** Namespaces removed. */
  netns: string[];
  /** Processes ended (they ran inside the testbed's namespaces). */
  pids: number[];
  /** Whether the root-namespace expose link existed and was removed. */
  exposeLink: boolean;
}

export type ExecOptions = RunOptions;

/** CAP_NET_ADMIN (12) and CAP_SYS_ADMIN (21, for the namespace bind mounts) in CapEff. */
async function hasNetAdminCaps(): Promise<boolean> {
  // Capabilities, not the uid: root in an unprivileged container has neither.
  try {
    const status = await readFile("/proc/self/status", "utf8");
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
    if (!m) return false;
    const caps = BigInt(`0x${m[1]}`);
    return (caps & (1n << 12n)) !== 0n && (caps & (1n << 21n)) !== 0n;
  } catch {
    return false;
  }
}

/** Checks what `up` needs and says what to do when something is missing. */
export async function checkEnvironment(plan: Pick<TestbedPlan, "rate" | "loss">): Promise<void> {
  if (process.platform !== "linux")
    throw new TestbedEnvironmentError("the testbed needs Linux (network namespaces, veth, bridges, TUN)");
  if (!(await hasNetAdminCaps()))
    throw new TestbedEnvironmentError(
      "the testbed needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN to create network namespaces): " +
        "run it as root, e.g. `sudo npx sc-cluster testbed up`",
    );
  const tools: [string, string, boolean][] = [
    ["ip", "iproute2", true],
    ["tc", "iproute2", plan.rate !== null],
    ["nft", "nftables", plan.loss > 0],
  ];
  for (const [tool, pkg, needed] of tools) {
    if (needed && !findExecutable(tool))
      throw new TestbedEnvironmentError(
        `'${tool}' was not found on PATH: install ${pkg} (apt-get install ${pkg}, or scripts/setup-host.sh)`,
      );
  }
  try {
    accessSync("/dev/net/tun", constants.R_OK | constants.W_OK);
  } catch {
    throw new TestbedEnvironmentError(
      "/dev/net/tun is missing or not accessible: load the tun module (modprobe tun), or in a container " +
        "pass the device (docker run --device /dev/net/tun --cap-add NET_ADMIN)",
    );
  }
}

/** Root-namespace addresses and routes that would clash with an exposed LAN. */
async function checkExposeFree(plan: TestbedPlan): Promise<void> {
  const routes = await run(["ip", "-4", "-o", "route", "show", "table", "all"]);
  for (const line of routes.stdout.split("\n")) {
    const dest = line
      .split(/\s+/)
      .find((w) => w !== "local" && w !== "broadcast" && w !== "unicast" && w !== "");
    if (!dest || dest === "default") continue;
    if (overlapsTestbed(dest) && !line.includes(` dev ${plan.exposeDev} `))
      throw new TestbedEnvironmentError(
        `cannot expose: the root namespace already has a route for ${dest} (${line.trim()}); ` +
          "another testbed is probably exposed: run `sc-cluster testbed down --prefix <its prefix>` first",
      );
  }
}

function ipToInt(ip: string): number {
  return ip.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
}

/** Whether a route destination (a.b.c.d or a.b.c.d/n) overlaps the LAN or the VIP. */
export function overlapsTestbed(dest: string): boolean {
  const [addr, lenText] = dest.split("/");
  if (!addr || !/^\d+\.\d+\.\d+\.\d+$/.test(addr)) return false;
  const len = lenText === undefined ? 32 : Number(lenText);
  const overlaps = (net: string, netLen: number): boolean => {
    const l = Math.min(len, netLen);
    const mask = l === 0 ? 0 : (0xffffffff << (32 - l)) >>> 0;
    return (ipToInt(addr) & mask) >>> 0 === (ipToInt(net) & mask) >>> 0;
  };
  return overlaps("198.18.0.0", 24) || overlaps(VIP, 32);
}

/**
 * Removes everything a testbed with this prefix made, found by name (no state file
 * needed): processes inside its namespaces, the root expose link, the namespaces, the
 * state file. Idempotent.
 */
export async function destroyTestbed(prefix: string = DEFAULT_PREFIX, dir?: string): Promise<DownReport> {
  validatePrefix(prefix);
  const netns = (await listNetns()).filter((n) => ownsNetns(prefix, n));
  const pids = [...(await pidsInNetns(netns)).values()].flat();
  const killed = await killPids(pids);
  // Deleted explicitly: removing the switch namespace would also remove it, but only
  // once the kernel gets round to destroying that namespace.
  const exposeDev = `${prefix}exp`;
  const exposeLink = existsSync(`/sys/class/net/${exposeDev}`);
  if (exposeLink) await run(["ip", "link", "del", "dev", exposeDev], { check: false });
  if (netns.length > 0) {
    const batch = netns.map((n) => `netns del ${n}\n`).join("");
    await run(["ip", "-force", "-batch", "-"], { input: batch, check: false });
    const left = (await listNetns()).filter((n) => ownsNetns(prefix, n));
    if (left.length > 0)
      throw new CommandError(`could not remove namespaces ${left.join(", ")}`, ["ip", "netns", "del"]);
  }
  await removeState(prefix, dir);
  return { netns, pids: killed, exposeLink };
}

/** Reads the state file of a testbed that is up; undefined when none is. */
export async function readTestbedStatus(
  prefix: string = DEFAULT_PREFIX,
  dir?: string,
): Promise<TestbedStatus | undefined> {
  validatePrefix(prefix);
  const s = await readState(prefix, dir);
  if (!s) return undefined;
  // A state file whose namespaces are gone (e.g. after a reboot) describes nothing.
  return existsSync(`/run/netns/${prefix}sw`) ? s : undefined;
}

export class Testbed {
  readonly plan: TestbedPlan;
  private readonly dir: string | undefined;
  private current: TestbedStatus;

  constructor(options: CreateOptions = {}, status?: TestbedStatus) {
    this.plan = planTestbed(options);
    this.dir = options.stateDir;
    this.current = status ?? planStatus(this.plan);
  }

  get prefix(): string {
    return this.plan.prefix;
  }

  get vip(): string {
    return VIP;
  }

  get hosts(): HostStatus[] {
    return this.current.hosts;
  }

  /**
   * Builds the testbed, after removing leftovers of an earlier run with this prefix.
   * On failure everything made so far is removed again.
   */
  async up(): Promise<void> {
    const plan = this.plan;
    await checkEnvironment(plan);
    await destroyTestbed(plan.prefix, this.dir);
    try {
      if (plan.expose) await checkExposeFree(plan);
      await run(["ip", "-batch", "-"], { input: netnsAddBatch(plan) });
      if (plan.expose) await run(["ip", "-batch", "-"], { input: exposeLinkBatch(plan) });
      await run(["ip", "-n", plan.switchNetns, "-batch", "-"], { input: switchBatch(plan) });
      await Promise.all([
        this.shIn(plan.switchNetns, switchScript(plan)),
        ...plan.hosts.map((h) => this.shIn(h.netns, hostScript(plan, h))),
      ]);
      if (plan.expose) {
        await run(["ip", "-batch", "-"], { input: exposeAddrBatch(plan) });
        // Our own link only: no ND or MLD chatter from the root into the LAN.
        await writeFile(`/proc/sys/net/ipv6/conf/${plan.exposeDev}/disable_ipv6`, "1").catch(() => {});
        if (plan.rateBitsPerSecond !== null)
          await run(["tc", "-batch", "-"], { input: shapingBatch(plan.exposeDev, plan.rateBitsPerSecond) });
      }
      this.current = planStatus(plan);
      await writeState(this.current, this.dir);
    } catch (err) {
      await destroyTestbed(plan.prefix, this.dir).catch(() => {});
      throw err;
    }
  }

  /** Removes everything this testbed's prefix names; see destroyTestbed. */
  down(): Promise<DownReport> {
    return destroyTestbed(this.plan.prefix, this.dir);
  }

  /** The status document (`status --json`), including what annotate() added. */
  status(): TestbedStatus {
    return structuredClone(this.current);
  }

  /** A host by name ("client", "dispatcher", "origin", "node3", ...). */
  host(name: string): HostStatus {
    const h = this.current.hosts.find((x) => x.name === name);
    if (!h)
      throw new Error(
        `testbed '${this.prefix}' has no host '${name}' (hosts: ${this.hostNames().join(", ")})`,
      );
    return h;
  }

  hostNames(): string[] {
    return this.current.hosts.map((h) => h.name);
  }

  /** Hosts of one role, in order (e.g. every node). */
  byRole(role: HostStatus["role"]): HostStatus[] {
    return this.current.hosts.filter((h) => h.role === role);
  }

  /** Records a host's control API URL and/or main PID in the status and state file. */
  async annotate(name: string, extra: { admin?: string; pid?: number }): Promise<void> {
    Object.assign(this.host(name), extra);
    await writeState(this.current, this.dir);
  }

  /** Runs a command inside a host's namespace and collects its output (throws on failure). */
  exec(host: string, cmd: string, args: string[] = [], options?: ExecOptions): Promise<RunResult> {
    return run(["ip", "netns", "exec", this.host(host).netns, cmd, ...args], options);
  }

  /**
   * Starts a long-running command inside a host's namespace. `ip netns exec` execs the
   * command in place, so child.pid is the command's own PID. `down` ends it in any case.
   */
  spawn(host: string, cmd: string, args: string[] = [], options: SpawnOptions = {}): ChildProcess {
    return spawnChild("ip", ["netns", "exec", this.host(host).netns, cmd, ...args], options);
  }

  /** The argv that runs a command in a host's namespace, for callers with their own runner. */
  command(host: string, cmd: string, args: string[] = []): string[] {
    return ["ip", "netns", "exec", this.host(host).netns, cmd, ...args];
  }

  private shIn(netns: string, script: string): Promise<RunResult> {
    return run(["ip", "netns", "exec", netns, "sh", "-exc", script]);
  }
}

/** A testbed object for these options (nothing is created until up()). */
export function createTestbed(options: CreateOptions = {}): Testbed {
  return new Testbed(options);
}

/** The testbed with this prefix that is up (from its state file), or undefined. */
export async function openTestbed(
  prefix: string = DEFAULT_PREFIX,
  dir?: string,
): Promise<Testbed | undefined> {
  const s = await readTestbedStatus(prefix, dir);
  if (!s) return undefined;
  const nodes = s.hosts.filter((h) => h.role === "node").length;
  const clients = s.hosts.filter((h) => h.role === "client").length;
  return new Testbed(
    {
      prefix,
      nodes,
      clients,
      rate: s.rate ?? undefined,
      loss: s.loss,
      expose: s.expose,
      vipHost: s.vipHost,
      multiQueueTun: s.hosts.some((h) => h.tunMultiQueue === true),
      stateDir: dir,
    },
    s,
  );
}

/**
 * Brings a testbed up, runs fn, and always takes it down again (also when fn throws).
 * Tests give each file its own prefix (see testPrefix) so parallel runs never collide.
 */
export async function withTestbed<T>(options: CreateOptions, fn: (tb: Testbed) => Promise<T>): Promise<T> {
  const tb = createTestbed(options);
  let result: T;
  try {
    await tb.up();
    result = await fn(tb);
  } catch (err) {
    try {
      await tb.down();
    } catch (downErr) {
      throw new AggregateError(
        [err, downErr],
        `${(err as Error).message} (and down failed: ${(downErr as Error).message})`,
      );
    }
    throw err;
  }
  await tb.down();
  return result;
}

/**
 * A prefix unique to this process (and a tag per test file): "sct" + base-36 PID + tag + "-".
 * Fits the 12-character limit for tags up to 3 characters.
 */
export function testPrefix(tag: string): string {
  const p = `sct${process.pid.toString(36)}${tag}-`;
  return validatePrefix(p);
}

export { SUBNET, VIP, EXPOSE_IP, describeCommand };
