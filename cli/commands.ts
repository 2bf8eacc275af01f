// Registration of implemented subcommands (each loaded lazily so --help is fast).
import { registerCommand } from "./main.js";

void registerCommand;
registerCommand(
  "node",
  "Run a cluster node: static HTTP server with its document cache",
  async () => (await import("./node.js")).command,
);
registerCommand(
  "origin",
  "Run the origin file server nodes fetch from",
  async () => (await import("./origin.js")).command,
);
registerCommand(
  "testbed",
  "Bring the network-namespace testbed up or down, or show it",
  async () => (await import("./testbed.js")).command,
);
registerCommand(
  "site",
  "Build a document root and replay manifest from a trace",
  async () => (await import("./site.js")).command,
);
registerCommand(
  "loadgen",
  "Replay a trace (or hammer one URL) against an HTTP server, verifying responses",
  async () => (await import("./loadgen.js")).command,
);
registerCommand(
  "trace",
  "Synthesize a trace and document root, or summarize a trace",
  async () => (await import("./trace.js")).command,
);
registerCommand(
  "dispatcher",
  "Run the layer-4 dispatcher: VIP on a TUN device, connections spread over the nodes in GUE",
  async () => (await import("./dispatcher.js")).command,
);
registerCommand(
  "up",
  "Start the local cluster (testbed, origin, dispatcher, N nodes) with one command",
  async () => (await import("./up.js")).command,
);
registerCommand(
  "status",
  "Show the local cluster: hosts, processes, control API URLs, health",
  async () => (await import("./status.js")).command,
);
registerCommand(
  "down",
  "Stop the local cluster and remove its testbed (idempotent)",
  async () => (await import("./down.js")).command,
);
registerCommand(
  "secret",
  "Make a new cluster secret for --secret-file",
  async () => (await import("./secret.js")).command,
);
registerCommand(
  "bench",
  "Reproduce the paper's Figures 8 (micro) and 9 (trace) on the testbed against nginx and haproxy",
  async () => (await import("./bench.js")).command,
);
registerCommand(
  "purge",
  "Drop cached documents (a URL, a prefix or all) on every node",
  async () => (await import("./purge.js")).command,
);
registerCommand(
  "members",
  "List, add, drain or remove nodes of a running cluster (the dispatcher's membership)",
  async () => (await import("./members.js")).command,
);
registerCommand(
  "chaos",
  "Replay the demo trace against a fresh cluster while injecting faults on a seeded schedule",
  async () => (await import("./chaos.js")).command,
);
