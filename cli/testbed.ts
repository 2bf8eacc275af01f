// `sc-cluster testbed up|down|status`: the network-namespace testbed from the command line.
import {
  UsageError,
  bool,
  optStr,
  parseCommand,
  type CommandSpec,
  type ParsedValues,
} from "../common/args.js";
import type { Command } from "./command.js";
import {
  DEFAULT_PREFIX,
  MAX_NODES,
  createTestbed,
  destroyTestbed,
  formatStatus,
  readTestbedStatus,
} from "../testbed/index.js";
import { EXIT } from "../common/errors.js";

const spec: CommandSpec = {
  name: "testbed",
  summary: "Bring a multi-host testbed of network namespaces up or down, or show it",
  usage: "sc-cluster testbed <up|down|status> [options]",
  allowPositionals: true,
  options: {
    nodes: { type: "string", value: "N", help: `up: number of server nodes, 1..${MAX_NODES} (default 3)` },
    clients: { type: "string", value: "C", help: "up: number of client hosts (default 1)" },
    rate: {
      type: "string",
      value: "RATE",
      help: "up: shape every host link both ways, e.g. 100mbit, 10mbit",
    },
    loss: {
      type: "string",
      value: "PERCENT",
      help: "up: drop this percentage of packets on every link, e.g. 1",
    },
    expose: { type: "boolean", help: "up: add a link from this host into the LAN and a route to the VIP" },
    "vip-host": {
      type: "string",
      value: "HOST",
      help: "up: host whose TUN gets the VIP: dispatcher or nodeK (default dispatcher)",
    },
    prefix: {
      type: "string",
      value: "PREFIX",
      help: "name prefix of the namespaces and links",
      default: DEFAULT_PREFIX,
    },
    json: { type: "boolean", help: "status: print the topology as JSON" },
  },
  epilog: [
    "Subcommands:",
    "  up       create the testbed (removes leftovers of an earlier run with the same prefix first)",
    "  down     remove every namespace, link, rule and process of the testbed (works without state)",
    "  status   show the hosts and addresses; exit code 1 when no testbed with this prefix is up",
    "",
    "Hosts: client (198.18.0.101), dispatcher (.1), origin (.2), node1..N (.11..); VIP 198.18.100.1.",
    "Run a command in a host: ip netns exec <prefix><host> <command>, e.g. ip netns exec sc-client ping 198.18.0.11",
  ].join("\n"),
};

const UP_ONLY = ["nodes", "clients", "rate", "loss", "expose", "vip-host"];

function wholeNumber(v: ParsedValues, name: string): number | undefined {
  const raw = optStr(v, name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new UsageError(`--${name} must be a whole number, got '${raw}'`);
  return Number(raw);
}

function percent(v: ParsedValues, name: string): number | undefined {
  const raw = optStr(v, name);
  if (raw === undefined) return undefined;
  const n = Number(raw.replace(/%$/, ""));
  if (raw.trim() === "" || !Number.isFinite(n))
    throw new UsageError(`--${name} must be a percentage, got '${raw}'`);
  return n;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : word.endsWith("s") ? "es" : "s"}`;
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(spec, argv);
  const [sub, ...extra] = positionals;
  if (!sub || extra.length > 0)
    throw new UsageError(
      "testbed: give one subcommand: up, down or status\nTry 'sc-cluster testbed --help'.",
    );
  const prefix = optStr(values, "prefix") ?? DEFAULT_PREFIX;
  if (sub !== "up") {
    const misplaced = UP_ONLY.filter((o) => values[o] !== undefined);
    if (misplaced.length > 0) throw new UsageError(`testbed ${sub}: --${misplaced[0]} applies to 'up' only`);
  }
  if (sub !== "status" && bool(values, "json"))
    throw new UsageError(`testbed ${sub}: --json applies to 'status' only`);

  switch (sub) {
    case "up": {
      const tb = createTestbed({
        prefix,
        nodes: wholeNumber(values, "nodes"),
        clients: wholeNumber(values, "clients"),
        rate: optStr(values, "rate"),
        loss: percent(values, "loss"),
        expose: bool(values, "expose"),
        vipHost: optStr(values, "vip-host"),
      });
      const started = Date.now();
      await tb.up();
      console.log(formatStatus(tb.status()));
      console.log(
        `\nup in ${((Date.now() - started) / 1000).toFixed(1)} s. ` +
          `Run a command in a host: ip netns exec ${tb.host("client").netns} ping -c 3 ${tb.host("node1").ip}\n` +
          `Remove it: sc-cluster testbed down${prefix === DEFAULT_PREFIX ? "" : ` --prefix ${prefix}`}`,
      );
      return EXIT.ok;
    }
    case "down": {
      const r = await destroyTestbed(prefix);
      if (r.netns.length === 0 && !r.exposeLink) console.log(`no testbed '${prefix}' to remove`);
      else
        console.log(
          `removed testbed '${prefix}': ${plural(r.netns.length, "namespace")}, ${plural(r.pids.length, "process")}` +
            (r.exposeLink ? ", the expose link" : ""),
        );
      return EXIT.ok;
    }
    case "status": {
      const s = await readTestbedStatus(prefix);
      if (!s) {
        const hint = prefix === DEFAULT_PREFIX ? "" : ` --prefix ${prefix}`;
        console.error(
          `sc-cluster testbed: no testbed '${prefix}' is up (start one: sc-cluster testbed up${hint})`,
        );
        return EXIT.failed;
      }
      console.log(bool(values, "json") ? JSON.stringify(s, null, 2) : formatStatus(s));
      return EXIT.ok;
    }
    default:
      throw new UsageError(`testbed: unknown subcommand '${sub}' (up, down or status)`);
  }
}

export const command: Command = { spec, run };
export default command;
