// CPU per locally served keep-alive request through the user-space stack, for two builds in
// one process (issue 16: a before/after figure on a shared, loaded machine; not a test).
// Each build gets its own one-node cluster (server/modes/sc-testing.ts: the client stack and
// the node's stack exchange packets in process) and 4 keep-alive connections; blocks of
// --per requests alternate between the builds, the order flipping every pair, so machine load
// hits both alike. Prints, per build, the median process CPU (user + system, client and node)
// per request over the blocks, and the median of the per-pair ratios B/A.
//
//   cp -r dist /tmp/before ... rebuild ...   (a build dir must sit where node_modules resolves)
//   node dist/bench/build-ab.js DIR_A DIR_B [--blocks 400] [--per 200] [--size 1024]
// DIR_A DIR_B may be the same directory (an A/A run shows the harness's own bias).
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { TcpSocket } from "../sc/tcp/socket.js";
import { readResponse } from "./support.js";

type Testing = typeof import("../server/modes/sc-testing.js");

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const [dirA, dirB] = process.argv.slice(2, 4);
if (dirA === undefined || dirB === undefined || dirA.startsWith("--") || dirB.startsWith("--")) {
  console.error("usage: node dist/bench/build-ab.js DIR_A DIR_B [--blocks N] [--per N] [--size BYTES]");
  process.exit(2);
}
const BLOCKS = arg("--blocks", 400);
const PER = arg("--per", 200);
const SIZE = arg("--size", 1024);
const CONNECTIONS = 4;

const docs: Record<string, Buffer> = {};
for (let i = 0; i < 32; i++) docs[`/d/${i}.bin`] = Buffer.alloc(SIZE, 0x41 + (i % 26));
const paths = Object.keys(docs);

interface Side {
  cluster: { close(): Promise<void> };
  socks: TcpSocket[];
  perRequest: number[];
}

async function setUp(dir: string): Promise<Side> {
  const url = pathToFileURL(resolve(dir, "server/modes/sc-testing.js")).href;
  const { ScTestCluster } = (await import(url)) as Testing;
  const cluster = await ScTestCluster.start({ nodes: 1, docs, settings: { localMaxBytes: 0 } });
  const client = cluster.client("n1");
  const socks: TcpSocket[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const s = client.connect();
    await new Promise<void>((r) => s.once("connect", () => r()));
    socks.push(s);
  }
  return { cluster, socks, perRequest: [] };
}

async function block(side: Side, keep: boolean): Promise<void> {
  const c0 = process.cpuUsage();
  for (let i = 0; i < PER; i++) {
    const s = side.socks[i % CONNECTIONS]!;
    const done = readResponse(s, SIZE);
    s.write(`GET ${paths[i % paths.length]} HTTP/1.1\r\nHost: sc\r\n\r\n`);
    await done;
  }
  const used = process.cpuUsage(c0);
  if (keep) side.perRequest.push((used.user + used.system) / PER);
}

const median = (v: number[]) => v.slice().sort((x, y) => x - y)[v.length >> 1]!;

const a = await setUp(dirA);
const b = await setUp(dirB);
try {
  // Three pairs warm up (JIT), then BLOCKS pairs, A first in even pairs, B first in odd ones.
  for (let p = -3; p < BLOCKS; p++) {
    const order = p % 2 === 0 ? [a, b] : [b, a];
    for (const side of order) await block(side, p >= 0);
  }
  const ratios = b.perRequest.map((v, i) => v / a.perRequest[i]!);
  console.log(
    `${SIZE}-byte documents, ${BLOCKS} pairs of ${PER}-request blocks, ${CONNECTIONS} keep-alive connections`,
  );
  console.log(`A ${dirA}: ${median(a.perRequest).toFixed(1)} us CPU per request (median of blocks)`);
  console.log(`B ${dirB}: ${median(b.perRequest).toFixed(1)} us CPU per request (median of blocks)`);
  console.log(`B/A: ${median(ratios).toFixed(3)} (median of the per-pair ratios)`);
} finally {
  for (const side of [a, b]) {
    for (const s of side.socks) s.destroy();
    await side.cluster.close();
  }
}
