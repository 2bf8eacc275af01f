import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { murmur3, UrlMapper } from "./mapper.js";

test("murmur3 matches the reference MurmurHash3_x86_32 vectors", () => {
  assert.equal(murmur3("", 0), 0);
  assert.equal(murmur3("", 1), 0x514e28b7);
  assert.equal(murmur3("", 0xffffffff), 0x81f16f39);
  assert.equal(murmur3(new Uint8Array([0, 0, 0, 0]), 0), 0x2362f9de);
  assert.equal(murmur3("aaaa", 0x9747b28c), 0x5a97808a);
  assert.equal(murmur3("abc", 0), 0xb3dd93fa);
  assert.equal(murmur3("Hello, world!", 0x9747b28c), 0x24884cba);
  assert.equal(murmur3("The quick brown fox jumps over the lazy dog", 0x9747b28c), 0x2fa826cd);
  // UTF-8: the string path and the byte path agree.
  assert.equal(murmur3("/café/ü.html"), murmur3(new TextEncoder().encode("/café/ü.html")));
});

const URLS = Array.from({ length: 100_000 }, (_, i) => `/site/dir${i % 97}/file${i}.html`);
const nodes = (n: number, from = 1) => Array.from({ length: n }, (_, i) => ({ id: `node${from + i}` }));

function loads(m: UrlMapper): number[] {
  const counts = new Array<number>(m.nodes.length).fill(0);
  for (const u of URLS) counts[m.lookupIndex(u)]!++;
  return counts;
}

test("balance: max/mean load over 100k URLs", () => {
  for (const n of [2, 4, 8, 12, 16]) {
    const counts = loads(new UrlMapper(nodes(n)));
    const mean = URLS.length / n;
    const ratio = Math.max(...counts) / mean;
    console.log(`mapper balance: ${n} nodes, 100k URLs, max/mean = ${ratio.toFixed(4)}`);
    // Binomial spread at 100k keys is ~1-2% per node; 5% leaves room without hiding skew.
    assert.ok(ratio < 1.05, `max/mean ${ratio} for ${n} nodes`);
  }
});

test("removing a node moves exactly that node's URLs", () => {
  const before = new UrlMapper(nodes(8));
  const after = new UrlMapper(nodes(8).filter((n) => n.id !== "node5"));
  let moved = 0;
  for (const u of URLS) {
    const a = before.lookup(u);
    const b = after.lookup(u);
    if (a !== b) {
      assert.equal(a, "node5", `${u} moved from ${a}`);
      moved++;
    }
  }
  console.log(`mapper remove: ${((100 * moved) / URLS.length).toFixed(2)}% of URLs moved (1/8 = 12.5%)`);
  assert.ok(Math.abs(moved / URLS.length - 1 / 8) < 0.01);
});

test("adding a node moves about 1/N of URLs, all to the new node", () => {
  const before = new UrlMapper(nodes(8));
  const after = new UrlMapper(nodes(9));
  let moved = 0;
  for (const u of URLS) {
    const b = after.lookup(u);
    if (before.lookup(u) !== b) {
      assert.equal(b, "node9");
      moved++;
    }
  }
  console.log(`mapper add: ${((100 * moved) / URLS.length).toFixed(2)}% of URLs moved (1/9 = 11.1%)`);
  assert.ok(Math.abs(moved / URLS.length - 1 / 9) < 0.01);
});

test("node order does not matter; weights set the shares", () => {
  const a = new UrlMapper(nodes(5));
  const b = new UrlMapper(nodes(5).reverse());
  for (const u of URLS.slice(0, 5000)) assert.equal(a.lookup(u), b.lookup(u));
  const w = new UrlMapper([
    { id: "a", weight: 1 },
    { id: "b", weight: 2 },
    { id: "c", weight: 1 },
  ]);
  const counts = loads(w);
  const share = counts[1]! / URLS.length;
  assert.ok(Math.abs(share - 0.5) < 0.01, `weight-2 node share ${share}`);
  assert.equal(new UrlMapper([]).lookup("/x"), undefined);
  assert.throws(() => new UrlMapper([{ id: "a" }, { id: "a" }]), /duplicate/);
  assert.throws(() => new UrlMapper([{ id: "a", weight: 0 }]), /weight/);
});

test("deterministic across processes (no process-seeded hashing)", () => {
  const sample = URLS.slice(0, 2000);
  const here = new UrlMapper(nodes(7));
  const mod = new URL("./mapper.js", import.meta.url).href;
  const script =
    `import { UrlMapper } from ${JSON.stringify(mod)};` +
    `const m = new UrlMapper(Array.from({ length: 7 }, (_, i) => ({ id: "node" + (i + 1) })));` +
    `const urls = JSON.parse(process.argv[1]);` +
    `process.stdout.write(JSON.stringify(urls.map((u) => m.lookup(u))));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script, JSON.stringify(sample)], {
    encoding: "utf8",
  });
  assert.deepEqual(
    JSON.parse(out),
    sample.map((u) => here.lookup(u)),
  );
});

test("replace() in place: add node4 to 3 nodes, then take node2 out: each step moves only its own share", () => {
  const mapper = new UrlMapper(nodes(3));
  const held = mapper; // a mode keeps this one object; replace() must be seen through it
  const snapshot = () => URLS.map((u) => held.lookup(u));
  const three = snapshot();
  mapper.replace(nodes(4));
  const four = snapshot();
  let added = 0;
  for (let i = 0; i < URLS.length; i++) {
    if (three[i] !== four[i]) {
      assert.equal(four[i], "node4", `${URLS[i]} moved between old nodes`);
      added++;
    }
  }
  mapper.replace(nodes(4).filter((n) => n.id !== "node2"));
  const drained = snapshot();
  let removed = 0;
  for (let i = 0; i < URLS.length; i++) {
    if (four[i] !== drained[i]) {
      assert.equal(four[i], "node2", `${URLS[i]} moved off ${four[i]}, not off node2`);
      removed++;
    }
    assert.notEqual(drained[i], "node2");
  }
  console.log(
    `mapper replace: add node4 moved ${((100 * added) / URLS.length).toFixed(2)}% (1/4 = 25%), ` +
      `removing node2 moved ${((100 * removed) / URLS.length).toFixed(2)}% (its share, 1/4 = 25%)`,
  );
  assert.ok(Math.abs(added / URLS.length - 1 / 4) < 0.01);
  assert.ok(Math.abs(removed / URLS.length - 1 / 4) < 0.01);
  // Same membership, same answers as a mapper built from scratch.
  const fresh = new UrlMapper(nodes(4).filter((n) => n.id !== "node2"));
  for (const u of URLS.slice(0, 2000)) assert.equal(held.lookup(u), fresh.lookup(u));
});
