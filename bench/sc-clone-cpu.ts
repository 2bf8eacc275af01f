// CPU per cloned request against a locally served one, in one process (issue 15; not a test).
// Two real SocketCloning nodes, a client stack and authenticated SC links over loopback TCP
// (server/modes/sc-testing.ts: packets between the stacks are carried in process, the SC
// link is a kernel socket). Requests go one at a time on keep-alive connections to node 1,
// in alternating blocks of 100 for documents homed on node 2 (cloned) and on node 1 (local),
// so a noisy machine slows both alike. The CPU is the whole process's (client, both nodes, the
// links' syscalls), so the difference per request is what a clone adds; the wall time per
// request includes two event-loop wake-ups on the SC link per clone.
//
//   npm run build && node dist/bench/sc-clone-cpu.js [--requests N] [--size BYTES] [--connections C]
//       [--insecure-dev] [--only cloned|local]
// Run it under `node --cpu-prof` to see where a clone's CPU goes.
import { ScTestCluster } from "../server/modes/sc-testing.js";
import type { TcpSocket } from "../sc/tcp/socket.js";
import { readResponse } from "./support.js";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const REQUESTS = arg("--requests", 4000);
const SIZE = arg("--size", 1024);
const CONNECTIONS = arg("--connections", 4);
/** Unauthenticated SC links (--insecure-dev): the cost of the per-message MACs, by difference. */
const INSECURE = process.argv.includes("--insecure-dev");
/** Only one kind of request (e.g. under `strace -c -f`, to count the system calls of each). */
const ONLY = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
if (ONLY !== undefined && ONLY !== "cloned" && ONLY !== "local") throw new Error("--only cloned|local");

const docs: Record<string, Buffer> = {};
for (let i = 0; i < 32; i++) docs[`/d/${i}.bin`] = Buffer.alloc(SIZE, 0x41 + (i % 26));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const c = await ScTestCluster.start({
  nodes: 2,
  docs,
  settings: { localMaxBytes: 0 },
  ...(INSECURE ? { key: { kind: "insecure-dev" } as const } : {}),
});
try {
  const paths = Object.keys(docs);
  const remote = paths.filter((p) => c.mapper.lookup(p) === "n2");
  const local = paths.filter((p) => c.mapper.lookup(p) === "n1");
  const client = c.client("n1");
  const socks: TcpSocket[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const s = client.connect();
    await new Promise<void>((r) => s.once("connect", () => r()));
    socks.push(s);
  }
  const cpu = { cloned: 0, local: 0 };
  const wall: Record<"cloned" | "local", number[]> = { cloned: [], local: [] };
  // Blocks of BLOCK requests of one kind, alternating (getrusage per request would cost more
  // than what is measured); the first two blocks warm up (JIT, caches) and are not counted.
  const BLOCK = 100;
  const blocks = Math.max(2, Math.round(REQUESTS / BLOCK));
  let i = 0;
  for (let b = -2; b < blocks; b++) {
    const kind = ONLY ?? (b % 2 === 0 ? "cloned" : "local");
    const list = kind === "cloned" ? remote : local;
    const c0 = process.cpuUsage();
    for (let k = 0; k < BLOCK; k++, i++) {
      const path = list[i % list.length]!;
      const s = socks[i % socks.length]!;
      const t0 = process.hrtime.bigint();
      const done = readResponse(s, SIZE);
      s.write(`GET ${path} HTTP/1.1\r\nHost: sc\r\n\r\n`);
      await done;
      if (b >= 0) wall[kind].push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    const used = process.cpuUsage(c0);
    if (b >= 0) cpu[kind] += used.user + used.system;
  }
  const n1 = c.node("n1").mode;
  const n2 = c.node("n2").mode;
  if (n1.clonesSent < wall.cloned.length)
    throw new Error(`only ${n1.clonesSent} clones for ${REQUESTS / 2} requests`);
  const per = (k: "cloned" | "local") => cpu[k] / wall[k].length;
  const p50 = (k: "cloned" | "local") =>
    percentile(
      wall[k].sort((a, b) => a - b),
      50,
    );
  console.log(
    `${SIZE}-byte documents, ${REQUESTS} requests one at a time over ${CONNECTIONS} keep-alive connections, ` +
      `${n1.clonesSent} clones sent, ${n2.clonesReceived} received, SC links ${INSECURE ? "unauthenticated" : "authenticated"}`,
  );
  const mean = (k: "cloned" | "local") => wall[k].reduce((a, b) => a + b, 0) / wall[k].length;
  console.log(`| request | CPU us (process) | wall p50 us | wall mean us |`);
  console.log(`| --- | ---: | ---: | ---: |`);
  for (const k of ["cloned", "local"] as const)
    if (wall[k].length > 0)
      console.log(`| ${k} | ${per(k).toFixed(1)} | ${p50(k).toFixed(0)} | ${mean(k).toFixed(0)} |`);
  if (ONLY === undefined)
    console.log(
      `cloned / local CPU: ${(per("cloned") / per("local")).toFixed(2)}x; a clone adds ${(per("cloned") - per("local")).toFixed(1)} us`,
    );
  for (const s of socks) s.destroy();
} finally {
  await c.close();
}
