// One contender of a benchmark: a cluster (testbed, origin, dispatcher, N nodes in one mode),
// optionally with a URI-hash proxy in front of its nodes, and the measurement of one run
// against it (load generator in the client host; node metrics, CPU and links around it).
import { join } from "node:path";
import { startCluster, type Cluster } from "../../cluster/index.js";
import { DISPATCHER_IP, parseRate, run, type Testbed } from "../../testbed/index.js";
import { shapingBatch } from "../../testbed/scripts.js";
import type { ReplayResult } from "../../loadgen/index.js";
import { runLoadgen, type LoadOptions } from "./loadgen-run.js";
import { RunMeter, type RunUsage, type Watched } from "./meter.js";
import { parseMetrics, type Sample } from "./metrics.js";
import { throttledShare, type CpuCgroupRoot, type HostProcess } from "./cgroup-plan.js";
import { HostCpuBudget } from "./host-cpu.js";
import { childPids } from "./procstat.js";
import type { ProxyKind } from "./peers-config.js";
import { routeProxyToNodes, serviceIp, startProxy, type RunningProxy } from "./peers.js";

/** Where a proxy runs: the dispatcher's host (the front-end's place), on its LAN address. */
export const PROXY_HOST = "dispatcher";
export const PROXY_LISTEN = { host: DISPATCHER_IP, port: 80 };

export interface ContenderSpec {
  /** Name in reports: "sc", "rr", "plain", "nginx", ... */
  name: string;
  prefix: string;
  nodes: number;
  /** Node mode (local, sc, cf-lru, cf-lfu). */
  mode: string;
  scheduler: string;
  weights?: number[];
  proxy?: ProxyKind;
  proxyWorkers?: number;
  /** Nodes (1-based) the proxy forwards to; default every node. */
  proxyUpstreams?: number[];
  /** tc rate of every link ("100mbit"), or null for unshaped. */
  rate: string | null;
  /** Links to give another rate once the testbed is up (null: unshaped), and their queue. */
  linkRates?: { host: string; rate: string | null; queueBytes?: number }[];
  cacheBytes: number | string;
  site: string;
  extraArgs?: Partial<Record<string, string[]>>;
  /** A CPU budget per server-side host (`--host-cpu`): `share` cores each, in `root`'s groups. */
  hostCpu?: { root: CpuCgroupRoot; share: number };
  /** Directory for the proxy's config and log. */
  workDir: string;
  /**
   * Clients use HTTPS (bench micro --tls): the VIP's port 443 (TLS on the nodes, sessions
   * cloned in mode sc), or the proxy terminating TLS with the cluster's demo certificate.
   */
  tls?: boolean;
  /** Where the cluster's processes log (kept after it stops); default: the cluster directory. */
  logDir?: string;
  signal?: AbortSignal;
}

/**
 * Gives one host's link (both directions) another rate, or removes its shaping (null). The
 * queue holds at least `queueBytes` (the testbed's own is ~20 ms of traffic, a few frames at
 * low rates; a switch port buffers tens of full frames whatever the rate).
 */
export async function setLinkRate(
  tb: Testbed,
  host: string,
  rate: string | null,
  queueBytes = 0,
): Promise<void> {
  const port = tb.host(host).name;
  const sw = tb.plan.switchNetns;
  // Replaced as a whole: the shaping is a tree (tbf, prio, fifos, filters; testbed/scripts.ts).
  await tb.exec(host, "tc", ["qdisc", "del", "dev", "eth0", "root"], { check: false });
  await run(["ip", "netns", "exec", sw, "tc", "qdisc", "del", "dev", port, "root"], { check: false });
  if (rate === null) return;
  const batch = (dev: string) => shapingBatch(dev, parseRate(rate), queueBytes);
  await tb.exec(host, "tc", ["-batch", "-"], { input: batch("eth0") });
  await run(["ip", "netns", "exec", sw, "tc", "-batch", "-"], { input: batch(port) });
}

export interface Measured {
  result: ReplayResult;
  usage: RunUsage;
  /** Each node's metrics before and after the run (index 0 = node1). */
  before: Sample[][];
  after: Sample[][];
  /** With --host-cpu: each host's share of the run's CFS periods in which it used up its budget. */
  throttled?: Record<string, number>;
}

/** The proxy's TLS files: the cluster's demo certificate (valid for the VIP and the dispatcher's address). */
function proxyTls(cluster: Cluster, dir: string): { port: number; cert: string; key: string; pem: string } {
  const files = cluster.tlsFiles;
  if (files === null) throw new Error("bench --tls: the cluster serves no HTTPS (no demo certificate)");
  return { port: 443, cert: files.cert, key: files.key, pem: join(dir, "tls.pem") };
}

/** A process and every descendant of it (nginx's workers under its master). */
function withDescendants(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length && out.length < 1000; i++) out.push(...childPids(out[i]!));
  return out;
}

export class Contender {
  private constructor(
    readonly spec: ContenderSpec,
    readonly cluster: Cluster,
    readonly proxy: RunningProxy | undefined,
    readonly budget: HostCpuBudget | undefined,
  ) {}

  static async start(spec: ContenderSpec): Promise<Contender> {
    const cluster = await startCluster({
      prefix: spec.prefix,
      nodes: spec.nodes,
      mode: spec.mode,
      scheduler: spec.scheduler,
      ...(spec.weights ? { weights: spec.weights } : {}),
      ...(spec.rate ? { rate: spec.rate } : {}),
      cacheBytes: spec.cacheBytes,
      site: spec.site,
      ...(spec.extraArgs ? { extraArgs: spec.extraArgs } : {}),
      ...(spec.logDir ? { logDir: spec.logDir } : {}),
      ...(spec.signal ? { signal: spec.signal } : {}),
    });
    let proxy: RunningProxy | undefined;
    let budget: HostCpuBudget | undefined;
    try {
      await Promise.all(
        (spec.linkRates ?? []).map((l) => setLinkRate(cluster.testbed, l.host, l.rate, l.queueBytes)),
      );
      if (spec.proxy) {
        await routeProxyToNodes(cluster.testbed, PROXY_HOST, spec.nodes);
        proxy = await startProxy(
          cluster.testbed,
          PROXY_HOST,
          spec.proxy,
          {
            listen: PROXY_LISTEN,
            upstreams: (spec.proxyUpstreams ?? cluster.nodes.map((_, i) => i + 1)).map((k) => ({
              name: `node${k}`,
              host: serviceIp(k),
              port: 80,
            })),
            workers: spec.proxyWorkers ?? 1,
            dir: join(spec.workDir, `${spec.prefix}${spec.proxy}`),
            upstreamKeepalive: 64,
            ...(spec.tls
              ? { tls: proxyTls(cluster, join(spec.workDir, `${spec.prefix}${spec.proxy}`)) }
              : {}),
          },
          async (url) => (await cluster.get(`${url}/`, 1000)).status !== undefined,
        );
      }
      if (spec.hostCpu) {
        // The proxy runs in the dispatcher's host: it shares that host's budget.
        const processes: HostProcess[] = cluster.processes.map((p) => ({
          host: p.host,
          role: p.role,
          pid: p.pid,
        }));
        if (proxy)
          for (const pid of withDescendants(proxy.pid))
            processes.push({ host: proxy.host, role: "proxy", pid });
        budget = await HostCpuBudget.apply(spec.hostCpu.root, spec.prefix, spec.hostCpu.share, processes);
      }
    } catch (err) {
      await proxy?.stop().catch(() => {});
      await cluster.stop().catch(() => {});
      await budget?.remove().catch(() => {});
      throw err;
    }
    return new Contender(spec, cluster, proxy, budget);
  }

  /** The URL the load generator targets: the VIP, or the proxy (HTTPS with spec.tls). */
  get target(): string {
    if (this.spec.tls) return this.proxy?.httpsUrl ?? this.cluster.tls!.url;
    return this.proxy ? this.proxy.url : `http://${this.cluster.vip}`;
  }

  /** The CA the load generator trusts over HTTPS (the cluster's demo CA), if spec.tls. */
  get ca(): string | undefined {
    return this.spec.tls ? this.cluster.tls!.caCert : undefined;
  }

  get testbed(): Testbed {
    return this.cluster.testbed;
  }

  /** Every process of the contender, with the links of the hosts that carry traffic. */
  watched(): Watched[] {
    const w: Watched[] = this.cluster.processes.map((p) => ({
      label: p.host,
      role: p.role,
      pid: p.pid,
      link: "eth0",
    }));
    if (this.proxy)
      w.push({ label: this.proxy.kind, role: "proxy", pid: this.proxy.pid, withChildren: true });
    return w;
  }

  async nodeMetrics(): Promise<Sample[][]> {
    return Promise.all(this.cluster.nodes.map(async (n) => parseMetrics(await this.cluster.metrics(n))));
  }

  /** Each node's /stats document (index 0 = node1). */
  async nodeStats(): Promise<unknown[]> {
    return Promise.all(
      this.cluster.nodes.map((n) =>
        this.cluster.json<unknown>(`${this.cluster.process(n).admin}/stats`, 5000),
      ),
    );
  }

  /**
   * One load generator run with metrics, CPU and link bytes around it. The usage covers the
   * load generator's own measuring window (from its first request to its last response).
   */
  async measure(load: Omit<LoadOptions, "target">): Promise<Measured> {
    const before = await this.nodeMetrics();
    const cpuBefore = await this.budget?.cpuStats();
    const meter = new RunMeter(this.watched());
    meter.start();
    let result: ReplayResult;
    try {
      result = await runLoadgen(
        this.testbed,
        "client",
        { ...load, target: this.target, ...(this.ca !== undefined ? { ca: this.ca } : {}) },
        (pid) => meter.add({ label: "loadgen", role: "loadgen", pid }),
        this.spec.signal,
      );
    } finally {
      meter.stop();
    }
    const usage = meter.usage(performance.now() - result.elapsed_s * 1000);
    const after = await this.nodeMetrics();
    const cpuAfter = await this.budget?.cpuStats();
    if (!cpuBefore || !cpuAfter) return { result, usage, before, after };
    const throttled: Record<string, number> = {};
    for (const [host, a] of cpuAfter) throttled[host] = throttledShare(cpuBefore.get(host) ?? a, a);
    return { result, usage, before, after, throttled };
  }

  /** Stops the proxy and the cluster, then removes the CPU budgets (always, whatever failed). */
  async stop(): Promise<void> {
    try {
      await this.proxy?.stop();
    } finally {
      try {
        await this.cluster.stop();
      } finally {
        await this.budget?.remove();
      }
    }
  }
}
