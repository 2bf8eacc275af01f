// LARD with TCP handoff end to end (issue 25): `up --nodes 4 --mode lard` in the testbed, real
// kernel clients (curl, loadgen) in the client namespace, 1% loss on every link, every
// response byte-verified; the front-end hands connections off and sends no response bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { withCluster, type Cluster } from "../../cluster/index.js";
import { buildSite, documentBytes, documentSha256 } from "../../loadgen/index.js";
import { testPrefix } from "../../testbed/index.js";

const CLI = fileURLToPath(new URL("../../../bin/sc-cluster.js", import.meta.url));

interface ReplayJson {
  requests: number;
  ok: number;
  errors: number;
  verify_failures: number;
}

async function replay(c: Cluster, trace: string, manifest: string, args: string[]): Promise<ReplayJson> {
  const out = join(c.logDir, `replay-${Date.now()}.json`);
  const r = await c.testbed.exec(
    "client",
    process.execPath,
    [CLI, "loadgen", "--trace", trace, "--target", c.vipUrl, "--verify", manifest, "--json", out, ...args],
    { timeoutMs: 180_000, check: false },
  );
  const json = JSON.parse(await readFile(out, "utf8")) as ReplayJson;
  assert.ok(r.code === 0 || json.verify_failures > 0 || json.errors > 0, `loadgen failed: ${r.stderr}`);
  return json;
}

function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n"))
    if (line.startsWith(name) && (line[name.length] === " " || line[name.length] === "{"))
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  return sum;
}

test("lard: curl and keep-alive/pipelined loadgen through the front-end at 1% loss, byte-exact; the front-end sends no response bytes", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lard-site-"));
  try {
    const paths: string[] = [];
    const lines: string[] = [];
    for (let i = 0; i < 200; i++) {
      const p = `/d/${String(i).padStart(5, "0")}.bin`;
      paths.push(p);
      lines.push(`c - - [01/Jan/2001:00:00:00 +0000] "GET ${p} HTTP/1.0" 200 ${1024 + ((i * 7919) % 60000)}`);
    }
    const trace = join(dir, "trace.log");
    await writeFile(trace, lines.join("\n") + "\n");
    const root = join(dir, "root");
    const manifest = join(dir, "manifest.jsonl");
    await buildSite({ trace, out: root, manifest });
    const pipe = join(dir, "pipe.log");
    await writeFile(pipe, lines.slice(0, 8).join("\n") + "\n");

    await withCluster(
      { prefix: testPrefix("lrd"), nodes: 4, mode: "lard", site: root, loss: 1 },
      async (c) => {
        // curl (kernel TCP), one connection per document, each byte-checked.
        for (const i of [0, 1, 2, 3, 57, 101]) {
          const p = paths[i]!;
          const out = join(c.logDir, `curl-${i}.out`);
          const r = await c.testbed.exec(
            "client",
            "curl",
            ["-s", "-m", "30", "-o", out, "-w", "%{http_code}", `${c.vipUrl}${p.slice(1)}`],
            { timeoutMs: 40_000, check: false },
          );
          assert.equal(r.stdout, "200", `curl ${p}: ${r.stdout} ${r.stderr}`);
          const got = createHash("sha256")
            .update(await readFile(out))
            .digest("hex");
          assert.equal(got, documentSha256(p, 1024 + ((i * 7919) % 60000)), `curl ${p} byte-exact`);
        }
        // curl keep-alive: four documents on one kernel TCP connection, each handed to its own
        // document's node (hand-back and handoff between them), each byte-checked.
        const statsOf = async () =>
          JSON.parse((await c.get(`${c.process("dispatcher").admin}/stats`)).body) as {
            counters: { handBacks: number; connectionsAccepted: number };
          };
        const before = (await statsOf()).counters;
        const many = [4, 5, 6, 7];
        const outs = many.map((i) => join(c.logDir, `curl-ka-${i}.out`));
        const ka = await c.testbed.exec(
          "client",
          "curl",
          [
            "-s",
            "-m",
            "60",
            "-w",
            "%{http_code} %{num_connects}\n",
            ...many.flatMap((i, k) => [`${c.vipUrl}${paths[i]!.slice(1)}`, "-o", outs[k]!]),
          ],
          { timeoutMs: 70_000, check: false },
        );
        assert.deepEqual(
          ka.stdout.trim().split("\n"),
          ["200 1", "200 0", "200 0", "200 0"],
          `curl keep-alive: one connection, four 200s (${ka.stderr})`,
        );
        for (const [k, i] of many.entries()) {
          const got = createHash("sha256")
            .update(await readFile(outs[k]!))
            .digest("hex");
          assert.equal(got, documentSha256(paths[i]!, 1024 + ((i * 7919) % 60000)), `curl keep-alive ${i}`);
        }
        const after = (await statsOf()).counters;
        assert.equal(after.connectionsAccepted - before.connectionsAccepted, 1);
        assert.equal(after.handBacks - before.handBacks, 3, "each later request was handed off again");
        // Keep-alive connections (every request of a connection on its first request's node).
        const r = await replay(c, trace, manifest, [
          "--clients",
          "1",
          "--conns",
          "8",
          "--keepalive",
          "--requests",
          "400",
          "--timeout",
          "20000",
        ]);
        assert.deepEqual([r.ok, r.verify_failures, r.errors], [400, 0, 0]);
        // Pipelined depth 8 on one connection.
        for (let round = 0; round < 2; round++) {
          const p = await replay(c, pipe, manifest, [
            "--clients",
            "1",
            "--conns",
            "1",
            "--keepalive",
            "--pipeline",
            "8",
            "--requests",
            "8",
            "--timeout",
            "20000",
          ]);
          assert.deepEqual([p.ok, p.verify_failures, p.errors], [8, 0, 0]);
        }

        const fe = c.process("dispatcher").admin!;
        // The front-end's admin API is guarded like the L4 dispatcher's: a Host that does not
        // name it (a rebound DNS name) is refused before anything is read.
        const rebound = await c.request({ url: `${fe}/stats`, headers: { host: "rebound.example" } });
        assert.equal(rebound.status, 421, rebound.body);
        const stats = JSON.parse((await c.get(`${fe}/stats`)).body) as {
          mode: string;
          counters: {
            handoffsSent: number;
            handoffsAccepted: number;
            packetsForwarded: number;
            handBacks: number;
            connectionsAccepted: number;
          };
          payloadBytesOut: number;
          cpuUsPerHandoff: number;
        };
        const forwarded = (stats.counters as unknown as { bytesForwarded: number }).bytesForwarded;
        assert.equal(stats.mode, "lard");
        // One handoff per request: curl's 6, loadgen's 400 and the pipelined 16 (multiple handoff),
        // plus the start-up probe of `up`; every later request on a connection was handed back.
        const fc = stats.counters;
        assert.ok(fc.handoffsAccepted >= 6 + 400 + 16, `handoffs: ${JSON.stringify(fc)}`);
        assert.ok(fc.handBacks >= 400 - 8 + 16 - 2, `hand-backs: ${JSON.stringify(fc)}`);
        assert.equal(fc.handoffsAccepted, fc.connectionsAccepted + fc.handBacks);
        assert.ok(stats.counters.packetsForwarded > 0);
        // The front-end's own stack sent handshakes and ACKs only, not one response byte.
        assert.equal(stats.payloadBytesOut, 0, "front-end payload bytes out");
        let accepted = 0;
        let responseBytes = 0;
        for (const n of c.nodes) {
          const m = await c.metrics(n);
          const mine = metric(m, "sc_lard_handoffs_accepted_total");
          assert.ok(mine > 0, `${n} served some of the documents (the requests spread across nodes)`);
          accepted += mine;
          responseBytes += metric(m, "sc_http_response_bytes_total");
        }
        assert.equal(accepted, stats.counters.handoffsAccepted);
        assert.ok(responseBytes > 400 * 1024, `nodes sent ${responseBytes} response bytes`);
        // What the front-end forwarded is the clients' side (requests and ACKs): a GET is well
        // under 1 KB, the responses are 1 KB to 60 KB each; none of their bytes went through it.
        assert.ok(
          forwarded < accepted * 1024,
          `forwarded ${forwarded} payload bytes for ${accepted} requests (nodes sent ${responseBytes})`,
        );
        const fm = (await c.get(`${fe}/metrics`)).body;
        assert.ok(metric(fm, "sc_lard_handoff_latency_seconds_count") >= stats.counters.handoffsAccepted);
        assert.ok(metric(fm, "sc_lard_handoffs_per_connection_count") > 0);
        assert.ok(metric(fm, "sc_lard_frontend_cpu_seconds_per_request") > 0);
        assert.ok(metric(fm, "sc_lard_forwarded_bytes_total") >= forwarded);
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("lard: the node serving a response is killed mid-transfer: another node resumes it and curl gets the document byte-exact", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lard-kill-"));
  const size = 20_000_000;
  try {
    const trace = join(dir, "trace.log");
    await writeFile(trace, `c - - [01/Jan/2001:00:00:00 +0000] "GET /big.bin HTTP/1.0" 200 ${size}\n`);
    const root = join(dir, "root");
    const manifest = join(dir, "manifest.jsonl");
    await buildSite({ trace, out: root, manifest });
    const want = documentBytes("/big.bin", size);
    await withCluster(
      { prefix: testPrefix("lrk"), nodes: 4, mode: "lard", site: root, rate: "100mbit" },
      async (c) => {
        // Once whole, so the document is in its node's cache and the next transfer runs at link speed.
        const warm = await c.testbed.exec(
          "client",
          "curl",
          ["-s", "-m", "60", "-o", "/dev/null", "-w", "%{http_code}", `${c.vipUrl}big.bin`],
          { timeoutMs: 70_000, check: false },
        );
        assert.equal(warm.stdout, "200");
        const out = join(c.logDir, "big.out");
        const curl = c.testbed.spawn(
          "client",
          "curl",
          ["-s", "-m", "60", "-o", out, "-w", "%{http_code} %{size_download}", `${c.vipUrl}big.bin`],
          { stdio: ["ignore", "pipe", "pipe"] },
        );
        const exited = new Promise<number | null>((r) => curl.once("exit", (code) => r(code)));
        let done = false;
        void exited.then(() => (done = true));
        // Find the node the connection was handed to while it sends, then kill it.
        let killed: string | undefined;
        while (!done && killed === undefined) {
          for (const n of c.nodes) {
            const s = JSON.parse((await c.get(`${c.process(n).admin}/stats`)).body) as {
              lard?: { open: number };
            };
            if ((s.lard?.open ?? 0) > 0) {
              await new Promise((r) => setTimeout(r, 300)); // some MB are on their way
              process.kill(c.process(n).pid, "SIGKILL");
              killed = n;
              break;
            }
          }
          if (killed === undefined) await new Promise((r) => setTimeout(r, 50));
        }
        const code = await exited;
        assert.ok(killed !== undefined, "the serving node was found and killed mid-response");
        const got = await readFile(out).catch(() => Buffer.alloc(0));
        // Never wrong bytes in any case: what arrived is a prefix of the document.
        assert.ok(got.equals(want.subarray(0, got.length)), "every byte that arrived is the document's");
        // The front-end saw the node's link go, handed the connection to another node with the
        // client's acknowledged offset, and that node sent the rest: the whole document.
        assert.equal(code, 0, `curl ended with ${code} after ${got.length} bytes`);
        assert.equal(got.length, size, "the whole document");
        const fe = JSON.parse((await c.get(`${c.process("dispatcher").admin}/stats`)).body) as {
          counters: { nodeLostResets: number; resumesSent: number; resumesAccepted: number };
        };
        assert.deepEqual(
          [fe.counters.resumesSent, fe.counters.resumesAccepted, fe.counters.nodeLostResets],
          [1, 1, 0],
        );
        let resumed = 0;
        for (const n of c.nodes) {
          if (n === killed) continue;
          const s = JSON.parse((await c.get(`${c.process(n).admin}/stats`)).body) as {
            lard?: { resumes: number };
          };
          resumed += s.lard?.resumes ?? 0;
        }
        assert.equal(resumed, 1, "one surviving node took the RESUME");
        // The health checks found the killed node (its admin port refuses): not eligible. Checks
        // run every second; this waits for that verdict, bounded.
        const nodesUrl = `${c.process("dispatcher").admin}/nodes`;
        type NodeView = { id: string; eligible: boolean; link: boolean; health?: { state: string } };
        let view: NodeView | undefined;
        for (const until = Date.now() + 10_000; Date.now() < until;) {
          view = (JSON.parse((await c.get(nodesUrl)).body) as NodeView[]).find((n) => n.id === killed);
          if (view?.health?.state === "gone") break;
          await new Promise((r) => setTimeout(r, 200));
        }
        assert.equal(view?.health?.state, "gone", `health of ${killed}: ${JSON.stringify(view)}`);
        assert.deepEqual([view?.eligible, view?.link], [false, false]);
        const fm = (await c.get(`${c.process("dispatcher").admin}/metrics`)).body;
        assert.equal(metric(fm, "sc_lard_resumes_accepted_total"), 1);
        assert.equal(metric(fm, "sc_lard_node_lost_resets_total"), 0);
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("lard: a node killed under keep-alive and pipelined load at 1% loss: its connections are resumed, no response has a wrong byte", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "lard-load-kill-"));
  try {
    const lines: string[] = [];
    for (let i = 0; i < 64; i++)
      lines.push(
        `c - - [01/Jan/2001:00:00:00 +0000] "GET /k/${String(i).padStart(3, "0")}.bin HTTP/1.0" 200 ${20_000 + ((i * 7919) % 200_000)}`,
      );
    const trace = join(dir, "trace.log");
    await writeFile(trace, lines.join("\n") + "\n");
    const root = join(dir, "root");
    const manifest = join(dir, "manifest.jsonl");
    await buildSite({ trace, out: root, manifest });
    await withCluster(
      { prefix: testPrefix("lrl"), nodes: 4, mode: "lard", site: root, loss: 1 },
      async (c) => {
        const fe = c.process("dispatcher").admin!;
        const requests = 1200;
        const run = replay(c, trace, manifest, [
          "--clients",
          "1",
          "--conns",
          "8",
          "--keepalive",
          "--pipeline",
          "4",
          "--requests",
          String(requests),
          "--timeout",
          "20000",
        ]);
        let finished = false;
        void run.then(
          () => (finished = true),
          () => (finished = true),
        );
        // Once the load is well under way, kill the node serving the most connections.
        let killed: string | undefined;
        while (!finished && killed === undefined) {
          const s = JSON.parse((await c.get(`${fe}/stats`)).body) as {
            counters: { handoffsAccepted: number };
          };
          if (s.counters.handoffsAccepted >= 300) {
            let best: { id: string; open: number } | undefined;
            for (const n of c.nodes) {
              const ns = JSON.parse((await c.get(`${c.process(n).admin}/stats`)).body) as {
                lard?: { open: number };
              };
              const open = ns.lard?.open ?? 0;
              if (best === undefined || open > best.open) best = { id: n, open };
            }
            if (best !== undefined && best.open > 0) {
              process.kill(c.process(best.id).pid, "SIGKILL");
              killed = best.id;
            }
          }
          if (killed === undefined) await new Promise((r) => setTimeout(r, 100));
        }
        const r = await run;
        assert.ok(killed !== undefined, "a serving node was killed during the load");
        // Never a wrong byte: every response that completed is the document.
        assert.equal(r.verify_failures, 0, JSON.stringify(r));
        assert.equal(r.requests, requests);
        const stats = JSON.parse((await c.get(`${fe}/stats`)).body) as {
          counters: { resumesSent: number; resumesAccepted: number; nodeLostResets: number };
          payloadBytesOut: number;
        };
        const fc = stats.counters;
        assert.ok(
          fc.resumesAccepted >= 1,
          `the killed node's connections were resumed: ${JSON.stringify(fc)}`,
        );
        // A connection is resumed or reset, and each reset costs at most its requests in flight.
        assert.ok(
          r.errors <= 4 * fc.nodeLostResets,
          `errors ${r.errors}: ${JSON.stringify(r)} ${JSON.stringify(fc)}`,
        );
        assert.equal(r.ok + r.errors, requests);
        t.diagnostic(
          `killed ${killed}: ${fc.resumesAccepted} resumed, ${fc.nodeLostResets} reset; loadgen ok ${r.ok}, errors ${r.errors}`,
        );
        assert.equal(stats.payloadBytesOut, 0, "the front-end sent no response byte");
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
