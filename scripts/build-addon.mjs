#!/usr/bin/env node
// npm "install" hook: builds the TUN addon (sc/tun/native) with node-gyp against the
// headers of the node that runs us, so no header download is needed.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const addonDir = join(root, "sc", "tun", "native");
if (!existsSync(join(addonDir, "binding.gyp"))) process.exit(0);

// Headers: npm's nodedir setting if any, else <prefix>/include/node next to this node binary
// (/usr/include/node for Debian's nodejs, /usr/local/include/node in the official images).
let nodedir = process.env.npm_config_nodedir;
if (!nodedir || !existsSync(join(nodedir, "include", "node", "node_api.h"))) {
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, "include", "node", "node_api.h"))) nodedir = prefix;
}
if (!nodedir) {
  console.error(
    "build-addon: node's headers (include/node/node_api.h) were not found next to " +
      process.execPath +
      ".\nInstall them (Debian: apt-get install libnode-dev, or use the official node tarball/image) " +
      "or set npm_config_nodedir=/path/to/prefix.",
  );
  process.exit(1);
}

const gyp = process.env.npm_config_node_gyp;
const cmd = gyp ? process.execPath : "node-gyp";
const args = [...(gyp ? [gyp] : []), "rebuild", `--nodedir=${nodedir}`];
const r = spawnSync(cmd, args, { cwd: addonDir, stdio: "inherit" });
if (r.status !== 0) {
  console.error(
    "build-addon: building the TUN addon failed; g++, make and python3 are required (scripts/setup-host.sh)",
  );
  process.exit(r.status ?? 1);
}
