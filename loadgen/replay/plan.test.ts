import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { PlanBuilder } from "./plan.js";
import { withTempDir } from "../test-support.js";
import type { Manifest } from "../manifest.js";
import type { TraceRecord } from "../trace/formats.js";

const rec = (method: string, url: string, status: number | null, bytes: number | null = 1): TraceRecord => ({
  line: 1,
  host: null,
  time: null,
  method,
  url,
  protocol: null,
  status,
  bytes,
});

const manifest: Manifest = {
  header: {
    format: "sc-cluster-manifest",
    version: 1,
    content: "",
    mtime: 0,
    last_modified: "",
    entries: 2,
    documents: 1,
    bytes: 10,
    source: {},
  },
  entries: new Map([
    [
      "/a.html",
      { url: "/a.html", status: 200, doc: "/a.html", size: 10, sha256: "f".repeat(64), kinds: ["get"] },
    ],
    ["/gone.html", { url: "/gone.html", status: 404, kinds: ["get"] }],
  ]),
};

test("with a manifest: expectations from it, one class per URL and kind, unknown URLs skipped", () => {
  const b = new PlanBuilder(manifest);
  for (const r of [
    rec("GET", "/a.html", 200),
    rec("GET", "/a.html", 304),
    rec("GET", "/a.html?x", 200),
    rec("HEAD", "/a.html", 200),
    rec("GET", "/a.html", 200),
    rec("GET", "/gone.html", 404),
    rec("GET", "/other.html", 200),
    rec("POST", "/a.html", 200),
  ]) {
    b.add(r);
  }
  const plan = b.build(null);
  assert.deepEqual(Array.from(plan.entries), [0, 1, 2, 0, 3]);
  assert.deepEqual(
    plan.classes.map((c) => [c.method, c.path, c.kind, c.expect]),
    [
      ["GET", "/a.html", "get", { status: 200, allow304: false, size: 10, sha256: "f".repeat(64) }],
      ["GET", "/a.html", "conditional", { status: 200, allow304: true, size: 10, sha256: "f".repeat(64) }],
      ["HEAD", "/a.html", "head", { status: 200, allow304: false, size: 10, sha256: null }],
      ["GET", "/gone.html", "get", { status: 404, allow304: false, size: null, sha256: null }],
    ],
  );
  assert.equal(plan.skipped, 3);
  assert.deepEqual(plan.skippedByReason, { query: 1, not_in_manifest: 1, method: 1 });
});

test("without a manifest: the logged status is the expectation; the plan grows past its first buffer", () => {
  const b = new PlanBuilder(null, "strip");
  for (let i = 0; i < 3000; i++) b.add(rec("GET", `/f${i % 3}.html?i=${i}`, [200, 304, 404][i % 3]!));
  b.add(rec("GET", "/list-entry", null));
  const plan = b.build(null);
  assert.equal(plan.entries.length, 3001);
  assert.deepEqual(
    plan.classes.map((c) => [c.path, c.expect.status, c.expect.allow304]),
    [
      ["/f0.html", 200, false],
      ["/f1.html", 200, true],
      ["/f2.html", 404, false],
      ["/list-entry", 0, false],
    ],
  );
  assert.equal(plan.entries[2999], 2);
  assert.equal(plan.skipped, 0);
});

test("compiling a trace keeps no trace text alive (the plan fits a heap smaller than the trace)", async () => {
  await withTempDir(async (dir) => {
    // 80 MB of Combined log (long user agents), a new URL every 13 lines: if cached URLs
    // pinned the 1 MiB chunks they were cut from, the whole text would stay reachable and a
    // 48 MB heap would overflow. The URLs themselves are small (but long enough, >= 13 characters, to be V8 slices).
    const path = join(dir, "big.log");
    const fd = openSync(path, "w");
    const ua = "Mozilla/4.0 ".repeat(120);
    let line = 0;
    for (let block = 0; block < 54; block++) {
      let s = "";
      for (let i = 0; i < 1000; i++, line++) {
        s += `h - - [01/Aug/1995:00:00:01 -0400] "GET /documents/f${Math.floor(line / 13)}.html HTTP/1.0" 200 1 "-" "${ua}"\n`;
      }
      writeSync(fd, s);
    }
    closeSync(fd);
    const script = `
      const { loadReplayPlan } = await import(${JSON.stringify(new URL("./run.js", import.meta.url).href)});
      const plan = await loadReplayPlan({ trace: ${JSON.stringify(path)} });
      console.log(plan.entries.length, plan.classes.length);`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--max-old-space-size=48", "--input-type=module", "-e", script],
      { maxBuffer: 1 << 20 },
    );
    assert.equal(stdout.trim(), `54000 ${Math.ceil(54000 / 13)}`);
  });
});
