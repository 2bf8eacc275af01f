import { test } from "node:test";
import assert from "node:assert/strict";
import { PlanBuilder } from "./plan.js";
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
