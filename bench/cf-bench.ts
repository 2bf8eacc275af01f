// Benchmark (not a test): the cost of cache forwarding (--mode cf-lru), the paper's Figure 8
// "normalized efficiency" for CF. Two node processes on loopback (kernel stack), documents
// warmed into their home's cache; wrk against node n1 asks for a document homed at n1 (served
// from n1's memory: the single-server baseline) and for one of the same size homed at n2 (n1
// forwards it from n2's memory on every request). Efficiency = forwarded / local requests/s.
//
// --endpoint: the peer endpoint itself (in-process): fetches/s of our PeerLink against the raw
// node:http endpoint and against the same endpoint written with fastify.
//
//   npm run build && node dist/bench/cf-bench.js [--duration 5] [--repeat 3] [--connections 32]
//       [--sizes 1k,10k,100k,1m] [--endpoint] [--json out.json]
//
// Bounded: every wrk run lasts --duration seconds; the script starts its own node processes and
// an in-process origin on loopback, and stops exactly those.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import Fastify from "fastify";
import { startOrigin } from "../origin/server.js";
import { createLogger } from "../server/log.js";
import { UrlMapper } from "../server/membership/mapper.js";
import { createDocCache } from "../server/cache/doc-cache.js";
import { makeDoc } from "../server/http/doc.js";
import { DocStore } from "../server/store/doc-store.js";
import type { DocSource } from "../server/source/source.js";
import { PeerServer } from "../server/peer/peer-server.js";
import { PeerLink } from "../server/peer/peer-client.js";
import { H_FROM, H_KEY, H_MTIME } from "../server/peer/protocol.js";
import { encodePath } from "../server/http/url-path.js";
import { generateSecretText } from "../sc/auth/secret.js";
import { exec, freePort } from "./support.js";

const { values: opts } = parseArgs({
  options: {
    duration: { type: "string", default: "5" },
    repeat: { type: "string", default: "3" },
    connections: { type: "string", default: "32" },
    sizes: { type: "string", default: "1k,10k,100k,1m" },
    endpoint: { type: "boolean", default: false },
    json: { type: "string" },
  },
});
const DURATION = Number(opts.duration);
const REPEAT = Number(opts.repeat);
const CONNS = Number(opts.connections);
const BIN = fileURLToPath(new URL("../../bin/sc-cluster.js", import.meta.url));
const NET = `127.${(process.pid >> 8) & 0xff || 1}.${process.pid & 0xff}`;
const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 * 1024 };
const SIZES = opts.sizes.split(",").map((s) => {
  const m = /^(\d+)([km]?)$/i.exec(s.trim());
  if (!m) throw new Error(`bad size '${s}'`);
  return { label: s.trim(), bytes: Number(m[1]) * UNITS[m[2]!.toLowerCase()]! };
});
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function wrk(url: string): Promise<{ rps: number; mbps: number; errors: number }> {
  const out = await exec("wrk", ["-t1", `-c${CONNS}`, `-d${DURATION}s`, "--latency", url]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const tm = /Transfer\/sec:\s+([\d.]+)([KMG]?)B/.exec(out);
  const mbps = tm
    ? (Number(tm[1]) * ({ "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[tm[2]!] ?? 1)) / 1e6
    : NaN;
  const err = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = (err ? Number(err[1]) : 0) + (sock ? sock.slice(1).reduce((n, x) => n + Number(x), 0) : 0);
  return { rps, mbps, errors };
}

// One secret for the nodes of a run: the peers authenticate as in a deployment.
const BENCH_SECRET = generateSecretText();

async function startNode(
  id: string,
  members: string[],
  origin: string,
  peerPort: number,
): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      BIN,
      "node",
      "--origin",
      origin,
      "--stack",
      "kernel",
      "--listen",
      `127.0.0.1:${port}`,
      "--admin",
      "none",
      "--node-id",
      id,
      "--mode",
      "cf-lru",
      "--peer-port",
      String(peerPort),
      ...members.flatMap((m) => ["--peer", m]),
    ],
    { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, SC_CLUSTER_SECRET: BENCH_SECRET } },
  );
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (l) => {
      if ((JSON.parse(l) as { msg?: string }).msg === "node listening") resolve();
    });
    child.on("exit", (code) => reject(new Error(`node ${id} exited ${code}`)));
  });
  return { child, port };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

interface E2eRow {
  size: string;
  localRps: number;
  forwardedRps: number;
  efficiency: number;
  localMBps: number;
  forwardedMBps: number;
  errors: number;
}

async function endToEnd(): Promise<E2eRow[]> {
  const members = [`n1=${NET}.1`, `n2=${NET}.2`];
  const mapper = new UrlMapper([{ id: "n1" }, { id: "n2" }]);
  const pick = (home: string, label: string) => {
    for (let i = 0; ; i++) if (mapper.lookup(`/${label}-${i}.bin`) === home) return `/${label}-${i}.bin`;
  };
  const dir = await mkdtemp(join(tmpdir(), "sc-cf-bench-"));
  const files = SIZES.map((s) => ({ ...s, local: pick("n1", s.label), forwarded: pick("n2", s.label) }));
  for (const f of files) {
    for (const p of [f.local, f.forwarded]) await writeFile(join(dir, p), Buffer.alloc(f.bytes, 0x61));
  }
  const origin = await startOrigin({ root: dir, host: "127.0.0.1", port: 0, logger: createLogger("silent") });
  const peerPort = await freePort(`${NET}.1`);
  const nodes: ChildProcess[] = [];
  const rows: E2eRow[] = [];
  try {
    const originUrl = `http://127.0.0.1:${origin.address.port}`;
    const n1 = await startNode("n1", members, originUrl, peerPort);
    nodes.push(n1.child);
    nodes.push((await startNode("n2", members, originUrl, peerPort)).child);
    const base = `http://127.0.0.1:${n1.port}`;
    for (const f of files) {
      // Warm: each document into its home's cache.
      for (const p of [f.local, f.forwarded]) await exec("curl", ["-sf", "-o", "/dev/null", base + p]);
      const local: number[] = [];
      const fwd: number[] = [];
      const localMB: number[] = [];
      const fwdMB: number[] = [];
      let errors = 0;
      for (let r = 0; r < REPEAT; r++) {
        const a = await wrk(base + f.local);
        const b = await wrk(base + f.forwarded);
        local.push(a.rps);
        localMB.push(a.mbps);
        fwd.push(b.rps);
        fwdMB.push(b.mbps);
        errors += a.errors + b.errors;
      }
      const row = {
        size: f.label,
        localRps: Math.round(median(local)),
        forwardedRps: Math.round(median(fwd)),
        efficiency: Math.round((median(fwd) / median(local)) * 100) / 100,
        localMBps: Math.round(median(localMB)),
        forwardedMBps: Math.round(median(fwdMB)),
        errors,
      };
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  } finally {
    for (const c of nodes) await stop(c);
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}

interface EndpointRow {
  size: string;
  server: "node:http" | "fastify";
  fetchesPerSec: number;
  mbps: number;
  /** CPU time of this process (both ends of the link) per fetch. */
  cpuUsPerFetch: number;
}

/** The same answer as PeerServer's for a held document, written as a fastify route. */
async function fastifyEndpoint(store: DocStore, host: string, port: number) {
  const app = Fastify({ logger: false, keepAliveTimeout: 65_000 });
  app.get("/*", (req, reply) => {
    const found = store.lookup(req.url);
    if (found instanceof Promise || found.kind !== "doc" || found.doc.body === null) {
      return reply.code(500).send();
    }
    const doc = found.doc;
    void reply
      .headers({
        "content-type": doc.contentType,
        etag: doc.etag,
        [H_MTIME]: String(doc.mtimeMs),
        [H_KEY]: encodePath(doc.key),
        [H_FROM]: "cache",
      })
      .send(doc.body);
  });
  await app.listen({ host, port });
  return app;
}

function linkOptions() {
  return {
    selfId: "bench",
    // The endpoint comparison measures the servers, unsigned (the end-to-end runs sign).
    auth: null,
    localAddress: null,
    connections: CONNS,
    timeoutMs: 10_000,
    downMs: 1000,
    maxObjectBytes: 1 << 30,
  };
}

/** Peer fetches per second over CONNS concurrent loops for DURATION seconds. */
async function fetchRate(link: PeerLink, path: string): Promise<{ rate: number; cpuUs: number }> {
  const until = performance.now() + DURATION * 1000;
  const cpu0 = process.cpuUsage();
  let n = 0;
  await Promise.all(
    Array.from({ length: CONNS }, async () => {
      while (performance.now() < until) {
        const res = await link.fetch(path, false);
        if (res.kind !== "doc") throw new Error(`fetch: ${JSON.stringify(res)}`);
        await res.bodyDone;
        n++;
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { rate: n / DURATION, cpuUs: (cpu.user + cpu.system) / n };
}

async function endpoint(): Promise<EndpointRow[]> {
  const rows: EndpointRow[] = [];
  const cache = createDocCache("lru", 256 * 1024 * 1024);
  const source: DocSource = {
    describe: "none",
    load: () => Promise.resolve({ kind: "error", status: 404, reason: "bench" }),
    stats: () => ({}),
    close: () => Promise.resolve(),
  };
  const store = new DocStore(cache, source);
  for (const s of SIZES) {
    const key = `/${s.label}.bin`;
    cache.set(
      key,
      makeDoc({
        key,
        size: s.bytes,
        mtimeMs: 1,
        etag: '"e"',
        contentType: "x/y",
        body: Buffer.alloc(s.bytes),
      }),
    );
  }
  const host = `${NET}.1`;
  const log = createLogger("silent");
  const rawPort = await freePort(host);
  const fastPort = await freePort(host);
  const raw = await PeerServer.start({ host, port: rawPort, store, allowed: null, auth: null, log });
  const fast = await fastifyEndpoint(store, host, fastPort);
  const links = {
    "node:http": new PeerLink("raw", host, rawPort, linkOptions()),
    fastify: new PeerLink("fastify", host, fastPort, linkOptions()),
  };
  try {
    for (const s of SIZES) {
      const rates: Record<EndpointRow["server"], number[]> = { "node:http": [], fastify: [] };
      const cpus: Record<EndpointRow["server"], number[]> = { "node:http": [], fastify: [] };
      // Alternated run by run, so both see the same background load.
      for (let r = 0; r < REPEAT; r++) {
        for (const server of ["node:http", "fastify"] as const) {
          const r = await fetchRate(links[server], `/${s.label}.bin`);
          rates[server].push(r.rate);
          cpus[server].push(r.cpuUs);
        }
      }
      for (const server of ["node:http", "fastify"] as const) {
        const m = median(rates[server]);
        const row = {
          size: s.label,
          server,
          fetchesPerSec: Math.round(m),
          mbps: Math.round((m * s.bytes) / 1e6),
          cpuUsPerFetch: Math.round(median(cpus[server])),
        };
        rows.push(row);
        console.log(JSON.stringify(row));
      }
    }
  } finally {
    await Promise.all(Object.values(links).map((l) => l.close()));
    await raw.close();
    await fast.close();
  }
  return rows;
}

const result = opts.endpoint ? { endpoint: await endpoint() } : { endToEnd: await endToEnd() };
if (opts.json) await writeFile(opts.json, JSON.stringify(result, null, 2));
