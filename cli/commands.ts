// The subcommands of `sc-cluster`, as one static table; each module is loaded only when its
// command runs, so --help is fast. Only implemented commands are listed here, so --help never
// shows something that does not work.
import type { Command } from "./command.js";

export interface CommandEntry {
  /** One line for the top-level --help. */
  readonly summary: string;
  readonly load: () => Promise<Command>;
}

export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  node: {
    summary: "Run a cluster node: static HTTP server with its document cache",
    load: async () => (await import("./node.js")).command,
  },
  origin: {
    summary: "Run the origin file server nodes fetch from",
    load: async () => (await import("./origin.js")).command,
  },
  testbed: {
    summary: "Bring the network-namespace testbed up or down, or show it",
    load: async () => (await import("./testbed.js")).command,
  },
  site: {
    summary: "Build a document root and replay manifest from a trace",
    load: async () => (await import("./site.js")).command,
  },
  loadgen: {
    summary: "Replay a trace (or hammer one URL) against an HTTP server, verifying responses",
    load: async () => (await import("./loadgen.js")).command,
  },
  trace: {
    summary: "Synthesize a trace and document root, or summarize a trace",
    load: async () => (await import("./trace.js")).command,
  },
  dispatcher: {
    summary: "Run the layer-4 dispatcher: VIP on a TUN device, connections spread over the nodes in GUE",
    load: async () => (await import("./dispatcher.js")).command,
  },
  up: {
    summary: "Start the local cluster (testbed, origin, dispatcher, N nodes) with one command",
    load: async () => (await import("./up.js")).command,
  },
  status: {
    summary: "Show the local cluster: hosts, processes, control API URLs, health",
    load: async () => (await import("./status.js")).command,
  },
  down: {
    summary: "Stop the local cluster and remove its testbed (idempotent)",
    load: async () => (await import("./down.js")).command,
  },
  secret: {
    summary: "Make a new cluster secret for --secret-file",
    load: async () => (await import("./secret.js")).command,
  },
  certs: {
    summary: "Make a demo CA and a server certificate for HTTPS on the VIP (openssl)",
    load: async () => (await import("./certs.js")).command,
  },
  bench: {
    summary: "Reproduce the paper's Figures 8 (micro) and 9 (trace) on the testbed against nginx and haproxy",
    load: async () => (await import("./bench.js")).command,
  },
  purge: {
    summary: "Drop cached documents (a URL, a prefix or all) on every node",
    load: async () => (await import("./purge.js")).command,
  },
  members: {
    summary: "List, add, drain or remove nodes of a running cluster (the dispatcher's membership)",
    load: async () => (await import("./members.js")).command,
  },
  chaos: {
    summary: "Replay the demo trace against a fresh cluster while injecting faults on a seeded schedule",
    load: async () => (await import("./chaos.js")).command,
  },
};
