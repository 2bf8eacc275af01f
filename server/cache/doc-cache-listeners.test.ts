// DocCache listeners and touch (both policies): every way an entry leaves is reported with its
// reason, hits are seen, and hits counted elsewhere rank and count like get().
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDocCache, CACHE_POLICIES, type RemovalReason } from "./doc-cache.js";
import { docCost, makeDoc, type Doc } from "../http/doc.js";

function doc(key: string, size: number, etag = '"e"'): Doc {
  return makeDoc({ key, size, mtimeMs: 0, etag, contentType: "text/plain", body: Buffer.alloc(size) });
}

const one = docCost(doc("/x", 1000));

for (const policy of CACHE_POLICIES) {
  test(`${policy}: removals are reported with their reason (evict, delete, replace, clear, resize)`, () => {
    const c = createDocCache(policy, one * 2);
    const seen: [string, RemovalReason][] = [];
    const stop = c.onRemove((key, reason) => seen.push([key, reason]));
    c.set("/a", doc("/a", 1000));
    c.set("/b", doc("/b", 1000));
    c.set("/c", doc("/c", 1000));
    assert.deepEqual(seen, [["/a", "evict"]]);
    const same = doc("/b", 1000, '"f"');
    c.set("/b", same);
    c.set("/b", same);
    assert.deepEqual(
      seen.at(-1),
      ["/b", "replace"],
      "a new document under a key replaces; the same one does not",
    );
    assert.equal(seen.length, 2);
    assert.equal(c.delete("/b"), true);
    assert.equal(c.delete("/b"), false);
    assert.deepEqual(seen.slice(2), [["/b", "delete"]]);
    c.set("/d", doc("/d", 1000));
    c.resize(one);
    assert.equal(c.stats().entries, 1);
    assert.equal(seen.length, 4);
    assert.equal(seen[3]?.[1], "evict", "a smaller bound evicts");
    c.clear();
    assert.equal(seen.length, 5);
    assert.equal(seen[4]?.[1], "clear");
    stop();
    c.set("/e", doc("/e", 1000));
    c.delete("/e");
    assert.equal(seen.length, 5, "no calls after the listener is removed");
  });

  test(`${policy}: a resize that keeps nothing reports every entry`, () => {
    const c = createDocCache(policy, one * 3);
    const seen: string[] = [];
    c.onRemove((key) => seen.push(key));
    for (const k of ["/a", "/b"]) c.set(k, doc(k, 1000));
    c.resize(10);
    assert.equal(c.stats().entries, 0);
    assert.deepEqual(seen.sort(), ["/a", "/b"]);
  });

  test(`${policy}: hits are seen; touch counts hits and bytes without a get, and ranks the entry`, () => {
    const c = createDocCache(policy, one * 2 + 100);
    const hits: string[] = [];
    c.onHit((key) => hits.push(key));
    c.set("/hot", doc("/hot", 1000));
    c.set("/cold", doc("/cold", 1000));
    assert.equal(c.get("/hot")?.key, "/hot");
    c.get("/none");
    assert.deepEqual(hits, ["/hot"]);
    // /cold was the last used; three hits elsewhere on /hot... then /cold once more here.
    assert.equal(c.touch("/cold", 1), true);
    assert.equal(c.touch("/hot", 3), true);
    assert.equal(c.touch("/none", 2), false);
    const s = c.stats();
    assert.equal(s.hits, 5);
    assert.equal(s.hitBytes, 5000);
    assert.equal(s.misses, 1);
    assert.deepEqual(hits, ["/hot"], "touch is not a hit of this cache's get()");
    c.set("/new", doc("/new", 1000));
    assert.notEqual(c.peek("/hot"), undefined, "the touched entry outranks the other");
    assert.equal(c.peek("/cold"), undefined);
  });
}
