#!/usr/bin/env node
// Writes docker-compose.yml for a cluster of N nodes: origin, dispatcher, node1..nodeN and a
// client on one internal network with the testbed's addresses (docs/testbed.md,
// docs/docker.md). The committed docker-compose.yml is `--nodes 4`; regenerate rather than
// edit it by hand (test-compose.sh checks that they match).
//
//   node docker/compose-gen.mjs [--nodes N] [--stack user|kernel] [--mode M] [--out FILE]
//   node docker/compose-gen.mjs --check docker-compose.yml     exit 1 when it differs
//
// Plain Node.js; formats with the project's prettier when node_modules has it, so the output
// passes `prettier --check`.
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const SUBNET = "198.18.0.0/24";
// Docker gives the bridge gateway an address of the subnet (its default is .1, which the
// testbed uses for the dispatcher), so the gateway is put on .254; with inhibit_ipv4 the host
// does not get it anyway.
const GATEWAY = "198.18.0.254";
const VIP = "198.18.100.1";
const DISPATCHER = "198.18.0.1";
const ORIGIN = "198.18.0.2";
const CLIENT = "198.18.0.101";
const MAX_NODES = 60; // .11 .. .70, as in the testbed
const ORIGIN_PORT = 8000;
const NODE_HTTP_PORT = 8080; // --stack kernel only; the user stack serves port 80 of the VIP
const NODE_ADMIN_PORT = 9080; // the node's own default and `sc-cluster up`'s
const DISPATCHER_ADMIN_PORT = 9100;

const nodeAddress = (k) => `198.18.0.${10 + k}`;
// HTTPS: the demo CA and the VIP's certificate, made by the first TUN host to start
// (docker/entrypoint.sh, `sc-cluster certs`) in the "tls" volume; the client trusts ca.crt.
const TLS_DIR = "/run/sc-tls/demo";

// The node's command line. `--stack user` is the cluster proper: the node's own TCP stack on
// its TUN takes client packets in GUE (UDP 6080) from the dispatcher and answers with the VIP
// as source (direct return); --peer lists every member (SC messages, GUE between nodes).
// `--stack kernel` (node:net) serves on the node's own address only (port 8080), without the
// dispatcher: for hosts whose nodes cannot have a TUN.
function nodeCommand(k, n, { stack, mode }) {
  const ip = nodeAddress(k);
  const source = ["--origin", `http://${ORIGIN}:${ORIGIN_PORT}`];
  const common = ["--admin", `${ip}:${NODE_ADMIN_PORT}`, "--node-id", `node${k}`, "--cache-bytes", "64M"];
  if (stack === "kernel") {
    return [
      "node",
      "--stack",
      "kernel",
      "--listen",
      `${ip}:${NODE_HTTP_PORT}`,
      ...source,
      ...common,
      "--mode",
      mode,
    ];
  }
  const peers = [];
  for (let j = 1; j <= n; j++) peers.push("--peer", `node${j}=${nodeAddress(j)}`);
  return [
    "node",
    "--stack",
    "user",
    "--vip",
    VIP,
    "--tun",
    "sctun",
    "--gue-allow",
    DISPATCHER,
    ...source,
    ...common,
    "--mode",
    mode,
    ...peers,
    "--tls-cert",
    `${TLS_DIR}/server.crt`,
    "--tls-key",
    `${TLS_DIR}/server.key`,
  ];
}

function dispatcherCommand(n) {
  const nodes = [];
  for (let k = 1; k <= n; k++) {
    nodes.push("--node", `node${k}=${nodeAddress(k)},admin=http://${nodeAddress(k)}:${NODE_ADMIN_PORT}`);
  }
  // --source: the outer address the nodes' --gue-allow names.
  return [
    "dispatcher",
    "--vip",
    VIP,
    "--source",
    DISPATCHER,
    "--admin",
    `${DISPATCHER}:${DISPATCHER_ADMIN_PORT}`,
    "--port",
    "80,443",
    ...nodes,
  ];
}

// A command as a folded scalar: one option (with its value) after another, several to a line.
// Compose splits the string into words like a shell would (no shell runs); none has spaces.
function command(words) {
  const groups = [];
  for (const w of words) {
    if (groups.length === 0 || w.startsWith("--")) groups.push([w]);
    else groups[groups.length - 1].push(w);
  }
  const lines = [];
  for (const g of groups.map((g) => g.join(" "))) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + g.length <= 96) lines[last] += ` ${g}`;
    else lines.push(g);
  }
  return `    command: >-\n${lines.map((l) => `      ${l}\n`).join("")}`;
}

const q = (s) => JSON.stringify(String(s));
const flow = (items) => `[${items.map(q).join(", ")}]`;
const healthcheck = (test) => `    healthcheck:\n      <<: *health\n      test: ${flow(test)}\n`;
const address = (ip) => `    networks:\n      sclan:\n        ipv4_address: ${ip}\n`;

// The nodes' cluster mode: Socket Cloning (test-compose.sh then checks the clone counters).
export const DEFAULT_MODE = "sc";

export function generate({ nodes = 4, stack = "user", mode = DEFAULT_MODE } = {}) {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) {
    throw new Error(`--nodes must be 1..${MAX_NODES}`);
  }
  if (stack !== "kernel" && stack !== "user") throw new Error("--stack must be kernel or user");
  const args = [`--nodes ${nodes}`];
  if (stack !== "user") args.push(`--stack ${stack}`);
  if (mode !== DEFAULT_MODE) args.push(`--mode ${mode}`);

  let y = `# sc-cluster on docker compose: origin, dispatcher, node1..node${nodes} and a client on one
# internal network, addresses as in the testbed. GENERATED by
#   node docker/compose-gen.mjs ${args.join(" ")}
# Change the node count (or anything else) there and regenerate. docs/docker.md explains
# every setting; quick start (no registry: see "Local base image" there first):
#   docker-compose up -d --build
#   docker-compose exec client curl -sS http://${ORIGIN}:${ORIGIN_PORT}/
#   docker-compose exec client curl -sS --cacert ${TLS_DIR}/ca.crt https://${VIP}/
# Written for docker-compose v1 (Debian's 1.29) and docker compose v2 alike.
version: "2.4"

# One image for every role; the first word of "command" picks the role (docker/entrypoint.sh).
x-image: &image
  image: \${SC_IMAGE:-sc-cluster:latest}
  build:
    context: .
    # "host" where the docker engine has no bridge/NAT for builds (docker/test-compose.sh).
    network: \${SC_BUILD_NETWORK:-default}
    args:
      BASE: \${SC_BASE_IMAGE:-node:20-bookworm-slim}
  init: true
  stop_grace_period: 10s

# The dispatcher and the nodes own a TUN device (NET_ADMIN and the tun device node to make
# it), forward (VIP -> TUN on the dispatcher; a node's direct-return packets TUN -> eth0) and
# must not filter by reverse path (those packets carry the VIP as source). A new TUN takes
# the "default" values. IPv6 off: no link-local chatter into the TUN.
# They also share the cluster secret (SC links, admin token): the first of them to start
# writes a random one into the "secret" volume (docker/entrypoint.sh); set SC_CLUSTER_SECRET
# in the environment of docker-compose to choose it yourself. Likewise the demo CA and the
# VIP's HTTPS certificate in the "tls" volume (the CA's key is not kept).
x-tun-host: &tun-host
  cap_add: [NET_ADMIN]
  devices: ["/dev/net/tun:/dev/net/tun"]
  environment:
    SC_CLUSTER_SECRET: \${SC_CLUSTER_SECRET:-}
  volumes:
    - secret:/run/sc-secret
    - tls:/run/sc-tls
  sysctls: &tun-sysctls
    net.ipv4.ip_forward: 1
    net.ipv4.conf.all.rp_filter: 0
    net.ipv4.conf.default.rp_filter: 0
    net.ipv4.conf.all.send_redirects: 0
    net.ipv4.conf.default.send_redirects: 0
    net.ipv6.conf.all.disable_ipv6: 1
    net.ipv6.conf.default.disable_ipv6: 1

x-health: &health
  interval: 2s
  timeout: 2s
  retries: 15
  start_period: 30s

services:
  # Document server the nodes fetch from. Makes a small synthetic site (trace, documents,
  # manifest) in the "site" volume on first start unless /site/root exists already.
  origin:
    <<: *image
${command(["origin", "--root", "/site/root", "--listen", `${ORIGIN}:${ORIGIN_PORT}`])}    cap_add: [NET_ADMIN] # only the entrypoint uses it: removes the default route
    environment:
      SC_SYNTH: \${SC_SYNTH:---scale 0.001 --seed 1}
    volumes:
      - site:/site
${address(ORIGIN)}${healthcheck(["CMD", "curl", "-sS", "-o", "/dev/null", "-m", "2", `http://${ORIGIN}:${ORIGIN_PORT}/`])}
  # Owns the VIP (routed into its TUN), spreads connections over the nodes in GUE (UDP 6080).
  dispatcher:
    <<: [*image, *tun-host]
${command(dispatcherCommand(nodes))}    sysctls:
      <<: *tun-sysctls
      # GUE leaves through the TUN with this host's address as source (--output tun).
      net.ipv4.conf.default.accept_local: 1
    depends_on:
${Array.from({ length: nodes }, (_, i) => `      - node${i + 1}\n`).join("")}${address(DISPATCHER)}${healthcheck(["CMD", "curl", "-fsS", "-o", "/dev/null", "-m", "2", `http://${DISPATCHER}:${DISPATCHER_ADMIN_PORT}/healthz`])}`;

  for (let k = 1; k <= nodes; k++) {
    const ip = nodeAddress(k);
    y += `
  node${k}:
    <<: [*image, *tun-host]
${command(nodeCommand(k, nodes, { stack, mode }))}    depends_on:
      origin:
        condition: service_healthy
${address(ip)}${healthcheck(["CMD", "curl", "-fsS", "-o", "/dev/null", "-m", "2", `http://${ip}:${NODE_ADMIN_PORT}/healthz`])}`;
  }

  y += `
  # Load generator and curl; its only route to the VIP is via the dispatcher. The site volume
  # gives it the trace and manifest for verified replays:
  #   docker-compose exec client sc-cluster loadgen --trace /site/trace.log \\
  #     --target http://${VIP} --verify /site/manifest.jsonl --requests 1000
  client:
    <<: *image
    command: ["client"]
    cap_add: [NET_ADMIN] # the entrypoint's routes; the client's commands run without it
    environment:
      SC_VIA: ${DISPATCHER}
    sysctls:
      net.ipv4.conf.all.rp_filter: 0
      net.ipv4.conf.default.rp_filter: 0
    volumes:
      - site:/site:ro
      - tls:/run/sc-tls:ro
    depends_on:
      origin:
        condition: service_healthy
      dispatcher:
        condition: service_healthy
${address(CLIENT)}${healthcheck(["CMD-SHELL", `ip route show ${VIP} | grep -q 'via ${DISPATCHER}'`])}
networks:
  # internal: no route out of the machine; inhibit_ipv4: the host gets no address (and no
  # route) in ${SUBNET}, so the testbed's --expose and the host's own routes are untouched.
  # docs/docker.md has the opt-in for reaching the cluster from the host.
  sclan:
    driver: bridge
    internal: true
    driver_opts:
      com.docker.network.bridge.inhibit_ipv4: "true"
    ipam:
      config:
        - subnet: ${SUBNET}
          gateway: ${GATEWAY}

volumes:
  site:
  secret:
  tls:
`;
  return y;
}

async function format(text) {
  try {
    const prettier = await import("prettier");
    const options = (await prettier.resolveConfig(new URL("../docker-compose.yml", import.meta.url))) ?? {};
    return await prettier.format(text, { ...options, parser: "yaml" });
  } catch (err) {
    if (err?.code !== "ERR_MODULE_NOT_FOUND") throw err;
    return text; // no node_modules: unformatted but equivalent YAML
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      nodes: { type: "string", default: "4" },
      stack: { type: "string", default: "user" },
      mode: { type: "string" },
      out: { type: "string" },
      check: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      readFileSync(new URL(import.meta.url), "utf8")
        .split("\n")
        .slice(1, 10)
        .join("\n"),
    );
    return 0;
  }
  const text = await format(
    generate({
      nodes: Number(values.nodes),
      stack: values.stack,
      ...(values.mode ? { mode: values.mode } : {}),
    }),
  );
  if (values.check) {
    if (readFileSync(values.check, "utf8") === text) return 0;
    console.error(`compose-gen: ${values.check} differs from the generator's output; regenerate it:`);
    console.error(`  node docker/compose-gen.mjs --nodes ${values.nodes} --out ${values.check}`);
    return 1;
  }
  if (values.out && values.out !== "-") writeFileSync(values.out, text);
  else process.stdout.write(text);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => (process.exitCode = code),
    (err) => {
      console.error(`compose-gen: ${err.message}`);
      process.exitCode = 2;
    },
  );
}
