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
  /** Directory for the proxy's config and log. */
  workDir: string;
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
}

export class Contender {
  private constructor(
    readonly spec: ContenderSpec,
    readonly cluster: Cluster,
    readonly proxy: RunningProxy | undefined,
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
          },
          async (url) => (await cluster.get(`${url}/`, 1000)).status !== undefined,
        );
      }
    } catch (err) {
      await cluster.stop().catch(() => {});
      throw err;
    }
    return new Contender(spec, cluster, proxy);
  }

  /** The URL the load generator targets: the VIP, or the proxy. */
  get target(): string {
    return this.proxy ? this.proxy.url : `http://${this.cluster.vip}`;
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
    const meter = new RunMeter(this.watched());
    meter.start();
    let result: ReplayResult;
    try {
      result = await runLoadgen(
        this.testbed,
        "client",
        { ...load, target: this.target },
        (pid) => meter.add({ label: "loadgen", role: "loadgen", pid }),
        this.spec.signal,
      );
    } finally {
      meter.stop();
    }
    const usage = meter.usage(performance.now() - result.elapsed_s * 1000);
    const after = await this.nodeMetrics();
    return { result, usage, before, after };
  }

  async stop(): Promise<void> {
    try {
      await this.proxy?.stop();
    } finally {
      await this.cluster.stop();
    }
  }
}
