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
import { detectCpuCgroup, hostCpuParams, hostCpuReadBack } from "./host-cpu.js";
import { hostLinks, linkRates, rateBps, rateParam, type Rate } from "./links.js";

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
  const log = o.log;
  const totalConns = o.clients * o.conns;
  // A multiple of the connection count: the load generator deals trace lines round robin to its
  // connections, so connection s only ever asks for URLs s, s+C, ...: no two requests for one
  // document are in flight together (cooperative caching would join them into one fetch).
  const urlCount = Math.max(totalConns, Math.ceil(o.urls / totalConns) * totalConns);
  const versions: Record<string, string> = {};
  for (const m of o.mechanisms)
    if ((PROXIES as readonly string[]).includes(m)) versions[m] = await ensurePeer(m as ProxyKind, log);

  // The site: urlCount documents per size, all homed at node2; one trace per size.
  const siteDir = join(o.workDir, "site");
  await mkdir(siteDir, { recursive: true });
  const traces = new Map<number, string>();
  let all = "";
  for (const size of o.sizes) {
    const lines = microUrls(size, urlCount).map((u) => clfLine(u, size));
    all += lines.join("");
    const t = join(siteDir, `size-${size}.log`);
    await writeFile(t, lines.join(""));
    traces.set(size, t);
  }
  await writeFile(join(siteDir, "all.log"), all);
  const manifest = join(siteDir, "manifest.jsonl");
  await buildSite({ trace: join(siteDir, "all.log"), out: join(siteDir, "root"), manifest });
  log(
    `site: ${o.sizes.length} sizes x ${urlCount} documents (${(
      (urlCount * o.sizes.reduce((a, b) => a + b, 0)) /
      1e6
    ).toFixed(1)} MB), every URL homed at node2`,
  );

  // Equal hosts unless told otherwise: the testbed shapes every link at the nodes' rate, then
  // the links that differ (the client, unshaped by default) get theirs.
  const rates = linkRates(o);
  const links = hostLinks(2, rates).filter((l) => l.rate !== o.rate);
  const cgroup = o.hostCpu === null ? null : detectCpuCgroup();
  const hostCpuGroups: Record<string, unknown>[] = [];
  const contenders = new Map<Mechanism, Contender>();
  const runs: MicroRun[] = [];
  const latencyBySize: (LatencySummary & { size: number })[] = [];
  let probe: LatencySummary | null = null;
  const phases: CloneLatencyPhase[] = [];
  try {
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
        site: join(siteDir, "root"),
        workDir: o.workDir,
        ...(o.signal ? { signal: o.signal } : {}),
      });
      contenders.set(mechanism, c);
      if (c.budget) hostCpuGroups.push(await hostCpuReadBack(mechanism, c.budget));
      log(`${mechanism}: up in ${((performance.now() - t0) / 1000).toFixed(1)} s, clients -> ${c.target}`);
    }
    const load = { manifest, clients: o.clients, conns: o.conns, keepalive: o.keepalive };
    for (const size of o.sizes) {
      const trace = traces.get(size)!;
      for (const mechanism of o.mechanisms) {
        o.signal?.throwIfAborted();
        const c = contenders.get(mechanism)!;
        // Every document once (so each is in its home's cache), then the timed warm-up.
        await c.measure({ ...load, trace, requests: urlCount, durationS: 60 });
        const w = await c.measure({ ...load, trace, durationS: o.warmupS });
        const bad = w.result.verify_failures + w.result.errors;
        log(
          `size ${size}: ${mechanism} warm-up ${w.result.rps.toFixed(0)} req/s${bad ? `, ${bad} failures` : ""}`,
        );
      }
      const sc = contenders.get("sc");
      const scBefore = sc ? await sc.nodeMetrics() : [];
      for (let run = 1; run <= o.runs; run++) {
        // Rotate the order run by run so no mechanism always goes first.
        const order = o.mechanisms.map((_, i) => o.mechanisms[(i + run - 1) % o.mechanisms.length]!);
        for (const mechanism of order) {
          const quiet = await quietMachine(o);
          const m = await contenders.get(mechanism)!.measure({ ...load, trace, durationS: o.durationS });
          const r = toRun(mechanism, size, run, m, quiet);
          runs.push(r);
          const cpu = cpuByRole(r.usage);
          log(
            `size ${String(size).padStart(7)} run ${run} ${mechanism.padEnd(7)} ${r.rps.toFixed(0).padStart(6)} req/s ` +
              `${r.mbps.toFixed(1).padStart(6)} Mbit/s  cpu ${Object.entries(cpu)
                .map(([k, v]) => `${k} ${v.toFixed(0)}%`)
                .join(", ")}; machine ${r.usage.machineBusy.toFixed(0)}%` +
              (r.failure ? `  FAILED: ${r.failure}` : ""),
          );
        }
      }
      if (sc) {
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
        phases.push(loaded);
        latencyBySize.push({ size, ...roundTripOnNode1(loaded) });
        if (o.latencyProbeS > 0) {
          // One connection, one request at a time: the clone's cost without queueing behind others.
          const m = await sc.measure({ ...load, clients: 1, conns: 1, trace, durationS: o.latencyProbeS });
          const idle = clonePhase(
            { size, load: "idle", what: `1 connection, ${m.result.rps.toFixed(0)} req/s` },
            nodes,
            m.before,
            m.after,
            await sc.nodeStats(),
          );
          phases.push(idle);
          probe ??= roundTripOnNode1(idle);
          const rt = roundTripOnNode1(idle);
          const ow = oneWayLatency([idle, loaded]);
          const owAt = (load: string) => ow.find((x) => x.load === load)?.p50_us ?? NaN;
          log(
            `size ${size}: clone latency (CLONE -> SC-ACK, node1) idle p50 ${rt.p50_us} us, under load p50 ${roundTripOnNode1(loaded).p50_us} us; ` +
              `one-way (CLONE -> first segment) idle p50 ${owAt("idle")} us, under load ${owAt("figure8")} us (paper: ${PAPER_ONE_WAY_US} us)`,
          );
        }
      }
    }
  } finally {
    for (const c of contenders.values())
      await c.stop().catch((e: Error) => log(`stopping ${c.spec.name}: ${e.message}`));
  }

  const mbps = (r: Rate) => (r === null ? null : rateBps(r)! / 1e6);
  const rateOf = (host: string) =>
    mbps(
      host === "dispatcher"
        ? rates.frontend
        : host === "origin"
          ? rates.origin
          : host === "client"
            ? rates.client
            : rates.node,
    );
  const points = microPoints(runs, o.sizes, o.mechanisms, rateOf);
  return {
    kind: "micro",
    params: {
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
          : { ...hostCpuParams(cgroup, o.hostCpu), contenders: hostCpuGroups },
      runs: o.runs,
      duration_s: o.durationS,
      warmup_s: o.warmupS,
      clients: o.clients,
      conns: o.conns,
      keepalive: o.keepalive,
      documents_per_size: urlCount,
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
      peers: versions,
      verification: "every response: status, length and SHA-256 of the body against the manifest",
    },
    machine: await machineInfo(),
    points,
    runs,
    clone_latency: {
      by_size: latencyBySize,
      probe,
      phases,
      one_way: oneWayLatency(phases),
      paper_one_way_us: PAPER_ONE_WAY_US,
    },
    failed_runs: runs.filter((r) => r.failure !== null).length,
    started_at: startedAt,
    finished_at: new Date().toISOString(),
  };
}
