// HTTPS through the VIP of a small cluster (startCluster: origin, dispatcher balancing 80 and
// 443, 2 nodes in mode sc on our TCP stack): curl --tlsv1.3 with the demo CA fetches documents
// byte-exact over one keep-alive connection, TLS sessions on node1 (our record layer) are
// cloned to node2 with their session, TLS 1.2 is served and counted, HTTP still works, and
// SIGHUP makes the nodes take a new certificate. Needs root, /dev/net/tun and namespaces.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testPrefix } from "../testbed/index.js";
import { VIP } from "../testbed/topology.js";
import { makeDemoCertificates } from "../server/transport/tls-certs.js";
import { destroyCluster, startCluster, type Cluster } from "./cluster.js";
import { UrlMapper } from "../server/membership/mapper.js";

const PREFIX = testPrefix("tl");
let cluster: Cluster;
let site = "";
/** Documents of the test site: name -> bytes (sizes around a record, a window, a megabyte). */
const DOCS: Record<string, Buffer> = {
  "small.txt": Buffer.from("hello over TLS\n"),
  "record.bin": randomBytes(16384 + 7),
  "big.bin": randomBytes(1_000_003),
};
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
/**
 * Documents homed on node2 (the URL hash over the two members, as the nodes compute it), above
 * the nodes' 4 KiB local-serving size: a request for one arriving at node1 is cloned.
 */
const mapper = new UrlMapper([
  { id: "node1", weight: 1 },
  { id: "node2", weight: 1 },
]);
const CLONED: string[] = [];
for (let i = 0; CLONED.length < 6; i++) {
  const name = `c${i}.bin`;
  if (mapper.lookup(`/${name}`) !== "node2") continue;
  // Around record and window sizes, one of a megabyte and a bit.
  const size = [5000, 16_384 * 3 + 11, 70_000, 200_001, 1_048_583, 9000][CLONED.length]!;
  DOCS[name] = randomBytes(size);
  CLONED.push(name);
}

before(async () => {
  site = await mkdtemp(join(tmpdir(), "sc-tls-site-"));
  for (const [name, body] of Object.entries(DOCS)) await writeFile(join(site, name), body);
  cluster = await startCluster({
    prefix: PREFIX,
    nodes: 2,
    mode: "sc",
    scheduler: "rr",
    site,
    cacheBytes: "32M",
    stopGraceMs: 2000,
    startTimeoutMs: 60_000,
    // node1's TLS 1.3 sessions are taken over by our record layer (the default in mode sc),
    // so they can be cloned; node2's stay with OpenSSL (it still serves node1's clones).
    extraArgs: { node2: ["--tls-record-layer", "openssl"] },
  });
});

after(async () => {
  if (cluster) await cluster.stop();
  else await destroyCluster(PREFIX);
  await rm(site, { recursive: true, force: true });
});

/** curl in the client host; `-w` lines come back in stdout. */
async function curl(args: string[]): Promise<string> {
  const r = await cluster.testbed.exec("client", "curl", ["-sS", "--max-time", "30", ...args], {
    check: false,
  });
  assert.equal(r.code, 0, `curl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** One node's value of a metric (the sum over its label sets). */
async function metric(host: string, name: string): Promise<number> {
  const text = await curl([`${cluster.process(host).admin}/metrics`]);
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)$`, "gm"))) sum += Number(m[1]);
  return sum;
}

/** Every node's sc_tls_handshakes_total by version, summed. */
async function handshakes(): Promise<Record<string, number>> {
  const sum: Record<string, number> = {};
  for (const host of cluster.nodes) {
    const text = await curl([`${cluster.process(host).admin}/metrics`]);
    for (const m of text.matchAll(/^sc_tls_handshakes_total\{version="([^"]+)"[^}]*\} (\d+)$/gm))
      sum[m[1]!] = (sum[m[1]!] ?? 0) + Number(m[2]);
  }
  return sum;
}

test("curl --tlsv1.3 through the VIP: documents byte-exact, six on one keep-alive connection, on each node", async () => {
  const tls = cluster.tls;
  assert.ok(tls, "the cluster serves HTTPS");
  const out = await mkdtemp(join(tmpdir(), "sc-tls-out-"));
  try {
    const names = Object.keys(DOCS);
    const args = [
      "--tlsv1.3",
      "--cacert",
      tls.caCert,
      "-w",
      "%{http_code} %{num_connects} %{ssl_verify_result} %{http_version}\\n",
    ];
    // Each twice: the second round comes from the node's cache.
    const order = [...names, ...names];
    order.forEach((n, i) => args.push("-o", join(out, `${i}`), `https://${VIP}/${n}`));
    // Twice (rr: once on each node, so through both record layers), each a new connection.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < order.length; i++) await rm(join(out, `${i}`), { force: true });
      const lines = (await curl(args)).trim().split("\n");
      assert.equal(lines.length, order.length);
      lines.forEach((line, i) => {
        const [code, connects, verify, version] = line.split(" ");
        assert.equal(code, "200", `${order[i]}: ${line}`);
        assert.equal(verify, "0", "the certificate verifies against the demo CA");
        assert.equal(version, "1.1");
        // One TCP + TLS connection for all of them: keep-alive works over TLS.
        assert.equal(connects, i === 0 ? "1" : "0", `${order[i]}: ${line}`);
      });
      for (let i = 0; i < order.length; i++)
        assert.equal(sha(await readFile(join(out, `${i}`))), sha(DOCS[order[i]!]!), order[i]);
    }
    // The protocol really is 1.3 and the ALPN http/1.1 (curl -v says what it negotiated).
    const v = await cluster.testbed.exec("client", "curl", [
      "-sS",
      "-v",
      "-o",
      "/dev/null",
      "--tlsv1.3",
      "--cacert",
      tls.caCert,
      `https://${VIP}/small.txt`,
    ]);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stderr, /SSL connection using TLSv1\.3/);
    assert.match(v.stderr, /ALPN: server accepted http\/1\.1/);
    // Plain HTTP on port 80 beside it.
    assert.equal(sha(Buffer.from(await curl([`http://${VIP}/small.txt`]))), sha(DOCS["small.txt"]!));
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test("our record layer (node1) and OpenSSL's (node2) both serve byte-exact; node1 took its sessions over", async () => {
  const tls = cluster.tls!;
  const before = {
    n1: await metric("node1", "sc_tls_takeovers_total"),
    n2: await metric("node2", "sc_tls_takeovers_total"),
  };
  // rr: four new connections, two on each node.
  const out = await mkdtemp(join(tmpdir(), "sc-tls-out-"));
  try {
    for (let i = 0; i < 4; i++) {
      const file = join(out, `big${i}`);
      await curl(["--tlsv1.3", "--cacert", tls.caCert, "-o", file, `https://${VIP}/big.bin`]);
      assert.equal(sha(await readFile(file)), sha(DOCS["big.bin"]!), `fetch ${i}`);
    }
  } finally {
    await rm(out, { recursive: true, force: true });
  }
  assert.equal((await metric("node1", "sc_tls_takeovers_total")) - before.n1, 2);
  assert.equal((await metric("node2", "sc_tls_takeovers_total")) - before.n2, 0);
  assert.equal(await metric("node1", "sc_tls_takeover_failures_total"), 0);
});

interface ScStats {
  tls: { clonesSent: number; clonesReceived: number };
  failures: Record<string, number>;
}

/** One node's Socket Cloning counters (its /stats, under the mode's name). */
async function scStats(host: string): Promise<ScStats> {
  return (await cluster.json<{ sc: ScStats }>(`${cluster.process(host).admin}/stats`, 10_000)).sc;
}

test("TLS sessions clone: documents homed on node2, asked of node1 on one keep-alive connection, come from node2 byte-exact", async () => {
  const tls = cluster.tls!;
  const out = await mkdtemp(join(tmpdir(), "sc-tls-out-"));
  try {
    // rr: two connections, one on each node; node1's requests are cloned to node2.
    const before = { n1: await scStats("node1"), n2: await scStats("node2") };
    const order = [...CLONED, "small.txt", ...CLONED];
    for (let round = 0; round < 2; round++) {
      const args = ["--tlsv1.3", "--cacert", tls.caCert, "-w", "%{http_code} %{num_connects}\n"];
      order.forEach((n, i) => args.push("-o", join(out, `${round}-${i}`), `https://${VIP}/${n}`));
      const lines = (await curl(args)).trim().split("\n");
      lines.forEach((line, i) => assert.equal(line, `200 ${i === 0 ? 1 : 0}`, `${order[i]}: ${line}`));
      for (let i = 0; i < order.length; i++)
        assert.equal(sha(await readFile(join(out, `${round}-${i}`))), sha(DOCS[order[i]!]!), order[i]);
    }
    const after = { n1: await scStats("node1"), n2: await scStats("node2") };
    const sent = after.n1.tls.clonesSent - before.n1.tls.clonesSent;
    assert.equal(
      sent,
      2 * CLONED.length,
      "node1 cloned every request for a node2 document with its TLS session",
    );
    assert.equal(after.n2.tls.clonesReceived - before.n2.tls.clonesReceived, sent, "node2 sealed them");
    assert.equal(
      after.n2.tls.clonesSent - before.n2.tls.clonesSent,
      0,
      "node2's sessions are OpenSSL's: not cloned",
    );
    for (const r of ["refused", "timeout", "abandoned", "reset"])
      assert.equal(after.n1.failures[r], before.n1.failures[r], `no clone ${r}`);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test("openssl s_client fetches a node2 document through either node byte-exact, its last response cloned with close_notify", async () => {
  const tls = cluster.tls!;
  const name = CLONED[2]!;
  const before = (await scStats("node1")).tls.clonesSent;
  const dir = await mkdtemp(join(tmpdir(), "sc-tls-sclient-"));
  try {
    // rr: two connections, one on each node; Connection: close makes each response the last.
    for (let i = 0; i < 2; i++) {
      const out = join(dir, String(i));
      const request = `GET /${name} HTTP/1.1\\r\\nHost: sc\\r\\nConnection: close\\r\\n\\r\\n`;
      const r = await cluster.testbed.exec(
        "client",
        "sh",
        [
          "-c",
          `printf '${request}' | openssl s_client -connect ${VIP}:443 -tls1_3 -CAfile ${tls.caCert} ` +
            `-verify_return_error -quiet -ign_eof > ${out}`,
        ],
        { check: false, timeoutMs: 30_000 },
      );
      assert.equal(r.code, 0, r.stderr);
      // OpenSSL 3 says "unexpected eof while reading" when a FIN comes without close_notify.
      assert.doesNotMatch(r.stderr, /unexpected eof|alert|error/i, r.stderr);
      const got = await readFile(out);
      const body = got.subarray(got.indexOf("\r\n\r\n") + 4);
      assert.equal(sha(body), sha(DOCS[name]!), `fetch ${i}: ${got.subarray(0, 200).toString("latin1")}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assert.equal((await scStats("node1")).tls.clonesSent - before, 1, "node1's request was cloned");
});

test("wrk and ab over HTTPS with keep-alive: no error, no wrong length, TLS sessions cloned", async () => {
  const url = `https://${VIP}/${CLONED[1]}`;
  const size = DOCS[CLONED[1]!]!.length;
  const before = (await scStats("node1")).tls.clonesSent;
  // wrk: 4 keep-alive connections for 3 s (2 reach node1, whose requests are cloned).
  const w = await cluster.testbed.exec("client", "wrk", ["-t1", "-c4", "-d3s", "--timeout", "10s", url], {
    check: false,
    timeoutMs: 30_000,
  });
  assert.equal(w.code, 0, w.stderr);
  assert.doesNotMatch(w.stdout, /Socket errors|Non-2xx/, w.stdout);
  const requests = Number(/(\d+) requests in/.exec(w.stdout)?.[1] ?? 0);
  assert.ok(requests > 20, w.stdout);
  // ab: keep-alive (-k), every response's length checked against the first one's.
  const a = await cluster.testbed.exec("client", "ab", ["-k", "-n", "200", "-c", "4", url], {
    check: false,
    timeoutMs: 60_000,
  });
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /Complete requests:\s+200\b/);
  assert.match(a.stdout, /Failed requests:\s+0\b/);
  assert.match(a.stdout, new RegExp(`Document Length:\\s+${size} bytes`));
  assert.match(a.stdout, /Keep-Alive requests:\s+200\b/);
  assert.ok((await scStats("node1")).tls.clonesSent - before >= 50, "node1 cloned its share");
});

test("TLS 1.2 clients are served and counted apart from 1.3", async () => {
  const tls = cluster.tls!;
  const before = await handshakes();
  const body = await curl(["--tls-max", "1.2", "--cacert", tls.caCert, `https://${VIP}/small.txt`]);
  assert.equal(body, DOCS["small.txt"]!.toString());
  await curl(["--tlsv1.3", "--cacert", tls.caCert, "-o", "/dev/null", `https://${VIP}/small.txt`]);
  const after = await handshakes();
  assert.equal((after["TLSv1.2"] ?? 0) - (before["TLSv1.2"] ?? 0), 1);
  assert.equal((after["TLSv1.3"] ?? 0) - (before["TLSv1.3"] ?? 0), 1);
});

test("SIGHUP: the nodes take a new certificate for new connections", async () => {
  const tls = cluster.tls!;
  const dir = await mkdtemp(join(tmpdir(), "sc-tls-new-"));
  try {
    const fresh = await makeDemoCertificates(dir, { ips: [VIP], names: ["localhost"], caName: "second CA" });
    // The nodes read the files they were started with: replace them in place.
    const nodeArgs = cluster.plan.processes.find((p) => p.role === "node")!.args;
    await copyFile(fresh.cert, nodeArgs[nodeArgs.indexOf("--tls-cert") + 1]!);
    await copyFile(fresh.key, nodeArgs[nodeArgs.indexOf("--tls-key") + 1]!);
    for (const host of cluster.nodes) process.kill(cluster.process(host).pid, "SIGHUP");
    // Each node logs the reload; poll both (rr) until the new CA verifies twice in a row.
    const url = `https://${VIP}/small.txt`;
    let ok = 0;
    for (let i = 0; i < 100 && ok < 4; i++) {
      const r = await cluster.testbed.exec(
        "client",
        "curl",
        ["-sS", "--max-time", "5", "--cacert", fresh.caCert, url],
        { check: false },
      );
      ok = r.code === 0 ? ok + 1 : 0;
      if (r.code !== 0) await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(ok, 4, "both nodes serve the new certificate");
    const old = await cluster.testbed.exec(
      "client",
      "curl",
      ["-sS", "--max-time", "5", "--cacert", tls.caCert, url],
      { check: false },
    );
    assert.notEqual(old.code, 0, "the old CA no longer verifies");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
