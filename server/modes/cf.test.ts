// Cooperative caching (--mode cf-lru / cf-lfu) on loopback: several in-process nodes on the
// kernel stack with their peer endpoints on 127.x.y.N, one shared origin, and fake peers that
// fail in chosen ways (error, stall, malformed answer, cut mid-body).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, request, type Server } from "node:http";
import net from "node:net";
import { Client } from "undici";
import { makeRoot, removeRoot, testNode } from "../node/testing.js";
import { startOrigin, type OriginServer } from "../../origin/server.js";
import { createLogger } from "../log.js";
import { UrlMapper } from "../membership/mapper.js";
import { CLUSTER_DEFAULTS, type ClusterMember } from "../membership/config.js";
import type { NodeConfig, RunningNode } from "../node/node.js";
import { docCost, makeDoc } from "../http/doc.js";
import type { CfStats } from "./cf.js";
import { ClusterSecret, type ClusterTrust } from "../../sc/auth/secret.js";
import { PeerAuth } from "../peer/auth.js";

// Addresses and port of this process's own (127/8 is loopback as a whole on Linux).
const NET = `127.${(process.pid >> 8) & 0xff || 1}.${process.pid & 0xff}`;
const PEER_PORT = 30_000 + (process.pid % 20_000);
const member = (i: number): ClusterMember => ({ id: `n${i}`, addr: `${NET}.${i}`, weight: 1 });
const secret = ClusterSecret.parse("c".repeat(40)) as ClusterSecret;
const trust: ClusterTrust = { kind: "secret", secret };

/** Deterministic content for a document, so every byte can be checked. */
function content(name: string, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = 0;
  for (let i = 0; i < name.length; i++) x = (x * 31 + name.charCodeAt(i)) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const homeOf = (members: ClusterMember[], path: string) => new UrlMapper(members).lookup(path)!;

/** `count` names "/prefix-N.bin" whose home is `home` among `members`. */
function namesHomedAt(members: ClusterMember[], home: string, prefix: string, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const p = `/${prefix}-${i}.bin`;
    if (homeOf(members, p) === home) out.push(p);
  }
  return out;
}

let root: string;
let origin: OriginServer;
let originUrl: string;
const files = new Map<string, Buffer>();

// The shared site: a mix of small (gathered whole) and large (streamed) documents, plus the
// names the fault tests need, homed at the fake peer or the dead member.
const three = [1, 2, 3].map(member);
const faultMembers = [member(11), member(12), member(13)];
const site: Record<string, number> = {};
for (let i = 0; i < 36; i++) site[`/doc-${i}.bin`] = i % 3 === 0 ? 150_000 + i * 7_000 : 1_000 + i * 1_500;
site["/big.bin"] = 2_500_000;
const fault = {
  status: namesHomedAt(faultMembers, "n12", "f500", 1)[0]!,
  stall: namesHomedAt(faultMembers, "n12", "stall", 1)[0]!,
  garbage: namesHomedAt(faultMembers, "n12", "garbage", 1)[0]!,
  cutBig: namesHomedAt(faultMembers, "n12", "cutbig", 1)[0]!,
  cutSmall: namesHomedAt(faultMembers, "n12", "cutsmall", 1)[0]!,
  cutDiffers: namesHomedAt(faultMembers, "n12", "cutdiffers", 1)[0]!,
  gated: namesHomedAt(faultMembers, "n12", "gated", 1)[0]!,
  dead: namesHomedAt(faultMembers, "n13", "dead", 2),
};
for (const p of [fault.status, fault.stall, fault.garbage, fault.cutSmall]) site[p] = 20_000;
for (const p of [fault.cutBig, fault.cutDiffers, fault.gated]) site[p] = 1_000_000;
for (const p of fault.dead) site[p] = 300_000;

before(async () => {
  const tree: Record<string, Buffer | string> = { "dir/index.html": "<p>index</p>" };
  for (const [p, size] of Object.entries(site)) {
    files.set(p, content(p, size));
    tree[p.slice(1)] = files.get(p)!;
  }
  root = await makeRoot(tree);
  origin = await startOrigin({ root, host: "127.0.0.1", port: 0, logger: createLogger("silent") });
  originUrl = `http://127.0.0.1:${origin.address.port}`;
});

after(async () => {
  await origin.close();
  await removeRoot(root);
});

function cfNode(
  mode: "cf-lru" | "cf-lfu",
  self: ClusterMember,
  members: ClusterMember[],
  over: Partial<NodeConfig> = {},
): Promise<RunningNode> {
  return testNode({
    nodeId: self.id,
    mode,
    origin: originUrl,
    cluster: { self: self.id, members, ...CLUSTER_DEFAULTS, peerPort: PEER_PORT },
    trust,
    ...over,
  });
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

async function get(
  c: Client,
  path: string,
  headers: Record<string, string> = {},
  method: "GET" | "HEAD" = "GET",
): Promise<Answer> {
  const r = await c.request({ path, method, headers });
  return { status: r.statusCode, headers: r.headers, body: Buffer.from(await r.body.arrayBuffer()) };
}

/** The mode's /stats block. */
function cf(node: RunningNode): CfStats {
  const s = node.snapshot();
  return (s["cf-lru"] ?? s["cf-lfu"]) as CfStats;
}

function metric(text: string, name: string, labels = ""): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  assert.ok(line, `metric ${name} ${labels} missing`);
  return Number(line.split(" ").pop());
}

async function withNodes<T>(
  mode: "cf-lru" | "cf-lfu",
  over: Partial<NodeConfig>,
  fn: (nodes: RunningNode[], clients: Client[]) => Promise<T>,
) {
  const nodes: RunningNode[] = [];
  const clients: Client[] = [];
  try {
    for (const m of three) nodes.push(await cfNode(mode, m, three, over));
    for (const n of nodes) clients.push(new Client(`http://127.0.0.1:${n.address.port}`, { pipelining: 1 }));
    return await fn(nodes, clients);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(nodes.map((n) => n.shutdown(100)));
  }
}

test("three cf-lru nodes: every document from every node byte-exact, each fetched from the origin once, by its home", async () => {
  const docs = Object.keys(site).filter((p) => p.startsWith("/doc-") || p === "/big.bin");
  await withNodes("cf-lru", {}, async (nodes, clients) => {
    assert.equal(nodes[0]!.cache.policy, "lru");
    const before = origin.requests;
    for (let round = 1; round <= 2; round++) {
      for (let k = 0; k < 3; k++) {
        for (const p of docs) {
          const a = await get(clients[k]!, p);
          assert.equal(a.status, 200, `${p} from n${k + 1}`);
          assert.ok(a.body.equals(files.get(p)!), `${p} bytes from n${k + 1}, round ${round}`);
        }
      }
      // Each document was loaded from the origin once, by its home node, and is held there.
      assert.equal(origin.requests - before, docs.length, `origin requests after round ${round}`);
    }
    for (let k = 0; k < 3; k++) {
      const id = three[k]!.id;
      const foreign = docs.filter((p) => homeOf(three, p) !== id).length;
      const s = cf(nodes[k]!);
      assert.equal(s.requests.home, 2 * (docs.length - foreign));
      assert.equal(s.requests.forwarded, 2 * foreign);
      assert.equal(s.peerFetches, 2 * foreign, `n${k + 1} peer fetches`);
      // Node 1 went first: its first round found the other homes empty.
      assert.equal(s.peerHits, k === 0 ? foreign : 2 * foreign, `n${k + 1} peer hits`);
      const bytes = docs.filter((p) => homeOf(three, p) !== id).reduce((n, p) => n + site[p]!, 0);
      assert.equal(s.peerBytes, 2 * bytes);
      assert.equal(s.originFetches.fallback, 0);
      // Documents live only at their home: nothing forwarded was kept here.
      for (const p of docs) assert.equal(nodes[k]!.cache.peek(p) !== undefined, homeOf(three, p) === id, p);
      const text = await nodes[k]!.registry.metrics();
      assert.equal(metric(text, "sc_cf_peer_fetches_total"), 2 * foreign);
      assert.equal(metric(text, "sc_cf_peer_hits_total"), s.peerHits);
      assert.equal(metric(text, "sc_cf_peer_bytes_total"), 2 * bytes);
      assert.equal(metric(text, "sc_cf_origin_fetches_total", 'reason="fallback"'), 0);
      assert.equal(
        metric(text, "sc_cf_origin_fetches_total", 'reason="home_miss"'),
        s.originFetches.homeMiss,
      );
    }
    const homeMisses = nodes.reduce((n, node) => n + cf(node).originFetches.homeMiss, 0);
    assert.equal(homeMisses, docs.filter((p) => homeOf(three, p) !== "n1").length);
  });
});

test("cf-lfu: the cache is LFU, and peer fetches count as uses at the home", async () => {
  await withNodes("cf-lfu", {}, async (nodes, clients) => {
    for (const n of nodes) assert.equal(n.cache.policy, "lfu");
    const p = Object.keys(site).find((x) => x.startsWith("/doc-") && homeOf(three, x) === "n2")!;
    const homeHits = nodes[1]!.cache.stats().hits;
    for (let i = 0; i < 5; i++) assert.ok((await get(clients[0]!, p)).body.equals(files.get(p)!));
    // The first fetch loaded it at the home; the other four were hits there.
    assert.equal(nodes[1]!.cache.stats().hits - homeHits, 4);
    assert.equal(cf(nodes[0]!).peerHits, 4);
    assert.equal(cf(nodes[1]!).served.fromCache, 4);
    assert.equal(cf(nodes[1]!).served.fromOrigin, 1);
  });
});

test("a document set larger than one node's cache stays in the cluster's memory", async () => {
  // Each node's cache holds about a third of the set; documents are picked so every home's
  // share fits in its cache.
  const cacheBytes = 1024 * 1024;
  const budget = new Map(three.map((m) => [m.id, cacheBytes * 0.9]));
  const docs: string[] = [];
  for (const p of Object.keys(site).filter((x) => x.startsWith("/doc-"))) {
    const h = homeOf(three, p);
    const cost = docCost(
      makeDoc({ key: p, size: site[p]!, mtimeMs: 0, etag: '"x"', contentType: "x", body: files.get(p)! }),
    );
    if (budget.get(h)! >= cost) {
      budget.set(h, budget.get(h)! - cost);
      docs.push(p);
    }
  }
  const total = docs.reduce((n, p) => n + site[p]!, 0);
  assert.ok(total > 1.5 * cacheBytes, `set of ${total} bytes`);
  await withNodes("cf-lru", { cacheBytes }, async (nodes, clients) => {
    const before = origin.requests;
    for (let round = 0; round < 2; round++) {
      for (const p of docs) {
        const k = (docs.indexOf(p) + round) % 3;
        assert.ok((await get(clients[k]!, p)).body.equals(files.get(p)!));
      }
    }
    assert.equal(origin.requests - before, docs.length, "the second round came entirely from memory");
    for (const n of nodes) assert.equal(n.cache.stats().evictions, 0);
  });
});

test("404, directory redirect, HEAD, ranges and conditionals through a peer", async () => {
  await withNodes("cf-lru", {}, async (nodes, clients) => {
    const c = clients[0]!;
    const missing = namesHomedAt(three, "n2", "missing", 1)[0]!;
    const dirVia = three.findIndex((m) => m.id !== homeOf(three, "/dir"));
    let before = origin.requests;
    const nf = await get(c, missing);
    assert.equal(nf.status, 404);
    assert.equal(origin.requests - before, 1, "asked the origin once, at the home");
    assert.equal(nf.headers.connection, "keep-alive");

    const r = await get(clients[dirVia]!, "/dir?q=1");
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, "/dir/?q=1");
    assert.equal(cf(nodes[dirVia]!).requests.forwarded, dirVia === 0 ? 2 : 1);
    const big = "/big.bin";
    const viaPeer = homeOf(three, big) !== "n1" ? 0 : 1;
    const cl = clients[viaPeer]!;
    before = origin.requests;
    const h = await get(cl, big, {}, "HEAD");
    assert.equal(h.status, 200);
    assert.equal(h.headers["content-length"], String(site[big]));
    assert.equal(h.body.length, 0);
    const whole = await get(cl, big);
    assert.ok(whole.body.equals(files.get(big)!));
    const etag = whole.headers.etag as string;
    assert.equal(
      etag,
      (await get(clients[(viaPeer + 1) % 3]!, big, {}, "HEAD")).headers.etag,
      "same ETag from every node",
    );
    const part = await get(cl, big, { range: "bytes=1000000-1999999" });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(files.get(big)!.subarray(1_000_000, 2_000_000)));
    const nm = await get(cl, big, { "if-none-match": etag });
    assert.equal(nm.status, 304);
    assert.equal(origin.requests - before, 1, "one origin load in all");
    assert.equal(cf(nodes[viaPeer]!).originFetches.fallback, 0);
  });
});

test("the peer endpoint drops connections from outside the cluster", async () => {
  await withNodes("cf-lru", {}, async (nodes) => {
    const closed = await new Promise<boolean>((resolve) => {
      // From 127.0.0.1, which is not a member's address.
      const s = net.connect({ host: three[0]!.addr, port: PEER_PORT, localAddress: "127.0.0.1" });
      s.on("connect", () => s.write(`GET /doc-0.bin HTTP/1.1\r\nHost: x\r\n\r\n`));
      let data = false;
      s.on("data", () => (data = true));
      s.on("error", () => undefined);
      s.on("close", () => resolve(!data));
    });
    assert.equal(closed, true, "closed without an answer");
    assert.equal(cf(nodes[0]!).served.refused, 1);
  });
});

/** A raw request to a peer endpoint from `from` (a member's address), with chosen headers. */
function peerRequest(
  to: ClusterMember,
  from: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; authError: string | undefined; bytes: number }> {
  return new Promise((resolve, reject) => {
    request({ host: to.addr, port: PEER_PORT, path, localAddress: from, headers, agent: false }, (res) => {
      let bytes = 0;
      res.on("data", (b: Buffer) => (bytes += b.length));
      res.on("end", () =>
        resolve({ status: res.statusCode!, authError: res.headers["x-sc-auth-error"] as string, bytes }),
      );
    })
      .on("error", reject)
      .end();
  });
}

test("peer requests need a member's authenticator from its address; the rest get 403, counted", async () => {
  await withNodes("cf-lru", {}, async (nodes) => {
    const [n1, n2, n3] = three as [ClusterMember, ClusterMember, ClusterMember];
    const doc = Object.keys(site).find((p) => p.startsWith("/doc-") && homeOf(three, p) === "n1")!;
    const auth = new PeerAuth(secret.key("peer-cache"), three);
    const other = new PeerAuth(
      (ClusterSecret.parse("d".repeat(40)) as ClusterSecret).key("peer-cache"),
      three,
    );
    const now = Date.now();
    const cases: [string, string, Record<string, string>, string][] = [
      ["no authenticator", n2.addr, { "x-sc-node": "n2" }, "missing"],
      ["another cluster's key", n2.addr, other.sign("n2", "GET", doc, now), "bad_mac"],
      ["signed for another path", n2.addr, auth.sign("n2", "GET", "/other.bin", now), "bad_mac"],
      ["signed for HEAD, sent as GET", n2.addr, auth.sign("n2", "HEAD", doc, now), "bad_mac"],
      ["too old", n2.addr, auth.sign("n2", "GET", doc, now - 60_000), "stale"],
      ["a non-member id", n2.addr, auth.sign("n9", "GET", doc, now), "unknown_node"],
      ["n2's authenticator from n3's address", n3.addr, auth.sign("n2", "GET", doc, now), "wrong_address"],
    ];
    for (const [what, from, headers, reason] of cases) {
      const r = await peerRequest(n1, from, doc, headers);
      assert.equal(r.status, 403, what);
      assert.equal(r.authError, reason, what);
      assert.equal(r.bytes, 0, what);
    }
    const s = cf(nodes[0]!);
    assert.deepEqual(s.served.authRefused, {
      missing: 1,
      unknown_node: 1,
      wrong_address: 1,
      stale: 1,
      bad_mac: 3,
    });
    assert.equal(s.served.fromCache + s.served.fromOrigin, 0, "nothing served to them");
    const text = await nodes[0]!.registry.metrics();
    assert.equal(metric(text, "sc_cf_peer_auth_refused_total", 'reason="bad_mac"'), 3);

    const ok = await peerRequest(n1, n2.addr, doc, auth.sign("n2", "GET", doc, Date.now()));
    assert.equal(ok.status, 200);
    assert.equal(ok.bytes, site[doc]);
  });
});

test("a member with another secret: its peer fetches are refused and it serves from the origin, exact bytes", async () => {
  const wrong: ClusterTrust = {
    kind: "secret",
    secret: ClusterSecret.parse("e".repeat(40)) as ClusterSecret,
  };
  const nodes = [
    await cfNode("cf-lru", three[0]!, three, { trust: wrong }),
    await cfNode("cf-lru", three[1]!, three),
    await cfNode("cf-lru", three[2]!, three),
  ];
  const c = new Client(`http://127.0.0.1:${nodes[0]!.address.port}`, { pipelining: 1 });
  try {
    const foreign = Object.keys(site).filter((p) => p.startsWith("/doc-") && homeOf(three, p) !== "n1");
    for (const p of foreign.slice(0, 4)) {
      const a = await get(c, p);
      assert.equal(a.status, 200, p);
      assert.ok(a.body.equals(files.get(p)!), p);
    }
    const s = cf(nodes[0]!);
    assert.equal(s.peerErrors.auth, 4);
    assert.equal(s.originFetches.fallback, 4);
    const refused = nodes.slice(1).reduce((n, x) => n + cf(x).served.authRefused.bad_mac, 0);
    assert.equal(refused, 4);
  } finally {
    await c.close();
    await Promise.all(nodes.map((n) => n.shutdown(100)));
  }
});

test("--insecure-dev: peer requests are neither signed nor checked", async () => {
  await withNodes("cf-lru", { trust: { kind: "insecure-dev" } }, async (nodes, clients) => {
    const doc = Object.keys(site).find((p) => p.startsWith("/doc-") && homeOf(three, p) === "n1")!;
    const r = await peerRequest(three[0]!, three[1]!.addr, doc, {});
    assert.equal(r.status, 200);
    const a = await get(clients[1]!, doc);
    assert.ok(a.body.equals(files.get(doc)!));
    assert.equal(cf(nodes[1]!).peerErrors.auth, 0);
  });
});

/** A fake home node: answers per path as a test needs. */
type FakeHandler = (path: string, res: import("node:http").ServerResponse) => void;

async function fakePeer(handler: FakeHandler): Promise<{ server: Server; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    handler(req.url ?? "", res);
  });
  await new Promise<void>((r) => server.listen(PEER_PORT, faultMembers[1]!.addr, r));
  return { server, requests };
}

async function originHead(path: string): Promise<{ etag: string; mtime: number }> {
  const r = await fetch(`${originUrl}${path}`, { method: "HEAD" });
  return { etag: r.headers.get("etag")!, mtime: Date.parse(r.headers.get("last-modified")!) };
}

function docHeaders(path: string, etag: string, mtime: number) {
  return {
    "content-length": site[path]!,
    "content-type": "application/octet-stream",
    etag,
    "x-sc-mtime": String(mtime),
    "x-sc-key": path,
    "x-sc-from": "cache",
  };
}

test("fallbacks: peer error, stall, malformed answer, cut mid-body, dead member; clients get exact bytes", async () => {
  const heads = new Map<string, { etag: string; mtime: number }>();
  for (const p of [fault.cutBig, fault.cutSmall, fault.cutDiffers]) heads.set(p, await originHead(p));
  const stalled: import("node:http").ServerResponse[] = [];
  const fake = await fakePeer((path, res) => {
    const h = heads.get(path);
    switch (path) {
      case fault.status:
        res.writeHead(502, { "content-length": 0 }).end();
        return;
      case fault.stall:
        stalled.push(res);
        return;
      case fault.garbage:
        res.writeHead(200, { "content-length": 3 }).end("abc");
        return;
      case fault.cutBig:
      case fault.cutSmall:
      case fault.cutDiffers: {
        const etag = path === fault.cutDiffers ? '"not-the-same"' : h!.etag;
        res.writeHead(200, docHeaders(path, etag, h!.mtime));
        res.write(files.get(path)!.subarray(0, Math.floor(site[path]! * 0.4)), () => res.socket?.destroy());
        return;
      }
    }
    res.writeHead(500).end();
  });
  const node = await cfNode("cf-lru", faultMembers[0]!, faultMembers, {
    modeSettings: { peerTimeoutMs: 300, peerDownMs: 60_000 },
  });
  const c = new Client(`http://127.0.0.1:${node.address.port}`, { pipelining: 1 });
  try {
    for (const p of [fault.status, fault.stall, fault.garbage, fault.cutSmall, fault.cutBig]) {
      const a = await get(c, p);
      assert.equal(a.status, 200, p);
      assert.ok(a.body.equals(files.get(p)!), `exact bytes for ${p}`);
    }
    let s = cf(node);
    assert.deepEqual(
      {
        status: s.peerErrors.status,
        timeout: s.peerErrors.timeout,
        protocol: s.peerErrors.protocol,
        aborted: s.peerErrors.aborted,
      },
      { status: 1, timeout: 1, protocol: 1, aborted: 2 },
    );
    assert.equal(s.resumed, 1, "the big body was completed from the origin");
    assert.equal(s.originFetches.fallback, 5);
    // Served from our own store, so a copy is now kept here and used.
    const again = await get(c, fault.status);
    assert.ok(again.body.equals(files.get(fault.status)!));
    assert.equal(cf(node).requests.localCopy, 1);

    // The origin has a different document than the peer was sending: the client's connection
    // is reset rather than given a mix of the two.
    await assert.rejects(async () => {
      const a = await get(c, fault.cutDiffers);
      assert.notEqual(a.body.length, site[fault.cutDiffers]); // never reached with a full body
    });
    assert.equal(cf(node).brokenBodies, 1);

    // A member with nothing listening: refused once, then skipped while it is down.
    for (const p of fault.dead) assert.ok((await get(c, p)).body.equals(files.get(p)!), p);
    s = cf(node);
    assert.equal(s.peerErrors.refused, 1);
    assert.equal(s.peerErrors.down, 1);
    assert.deepEqual(s.peersDown, ["n13"]);
  } finally {
    await c.close();
    await node.shutdown(100);
    for (const r of stalled) r.destroy();
    fake.server.closeAllConnections();
    await new Promise((r) => fake.server.close(r));
  }
});

test("concurrent requests for one document share one peer fetch, streamed to all as it arrives", async () => {
  const h = await originHead(fault.gated);
  const doc = files.get(fault.gated)!;
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  const fake = await fakePeer((path, res) => {
    res.writeHead(200, docHeaders(path, h.etag, h.mtime));
    // Half now, the rest once every request has joined.
    res.write(doc.subarray(0, 500_000));
    void released.then(() => res.end(doc.subarray(500_000)));
  });
  const node = await cfNode("cf-lru", faultMembers[0]!, faultMembers);
  const clients = Array.from({ length: 12 }, () => new Client(`http://127.0.0.1:${node.address.port}`));
  try {
    const answers = clients.map((c) => get(c, fault.gated));
    // Every request is in (forwarded) before the body completes: the joins are real.
    for (let i = 0; cf(node).requests.forwarded < clients.length; i++) {
      assert.ok(i < 10_000, "requests did not arrive");
      await new Promise((r) => setTimeout(r, 1));
    }
    release();
    for (const a of await Promise.all(answers)) assert.ok(a.body.equals(doc));
    const s = cf(node);
    assert.equal(fake.requests.length, 1, "one fetch from the peer");
    assert.equal(s.peerFetches, 1);
    assert.equal(s.joined, clients.length - 1);
    assert.equal(s.peerBytes, doc.length);
    assert.equal(s.inflight, 0);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await node.shutdown(100);
    fake.server.closeAllConnections();
    await new Promise((r) => fake.server.close(r));
  }
});
