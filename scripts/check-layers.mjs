// The architecture rule (docs/architecture.md): folders are layers, and code imports only from
// its own layer or a lower one; no two source files import each other, directly or round a
// circle. Runs in `npm run lint`; exits 1 and names every offending import.
//
// Tests and test support (*.test.ts, *testing.ts, *.fixture.ts, test-support.ts) may import
// upwards: a test of a lower layer may start a whole node or cluster to exercise it.
// Usage: node scripts/check-layers.mjs [--print]   (--print: the table and the counts)
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { posix } from "node:path";

/** Lowest first. A file belongs to the longest prefix that matches it. */
export const LAYERS = [
  ["common/", "what every program shares: options and config files, user-facing errors and exit codes"],
  ["sc/", "the stack: wire formats, TCP, TUN, GUE, SC and handoff protocols, link auth, TLS records"],
  ["server/log.ts", "the server processes' logger"],
  ["server/errors.ts", "user-facing errors"],
  ["server/metrics-mirror.ts", "Prometheus metrics read from plain counters at scrape time"],
  ["server/transport/", "connections: the Conn interface, kernel sockets, the user stack, TLS"],
  ["server/http/", "HTTP/1.1: parser, documents and response heads, the connection pipeline, server"],
  ["server/source/", "where documents come from: a directory or the origin"],
  ["server/cache/", "the document cache and its policies"],
  ["server/store/", "cache in front of a source, and request -> response"],
  ["server/membership/", "the cluster as a node sees it: members, URL mapper, runtime updates"],
  ["server/peer/", "fetching a document from a peer's cache"],
  ["server/modes/", "what a node does with a request: local, sc, cf-*, lard"],
  ["server/node/", "a node assembled: options, start-up, control plane, metrics, workers"],
  ["dispatcher/", "the L4 dispatcher and the LARD front-end"],
  ["origin/", "the origin file server"],
  ["testbed/", "network namespaces, links and addresses"],
  ["loadgen/", "traces, sites, replay and ab clients, reports"],
  ["cluster/", "the local cluster launcher, dashboard and chaos replay"],
  ["bench/", "benchmarks"],
  ["deploy/", "deployment files and their checks"],
  ["cli/", "the sc-cluster commands"],
];

const TEST_FILE = /(\.test\.ts|testing\.ts|\.fixture\.ts|test-support\.ts)$/;

export function layerOf(path) {
  let best = -1;
  let bestLen = -1;
  LAYERS.forEach(([prefix], i) => {
    if (path.startsWith(prefix) && prefix.length > bestLen) {
      best = i;
      bestLen = prefix.length;
    }
  });
  return best;
}

// Our own sources, not network input: a simple line-oriented match is enough here.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm;

/** Relative imports of one file, as repository paths of .ts files. */
export function importsOf(file, text) {
  const out = [];
  for (const m of text.matchAll(SPECIFIER)) {
    const target = posix.normalize(posix.join(posix.dirname(file), m[1]));
    if (target.endsWith(".js")) out.push(target.slice(0, -3) + ".ts");
  }
  return out;
}

/** Upward imports: [importer, imported] where the imported file's layer is above the importer's. */
export function upwardImports(graph) {
  const bad = [];
  for (const [file, deps] of graph) {
    if (TEST_FILE.test(file)) continue;
    const own = layerOf(file);
    for (const d of deps) if (layerOf(d) > own) bad.push([file, d]);
  }
  return bad;
}

/** Circles of non-test files (Tarjan's strongly connected components of two or more files). */
export function importCircles(graph) {
  const files = [...graph.keys()].filter((f) => !TEST_FILE.test(f));
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const circles = [];
  let next = 0;
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (TEST_FILE.test(w) || !graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) circles.push(scc.sort());
    }
  };
  for (const f of files) if (!index.has(f)) visit(f);
  return circles;
}

function main() {
  const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "*.ts"], {
    encoding: "utf8",
  })
    .split("\n")
    .filter((f) => f !== "" && !f.endsWith(".d.ts") && existsSync(f));
  const graph = new Map();
  const unplaced = [];
  for (const f of files) {
    graph.set(f, importsOf(f, readFileSync(f, "utf8")));
    if (layerOf(f) < 0) unplaced.push(f);
  }
  const up = upwardImports(graph);
  const circles = importCircles(graph);
  if (process.argv.includes("--print")) {
    LAYERS.forEach(([p, what], i) => console.log(`${String(i).padStart(2)}  ${p.padEnd(20)} ${what}`));
    console.log(`${graph.size} files, ${[...graph.values()].reduce((n, d) => n + d.length, 0)} imports`);
  }
  for (const f of unplaced)
    console.error(`no layer: ${f} (add its folder to LAYERS in scripts/check-layers.mjs)`);
  for (const [a, b] of up) {
    console.error(`upward import: ${a} (${LAYERS[layerOf(a)][0]}) imports ${b} (${LAYERS[layerOf(b)][0]})`);
  }
  for (const c of circles) console.error(`import circle: ${c.join(" <-> ")}`);
  if (unplaced.length + up.length + circles.length > 0) {
    console.error("check-layers: see docs/architecture.md for the layers and what may import what");
    process.exit(1);
  }
  console.log(`check-layers: ${graph.size} files, no upward import, no import circle`);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
