// `sc-cluster bench micro`: the paper's Figure 8 (section 4.1), normalized efficiency against
// file size. For each size, the throughput of one plain node serving the file itself (the 100%
// line) and with a content-aware mechanism applied to every request:
//   sc       Socket Cloning: the dispatcher sends every connection to node1, every URL's home is
//            node2, so node1 clones every request to node2 (checked: clones sent = responses);
//   sc-local the same SC cluster with --clone-local-max-bytes above every size: node1 serves every
//            document itself once it knows its size (checked: no clones), the other side of the
//            local-serving policy, in the same run;
//   cf       cooperative caching (cf-lru), same arrangement: node1 forwards every document from
//            node2's memory (checked: peer fetches = responses, none joined);
//   lard     LARD with TCP handoff: the front-end (dispatcher --mode lard) accepts every connection,
//            parses each request and hands the connection to node1 (checked: handoffs = responses);
//   nginx    reverse proxy with `hash $request_uri consistent` in the dispatcher's host, in front
//            of node2 (the node that holds the documents; checked: node2 served every request);
//   haproxy  `balance uri` + `hash-type consistent`, likewise;
// efficiency = mechanism req/s / plain req/s. Every contender is a 2-node cluster of its own, all
// up at the same time so runs are interleaved (machine drift hits all alike); every response is
// verified byte for byte (SHA-256) by the load generator.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildSite } from "../../loadgen/index.js";
import {
  checkArrangement,
  cpuByRole,
  loadFailure,
  microArrangement,
  microPoints,
  microUrls,
  rotated,
  runFigures,
  type Mechanism,
  type MicroResult,
  type MicroRun,
} from "./analysis.js";
import {
  clonePhase,
  oneWayLatency,
  PAPER_ONE_WAY_US,
  type CloneLatencyPhase,
  type LatencySummary,
} from "./clone-latency.js";
import { Contender, type Measured } from "./contender.js";
import { machineInfo } from "./machine.js";
import { PROXIES, type ProxyKind } from "./peers-config.js";
import { ensurePeer } from "./peers.js";
import { waitForQuiet, type QuietWait } from "./procstat.js";
import type { CpuCgroupRoot } from "./cgroup-plan.js";
import { detectCpuCgroup, hostCpuParams, hostCpuReadBack } from "./host-cpu.js";
import {
  hostLinks,
  linkRates,
  rateMbps,
  rateParam,
  type HostLink,
  type LinkRates,
  type Rate,
} from "./links.js";
import type { Sample } from "./metrics.js";

export { MECHANISMS, DEFAULT_SIZES, QUICK_SIZES, type Mechanism, type MicroResult } from "./analysis.js";

export interface MicroOptions {
  sizes: number[];
  mechanisms: Mechanism[];
  /** tc rate of the nodes' links, null for unshaped; the front-end and origin get it too unless given. */
  rate: Rate;
  frontendRate?: Rate;
  originRate?: Rate;
  /** The client's link: unshaped unless given. */
  clientRate?: Rate;
  /** --host-cpu: each server-side host's processes get this many cores (a cgroup CPU quota); null: none. */
  hostCpu: number | null;
  runs: number;
  durationS: number;
  warmupS: number;
  /** Load generator worker threads x connections each. */
  clients: number;
  conns: number;
  keepalive: boolean;
  /**
   * Clients use HTTPS (TLS 1.3): to the VIP's port 443 (the nodes terminate TLS; SC clones the
   * sessions), or to the proxy terminating TLS with the cluster's demo certificate.
   */
  tls: boolean;
  /** Distinct documents per size (rounded up to a multiple of the connections). */
  urls: number;
  cacheBytes: string;
  proxyWorkers: number;
  /** Before each run, wait (at most quietWaitS) until the machine is at most this busy (%, 0: off). */
  quietPct: number;
  quietWaitS: number;
  /** Seconds of the one-connection clone latency probe (0: none). */
  latencyProbeS: number;
  /** Namespace prefix base (<= 10 characters); each contender adds a letter and "-". */
  prefix: string;
  /** Work directory (site, traces, proxy configs); the caller removes it. */
  workDir: string;
  quick: boolean;
  log: (line: string) => void;
  signal?: AbortSignal;
}

const LETTER: Record<Mechanism, string> = {
  plain: "p",
  sc: "s",
  "sc-local": "l",
  cf: "c",
  lard: "d",
  nginx: "n",
  haproxy: "h",
};

function clfLine(url: string, size: number): string {
  return `bench - - [01/Jan/2001:00:00:00 +0000] "GET ${url} HTTP/1.0" 200 ${size}\n`;
}

/** The run's verdict and figures. */
function toRun(mechanism: Mechanism, size: number, run: number, m: Measured, quiet: QuietWait): MicroRun {
  const figures = runFigures(m.result, quiet);
  const arrangement = checkArrangement(mechanism, m.before, m.after, figures.responses);
  return {
    mechanism,
    size,
    run,
    ...figures,
    check: arrangement.check,
    failure: loadFailure(figures) ?? arrangement.failure,
    usage: m.usage,
    ...(m.throttled ? { host_cpu_throttled: m.throttled } : {}),
  };
}

const CLONE_LATENCY = "sc_clone_latency_seconds";

/** The CLONE -> SC-ACK summary on node1 of a phase (the figures reported before `phases`). */
function roundTripOnNode1(p: CloneLatencyPhase): LatencySummary {
  return (
    p.histograms.node1?.[CLONE_LATENCY] ?? {
      what: `node1, ${p.what}`,
      samples: 0,
      p50_us: NaN,
      p90_us: NaN,
      p99_us: NaN,
      buckets: [],
    }
  );
}

/** Waits for a quiet machine before a measured run (if asked), and says so when it waited. */
export async function quietMachine(o: {
  quietPct: number;
  quietWaitS: number;
  log: (line: string) => void;
  signal?: AbortSignal;
}): Promise<QuietWait> {
  o.signal?.throwIfAborted();
  if (o.quietPct <= 0) return { waitedS: 0, busy: NaN, busiest: [] };
  const q = await waitForQuiet(o.quietPct, o.quietWaitS, o.signal);
  if (q.waitedS > 0)
    o.log(
      `waited ${q.waitedS.toFixed(0)} s for the machine to calm down (${q.busy.toFixed(0)}% busy; busiest: ${q.busiest.join(", ") || "-"})`,
    );
  return q;
}

export async function runMicro(o: MicroOptions): Promise<MicroResult> {
  const startedAt = new Date().toISOString();
  const urlCount = microUrlCount(o.urls, o.clients * o.conns);
  const versions = await proxyVersions(o.mechanisms, o.log);
  const site = await writeMicroSite(o, urlCount);
  // Equal hosts unless told otherwise: the testbed shapes every link at the nodes' rate, then
  // the links that differ (the client, unshaped by default) get theirs.
  const rates = linkRates(o);
  const cgroup = o.hostCpu === null ? null : detectCpuCgroup();
  const bench = new MicroBench(o, site, urlCount);
  try {
    await bench.startContenders(
      hostLinks(2, rates).filter((l) => l.rate !== o.rate),
      cgroup,
    );
    for (const { size, path } of site.traces) await bench.measureSize(size, path);
  } finally {
    await bench.stopAll();
  }
  const { runs, latency } = bench;
  return {
    kind: "micro",
    params: microParams(o, { rates, cgroup, hostCpuGroups: bench.hostCpuGroups, urlCount, versions }),
    machine: await machineInfo(),
    points: microPoints(runs, o.sizes, o.mechanisms, hostRateMbps(rates)),
    runs,
    clone_latency: {
      by_size: latency.bySize,
      probe: latency.probe,
      phases: latency.phases,
      one_way: oneWayLatency(latency.phases),
      paper_one_way_us: PAPER_ONE_WAY_US,
    },
    failed_runs: runs.filter((r) => r.failure !== null).length,
    started_at: startedAt,
    finished_at: new Date().toISOString(),
  };
}

/**
 * Documents per size: a multiple of the connection count. The load generator deals trace lines
 * round robin to its connections, so connection s only ever asks for URLs s, s+C, ...: no two
 * requests for one document are in flight together (cooperative caching would join them into one
 * fetch).
 */
export function microUrlCount(urls: number, totalConns: number): number {
  return Math.max(totalConns, Math.ceil(urls / totalConns) * totalConns);
}

/** Each proxy's version (the proxies among the mechanisms, installed if need be). */
async function proxyVersions(
  mechanisms: readonly Mechanism[],
  log: (line: string) => void,
): Promise<Record<string, string>> {
  const versions: Record<string, string> = {};
  for (const m of mechanisms)
    if ((PROXIES as readonly string[]).includes(m)) versions[m] = await ensurePeer(m as ProxyKind, log);
  return versions;
}

/** The site's traces in Common Log Format: per size, every one of its `urlCount` documents once. */
export function microTraces(sizes: readonly number[], urlCount: number): { size: number; text: string }[] {
  return sizes.map((size) => ({
    size,
    text: microUrls(size, urlCount)
      .map((u) => clfLine(u, size))
      .join(""),
  }));
}

/** The site on disk and one trace per size. */
interface MicroSite {
  root: string;
  manifest: string;
  traces: { size: number; path: string }[];
}

/** The site: urlCount documents per size, all homed at node2; one trace per size. */
async function writeMicroSite(o: MicroOptions, urlCount: number): Promise<MicroSite> {
  const siteDir = join(o.workDir, "site");
  await mkdir(siteDir, { recursive: true });
  const texts = microTraces(o.sizes, urlCount);
  const traces: MicroSite["traces"] = [];
  for (const { size, text } of texts) {
    const path = join(siteDir, `size-${size}.log`);
    await writeFile(path, text);
    traces.push({ size, path });
  }
  await writeFile(join(siteDir, "all.log"), texts.map((t) => t.text).join(""));
  const manifest = join(siteDir, "manifest.jsonl");
  const root = join(siteDir, "root");
  await buildSite({ trace: join(siteDir, "all.log"), out: root, manifest });
  o.log(
    `site: ${o.sizes.length} sizes x ${urlCount} documents (${(
      (urlCount * o.sizes.reduce((a, b) => a + b, 0)) /
      1e6
    ).toFixed(1)} MB), every URL homed at node2`,
  );
  return { root, manifest, traces };
}

/** What the clone latency measurements of the sc contender collect, size by size. */
interface CloneLatencyLog {
  bySize: (LatencySummary & { size: number })[];
  /** The first size's idle round trip (the figures reported before `phases`). */
  probe: LatencySummary | null;
  phases: CloneLatencyPhase[];
}

/** The contenders, all up at once, and what their runs collect. */
class MicroBench {
  private readonly contenders = new Map<Mechanism, Contender>();
  readonly runs: MicroRun[] = [];
  readonly hostCpuGroups: Record<string, unknown>[] = [];
  readonly latency: CloneLatencyLog = { bySize: [], probe: null, phases: [] };

  constructor(
    private readonly o: MicroOptions,
    private readonly site: MicroSite,
    private readonly urlCount: number,
  ) {}

  private get load() {
    const o = this.o;
    return { manifest: this.site.manifest, clients: o.clients, conns: o.conns, keepalive: o.keepalive };
  }

  private contender(mechanism: Mechanism): Contender {
    const c = this.contenders.get(mechanism);
    if (!c) throw new Error(`${mechanism} is not up`);
    return c;
  }

  /** One 2-node cluster per mechanism, started one after the other. */
  async startContenders(links: HostLink[], cgroup: CpuCgroupRoot | null): Promise<void> {
    const o = this.o;
    for (const mechanism of o.mechanisms) {
      o.signal?.throwIfAborted();
      const t0 = performance.now();
      const c = await Contender.start({
        name: mechanism,
        prefix: `${o.prefix}${LETTER[mechanism]}-`,
        nodes: 2,
        scheduler: "rr",
        ...microArrangement(mechanism),
        proxyWorkers: o.proxyWorkers,
        rate: o.rate,
        linkRates: links,
        ...(cgroup && o.hostCpu !== null ? { hostCpu: { root: cgroup, share: o.hostCpu } } : {}),
        cacheBytes: o.cacheBytes,
        site: this.site.root,
        workDir: o.workDir,
        tls: o.tls,
        ...(o.signal ? { signal: o.signal } : {}),
      });
      this.contenders.set(mechanism, c);
      if (c.budget) this.hostCpuGroups.push(await hostCpuReadBack(mechanism, c.budget));
      o.log(`${mechanism}: up in ${((performance.now() - t0) / 1000).toFixed(1)} s, clients -> ${c.target}`);
    }
  }

  /** One size: every contender warmed up, the measured runs, then SC's clone latency. */
  async measureSize(size: number, trace: string): Promise<void> {
    await this.warmUp(size, trace);
    const sc = this.contenders.get("sc");
    const scBefore = sc ? await sc.nodeMetrics() : [];
    for (let run = 1; run <= this.o.runs; run++) await this.measureRound(size, trace, run);
    if (sc) await this.cloneLatency(sc, size, trace, scBefore);
  }

  private async warmUp(size: number, trace: string): Promise<void> {
    const o = this.o;
    for (const mechanism of o.mechanisms) {
      o.signal?.throwIfAborted();
      const c = this.contender(mechanism);
      // Every document once (so each is in its home's cache), then the timed warm-up.
      await c.measure({ ...this.load, trace, requests: this.urlCount, durationS: 60 });
      const w = await c.measure({ ...this.load, trace, durationS: o.warmupS });
      const bad = w.result.verify_failures + w.result.errors;
      o.log(
        `size ${size}: ${mechanism} warm-up ${w.result.rps.toFixed(0)} req/s${bad ? `, ${bad} failures` : ""}`,
      );
    }
  }

  /** One measured run of every contender, the order rotated run by run so no mechanism always goes first. */
  private async measureRound(size: number, trace: string, run: number): Promise<void> {
    const o = this.o;
    for (const mechanism of rotated(o.mechanisms, run - 1)) {
      const quiet = await quietMachine(o);
      const m = await this.contender(mechanism).measure({ ...this.load, trace, durationS: o.durationS });
      const r = toRun(mechanism, size, run, m, quiet);
      this.runs.push(r);
      o.log(microRunLine(r));
    }
  }

  /** SC's clone latency over the size's runs and, if asked, with one connection (idle). */
  private async cloneLatency(
    sc: Contender,
    size: number,
    trace: string,
    scBefore: Sample[][],
  ): Promise<void> {
    const o = this.o;
    const nodes = sc.cluster.nodes;
    const loaded = clonePhase(
      {
        size,
        load: "figure8",
        what: `${o.runs} runs x ${o.durationS} s, ${o.clients} x ${o.conns} connections`,
      },
      nodes,
      scBefore,
      await sc.nodeMetrics(),
      await sc.nodeStats(),
    );
    this.latency.phases.push(loaded);
    this.latency.bySize.push({ size, ...roundTripOnNode1(loaded) });
    if (o.latencyProbeS <= 0) return;
    // One connection, one request at a time: the clone's cost without queueing behind others.
    const m = await sc.measure({ ...this.load, clients: 1, conns: 1, trace, durationS: o.latencyProbeS });
    const idle = clonePhase(
      { size, load: "idle", what: `1 connection, ${m.result.rps.toFixed(0)} req/s` },
      nodes,
      m.before,
      m.after,
      await sc.nodeStats(),
    );
    this.latency.phases.push(idle);
    this.latency.probe ??= roundTripOnNode1(idle);
    o.log(cloneLatencyLine(size, idle, loaded));
  }

  /** Stops every contender that started; a failure to stop one is logged, the others still stop. */
  async stopAll(): Promise<void> {
    for (const c of this.contenders.values())
      await c.stop().catch((e: Error) => this.o.log(`stopping ${c.spec.name}: ${e.message}`));
  }
}

/** A measured run's log line: its throughput, the CPU per role, and the failure if any. */
export function microRunLine(r: MicroRun): string {
  const cpu = cpuByRole(r.usage);
  return (
    `size ${String(r.size).padStart(7)} run ${r.run} ${r.mechanism.padEnd(7)} ${r.rps.toFixed(0).padStart(6)} req/s ` +
    `${r.mbps.toFixed(1).padStart(6)} Mbit/s  cpu ${Object.entries(cpu)
      .map(([k, v]) => `${k} ${v.toFixed(0)}%`)
      .join(", ")}; machine ${r.usage.machineBusy.toFixed(0)}%` +
    (r.failure ? `  FAILED: ${r.failure}` : "")
  );
}

/** A size's clone latency line: the round trip on node1 and the one-way figure, idle and under load. */
function cloneLatencyLine(size: number, idle: CloneLatencyPhase, loaded: CloneLatencyPhase): string {
  const rt = roundTripOnNode1(idle);
  const ow = oneWayLatency([idle, loaded]);
  const owAt = (load: string) => ow.find((x) => x.load === load)?.p50_us ?? NaN;
  return (
    `size ${size}: clone latency (CLONE -> SC-ACK, node1) idle p50 ${rt.p50_us} us, under load p50 ${roundTripOnNode1(loaded).p50_us} us; ` +
    `one-way (CLONE -> first segment) idle p50 ${owAt("idle")} us, under load ${owAt("figure8")} us (paper: ${PAPER_ONE_WAY_US} us)`
  );
}

/** Each host's link rate in Mbit/s (null: unshaped), by the host's name. */
export function hostRateMbps(rates: LinkRates): (host: string) => number | null {
  return (host) =>
    rateMbps(
      host === "dispatcher"
        ? rates.frontend
        : host === "origin"
          ? rates.origin
          : host === "client"
            ? rates.client
            : rates.node,
    );
}

/** The parameters a micro result records. */
export function microParams(
  o: MicroOptions,
  run: {
    rates: LinkRates;
    cgroup: CpuCgroupRoot | null;
    hostCpuGroups: Record<string, unknown>[];
    urlCount: number;
    versions: Record<string, string>;
  },
): Record<string, unknown> {
  const { rates, cgroup } = run;
  return {
    sizes: o.sizes,
    mechanisms: o.mechanisms,
    rate: rateParam(rates.node),
    frontend_rate: rateParam(rates.frontend),
    origin_rate: rateParam(rates.origin),
    client_rate: rateParam(rates.client),
    links:
      "rate: each node's link; frontend_rate: the dispatcher's host (and the proxy in it); origin_rate; client_rate (both directions of each)",
    host_cpu:
      o.hostCpu === null || !cgroup
        ? "none (every host's processes share the machine's cores)"
        : { ...hostCpuParams(cgroup, o.hostCpu), contenders: run.hostCpuGroups },
    runs: o.runs,
    duration_s: o.durationS,
    warmup_s: o.warmupS,
    clients: o.clients,
    conns: o.conns,
    keepalive: o.keepalive,
    tls: o.tls
      ? "HTTPS: TLS 1.3 from the load generator (verifying the cluster's demo CA) to the nodes (sc: sessions cloned) or to the proxy (terminating TLS; plain HTTP to node2)"
      : false,
    documents_per_size: run.urlCount,
    cache_bytes: o.cacheBytes,
    nodes: 2,
    scheduler: "rr (weights 1,0 for plain, sc, cf: every connection to node1)",
    proxy_workers: o.proxyWorkers,
    proxy_host:
      "dispatcher host, 198.18.0.1:80, forwarding to node2 only (the node holding every document), reached at 198.18.1.12 (DNAT to the VIP inside node2)",
    latency_probe_s: o.latencyProbeS,
    latency_probe: "per size, after its measured runs: 1 connection, 1 x 1 requests at a time (idle)",
    quiet_pct: o.quietPct,
    quiet_wait_s: o.quietWaitS,
    quick: o.quick,
    peers: run.versions,
    verification: "every response: status, length and SHA-256 of the body against the manifest",
  };
}
