#!/usr/bin/env node
// npm "install" hook: builds the TUN addon (sc/tun/native) with node-gyp against the
// headers of the node that runs us, so nothing is downloaded.
//
// Headers, first match wins:
//   1. npm's `nodedir` setting (npm_config_nodedir), if it holds include/node/node_api.h;
//   2. <prefix>/include/node next to this node binary (process.execPath is <prefix>/bin/node):
//      /usr/include/node for Debian's nodejs + libnode-dev or a /usr install of the official
//      tarball, /usr/local/include/node in the official node:20 Docker image, ~/.nvm/... for nvm.
// node-gyp, first match wins: the one npm runs us with (npm_config_node_gyp), the one bundled
// with the npm next to this node, `node-gyp` on PATH.
// Usage: node scripts/build-addon.mjs [--force]   (skips the build when it is up to date)
import { existsSync, statSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const addonDir = join(root, "sc", "tun", "native");
const output = join(addonDir, "build", "Release", "sc_tun.node");
const force = process.argv.includes("--force") || process.env.npm_command === "rebuild";

function fail(msg) {
  console.error(`build-addon: ${msg}`);
  process.exit(1);
}

if (!existsSync(join(addonDir, "binding.gyp"))) process.exit(0);

// Up to date: the .node is newer than every source file (a plain `npm ci` always starts
// without build/, so this only saves time on repeated `npm run install`).
if (!force && existsSync(output)) {
  const built = statSync(output).mtimeMs;
  const sources = readdirSync(addonDir).filter((f) => /\.(c|cc|h|gyp)$/.test(f));
  if (sources.every((f) => statSync(join(addonDir, f)).mtimeMs < built)) {
    console.log(`build-addon: ${output} is up to date`);
    process.exit(0);
  }
}

const hasHeaders = (dir) => !!dir && existsSync(join(dir, "include", "node", "node_api.h"));
const prefix = dirname(dirname(process.execPath));
const nodedir = [process.env.npm_config_nodedir, prefix].find(hasHeaders);
if (!nodedir) {
  fail(
    `node's headers (include/node/node_api.h) were not found under ${prefix}` +
      (process.env.npm_config_nodedir ? ` nor under nodedir=${process.env.npm_config_nodedir}` : "") +
      ".\nInstall them (Debian: apt-get install libnode-dev; the official tarballs and node:* Docker " +
      "images include them) or point npm at them: npm config set nodedir /path/to/prefix " +
      "(the directory that contains include/node).",
  );
}

const bundledGyp = [
  join(prefix, "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
  join(prefix, "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
];
const gypScript = [process.env.npm_config_node_gyp, ...bundledGyp].find((p) => p && existsSync(p));
const onPath = (cmd) => spawnSync(cmd, ["--version"], { stdio: "ignore" }).status === 0;
if (!gypScript && !onPath("node-gyp")) {
  fail("node-gyp not found (it ships with npm); run this through npm (npm ci / npm run install)");
}

const missing = [
  ["make", "make"],
  [process.env.CC || "cc", "a C compiler (gcc)"],
  [process.env.CXX || "g++", "g++ (gyp links with it)"],
  ["python3", "python3"],
]
  .filter(([cmd]) => !onPath(cmd))
  .map(([, what]) => what);
if (missing.length > 0) {
  fail(
    `missing ${missing.join(", ")} to build the TUN addon; Debian/Ubuntu: apt-get install g++ make python3 ` +
      "(or run scripts/setup-host.sh)",
  );
}

const cmd = gypScript ? process.execPath : "node-gyp";
const args = [...(gypScript ? [gypScript] : []), "rebuild", `--nodedir=${nodedir}`];
console.log(`build-addon: node-gyp rebuild in ${addonDir} with headers from ${nodedir}/include/node`);
const r = spawnSync(cmd, args, { cwd: addonDir, stdio: "inherit" });
if (r.status !== 0 || !existsSync(output)) {
  fail(`building the TUN addon failed (node-gyp exit ${r.status ?? r.signal}); see the output above`);
}
console.log(`build-addon: built ${output}`);
