// `sc-cluster chaos`: a cluster as `up` starts it, a verified trace replay against it, and
// faults injected on a seeded schedule (cluster/chaos/). Prints the timeline as it goes,
// writes report.json, timeline.txt and timeline.svg; exit 1 when the client saw something
// docs/reliability.md does not allow.
import { UsageError, int, list, num, optStr, parseCommand, type CommandSpec } from "../common/args.js";
import type { Command } from "./command.js";
import { DEFAULT_CHAOS_PREFIX, runChaos } from "../cluster/chaos/runner.js";
import { FAULT_KINDS, isFaultKind, type FaultKind } from "../cluster/chaos/schedule.js";
import { MAX_NODES } from "../testbed/topology.js";
import { EXIT } from "../common/errors.js";

const spec: CommandSpec = {
  name: "chaos",
  summary:
    "Replay the demo trace against a fresh cluster while killing, freezing and cutting it on a seeded schedule",
  usage: "sc-cluster chaos [--duration S] [--faults N] [--seed N] [--rate R] [--out DIR] [options]",
  options: {
    nodes: { type: "string", value: "N", help: `Server nodes, 1..${MAX_NODES}`, default: "3" },
    mode: { type: "string", value: "MODE", help: "Cluster mode of every node", default: "local" },
    scheduler: {
      type: "string",
      value: "NAME",
      help: "Dispatcher scheduler (mh keeps connections across a dispatcher restart)",
      default: "mh",
    },
    "cache-bytes": { type: "string", value: "SIZE", help: "Document cache of each node", default: "256M" },
    duration: { type: "string", value: "S", help: "Length of the replay, seconds", default: "120" },
    faults: { type: "string", value: "N", help: "At most this many faults", default: "8" },
    kinds: {
      type: "string",
      value: "K1,K2,..",
      help: `Fault kinds to inject (default all: ${FAULT_KINDS.join(", ")})`,
    },
    seed: { type: "string", value: "N", help: "Seed of the fault schedule", default: "1" },
    rate: {
      type: "string",
      value: "R",
      help: "Open loop: requests per second in total (default: closed loop)",
    },
    conns: { type: "string", value: "M", help: "Keep-alive connections of the replay", default: "16" },
    timeout: {
      type: "string",
      value: "MS",
      help: "Per-request timeout of the replay (above twice a dispatcher outage: see docs/reliability.md)",
      default: "30000",
    },
    settle: {
      type: "string",
      value: "A..B",
      help: "Quiet seconds after each fault before the next (drawn per fault)",
      default: "12..20",
    },
    warmup: { type: "string", value: "S", help: "Quiet seconds before the first fault", default: "10" },
    prefix: {
      type: "string",
      value: "PREFIX",
      help: "Names the cluster's namespaces (its own, so it never meets `up`'s or the tests')",
      default: DEFAULT_CHAOS_PREFIX,
    },
    out: {
      type: "string",
      value: "DIR",
      help: "Write report.json, timeline.txt, timeline.svg and the processes' logs (logs/) here",
      default: "chaos-report",
    },
  },
  epilog: [
    "Faults (one at a time, each followed by a settle time; every one undone however the run ends):",
    "  node_kill           kill -9 of a node, restarted after 2-5 s",
    "  node_stop           SIGSTOP of a node, SIGCONT after 1-4 s",
    "  dispatcher_restart  kill -9 of the dispatcher, restarted after 0.5-2 s",
    "  link_loss           5-20% of the packets on one node's link dropped for 3-8 s (nftables, switch namespace)",
    "  origin_stop         SIGSTOP of the origin, SIGCONT after 2-5 s",
    '  purge               every cached document dropped on every node (POST /purge {"all":true} to a node)',
    "Every response is verified against the demo site's manifest. Each error is laid at the fault in",
    "whose window it fell; only node_kill may cost errors (docs/reliability.md). Needs root; the",
    "cluster is removed at the end.",
  ].join("\n"),
};

function range(text: string, what: string): [number, number] {
  const m = /^(\d+(?:\.\d+)?)\.\.(\d+(?:\.\d+)?)$/.exec(text.trim());
  if (!m || Number(m[1]) > Number(m[2]))
    throw new UsageError(`${what} must be A..B with A <= B, got '${text}'`);
  return [Number(m[1]), Number(m[2])];
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(spec, argv);
  if (positionals.length > 0) throw new UsageError(`chaos: unexpected argument '${positionals[0]}'`);
  const kinds: FaultKind[] = [];
  for (const k of list(values, "kinds").flatMap((x) => x.split(","))) {
    if (!isFaultKind(k)) throw new UsageError(`--kinds: unknown fault '${k}' (${FAULT_KINDS.join(", ")})`);
    kinds.push(k);
  }
  const rateText = optStr(values, "rate");
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const report = await runChaos({
      prefix: optStr(values, "prefix")!,
      nodes: int(values, "nodes", 1, MAX_NODES),
      mode: optStr(values, "mode")!,
      scheduler: optStr(values, "scheduler")!,
      cacheBytes: optStr(values, "cache-bytes")!,
      seed: int(values, "seed"),
      durationS: num(values, "duration", 1, 7 * 86400),
      maxFaults: int(values, "faults", 0, 100_000),
      ...(kinds.length ? { kinds } : {}),
      ...(rateText !== undefined ? { rate: num(values, "rate", 0.1, 1_000_000) } : {}),
      conns: int(values, "conns", 1, 10_000),
      timeoutMs: int(values, "timeout", 1, 3_600_000),
      schedule: {
        settleS: range(optStr(values, "settle")!, "--settle"),
        warmupS: num(values, "warmup", 0, 86400),
      },
      outDir: optStr(values, "out")!,
      signal: abort.signal,
      onLine: (l) => console.log(l),
    });
    const s = report.summary;
    console.log(
      `\nchaos ${report.partial ? "(PARTIAL: " + report.stoppedBy + ") " : ""}: ${s.requests} requests, ${s.ok} ok, ` +
        `${s.errors} errors ${JSON.stringify(s.errorsByKind)}, ${s.verifyFailures} verification failures; ` +
        `${s.faults} faults ${JSON.stringify(s.faultsByKind)}, without errors: ${JSON.stringify(s.faultsWithoutErrorsByKind)}`,
    );
    for (const c of s.byCause)
      console.log(
        `  errors during ${c.cause}: ${c.errors} ${JSON.stringify(c.errorsByKind)}${c.allowed ? " (allowed)" : " (NOT allowed)"}`,
      );
    console.log(`  report: ${optStr(values, "out")}/report.json, timeline.txt, timeline.svg`);
    if (s.violations.length) {
      console.log("violations of docs/reliability.md:");
      for (const v of s.violations) console.log(`  - ${v}`);
      return EXIT.failed;
    }
    return EXIT.ok;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

export const command: Command = { spec, run };
export default command;
