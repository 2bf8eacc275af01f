// DocStore: revalidation after the TTL (single-flight, 304 keeps the body, failures keep it),
// and purge (one URL in both of a directory's names, a prefix, all; loads in flight detached).
import { test } from "node:test";
import assert from "node:assert/strict";
import { DocStore, purgeMatcher } from "./doc-store.js";
import { createDocCache } from "../cache/doc-cache.js";
import { makeDoc, type Doc } from "../http/doc.js";
import type { DocSource, Lookup } from "../source/source.js";

type Answer = Lookup | { kind: "unchanged" };

/** A source whose loads and revalidations wait until the test answers them. */
class HeldSource implements DocSource {
  readonly describe = "held";
  readonly loads: { path: string; answer: (r: Lookup) => void }[] = [];
  readonly checks: { path: string; doc: Doc; answer: (r: Answer) => void }[] = [];
  load(path: string): Promise<Lookup> {
    return new Promise((answer) => this.loads.push({ path, answer }));
  }
  revalidate(path: string, doc: Doc): Promise<Answer> {
    return new Promise((answer) => this.checks.push({ path, doc, answer }));
  }
  stats() {
    return {};
  }
  async close() {}
}

const doc = (key: string, text: string, etag = `"${text}"`): Doc =>
  makeDoc({ key, size: text.length, mtimeMs: 0, etag, contentType: "text/plain", body: Buffer.from(text) });

async function bodyOf(r: Lookup | Promise<Lookup>): Promise<string> {
  const l = await r;
  assert.equal(l.kind, "doc");
  return (l as { doc: Doc }).doc.body!.toString();
}

function setup(ttlMs: number) {
  let now = 1000;
  const source = new HeldSource();
  const store = new DocStore(createDocCache("lru", 1 << 20), source, { ttlMs, now: () => now });
  return { source, store, advance: (ms: number) => (now += ms) };
}

/** Loads `path` into the cache with body `text`. */
async function warm(s: ReturnType<typeof setup>, path: string, text: string): Promise<void> {
  const p = s.store.lookup(path);
  s.source.loads.at(-1)!.answer({ kind: "doc", doc: doc(path, text) });
  assert.equal(await bodyOf(p), text);
}

test("revalidation: fresh within the TTL, one conditional check for many requests after it, 304 keeps the body", async () => {
  const s = setup(1000);
  await warm(s, "/a", "v1");
  s.advance(999);
  assert.equal(await bodyOf(s.store.lookup("/a")), "v1");
  assert.equal(s.source.checks.length, 0, "no check within the TTL");
  s.advance(1);
  const waiting = Array.from({ length: 20 }, () => s.store.lookup("/a"));
  assert.equal(s.source.checks.length, 1, "single-flight: one check for 20 requests");
  assert.equal(s.source.loads.length, 1);
  const cached = s.source.checks[0]!.doc;
  s.source.checks[0]!.answer({ kind: "unchanged" });
  for (const w of waiting) assert.equal(await bodyOf(w), "v1");
  assert.equal(s.store.cache.peek("/a"), cached, "the 304 kept the same cached document");
  assert.deepEqual(s.store.revalidation, { checks: 1, unchanged: 1, changed: 0, errors: 0 });
  // Validated again: fresh for another TTL.
  s.advance(999);
  assert.equal(await bodyOf(s.store.lookup("/a")), "v1");
  assert.equal(s.source.checks.length, 1);
});

test("revalidation: a changed document replaces the cached one; a gone one is dropped; an origin error keeps it", async () => {
  const s = setup(100);
  await warm(s, "/a", "v1");
  await warm(s, "/gone", "g");
  await warm(s, "/flaky", "f1");
  s.advance(100);
  const a = s.store.lookup("/a");
  s.source.checks.at(-1)!.answer({ kind: "doc", doc: doc("/a", "v2") });
  assert.equal(await bodyOf(a), "v2");
  assert.equal(await bodyOf(s.store.lookup("/a")), "v2", "cached: no further check");
  const g = s.store.lookup("/gone");
  assert.equal(s.source.checks.length, 2);
  s.source.checks.at(-1)!.answer({ kind: "error", status: 404, reason: "origin 404" });
  assert.deepEqual(await g, { kind: "error", status: 404, reason: "origin 404" });
  assert.equal(s.store.cache.peek("/gone"), undefined);
  const f = s.store.lookup("/flaky");
  s.source.checks.at(-1)!.answer({ kind: "error", status: 502, reason: "origin down" });
  assert.equal(await bodyOf(f), "f1", "stale-if-error");
  assert.equal(await bodyOf(s.store.lookup("/flaky")), "f1", "kept for another TTL without a check");
  assert.equal(s.source.checks.length, 3);
  assert.deepEqual(s.store.revalidation, { checks: 3, unchanged: 0, changed: 2, errors: 1 });
});

test("ttl 0: never revalidated", async () => {
  const s = setup(0);
  await warm(s, "/a", "v1");
  s.advance(1e9);
  assert.equal(await bodyOf(s.store.lookup("/a")), "v1");
  assert.equal(s.source.checks.length, 0);
});

test("purge: one URL (both names of a directory index), a prefix, everything", async () => {
  const s = setup(0);
  for (const p of ["/d/", "/d/index.html", "/d/x.css", "/e/y", "/f"]) await warm(s, p, p);
  assert.equal(s.store.purge({ kind: "url", path: "/d/index.html" }), 2);
  assert.equal(s.store.cache.peek("/d/"), undefined);
  assert.notEqual(s.store.cache.peek("/d/x.css"), undefined);
  assert.equal(s.store.purge({ kind: "prefix", prefix: "/d/" }), 1);
  assert.equal(s.store.purge({ kind: "prefix", prefix: "/d/" }), 0);
  assert.equal(s.store.purge({ kind: "all" }), 2);
  assert.equal(s.store.cache.stats().entries, 0);
  assert.equal(s.store.purgedEntries, 5);
  assert.equal(purgeMatcher({ kind: "url", path: "/d/" })("/d/index.html"), true);
  assert.equal(purgeMatcher({ kind: "url", path: "/d" })("/d/index.html"), false);
});

test("purge detaches a load in flight: a later request loads anew and the old load is not cached", async () => {
  const s = setup(0);
  const before = s.store.lookup("/a");
  assert.equal(s.store.purge({ kind: "url", path: "/a" }), 0);
  const after = s.store.lookup("/a");
  assert.equal(s.source.loads.length, 2, "the request after the purge did not join the old load");
  s.source.loads[1]!.answer({ kind: "doc", doc: doc("/a", "new") });
  assert.equal(await bodyOf(after), "new");
  // The old load ends last; it answers its own request but must not replace the new version.
  s.source.loads[0]!.answer({ kind: "doc", doc: doc("/a", "old") });
  assert.equal(await bodyOf(before), "old");
  assert.equal(await bodyOf(s.store.lookup("/a")), "new");
});

test("purge during a revalidation: the check's answer is not cached", async () => {
  const s = setup(10);
  await warm(s, "/a", "v1");
  s.advance(10);
  const during = s.store.lookup("/a");
  s.store.purge({ kind: "all" });
  s.source.checks[0]!.answer({ kind: "unchanged" });
  assert.equal(await bodyOf(during), "v1");
  assert.equal(s.store.cache.peek("/a"), undefined);
  const next = s.store.lookup("/a");
  assert.equal(s.source.loads.length, 2, "a full load after the purge");
  s.source.loads[1]!.answer({ kind: "doc", doc: doc("/a", "v2") });
  assert.equal(await bodyOf(next), "v2");
});
