import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { synthesize, synthParamsJson, synthTraceLine } from "./synth.js";
import { buildModel, PAPER_TRACE } from "./model.js";
import { formatClfDate } from "../trace/formats.js";
import { readTrace } from "../trace/reader.js";
import { readManifest, type DocumentEntry } from "../manifest.js";
import { documentSha256 } from "../content.js";
import { withTempDir } from "../test-support.js";
import { runReplay } from "../replay/run.js";
import { startOrigin } from "../../origin/server.js";
import { createLogger } from "../../server/log.js";

test("synth output is byte-identical for the same seed and differs for another", async () => {
  await withTempDir(async (dir) => {
    const a = await synthesize({ out: join(dir, "a"), scale: 0.002, seed: 7 });
    await synthesize({ out: join(dir, "b"), scale: 0.002, seed: 7 });
    await synthesize({ out: join(dir, "c"), scale: 0.002, seed: 8, writeRoot: false });
    for (const f of ["trace.log", "manifest.jsonl", "params.json"]) {
      assert.deepEqual(readFileSync(join(dir, "a", f)), readFileSync(join(dir, "b", f)), f);
    }
    assert.notDeepEqual(readFileSync(join(dir, "a", "trace.log")), readFileSync(join(dir, "c", "trace.log")));
    assert.deepEqual(readdirSync(join(dir, "c")).sort(), ["manifest.jsonl", "params.json", "trace.log"]);
    const params = JSON.parse(readFileSync(a.paths.params, "utf8"));
    assert.equal(params.params.seed, 7);
    assert.equal(params.params.scale, 0.002);
    assert.equal(params.scaled.files, 175);
    assert.equal(params.achieved.total_bytes, a.model.achieved.totalBytes);
  });
});

test("synth writes a trace our reader reads, and a root that matches its manifest", async () => {
  await withTempDir(async (dir) => {
    const r = await synthesize({ out: dir, scale: 0.002, seed: 1 });
    const { records, stats } = await readTrace(r.paths.trace);
    assert.equal(stats.format, "clf");
    assert.equal(stats.bad, 0);
    assert.equal(records.length, r.model.requests);
    const m = await readManifest(r.paths.manifest);
    assert.equal(m.entries.size, r.model.files);
    let bytes = 0;
    for (const rec of records) {
      const e = m.entries.get(rec.url) as DocumentEntry | undefined;
      assert.ok(e, rec.url);
      assert.equal(rec.bytes, e.size);
      bytes += e.size;
    }
    // The request-weighted mean is the paper's 40 KiB, within 5%.
    assert.ok(Math.abs(bytes / records.length / 40960 - 1) < 0.05, String(bytes / records.length));
    let total = 0;
    for (const e of m.entries.values()) {
      const d = e as DocumentEntry;
      assert.equal(statSync(join(r.paths.root!, d.doc)).size, d.size);
      total += d.size;
    }
    assert.equal(total, m.header.bytes);
    const some = [...m.entries.values()].slice(0, 5) as DocumentEntry[];
    for (const d of some) assert.equal(documentSha256(d.doc, d.size), d.sha256);
  });
});

test("synth refuses a non-empty output directory and nonsense parameters", async () => {
  await withTempDir(async (dir) => {
    await synthesize({ out: join(dir, "x"), scale: 0.0005, writeRoot: false });
    await assert.rejects(synthesize({ out: join(dir, "x"), scale: 0.0005 }), /not empty/);
    await assert.rejects(synthesize({ out: join(dir, "y"), scale: -1 }), /scale must be a positive number/);
    await assert.rejects(synthesize({ out: join(dir, "z"), seed: 1.5 }), /seed must be a whole number/);
  });
});

test("a synthetic trace replays against a static server with 0 verification failures", async () => {
  await withTempDir(async (dir) => {
    const r = await synthesize({ out: dir, scale: 0.002, seed: 3 });
    const origin = await startOrigin({
      root: r.paths.root!,
      host: "127.0.0.1",
      port: 0,
      logger: createLogger("silent"),
    });
    try {
      const res = await runReplay({
        trace: r.paths.trace,
        target: `http://127.0.0.1:${origin.address.port}`,
        clients: 2,
        conns: 2,
        keepalive: true,
        requests: 1000,
        verify: r.paths.manifest,
      });
      assert.equal(res.requests, 1000);
      assert.equal(res.ok, 1000, JSON.stringify(res.verify_failure_samples));
      assert.equal(res.skipped, 0);
      assert.equal(res.trace?.replayable, r.model.requests);
    } finally {
      await origin.close();
    }
  });
});

test("synthTraceLine: a CLF GET, timestamps spread evenly over the span, hosts from (seed, line)", () => {
  const params = { ...PAPER_TRACE, startTime: 1_000_000_000, spanSeconds: 100, hosts: 4, seed: 9 };
  const lines = Array.from({ length: 10 }, (_, j) => synthTraceLine(params, j, 10, `/d${j}.html`, j * 10));
  const parsed = lines.map((l) =>
    /^h(\d+)\.synth\.invalid - - \[([^\]]+)\] "GET (\S+) HTTP\/1\.0" 200 (\d+)\n$/.exec(l),
  );
  assert.ok(
    parsed.every((m) => m !== null),
    lines.join(""),
  );
  assert.deepEqual(
    parsed.map((m) => [m![3], Number(m![4])]),
    lines.map((_, j) => [`/d${j}.html`, j * 10]),
  );
  assert.ok(parsed.every((m) => Number(m![1]) < 4));
  assert.ok(new Set(parsed.map((m) => m![1])).size > 1, "more than one host");
  assert.equal(parsed[0]![2], formatClfDate(1_000_000_000));
  assert.equal(parsed[9]![2], formatClfDate(1_000_000_090));
  // The same line of another seed may come from another host, never at another time.
  const other = synthTraceLine({ ...params, seed: 10 }, 9, 10, "/d9.html", 90);
  assert.equal(other.slice(other.indexOf(" - - ")), lines[9]!.slice(lines[9]!.indexOf(" - - ")));
});

test("synthParamsJson: the parameters, the scaled targets and what was achieved, rounded; no root: null", () => {
  const params = { ...PAPER_TRACE, scale: 0.002, seed: 3 };
  const model = buildModel(params);
  const text = synthParamsJson(params, model, { zipfSlope: 0.81234, requestedFiles: 17, root: false });
  assert.ok(text.endsWith("}\n"));
  const json = JSON.parse(text);
  assert.deepEqual(json.params, params);
  assert.equal(json.scaled.total_bytes_target, params.totalBytes * 0.002);
  assert.equal(json.achieved.zipf_slope, 0.812);
  assert.equal(json.achieved.requested_files, 17);
  assert.equal(json.achieved.mean_file_bytes, Math.round(model.achieved.meanFileBytes));
  assert.deepEqual(json.files, { trace: "trace.log", root: null, manifest: "manifest.jsonl" });
  assert.equal(
    JSON.parse(synthParamsJson(params, model, { zipfSlope: 1, requestedFiles: 1, root: true })).files.root,
    "root",
  );
});
