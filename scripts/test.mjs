#!/usr/bin/env node
// Runs the compiled tests under node's built-in runner.
//   *.test.js        unit tests: pure logic, virtual time, loopback only; run in parallel
//   *.netns.test.js  testbed tests: need root, /dev/net/tun and namespaces; run one file at a time
// Usage: node scripts/test.mjs [--unit | --netns] [substring ...]
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { spawnSync } from "node:child_process";

const args = process.argv.slice(2);
const onlyUnit = args.includes("--unit");
const onlyNetns = args.includes("--netns");
const filters = args.filter((a) => !a.startsWith("--"));

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith(".test.js")) out.push(relative(process.cwd(), p));
  }
  return out;
}

const all = walk("dist", [])
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
const netns = all.filter((f) => f.endsWith(".netns.test.js"));
const unit = all.filter((f) => !f.endsWith(".netns.test.js"));

function run(files, concurrency) {
  if (files.length === 0) return 0;
  const r = spawnSync(
    process.execPath,
    ["--test", `--test-concurrency=${concurrency}`, "--test-reporter=spec", ...files],
    { stdio: "inherit" },
  );
  return r.status ?? 1;
}

let status = 0;
if (!onlyNetns) status ||= run(unit, 2);
if (!onlyUnit) {
  if (netns.length > 0 && process.getuid?.() !== 0) {
    console.error("testbed tests need root (network namespaces, /dev/net/tun): run as root or with sudo");
    status ||= 1;
  } else {
    status ||= run(netns, 1);
  }
}
process.exit(status);
