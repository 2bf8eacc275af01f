// The node's shared document cache: one CacheOwner, worker OwnerClients over real MessageChannels
// in one thread. Loads once per node, bodies shared (SharedArrayBuffer), drops and purges reach
// every L1 in order, hit reports rank the owner's entries, TTL carried, large files loaded
// locally, a vanished owner fails the waiting loads.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MessageChannel, type MessagePort } from "node:worker_threads";
import { DocStore, type PurgeTarget } from "./doc-store.js";
import { CacheOwner, sharedBodies } from "./shared-cache.js";
import { OwnerClient, type OwnerClientOptions } from "./owner-client.js";
import { MAX_PENDING_LOADS, MAX_REPORT_KEYS, parseToOwner, parseToWorker, toWire } from "./shared-wire.js";
import { createDocCache, type CachePolicy } from "../cache/doc-cache.js";
import { docCost, makeDoc, type Doc } from "../http/doc.js";
import type { DocSource, Lookup } from "../source/source.js";

interface Entry {
  text: string;
  etag: string;
  large?: boolean;
}

/** Documents in memory; loads can be held until the test releases them. */
class MemorySource implements DocSource {
  readonly describe = "memory";
  readonly files = new Map<string, Entry>();
  readonly redirects = new Map<string, string>();
  loads: string[] = [];
  checks = 0;
  hold = false;
  readonly held: (() => void)[] = [];

  put(path: string, text: string, etag = `"${text}"`, large = false): void {
    this.files.set(path, { text, etag, large });
  }

  async load(path: string): Promise<Lookup> {
    this.loads.push(path);
    // What the file is when the load started (a held load answers with the old version).
    const e = this.files.get(path);
    const to = this.redirects.get(path);
    if (to !== undefined) return { kind: "redirect", path: to };
    if (this.hold) await new Promise<void>((release) => this.held.push(release));
    if (e === undefined) return { kind: "error", status: 404, reason: "none" };
    return { kind: "doc", doc: docOf(path, e) };
  }

  async revalidate(path: string, doc: Doc): Promise<Lookup | { kind: "unchanged" }> {
    this.checks++;
    return this.files.get(path)?.etag === doc.etag ? { kind: "unchanged" } : this.load(path);
  }

  release(): void {
    this.hold = false;
    for (const r of this.held.splice(0)) r();
  }

  stats() {
    return { loads: this.loads.length };
  }
  async close() {}
}

function docOf(path: string, e: Entry): Doc {
  const type = path.endsWith(".js") ? "text/javascript" : "text/plain";
  const fields = { key: path, size: e.text.length, mtimeMs: 0, etag: e.etag, contentType: type };
  if (e.large !== true) return makeDoc({ ...fields, body: Buffer.from(e.text) });
  async function* read(start: number, end: number) {
    yield Buffer.from(e.text.slice(start, end + 1));
  }
  return makeDoc({ ...fields, body: null, read });
}

interface Worker {
  store: DocStore;
  client: OwnerClient;
  port: MessagePort;
  ownerPort: MessagePort;
}

interface NodeOptions {
  policy?: CachePolicy;
  bytes?: number;
  ttlMs?: number;
  workers?: number;
  precompressed?: ("br" | "gzip")[];
  client?: OwnerClientOptions;
}

/** A node: the owner's store on sharedBodies(source), and workers whose clients fall back to `local`. */
function setup(o: NodeOptions = {}) {
  const clock = { now: 1000 };
  const now = () => clock.now;
  const source = new MemorySource();
  const local = new MemorySource();
  const bytes = o.bytes ?? 1 << 20;
  const ttlMs = o.ttlMs ?? 0;
  const ownerStore = new DocStore(createDocCache(o.policy ?? "lru", bytes), sharedBodies(source), {
    ttlMs,
    now,
    precompressed: o.precompressed ?? [],
  });
  const owner = new CacheOwner(ownerStore);
  const workers: Worker[] = [];
  for (let i = 0; i < (o.workers ?? 2); i++) {
    const { port1, port2 } = new MessageChannel();
    owner.attach(port1);
    const client = new OwnerClient(port2, local, o.client);
    const store = new DocStore(createDocCache("lru", bytes), client, { ttlMs, now });
    client.bind(store);
    workers.push({ store, client, port: port2, ownerPort: port1 });
  }
  // Timers and ports are unref'd (a node's servers keep it alive): the test keeps itself alive.
  const keepAlive = setInterval(() => undefined, 60_000);
  const close = async () => {
    for (const w of workers) await w.client.close();
    owner.close();
    clearInterval(keepAlive);
  };
  return { clock, source, local, ownerStore, owner, workers, close };
}

/** The next message of `op` on `port`, after the port's own listener (registered first) ran. */
function nextMessage(port: MessagePort, op: string): Promise<unknown> {
  return new Promise((resolve) => {
    const on = (m: { op?: string }) => {
      if (m?.op !== op) return;
      port.off("message", on);
      resolve(m);
    };
    port.on("message", on);
  });
}

async function docFrom(r: Lookup | Promise<Lookup>): Promise<Doc> {
  const l = await r;
  assert.equal(l.kind, "doc", JSON.stringify(l));
  return (l as { doc: Doc }).doc;
}

function w(s: ReturnType<typeof setup>, i: number): Worker {
  const worker = s.workers[i];
  assert.ok(worker);
  return worker;
}

test("two workers: one load from the source; both bodies share the owner's SharedArrayBuffer", async () => {
  const s = setup();
  s.source.put("/a", "hello");
  s.source.hold = true;
  const pa = w(s, 0).store.lookup("/a");
  const pb = w(s, 1).store.lookup("/a");
  await Promise.all(s.workers.map((worker) => nextMessage(worker.ownerPort, "load")));
  s.source.release();
  const [a, b] = [await docFrom(pa), await docFrom(pb)];
  assert.deepEqual(s.source.loads, ["/a"], "loaded once per node");
  assert.equal(s.ownerStore.joined, 1, "the second worker joined the owner's load");
  const owned = s.ownerStore.cache.peek("/a");
  assert.ok(owned?.body && a.body && b.body);
  for (const body of [owned.body, a.body, b.body]) assert.ok(body.buffer instanceof SharedArrayBuffer);
  owned.body[0] = "j".charCodeAt(0);
  assert.equal(a.body.toString(), "jello", "a byte the owner writes is seen by worker 0");
  assert.equal(b.body.toString(), "jello", "and by worker 1");
  assert.equal(w(s, 0).store.cache.peek("/a"), a, "held in each L1");
  assert.equal(w(s, 1).store.cache.peek("/a"), b);
  assert.equal(await docFrom(w(s, 0).store.lookup("/a")), a, "an L1 hit: no owner round trip");
  assert.equal(s.owner.stats().loads, 2);
  await s.close();
});

test("an answer says whether the owner had the document in memory (a peer's hit) or loaded it", async () => {
  const s = setup();
  s.source.put("/a", "hello");
  const first = await w(s, 0).store.lookup("/a");
  assert.equal(first.kind === "doc" && first.cached, false, "worker 0's miss made the owner load it");
  const second = await w(s, 1).store.lookup("/a");
  assert.equal(second.kind === "doc" && second.cached, true, "worker 1 got it from the owner's cache");
  assert.deepEqual(s.source.loads, ["/a"]);
  await s.close();
});

test("precompressed variants and every field survive the round trip", async () => {
  const s = setup({ precompressed: ["br", "gzip"] });
  s.source.put("/app.js", "console.log(1)");
  s.source.put("/app.js.br", "BR");
  s.source.put("/app.js.gz", "GZIP");
  const got = await docFrom(w(s, 0).store.lookup("/app.js"));
  const owned = s.ownerStore.cache.peek("/app.js");
  assert.ok(owned);
  assert.deepStrictEqual(got, owned, "key, size, mtime, etag, type, body, encoding, variants, head");
  assert.deepEqual(got.variants?.codings, ["br", "gzip"]);
  assert.ok(got.variants?.br?.body?.buffer instanceof SharedArrayBuffer);
  assert.ok(got.variants?.gzip?.body?.buffer instanceof SharedArrayBuffer);
  assert.equal(s.source.loads.length, 3, "base and two siblings, once");
  assert.deepEqual(s.local.loads, [], "the worker looked for no siblings itself");
  await s.close();
});

test("an owner eviction drops the document from every L1 (before the answer that caused it)", async () => {
  const cost = docCost(
    makeDoc({
      key: "/a",
      size: 4,
      mtimeMs: 0,
      etag: '"aaaa"',
      contentType: "text/plain",
      body: Buffer.alloc(4),
    }),
  );
  const s = setup({ bytes: cost * 2 });
  for (const p of ["/a", "/b", "/c"]) s.source.put(p, p.slice(1).repeat(4));
  await docFrom(w(s, 0).store.lookup("/a"));
  await docFrom(w(s, 1).store.lookup("/a"));
  await docFrom(w(s, 0).store.lookup("/b"));
  const dropAt1 = nextMessage(w(s, 1).port, "drop");
  await docFrom(w(s, 0).store.lookup("/c"));
  assert.equal(s.ownerStore.cache.peek("/a"), undefined, "the owner evicted its least recent");
  assert.equal(w(s, 0).client.stats().droppedEntries, 1, "the drop reached worker 0 before its answer");
  assert.equal(w(s, 0).store.cache.peek("/a"), undefined);
  assert.notEqual(w(s, 0).store.cache.peek("/c"), undefined);
  await dropAt1;
  assert.equal(w(s, 1).store.cache.peek("/a"), undefined, "and worker 1");
  assert.equal(w(s, 1).client.stats().droppedEntries, 1);
  await s.close();
});

test("an answer followed by an eviction of the same key leaves the worker without it", async () => {
  const s = setup();
  s.source.put("/a", "v1");
  s.source.hold = true;
  const pending = w(s, 0).store.lookup("/a");
  await nextMessage(w(s, 0).ownerPort, "load");
  const atOwner = s.ownerStore.lookup("/a");
  s.source.release();
  await atOwner;
  // The owner has posted its answer (held: true); the worker has not read it yet.
  assert.notEqual(s.ownerStore.cache.peek("/a"), undefined);
  s.ownerStore.cache.delete("/a");
  const drop = nextMessage(w(s, 0).port, "drop");
  assert.equal((await docFrom(pending)).body?.toString(), "v1", "the request is served");
  await drop;
  assert.equal(w(s, 0).store.cache.peek("/a"), undefined, "the later drop removed the L1 copy");
  await s.close();
});

test("hit reports reach the owner's LRU order and its stats: the hot document survives", async () => {
  const cost = docCost(
    makeDoc({
      key: "/hot",
      size: 3,
      mtimeMs: 0,
      etag: '"hot"',
      contentType: "text/plain",
      body: Buffer.alloc(3),
    }),
  );
  const s = setup({ bytes: cost * 2 + 10, workers: 1 });
  for (const p of ["/hot", "/old", "/new"]) s.source.put(p, p.slice(1));
  const worker = w(s, 0);
  await docFrom(worker.store.lookup("/hot"));
  await docFrom(worker.store.lookup("/old"));
  const report = nextMessage(worker.ownerPort, "hits");
  for (let i = 0; i < 3; i++) await docFrom(worker.store.lookup("/hot"));
  await report;
  const st = s.ownerStore.cache.stats();
  assert.equal(st.hits, 3, "the L1 hits are the owner's hits");
  assert.equal(st.hitBytes, 9);
  assert.equal(st.misses, 2);
  await docFrom(worker.store.lookup("/new"));
  assert.notEqual(s.ownerStore.cache.peek("/hot"), undefined, "reported hits made /hot the most recent");
  assert.equal(s.ownerStore.cache.peek("/old"), undefined);
  assert.equal(s.owner.stats().reportedHits, 3);
  await s.close();
});

test("hit reports reach the owner's LFU frequencies; a full report is posted at once", async () => {
  const cost = docCost(
    makeDoc({
      key: "/hot",
      size: 3,
      mtimeMs: 0,
      etag: '"hot"',
      contentType: "text/plain",
      body: Buffer.alloc(3),
    }),
  );
  const s = setup({
    policy: "lfu",
    bytes: cost * 2 + 10,
    workers: 1,
    client: { reportKeys: 2, reportMs: 60_000 },
  });
  for (const p of ["/hot", "/old", "/new"]) s.source.put(p, p.slice(1));
  const worker = w(s, 0);
  await docFrom(worker.store.lookup("/hot"));
  await docFrom(worker.store.lookup("/old"));
  const report = nextMessage(worker.ownerPort, "hits");
  for (let i = 0; i < 4; i++) worker.store.lookup("/hot");
  worker.store.lookup("/old");
  assert.deepEqual(
    await report,
    { op: "hits", keys: ["/hot", "/old"], counts: [4, 1] },
    "two keys: posted without the timer",
  );
  await docFrom(worker.store.lookup("/new"));
  assert.notEqual(s.ownerStore.cache.peek("/hot"), undefined, "frequency 5 outranks 2");
  assert.equal(s.ownerStore.cache.peek("/old"), undefined);
  await s.close();
});

test("purge by URL, prefix and all reaches every worker; the owner's count is returned", async () => {
  const s = setup();
  for (const p of ["/d/x", "/d/y", "/e"]) s.source.put(p, p);
  for (const worker of s.workers)
    for (const p of ["/d/x", "/d/y", "/e"]) await docFrom(worker.store.lookup(p));
  const purge = async (target: PurgeTarget, gone: string[]) => {
    const seen = s.workers.map((worker) => nextMessage(worker.port, "purge"));
    const n = s.owner.purge(target);
    await Promise.all(seen);
    for (const worker of s.workers)
      for (const p of gone) assert.equal(worker.store.cache.peek(p), undefined, p);
    return n;
  };
  assert.equal(await purge({ kind: "url", path: "/d/x" }, ["/d/x"]), 1);
  assert.notEqual(w(s, 1).store.cache.peek("/d/y"), undefined);
  assert.equal(await purge({ kind: "prefix", prefix: "/d/" }, ["/d/y"]), 1);
  assert.notEqual(w(s, 0).store.cache.peek("/e"), undefined);
  assert.equal(await purge({ kind: "all" }, ["/e"]), 1);
  assert.equal(w(s, 0).store.purges, 3);
  await s.close();
});

test("a load in flight during a purge does not put the old document back, at the owner or a worker", async () => {
  const s = setup();
  s.source.put("/a", "old");
  s.source.hold = true;
  const before = w(s, 0).store.lookup("/a");
  await nextMessage(w(s, 0).ownerPort, "load");
  const purged = nextMessage(w(s, 0).port, "purge");
  s.source.put("/a", "new");
  s.owner.purge({ kind: "url", path: "/a" });
  await purged;
  s.source.release();
  assert.equal((await docFrom(before)).body?.toString(), "old", "the waiting request is served");
  assert.equal(s.ownerStore.cache.peek("/a"), undefined);
  assert.equal(w(s, 0).store.cache.peek("/a"), undefined);
  assert.equal((await docFrom(w(s, 0).store.lookup("/a"))).body?.toString(), "new");
  assert.deepEqual(s.source.loads, ["/a", "/a"]);
  await s.close();
});

test("an answer the owner no longer holds (purged meanwhile) is served but not cached in L1", async () => {
  const s = setup();
  s.source.put("/a", "old");
  s.source.hold = true;
  const before = w(s, 0).store.lookup("/a");
  await nextMessage(w(s, 0).ownerPort, "load");
  // The owner's store alone (not the workers): its load is detached, so its answer is not held.
  s.ownerStore.purge({ kind: "all" });
  s.source.release();
  assert.equal((await docFrom(before)).body?.toString(), "old");
  assert.equal(w(s, 0).store.cache.peek("/a"), undefined);
  assert.equal(w(s, 0).client.stats().notHeld, 1);
  await s.close();
});

test("large documents (no body) are loaded from the worker's own source, with siblings, then directly", async () => {
  const s = setup({ precompressed: ["gzip"] });
  s.source.put("/big.js", "x".repeat(100), '"big"', true);
  s.local.put("/big.js", "x".repeat(100), '"big"', true);
  s.local.put("/big.js.gz", "GZ");
  const got = await docFrom(w(s, 0).store.lookup("/big.js"));
  assert.equal(got.body, null);
  assert.ok(got.read, "reads from the worker's own source");
  assert.equal(got.variants?.gzip?.body?.toString(), "GZ", "siblings as the owner would attach them");
  assert.equal(w(s, 0).store.cache.peek("/big.js"), undefined);
  assert.equal(s.ownerStore.cache.peek("/big.js"), undefined);
  await docFrom(w(s, 0).store.lookup("/big.js"));
  assert.equal(s.owner.stats().loads, 1, "the second request did not ask the owner");
  assert.deepEqual(s.local.loads, ["/big.js", "/big.js.gz", "/big.js", "/big.js.gz"]);
  // Small again: served from the local load, then cached through the owner.
  s.local.put("/big.js", "small");
  s.source.put("/big.js", "small");
  assert.equal((await docFrom(w(s, 0).store.lookup("/big.js"))).body?.toString(), "small");
  assert.equal(w(s, 0).store.cache.peek("/big.js"), undefined);
  await docFrom(w(s, 0).store.lookup("/big.js"));
  assert.notEqual(w(s, 0).store.cache.peek("/big.js"), undefined);
  await s.close();
});

test("redirects and errors pass through, uncached", async () => {
  const s = setup();
  s.source.redirects.set("/dir", "/dir/");
  assert.deepEqual(await w(s, 0).store.lookup("/dir"), { kind: "redirect", path: "/dir/" });
  assert.deepEqual(await w(s, 0).store.lookup("/none"), { kind: "error", status: 404, reason: "none" });
  assert.equal(w(s, 0).store.cache.stats().entries, 0);
  await s.close();
});

test("the owner's port closes: waiting loads end as 500 errors, and so do later ones", async () => {
  const s = setup();
  s.source.put("/a", "a");
  s.source.hold = true;
  const waiting = w(s, 0).store.lookup("/a");
  await nextMessage(w(s, 0).ownerPort, "load");
  const detached = new Promise((resolve) => w(s, 0).ownerPort.once("close", resolve));
  w(s, 0).ownerPort.close();
  const r = await waiting;
  assert.equal(r.kind, "error");
  assert.equal((r as { status: number }).status, 500);
  const later = await w(s, 0).store.lookup("/b");
  assert.equal(later.kind === "error" && later.status, 500);
  await detached;
  assert.equal(s.owner.stats().workers, 1, "the owner detached the closed port");
  s.source.release();
  await s.close();
});

test("a worker's waiting loads are bounded; a closing worker detaches and reports its last hits", async () => {
  const s = setup({ client: { maxPending: 2, reportMs: 60_000 } });
  s.source.put("/a", "a");
  await docFrom(w(s, 0).store.lookup("/a"));
  s.source.hold = true;
  const loads = ["/b", "/c", "/d"].map((p) => w(s, 0).store.lookup(p));
  const third = await loads[2];
  assert.equal(third?.kind === "error" && third.reason, "cache owner: too many loads waiting");
  w(s, 0).store.lookup("/a");
  const report = nextMessage(w(s, 0).ownerPort, "hits");
  const detached = new Promise((resolve) => w(s, 0).ownerPort.once("close", resolve));
  await w(s, 0).client.close();
  assert.deepEqual(await report, { op: "hits", keys: ["/a"], counts: [1] });
  await detached;
  assert.equal(s.owner.stats().workers, 1);
  s.source.release();
  await s.close();
});

test("TTL: the L1 copy carries the owner's validation time; one check per node", async () => {
  const s = setup({ ttlMs: 1000 });
  s.source.put("/a", "v1");
  await docFrom(w(s, 0).store.lookup("/a"));
  s.clock.now += 600;
  const b = await docFrom(w(s, 1).store.lookup("/a"));
  assert.equal(w(s, 1).store.validatedAtOf(b), 1000, "the owner's time, not the time of the answer");
  s.clock.now += 400;
  const again = await docFrom(w(s, 1).store.lookup("/a"));
  assert.equal(again, b, "unchanged: the L1 keeps its copy");
  assert.equal(s.source.checks, 1, "the owner checked with the source");
  assert.equal(w(s, 1).store.validatedAtOf(b), 2000);
  assert.equal(w(s, 1).store.revalidation.unchanged, 1);
  await docFrom(w(s, 0).store.lookup("/a"));
  assert.equal(s.source.checks, 1, "worker 0's expired copy was confirmed by the owner's fresh one");
  assert.equal(w(s, 0).store.revalidation.unchanged, 1);
  // A change at the source: the owner replaces its copy; the L1 copies are dropped and reloaded.
  s.source.put("/a", "v2");
  s.clock.now += 1000;
  const drop = nextMessage(w(s, 1).port, "drop");
  assert.equal((await docFrom(w(s, 0).store.lookup("/a"))).body?.toString(), "v2");
  await drop;
  assert.equal(w(s, 1).store.cache.peek("/a"), undefined);
  assert.equal((await docFrom(w(s, 1).store.lookup("/a"))).body?.toString(), "v2");
  await s.close();
});

test("hostile messages are ignored or refused: shapes, sizes, counts", () => {
  assert.equal(parseToOwner({ op: "load", id: -1, path: "/a" }), null);
  assert.equal(parseToOwner({ op: "load", id: 1, path: "/" + "a".repeat(20_000) }), null);
  const keys = Array.from({ length: MAX_REPORT_KEYS + 1 }, (_, i) => `/k${i}`);
  assert.equal(parseToOwner({ op: "hits", keys, counts: keys.map(() => 1) }), null);
  assert.equal(parseToOwner({ op: "hits", keys: ["/a"], counts: [0] }), null);
  assert.equal(parseToOwner({ op: "hits", keys: ["/a"], counts: [1, 2] }), null);
  assert.deepEqual(parseToOwner({ op: "hits", keys: ["/a"], counts: [2] }), {
    op: "hits",
    keys: ["/a"],
    counts: [2],
  });
  const good = toWire(
    makeDoc({ key: "/a", size: 1, mtimeMs: 0, etag: '"a"', contentType: "t/p", body: Buffer.from("a") }),
  );
  const answer = (doc: unknown) => ({
    op: "answer",
    id: 1,
    answer: { kind: "doc", doc, held: true, cached: true, validatedAt: 1 },
  });
  assert.notEqual(parseToWorker(answer(good)), null);
  const noCached = { op: "answer", id: 1, answer: { kind: "doc", doc: good, held: true, validatedAt: 1 } };
  assert.equal(parseToWorker(noCached), null, "an answer says whether it came from the cache");
  assert.equal(parseToWorker(answer({ ...good, size: 2 })), null, "size must match the body");
  assert.equal(parseToWorker(answer({ ...good, encoding: "zstd" })), null);
  assert.equal(parseToWorker(answer({ ...good, variants: { codings: ["br"] } })), null);
  assert.equal(
    parseToWorker({ op: "answer", id: 1, answer: { kind: "error", status: 418, reason: "" } }),
    null,
  );
  assert.equal(parseToWorker({ op: "purge", target: { kind: "prefix" } }), null);
});

test("the owner answers a worker with too many loads waiting with an error, not a queue", async () => {
  const s = setup({ workers: 0 });
  s.source.hold = true;
  const { port1, port2 } = new MessageChannel();
  s.owner.attach(port1);
  const refused = new Promise((resolve) =>
    port2.on("message", (m: { id: number; answer: Lookup }) => {
      if (m.answer.kind === "error") resolve(m);
    }),
  );
  for (let id = 0; id <= MAX_PENDING_LOADS; id++) port2.postMessage({ op: "load", id, path: `/p${id}` });
  const m = (await refused) as { id: number; answer: Lookup };
  assert.equal(m.id, MAX_PENDING_LOADS);
  assert.equal(s.owner.stats().busy, 1);
  port2.close();
  s.source.release();
  await s.close();
});
