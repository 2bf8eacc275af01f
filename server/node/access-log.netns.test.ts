// Issue 18 item 1 end to end: a 3-node Socket Cloning cluster in the testbed, each node writing
// its access log; after a verified replay the logs, read by loadgen's CLF reader, have exactly
// one line per request, on the node the request arrived at, with cloned-to= naming the node a
// clone served it on as often as clones were made.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { withCluster } from "../../cluster/index.js";
import { buildSite } from "../../loadgen/index.js";
import { readTrace } from "../../loadgen/trace/reader.js";
import { testPrefix } from "../../testbed/index.js";

const CLI = fileURLToPath(new URL("../../../bin/sc-cluster.js", import.meta.url));
const NODES = ["node1", "node2", "node3"];
const REQUESTS = 600;

function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(name) && (line[name.length] === " " || line[name.length] === "{")) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return sum;
}

test(
  "access logs of a verified replay through an SC cluster: one CLF line per request",
  { timeout: 240_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), "sc-accesslog-"));
    try {
      const paths: string[] = [];
      const lines: string[] = [];
      for (let i = 0; i < 200; i++) {
        const p = `/d/${String(i).padStart(4, "0")}.bin`;
        paths.push(p);
        lines.push(
          `c - - [01/Jan/2001:00:00:00 +0000] "GET ${p} HTTP/1.0" 200 ${6000 + ((i * 7919) % 30000)}`,
        );
      }
      const trace = join(dir, "trace.log");
      await writeFile(trace, lines.join("\n") + "\n");
      const root = join(dir, "root");
      const manifest = join(dir, "manifest.jsonl");
      await buildSite({ trace, out: root, manifest });
      const logOf = (n: string) => join(dir, `${n}-access.log`);
      let clonesSent = 0;
      let cloneFailures = 0;
      await withCluster(
        {
          prefix: testPrefix("acl"),
          nodes: NODES.length,
          mode: "sc",
          site: root,
          scheduler: "rr",
          // localMaxBytes 0: every request whose home is elsewhere is cloned.
          extraArgs: {
            node: ["--clone-local-max-bytes", "0"],
            ...Object.fromEntries(NODES.map((n) => [n, ["--access-log", logOf(n)]])),
          },
        },
        async (c) => {
          const out = join(dir, "replay.json");
          const r = await c.testbed.exec(
            "client",
            process.execPath,
            [
              CLI,
              "loadgen",
              "--trace",
              trace,
              "--target",
              c.vipUrl,
              "--verify",
              manifest,
              "--json",
              out,
              "--clients",
              "1",
              "--conns",
              "6",
              "--keepalive",
              "--requests",
              String(REQUESTS),
            ],
            { timeoutMs: 120_000, check: false },
          );
          const json = JSON.parse(await readFile(out, "utf8")) as {
            ok: number;
            errors: number;
            verify_failures: number;
          };
          assert.deepEqual([json.ok, json.errors, json.verify_failures], [REQUESTS, 0, 0], r.stderr);
          for (const n of c.nodes) {
            const m = await c.metrics(n);
            clonesSent += metric(m, "sc_clones_sent_total");
            cloneFailures += metric(m, "sc_clone_failures_total");
          }
        },
      );
      // The nodes have stopped (SIGTERM): their logs are flushed and closed.
      let total = 0;
      let cloned = 0;
      const perPath = new Map<string, number>();
      for (const n of NODES) {
        const { records, stats } = await readTrace(logOf(n), { format: "clf" });
        assert.equal(stats.bad, 0, `${n}: ${JSON.stringify(stats.badSamples)}`);
        const text = await readFile(logOf(n), "utf8");
        for (const line of text.split("\n")) {
          if (line === "") continue;
          assert.match(line, new RegExp(` node=${n} cloned-to=(-|node[123]) rt=\\d+\\.\\d{6} sent=\\d+$`));
          const to = / cloned-to=(\S+) /.exec(line)![1]!;
          if (to !== "-") {
            assert.notEqual(to, n, "cloned to another node");
            cloned++;
          }
        }
        for (const rec of records) {
          // The launcher's readiness probe of the VIP asks for "/"; everything else is the replay.
          if (rec.url === "/") continue;
          assert.equal(rec.status, 200);
          assert.ok(paths.includes(rec.url), rec.url);
          perPath.set(rec.url, (perPath.get(rec.url) ?? 0) + 1);
          total++;
        }
      }
      assert.equal(total, REQUESTS, "one line per replayed request");
      assert.equal(cloneFailures, 0);
      assert.equal(cloned, clonesSent, "a cloned-to line per clone");
      assert.ok(cloned > REQUESTS / 2, `cloned ${cloned} of ${REQUESTS}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
