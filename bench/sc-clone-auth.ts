// What authenticating the SC links costs a whole clone (issue 14): two Socket Cloning nodes in
// one process (server/modes/sc-testing.ts: real TCP stacks, the real mode, real SC links on
// loopback), one keep-alive client whose every request is cloned, run with the cluster
// secret and with --insecure-dev, interleaved, in one run. Prints the clone latency (CLONE
// sent -> CLONE-ACK received, the mode's own samples) and the time per request.
//   npm run build && node dist/bench/sc-clone-auth.js [--requests N] [--rounds N] [--size BYTES]
import { randomBytes } from "node:crypto";
import { ScTestCluster } from "../server/modes/sc-testing.js";
import type { LinkKey } from "../sc/auth/link.js";
import { readResponse } from "./support.js";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  const v = i > 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive whole number`);
  return v;
}
const REQUESTS = arg("--requests", 2000);
const ROUNDS = arg("--rounds", 3);
const SIZE = arg("--size", 1000);

const PATHS = Array.from({ length: 16 }, (_, i) => `/doc${i}`);
const DOCS = Object.fromEntries(PATHS.map((p) => [p, randomBytes(SIZE)]));
const KEYS: Record<string, LinkKey> = {
  secret: { kind: "secret", key: randomBytes(32) },
  "insecure-dev": { kind: "insecure-dev" },
};

interface Figures {
  p50: number;
  p90: number;
  perRequestUs: number;
}

async function run(key: LinkKey): Promise<Figures> {
  const c = await ScTestCluster.start({ nodes: 2, docs: DOCS, settings: { localMaxBytes: 0 }, key });
  try {
    const path = c.homedAt("n2", PATHS);
    const s = c.client("n1").connect();
    await new Promise<void>((r) => s.once("connect", () => r()));
    const start = process.hrtime.bigint();
    for (let i = 0; i < REQUESTS; i++) {
      const r = readResponse(s, SIZE);
      s.write(`GET ${path} HTTP/1.1\r\nHost: sc\r\n\r\n`);
      await r;
    }
    const took = Number(process.hrtime.bigint() - start) / 1000;
    s.destroy();
    const mode = c.node("n1").mode;
    if (mode.clonesSent !== REQUESTS) throw new Error(`${mode.clonesSent} of ${REQUESTS} requests cloned`);
    const lat = (mode.stats() as { cloneLatencyUs: { p50: number; p90: number } | null }).cloneLatencyUs;
    if (lat === null) throw new Error("no clone latency samples");
    return { p50: lat.p50, p90: lat.p90, perRequestUs: took / REQUESTS };
  } finally {
    await c.close();
  }
}

const results: Record<string, Figures[]> = { secret: [], "insecure-dev": [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, key] of Object.entries(KEYS)) results[name]!.push(await run(key));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `${REQUESTS} cloned requests of ${SIZE} B per run, ${ROUNDS} rounds interleaved (median of rounds)`,
);
console.log("links          clone p50 us  clone p90 us  us/request");
for (const [name, rs] of Object.entries(results)) {
  const f = (k: keyof Figures) =>
    median(rs.map((r) => r[k]))
      .toFixed(1)
      .padStart(12);
  console.log(`${name.padEnd(14)}${f("p50")}  ${f("p90")}  ${f("perRequestUs")}`);
}
const ratio = (k: keyof Figures) =>
  (median(results.secret!.map((r) => r[k])) / median(results["insecure-dev"]!.map((r) => r[k]))).toFixed(2);
console.log(`secret / insecure-dev: clone p50 ${ratio("p50")}, per request ${ratio("perRequestUs")}`);
