// End to end on the real NASA trace: site -> origin server -> replay with verification.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  existsSync,
  openSync,
  readFileSync,
  readSync,
  closeSync,
  utimesSync,
  truncateSync,
  writeSync,
} from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { buildSite, type SiteResult } from "../site.js";
import { SITE_MTIME, readManifest, type DocumentEntry } from "../manifest.js";
import { loadReplayPlan, runReplay } from "./run.js";
import { NASA_TRACE, REPO_ROOT } from "../test-support.js";
import { startOrigin, type OriginServer } from "../../origin/server.js";
import { createLogger } from "../../server/log.js";
import { NODE_DEFAULTS, startNode } from "../../server/node/node.js";

describe("NASA trace end to end (site + origin + replay)", () => {
  let dir = "";
  let root = "";
  let manifest = "";
  let site: SiteResult;
  let origin: OriginServer;
  let target = "";

  before(async () => {
    assert.ok(existsSync(NASA_TRACE), `NASA trace not found at ${NASA_TRACE} (set SC_NASA_TRACE)`);
    dir = await mkdtemp(join(tmpdir(), `sc-loadgen-nasa-${process.pid}-`));
    root = join(dir, "root");
    manifest = join(dir, "manifest.jsonl");
    site = await buildSite({ trace: NASA_TRACE, out: root, manifest });
    origin = await startOrigin({ root, host: "127.0.0.1", port: 0, logger: createLogger("silent") });
    target = `http://127.0.0.1:${origin.address.port}`;
  });

  after(async () => {
    await origin?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("site: every line accounted for, the 20,000 lines parse (HTTP/0.9 ones too)", () => {
    assert.equal(site.trace.lines, 20_000);
    assert.equal(site.trace.records, 20_000);
    assert.equal(site.trace.bad, 0);
    assert.equal(site.replayable + site.skipped, 20_000);
    // The README's status mix: 244 redirects, 1 403, 2 POSTs are not reproducible.
    assert.equal(site.skippedByReason.redirect, 244);
    assert.equal(site.skippedByReason.status, 1);
    assert.equal(site.skippedByReason.method, 2);
    assert.ok(site.replayable > 19_000, String(site.replayable));
    assert.ok(site.documents > 1400 && site.notFoundUrls > 0);
  });

  test("all replayable NASA requests through origin + one node (cache smaller than the site): 0 failures", async () => {
    const node = await startNode({
      ...NODE_DEFAULTS,
      nodeId: "loadgen-test",
      stack: "kernel",
      listen: { host: "127.0.0.1", port: 0 },
      origin: target,
      admin: null,
      cacheBytes: 16 * 1024 * 1024,
      cachePolicy: "lru",
      mode: "local",
      trust: null,
      logger: createLogger("silent"),
    });
    try {
      const r = await runReplay({
        trace: NASA_TRACE,
        target: `http://127.0.0.1:${node.address.port}`,
        clients: 2,
        conns: 4,
        keepalive: true,
        verify: manifest,
        timeoutMs: 20_000,
      });
      assert.equal(r.requests, site.replayable);
      assert.equal(r.errors, 0, JSON.stringify(r.errors_by_kind));
      assert.equal(r.verify_failures, 0, JSON.stringify(r.verify_failure_samples));
      assert.equal(r.ok, site.replayable);
      // Skipped by replay = skipped by site (same classification, same manifest).
      assert.equal(r.skipped, site.skipped);
      assert.equal(r.stopped_by, "requests");
      assert.ok((r.status_counts["304"] ?? 0) > 1000);
      assert.ok((r.status_counts["404"] ?? 0) > 100);
      assert.ok(r.rps > 0 && r.mbps > 0 && r.latency_ms.p50 > 0);
      assert.ok(r.latency_ms.p50 <= r.latency_ms.p90 && r.latency_ms.p99 <= r.latency_ms.p999);
      assert.ok(r.latency_ms.p999 <= r.latency_ms.max + 0.01);
    } finally {
      await node.shutdown(0);
    }
  });

  test("the origin alone answers the first 2000 requests correctly, one connection per request", async () => {
    const r = await runReplay({
      trace: NASA_TRACE,
      target,
      clients: 2,
      conns: 4,
      requests: 2000,
      verify: manifest,
    });
    assert.equal(r.requests, 2000);
    assert.equal(r.verify_failures, 0, JSON.stringify(r.verify_failure_samples));
    assert.equal(r.errors, 0, JSON.stringify(r.errors_by_kind));
    assert.equal(r.ok, 2000);
    assert.equal(r.stopped_by, "requests");
    // The logged 304s were replayed as conditional GETs and the origin answered 304.
    assert.ok((r.status_counts["304"] ?? 0) > 0);
    assert.ok((r.status_counts["404"] ?? 0) > 0);
    assert.ok(r.rps > 0 && r.mbps > 0 && r.latency_ms.p50 > 0);
    assert.ok(r.latency_ms.p50 <= r.latency_ms.p90 && r.latency_ms.p99 <= r.latency_ms.p999);
    assert.ok(r.latency_ms.p999 <= r.latency_ms.max + 0.01);
  });

  test("pipelined keep-alive connections verify too", async () => {
    const r = await runReplay({
      trace: NASA_TRACE,
      target,
      conns: 4,
      keepalive: true,
      pipeline: 8,
      requests: 3000,
      verify: manifest,
    });
    assert.equal(r.requests, 3000);
    assert.equal(r.ok, 3000);
  });

  test("without a manifest the logged statuses are the expectation", async () => {
    const requests = 3000;
    const plan = await loadReplayPlan({ trace: NASA_TRACE });
    // Predict which logged statuses the site cannot reproduce: URLs the site left out (304-only
    // ones, the losing side of a file/directory collision) answer 404 now, and a logged 404
    // whose document exists (from another line) answers 200.
    const m = await readManifest(manifest);
    let mismatches = 0;
    for (let i = 0; i < requests; i++) {
      const c = plan.classes[plan.entries[i]!]!;
      const exists = m.entries.get(c.path)?.status === 200;
      if (c.expect.status === 200 && !exists) mismatches++;
      if (c.expect.status === 404 && exists) mismatches++;
    }
    const r = await runReplay({ plan, target, conns: 4, keepalive: true, requests });
    assert.equal(r.requests, requests);
    assert.equal(r.errors, 0);
    assert.equal(r.verify_failures, mismatches);
    assert.equal(r.ok, requests - mismatches);
    assert.deepEqual(r.verify_failures_by_kind, mismatches ? { status: mismatches } : {});
  });

  test("a corrupted and a truncated document are reported as verification failures, exit code 1", async () => {
    const m = await readManifest(manifest);
    const corrupted = m.entries.get("/images/NASA-logosmall.gif") as DocumentEntry;
    const truncated = m.entries.get("/images/KSC-logosmall.gif") as DocumentEntry;
    // Flip one byte; cut one byte; keep the mtime so conditional GETs are still answered 304.
    const p = join(root, corrupted.doc);
    const fd = openSync(p, "r+");
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, 100);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, 100);
    closeSync(fd);
    truncateSync(join(root, truncated.doc), truncated.size - 1);
    for (const f of [p, join(root, truncated.doc)]) utimesSync(f, SITE_MTIME, SITE_MTIME);

    const requests = 3000;
    const plan = await loadReplayPlan({ trace: NASA_TRACE, verify: manifest });
    let expectSha = 0;
    let expectLength = 0;
    for (let i = 0; i < requests; i++) {
      const c = plan.classes[plan.entries[i]!]!;
      if (c.path === corrupted.url && c.kind === "get") expectSha++;
      if (c.path === truncated.url && c.kind !== "conditional") expectLength++;
    }
    assert.ok(expectSha > 10 && expectLength > 10, `${expectSha} ${expectLength}`);

    const r = await runReplay({ plan, target, conns: 4, keepalive: true, requests });
    assert.equal(r.requests, requests);
    assert.deepEqual(r.verify_failures_by_kind, { sha256: expectSha, length: expectLength });
    assert.equal(r.verify_failures, expectSha + expectLength);
    assert.equal(r.ok, requests - expectSha - expectLength);
    const sample = r.verify_failure_samples.find((s) => s.failure === "sha256")!;
    assert.equal(sample.path, corrupted.url);
    assert.equal(sample.expected, `sha256 ${corrupted.sha256}`);

    // The CLI reports the same and exits 1; its JSON has the documented fields.
    const out = join(dir, "result.json");
    const cli = join(REPO_ROOT, "bin", "sc-cluster.js");
    const args = ["loadgen", "--trace", NASA_TRACE, "--target", target, "--verify", manifest];
    const run = promisify(execFile)(process.execPath, [
      cli,
      ...args,
      "--requests",
      "500",
      "--keepalive",
      "--json",
      out,
    ]);
    await assert.rejects(run, (err: { code?: number; stdout?: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stdout ?? "", /verify failure: GET \/images\//);
      return true;
    });
    const json = JSON.parse(readFileSync(out, "utf8"));
    for (const k of ["requests", "ok", "errors", "verify_failures", "skipped", "rps", "mbps"]) {
      assert.equal(typeof json[k], "number", k);
    }
    assert.deepEqual(Object.keys(json.latency_ms).sort(), ["max", "mean", "p50", "p90", "p99", "p999"]);
    assert.equal(json.requests, 500);
    assert.ok(json.verify_failures > 0);
    assert.equal(json.params.target, target);
    assert.equal(json.params.keepalive, true);
    assert.equal(json.params.requests, 500);
  });
});
