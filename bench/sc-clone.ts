// Socket Cloning micro-measurements (issues 6 and 15; not a test):
//  1. clone latency over N clones of small documents, every request cloned: the round trip
//     CLONE sent -> SC-ACK received (/stats sc.cloneLatencyUs on the original) and, where the
//     build has it, the paper's one-way figure, CLONE sent -> the clone's first response
//     segment handed to its TUN (sc.cloneOneWayUs on the clone's node), beside the paper's
//     46 us (PIII-733, in-kernel prototype);
//  2. the local-serving policy: for each size, requests/s and server CPU per response (both
//     nodes, user + system from /proc) when every request is cloned vs when documents up to
//     --clone-local-max-bytes are served where they arrive (cached there too). The default
//     of that setting comes from this measurement.
//
// A 2-node cluster; the dispatcher's source-hash scheduler puts the client's connections on
// one node, and the documents are chosen so their home is the other node.
//
//   node dist/bench/sc-clone.js [--clones 10000] [--duration 5] [--connections 16] [--rate R]
import { parseArgs } from "node:util";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { withCluster, type Cluster } from "../cluster/index.js";
import { buildSite } from "../loadgen/index.js";
import { UrlMapper } from "../server/membership/mapper.js";
import {
  cloneReport,
  latencyArgs,
  pointArgs,
  type CloneLatencies,
  type Percentiles,
  type PolicyRow,
} from "./sc-clone-figures.js";

/** CPU seconds (user + system) a process used so far, from /proc/PID/stat. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}
/** Linux's USER_HZ (getconf CLK_TCK), 100 on every mainstream kernel. */
const CLK_TCK = 100;

async function nodesCpu(c: Cluster): Promise<number> {
  let sum = 0;
  for (const n of c.nodes) sum += await cpuSeconds(c.process(n).pid);
  return sum;
}

const { values } = parseArgs({
  options: {
    clones: { type: "string", default: "10000" },
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "16" },
    rate: { type: "string" },
    sizes: { type: "string", default: "100,1024,4096,16384,65536" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(
    "Usage: node dist/bench/sc-clone.js [--clones N] [--duration S] [--connections C] [--rate R] [--sizes a,b,...]",
  );
  process.exit(0);
}
const CLONES = Number(values.clones);
const DURATION = Number(values.duration);
const CONNECTIONS = Number(values.connections);
const SIZES = values.sizes!.split(",").map(Number);
const CLI = fileURLToPath(new URL("../../bin/sc-cluster.js", import.meta.url));
const mapper = new UrlMapper([{ id: "node1" }, { id: "node2" }]);

/** Documents per size, named so that both homes are available. */
async function makeSite(dir: string): Promise<Map<string, { path: string; size: number }[]>> {
  const lines: string[] = [];
  const byHome = new Map<string, { path: string; size: number }[]>();
  for (const size of SIZES) {
    for (let i = 0; i < 64; i++) {
      const path = `/s${size}/${i}.bin`;
      lines.push(`c - - [01/Jan/2001:00:00:00 +0000] "GET ${path} HTTP/1.0" 200 ${size}`);
      const home = mapper.lookup(path)!;
      const list = byHome.get(home) ?? [];
      list.push({ path, size });
      byHome.set(home, list);
    }
  }
  await writeFile(join(dir, "trace.log"), lines.join("\n") + "\n");
  await buildSite({
    trace: join(dir, "trace.log"),
    out: join(dir, "root"),
    manifest: join(dir, "manifest.jsonl"),
  });
  return byHome;
}

interface Stats {
  sc: {
    clonesSent: number;
    servedLocally: number;
    cloneLatencyUs: Percentiles;
    /** Builds with the one-way measurement (issue 15): on the clone's node. */
    cloneOneWayUs?: Percentiles;
    /** Its parts: CLONE sent -> handed to onClone, and onClone -> first segment. */
    cloneTransitUs?: Percentiles;
    cloneServeUs?: Percentiles;
  };
}

async function stats(c: Cluster, host: string): Promise<Stats> {
  return JSON.parse((await c.get(`${c.process(host).admin}/stats`, 5000)).body) as Stats;
}

/** Which node the source-hash scheduler gives the client's connections. */
async function entryNode(c: Cluster): Promise<string> {
  const d = JSON.parse((await c.get(`${c.process("dispatcher").admin}/stats`)).body) as {
    nodes: { id: string; scheduled: number }[];
  };
  const used = d.nodes.filter((n) => n.scheduled > 0).map((n) => n.id);
  if (used.length !== 1)
    throw new Error(`expected one node to take the client, got ${JSON.stringify(d.nodes)}`);
  return used[0]!;
}

async function loadgen(
  c: Cluster,
  args: string[],
): Promise<{ rps: number; ok: number; errors: number; verify_failures: number }> {
  const out = join(c.logDir, `lg-${Date.now()}.json`);
  const r = await c.testbed.exec("client", process.execPath, [CLI, "loadgen", ...args, "--json", out], {
    timeoutMs: 600_000,
    check: false,
  });
  if (r.code !== 0) throw new Error(`loadgen exited ${r.code}: ${r.stderr.slice(-500)}`);
  return JSON.parse(await readFile(out, "utf8"));
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "sc-clone-bench-"));
  try {
    const byHome = await makeSite(dir);
    const base = {
      nodes: 2,
      mode: "sc",
      site: join(dir, "root"),
      scheduler: "sh",
      ...(values.rate ? { rate: values.rate } : {}),
    };
    const cloned = await measureCloned(dir, byHome, base);
    const policy = await measureLocal(byHome, base, cloned.policy);
    for (const line of cloneReport(cloned.latency, policy, {
      connections: CONNECTIONS,
      durationS: DURATION,
      rate: values.rate,
    }))
      console.log(line);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type Docs = Map<string, { path: string; size: number }[]>;
type ClusterBase = { nodes: number; mode: string; site: string; scheduler: string; rate?: string };

/** The node the client's connections land on, and the other one (every test document's home). */
async function sides(c: Cluster): Promise<{ entry: string; other: string }> {
  await c.get(`${c.vipUrl}s100/0.bin`);
  const entry = await entryNode(c);
  return { entry, other: c.nodes.find((n) => n !== entry)! };
}

/** The other node's document of `size` bytes. */
function docOf(byHome: Docs, home: string, size: number): { path: string; size: number } {
  return byHome.get(home)!.find((d) => d.size === size)!;
}

/**
 * The nodes' CPU with no load (timers, keepalives), taken off each point's, so that runs at
 * different request rates compare per response.
 */
async function idleRate(c: Cluster): Promise<number> {
  const cpu0 = await nodesCpu(c);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 3000));
  return ((await nodesCpu(c)) - cpu0) / ((performance.now() - t0) / 1000);
}

/** One load point: requests/s and the nodes' CPU per response (less their idle rate), us. */
async function measurePoint(
  c: Cluster,
  idle: number,
  args: string[],
): Promise<{ rps: number; cpuUs: number }> {
  const cpu0 = await nodesCpu(c);
  const t0 = performance.now();
  const r = await loadgen(c, args);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = Math.max(0, (await nodesCpu(c)) - cpu0 - idle * seconds);
  return { rps: r.rps, cpuUs: r.ok > 0 ? (cpu * 1e6) / r.ok : NaN };
}

/** 1. Latency, every request cloned; 2a. each size's point with every request cloned. */
async function measureCloned(
  dir: string,
  byHome: Docs,
  base: ClusterBase,
): Promise<{ latency: CloneLatencies; policy: PolicyRow[] }> {
  const policy: PolicyRow[] = [];
  let latency: CloneLatencies = { roundTrip: null };
  await withCluster(
    { ...base, prefix: "scbc-", extraArgs: { node: ["--clone-local-max-bytes", "0"] } },
    async (c) => {
      const { entry, other } = await sides(c);
      const docs = byHome.get(other)!.filter((d) => d.size <= 4096);
      const trace = join(dir, "latency.log");
      await writeFile(trace, docs.map((d) => d.path).join("\n") + "\n");
      const r = await loadgen(c, latencyArgs(trace, c.vipUrl, CLONES, join(dir, "manifest.jsonl")));
      const s = await stats(c, entry);
      const cloneSide = (await stats(c, other)).sc;
      latency = {
        roundTrip: s.sc.cloneLatencyUs,
        oneWay: cloneSide.cloneOneWayUs,
        transit: cloneSide.cloneTransitUs,
        serve: cloneSide.cloneServeUs,
      };
      console.log(
        `clones: ${s.sc.clonesSent} over ${r.ok} verified requests (${r.verify_failures} failures), ${Math.round(r.rps)} req/s`,
      );
      // 2a. Every request cloned.
      const idle = await idleRate(c);
      for (const size of SIZES) {
        const doc = docOf(byHome, other, size);
        const a = await measurePoint(
          c,
          idle,
          pointArgs(`${c.vipUrl}${doc.path.slice(1)}`, size, CONNECTIONS, DURATION),
        );
        policy.push({ size, clone: a.rps, local: 0, cloneCpuUs: a.cpuUs, localCpuUs: NaN });
      }
    },
  );
  return { latency, policy };
}

/** 2b. Served where they arrive: each size's point once the entry node knows the document's size. */
async function measureLocal(byHome: Docs, base: ClusterBase, cloned: PolicyRow[]): Promise<PolicyRow[]> {
  const policy = cloned.map((p) => ({ ...p }));
  await withCluster(
    { ...base, prefix: "scbl-", extraArgs: { node: ["--clone-local-max-bytes", "1G"] } },
    async (c) => {
      const { entry, other } = await sides(c);
      const idle = await idleRate(c);
      for (const p of policy) {
        const url = `${c.vipUrl}${docOf(byHome, other, p.size).path.slice(1)}`;
        await c.get(url); // first request clones and learns the size; the rest are local
        const a = await measurePoint(c, idle, pointArgs(url, p.size, CONNECTIONS, DURATION));
        p.local = a.rps;
        p.localCpuUs = a.cpuUs;
      }
      const s = await stats(c, entry);
      console.log(`served locally after learning sizes: ${s.sc.servedLocally}`);
    },
  );
  return policy;
}

await main();
