// `sc-cluster down`: stop a cluster started by `up` (running, detached or crashed) and remove
// its testbed. Idempotent.
import { UsageError, optStr, parseCommand, type CommandSpec } from "../common/args.js";
import type { Command } from "./command.js";
import { destroyCluster } from "../cluster/index.js";
import { DEFAULT_PREFIX } from "../testbed/topology.js";
import { EXIT } from "../common/errors.js";

const spec: CommandSpec = {
  name: "down",
  summary: "Stop the local cluster and remove its testbed, logs and state (idempotent)",
  usage: "sc-cluster down [--prefix P] [--grace MS]",
  options: {
    prefix: {
      type: "string",
      value: "PREFIX",
      help: "Name prefix the cluster was started with",
      default: DEFAULT_PREFIX,
    },
    grace: {
      type: "string",
      value: "MS",
      help: "Time the processes get after SIGTERM before SIGKILL",
      default: "5000",
    },
  },
  epilog: [
    "Stops the processes `up` recorded (only while the PID still names the same process in the",
    "cluster's namespace), then every other process inside the testbed's namespaces, then removes the",
    "namespaces, the expose link, the state files and /run/sc-cluster/<prefix>/ (default logs, demo site).",
    "Works without any state file (after a crash, or `kill -9` of `up`): everything is found by name.",
  ].join("\n"),
};

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : word.endsWith("s") ? "es" : "s"}`;
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(spec, argv);
  if (positionals.length > 0) throw new UsageError(`down: unexpected argument '${positionals[0]}'`);
  const prefix = optStr(values, "prefix") ?? DEFAULT_PREFIX;
  const grace = optStr(values, "grace")!;
  if (!/^\d+$/.test(grace)) throw new UsageError(`--grace must be a whole number of ms, got '${grace}'`);
  const r = await destroyCluster(prefix, { graceMs: Number(grace) });
  const pids = new Set([...r.processes, ...r.pids]);
  if (r.netns.length === 0 && !r.exposeLink && !r.dir && pids.size === 0)
    console.log(`no cluster '${prefix}' to remove`);
  else
    console.log(
      `removed cluster '${prefix}': ${plural(pids.size, "process")}, ${plural(r.netns.length, "namespace")}` +
        (r.exposeLink ? ", the expose link" : "") +
        (r.dir ? ", its state and logs" : ""),
    );
  return EXIT.ok;
}

export const command: Command = { spec, run };
export default command;
