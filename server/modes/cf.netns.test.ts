// Cooperative caching end to end (issue 7): `up --nodes 3 --mode cf-lru|cf-lfu` in the testbed,
// a document set larger than one node's cache replayed twice over keep-alive connections from
// the client namespace through the VIP, every byte verified; a home node killed mid-transfer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { withCluster, type Cluster } from "../../cluster/index.js";
import { buildSite, documentSha256 } from "../../loadgen/index.js";
import { testPrefix } from "../../testbed/index.js";
import { UrlMapper } from "../membership/mapper.js";
import type { CfStats } from "./cf.js";

const CLI = fileURLToPath(new URL("../../../bin/sc-cluster.js", import.meta.url));
const NODES = ["node1", "node2", "node3"];
const mapper = new UrlMapper(NODES.map((id) => ({ id })));
const CACHE_BYTES = 6 * 1024 * 1024;

interface Site {
  dir: string;
  root: string;
  manifest: string;
  trace: string;
  bytes: number;
  lines: number;
  /** Document bytes by home node. */
  byHome: Map<string, number>;
}

/** `count` documents of 8..56 KiB, plus one of `bigBytes`, from a CLF trace. */
async function makeSite(count: number, bigBytes: number): Promise<Site> {
  const dir = await mkdtemp(join(tmpdir(), "sc-cf-site-"));
  const lines: string[] = [];
  let bytes = 0;
  const byHome = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const size = 8192 + ((i * 7919) % 49152);
    bytes += size;
    const home = mapper.lookup(`/d/${i}.bin`)!;
    byHome.set(home, (byHome.get(home) ?? 0) + size);
    lines.push(`c - - [01/Jan/2001:00:00:00 +0000] "GET /d/${i}.bin HTTP/1.0" 200 ${size}`);
  }
  if (bigBytes > 0) lines.push(`c - - [01/Jan/2001:00:00:00 +0000] "GET /big.bin HTTP/1.0" 200 ${bigBytes}`);
  const trace = join(dir, "trace.log");
  await writeFile(trace, lines.join("\n") + "\n");
  const root = join(dir, "root");
  const manifest = join(dir, "manifest.jsonl");
  await buildSite({ trace, out: root, manifest });
  return { dir, root, manifest, trace, bytes: bytes + bigBytes, lines: lines.length, byHome };
}

interface ReplayJson {
  requests: number;
  ok: number;
  errors: number;
  verify_failures: number;
}

/** `sc-cluster loadgen` in the client namespace, keep-alive, every body checked. */
async function replay(c: Cluster, site: Site, tag: string): Promise<ReplayJson> {
  const out = join(site.dir, `replay-${tag}.json`);
  const r = await c.testbed.exec(
    "client",
    process.execPath,
    [
      CLI,
      "loadgen",
      "--trace",
      site.trace,
      "--target",
      c.vipUrl,
      "--verify",
      site.manifest,
      "--json",
      out,
      "--clients",
      "1",
      "--conns",
      "6",
      "--keepalive",
      "--requests",
      String(site.lines),
    ],
    { timeoutMs: 120_000, check: false },
  );
  assert.equal(r.code, 0, `loadgen: ${r.stderr}`);
  return JSON.parse(await readFile(out, "utf8")) as ReplayJson;
}

async function cfStats(c: Cluster, host: string): Promise<CfStats> {
  const s = await c.json<Record<string, unknown>>(`${c.process(host).admin}/stats`);
  return (s["cf-lru"] ?? s["cf-lfu"]) as CfStats;
}

function metric(text: string, name: string, labels = ""): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) && line.includes(labels))
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

async function sumMetric(c: Cluster, name: string, labels = ""): Promise<number> {
  let total = 0;
  for (const n of c.nodes) total += metric(await c.metrics(n), name, labels);
  return total;
}

/** " (N workers)" in a test's name when the nodes run data-path workers. */
const withWorkers = (workers: number) => (workers > 1 ? ` (${workers} workers per node)` : "");

// Issue 16: also with 2 data-path workers per node (peer requests between worker planes, one
// shared document cache per node).
for (const [mode, workers] of [
  ["cf-lru", 1],
  ["cf-lfu", 1],
  ["cf-lfu", 2],
] as const) {
  test(`${mode}: a set larger than one node's cache, twice through the VIP, byte-exact, from the cluster's memory${withWorkers(workers)}`, async () => {
    const site = await makeSite(400, 0);
    assert.ok(site.bytes > 2 * CACHE_BYTES, `site of ${site.bytes} bytes`);
    for (const [home, b] of site.byHome) assert.ok(b < 0.9 * CACHE_BYTES, `${home}'s share: ${b} bytes`);
    try {
      await withCluster(
        {
          prefix: testPrefix(workers > 1 ? "cfw" : mode === "cf-lru" ? "cfr" : "cff"),
          nodes: 3,
          mode,
          workers,
          site: site.root,
          scheduler: "rr",
          cacheBytes: CACHE_BYTES,
        },
        async (c) => {
          // (The launcher's start-up probes load a few things too.)
          const loads0 = await sumMetric(c, "sc_source_loads_total");
          const first = await replay(c, site, "1");
          assert.deepEqual([first.ok, first.errors, first.verify_failures], [site.lines, 0, 0]);
          const fetches1 = await sumMetric(c, "sc_cf_peer_fetches_total");
          const hits1 = await sumMetric(c, "sc_cf_peer_hits_total");
          const loads1 = await sumMetric(c, "sc_source_loads_total");
          // Round robin over 3 nodes: about 2 requests in 3 arrive away from their home.
          assert.ok(fetches1 > 0.5 * site.lines && fetches1 < 0.85 * site.lines, `peer fetches: ${fetches1}`);
          // Every document was loaded from the origin once, by its home.
          assert.equal(loads1 - loads0, site.lines);

          const second = await replay(c, site, "2");
          assert.deepEqual([second.ok, second.errors, second.verify_failures], [site.lines, 0, 0]);
          const fetches2 = (await sumMetric(c, "sc_cf_peer_fetches_total")) - fetches1;
          const hits2 = (await sumMetric(c, "sc_cf_peer_hits_total")) - hits1;
          assert.ok(fetches2 > 0.5 * site.lines, `peer fetches, second pass: ${fetches2}`);
          // The set fits in the three caches together: the second pass never left the cluster.
          assert.equal(hits2, fetches2, "every peer fetch of the second pass hit the home's cache");
          assert.equal(
            await sumMetric(c, "sc_source_loads_total"),
            loads1,
            "no origin loads in the second pass",
          );
          assert.equal(await sumMetric(c, "sc_cf_origin_fetches_total", 'reason="fallback"'), 0);
          assert.ok((await sumMetric(c, "sc_cf_peer_bytes_total")) > site.bytes, "peer bytes counted");
          for (const n of c.nodes) {
            assert.equal((await cfStats(c, n)).policy, mode.slice(3));
            // Each node holds its own share of the set (no copies of others' documents).
            const { cache } = await c.json<{ cache: { entries: number; evictions: number } }>(
              `${c.process(n).admin}/stats`,
            );
            assert.equal(cache.evictions, 0, `${n} evicted`);
            assert.equal(
              cache.entries,
              [...Array(400).keys()].filter((i) => mapper.lookup(`/d/${i}.bin`) === n).length,
            );
          }
        },
      );
    } finally {
      await rm(site.dir, { recursive: true, force: true });
    }
  });
}

for (const workers of [1, 2])
  test(`cf-lru: the home node dies mid-transfer; the requesting node completes from the origin, byte-exact${withWorkers(workers)}`, async () => {
    const size = 24_000_000;
    const site = await makeSite(3, size);
    const want = documentSha256("/big.bin", size);
    const home = mapper.lookup("/big.bin")!;
    try {
      await withCluster(
        {
          prefix: testPrefix(workers > 1 ? "ckw" : "cfk"),
          nodes: 3,
          mode: "cf-lru",
          workers,
          site: site.root,
          scheduler: "rr",
          // Shaped, so the peer transfer takes long enough to be cut in the middle.
          rate: "200mbit",
          cacheBytes: 64 * 1024 * 1024,
        },
        async (c) => {
          const others = c.nodes.filter((n) => n !== home);
          const out = join(site.dir, "big.out");
          let cut: string | null = null;
          for (let attempt = 0; attempt < 6 && cut === null; attempt++) {
            const curl = c.testbed.spawn(
              "client",
              "curl",
              ["-s", "-m", "60", "-o", out, "-w", "%{http_code} %{size_download}", `${c.vipUrl}big.bin`],
              { stdio: ["ignore", "pipe", "pipe"] },
            );
            let stdout = "";
            curl.stdout!.on("data", (b: Buffer) => (stdout += b.toString()));
            const exited = new Promise<number | null>((r) => curl.once("exit", (code) => r(code)));
            let done = false;
            void exited.then(() => (done = true));
            // Wait until a non-home node is receiving the body from the home, a few MB in.
            while (!done && cut === null) {
              for (const n of others) {
                const s = await cfStats(c, n);
                if (s.inflight > 0 && s.peerBytes >= 2_000_000 && s.peerBytes < size - 4_000_000) {
                  process.kill(c.process(home).pid, "SIGKILL");
                  cut = n;
                  break;
                }
              }
            }
            const code = await exited;
            if (cut === null) continue; // the connection landed on the home itself: try again
            assert.equal(code, 0, `curl ended with ${code}`);
            assert.match(stdout, new RegExp(`^200 ${size}$`));
            const got = createHash("sha256")
              .update(await readFile(out))
              .digest("hex");
            assert.equal(got, want, "the completed document must be byte-exact");
            const s = await cfStats(c, cut);
            assert.equal(s.resumed, 1, "completed from the origin");
            assert.equal(s.peerErrors.aborted, 1);
            assert.ok(s.peerBytes < size, "only part of it came from the peer");
            assert.equal(metric(await c.metrics(cut), "sc_cf_origin_fetches_total", 'reason="fallback"'), 1);
          }
          assert.ok(cut !== null, "no request reached a non-home node in 6 attempts");
        },
      );
    } finally {
      await rm(site.dir, { recursive: true, force: true });
    }
  });
