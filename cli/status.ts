// `sc-cluster status`: the cluster's hosts, processes and their health.
import { UsageError, bool, optStr, parseCommand, type CommandSpec } from "../common/args.js";
import type { Command } from "./command.js";
import { formatClusterStatus, readClusterStatus } from "../cluster/index.js";
import { DEFAULT_PREFIX } from "../testbed/topology.js";
import { EXIT } from "../common/errors.js";

const spec: CommandSpec = {
  name: "status",
  summary: "Show the local cluster: hosts, addresses, processes, control API URLs and health",
  usage: "sc-cluster status [--json] [--prefix P]",
  options: {
    json: { type: "boolean", help: "Print the status document as JSON" },
    prefix: {
      type: "string",
      value: "PREFIX",
      help: "Name prefix the cluster was started with",
      default: DEFAULT_PREFIX,
    },
  },
  epilog: [
    "The JSON is the testbed's document (testbed status --json) with `admin` (control API URL, reachable",
    "from the client host) and `pid` on every host that runs a process, plus `cluster`: settings, the",
    "VIP check and per-process health (probed from the client host). Exit code 1 when nothing is up.",
  ].join("\n"),
};

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(spec, argv);
  if (positionals.length > 0) throw new UsageError(`status: unexpected argument '${positionals[0]}'`);
  const prefix = optStr(values, "prefix") ?? DEFAULT_PREFIX;
  const s = await readClusterStatus(prefix, { probe: true });
  if (!s) {
    const hint = prefix === DEFAULT_PREFIX ? "" : ` --prefix ${prefix}`;
    console.error(`sc-cluster status: no cluster '${prefix}' is up (start one: sc-cluster up${hint})`);
    return EXIT.failed;
  }
  console.log(bool(values, "json") ? JSON.stringify(s, null, 2) : formatClusterStatus(s));
  return EXIT.ok;
}

export const command: Command = { spec, run };
export default command;
