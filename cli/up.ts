// `sc-cluster up`: the whole local cluster (testbed, origin, dispatcher, N nodes) with one
// command; runs until Ctrl-C/SIGTERM, or returns once healthy with --detach. cluster/ does the work.
import { existsSync } from "node:fs";
import { UsageError, bool, optStr, parseCommand, type CommandSpec, type ParsedValues } from "./args.js";
import type { Command } from "./command.js";
import {
  DEFAULT_MODE,
  DEFAULT_NODES,
  DEFAULT_SCHEDULER,
  clusterDir,
  formatClusterStatus,
  parseByteSize,
  readClusterStatus,
  startCluster,
  type Cluster,
} from "../cluster/index.js";
import { logTail } from "../cluster/processes.js";
import { recordPath } from "../cluster/state.js";
import { pidsInNetns } from "../testbed/netns.js";
import { DEFAULT_PREFIX, MAX_NODES } from "../testbed/topology.js";

const spec: CommandSpec = {
  name: "up",
  summary: "Start a local cluster in network namespaces: origin, dispatcher and N nodes behind the VIP",
  usage: "sc-cluster up [--nodes N] [--mode M] [--site DIR] [--detach] [options]",
  options: {
    nodes: {
      type: "string",
      value: "N",
      help: `Server nodes, 1..${MAX_NODES}`,
      default: String(DEFAULT_NODES),
    },
    mode: {
      type: "string",
      value: "MODE",
      help: "Cluster mode of every node (see `sc-cluster node --help` for the modes it supports)",
      default: DEFAULT_MODE,
    },
    site: {
      type: "string",
      value: "DIR",
      help: "Document root the origin serves (default: a small demo site with a trace and manifest)",
    },
    "cache-bytes": {
      type: "string",
      value: "SIZE",
      help: "Document cache of each node (K/M/G suffixes)",
      default: "256M",
    },
    scheduler: {
      type: "string",
      value: "NAME",
      help: "Dispatcher scheduler: rr, wrr, lc, wlc, sh or mh",
      default: DEFAULT_SCHEDULER,
    },
    weights: { type: "string", value: "W1,W2,...", help: "Dispatcher weight of each node (default 1 each)" },
    rate: { type: "string", value: "RATE", help: "Shape every host link both ways, e.g. 100mbit" },
    loss: { type: "string", value: "PERCENT", help: "Drop this percentage of packets on every link" },
    clients: { type: "string", value: "C", help: "Client hosts (client, client2, ...)", default: "1" },
    expose: { type: "boolean", help: "Reach the LAN and the VIP from this machine's root namespace too" },
    prefix: {
      type: "string",
      value: "PREFIX",
      help: "Name prefix of the namespaces, links and state files",
      default: DEFAULT_PREFIX,
    },
    detach: {
      type: "boolean",
      help: "Return once healthy and leave the cluster running (stop it: sc-cluster down)",
    },
    "log-dir": {
      type: "string",
      value: "DIR",
      help: "Where the processes log (default: /run/sc-cluster/<prefix>/, removed by down)",
    },
    timeout: {
      type: "string",
      value: "S",
      help: "Seconds every process gets to become healthy",
      default: "60",
    },
    json: { type: "boolean", help: "Once healthy, print the status document (as `status --json`) on stdout" },
  },
  epilog: [
    "Makes the testbed (sc-cluster testbed), starts the origin in host 'origin' (198.18.0.2:8000), nodes",
    "node1..N (our TCP stack on their TUN, GUE from the dispatcher, control API on 198.18.0.(10+K):9080), then",
    "the dispatcher (VIP 198.18.100.1:80, admin 198.18.0.1:9100); waits until every health check passes and",
    "the VIP answers a request from the client host. Ctrl-C or SIGTERM stops everything and removes the",
    "testbed. A process that fails to start is named with the last lines of its log, and everything is",
    "removed again. Progress goes to stderr. See docs/cluster.md.",
  ].join("\n"),
};

function numberOpt(v: ParsedValues, name: string, whole: boolean): number | undefined {
  const raw = optStr(v, name);
  if (raw === undefined) return undefined;
  const n = Number(raw.replace(/%$/, ""));
  if (raw.trim() === "" || !Number.isFinite(n) || (whole && !Number.isInteger(n)))
    throw new UsageError(`--${name} must be a ${whole ? "whole number" : "number"}, got '${raw}'`);
  return n;
}

function weightsOpt(v: ParsedValues): number[] | undefined {
  const raw = optStr(v, "weights");
  if (raw === undefined) return undefined;
  return raw.split(",").map((w) => {
    if (!/^\d+$/.test(w.trim()))
      throw new UsageError(`--weights must be whole numbers separated by commas, got '${raw}'`);
    return Number(w);
  });
}

/** Resolves on the first SIGINT/SIGTERM (the handlers stay, so later ones do not kill us mid-stop). */
function signals(onSignal: (s: NodeJS.Signals) => void): () => void {
  const handler = (s: NodeJS.Signals) => onSignal(s);
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}

function howToReach(c: Cluster, prefix: string): string {
  const ns = c.testbed.host("client").netns;
  const p = prefix === DEFAULT_PREFIX ? "" : ` --prefix ${prefix}`;
  const d = c.process("dispatcher");
  const n1 = c.process("node1");
  const lines = [
    "",
    "Reach it from the client host:",
    `  ip netns exec ${ns} curl ${c.vipUrl}`,
    `  ip netns exec ${ns} curl ${d.admin}/nodes          # dispatcher admin (stats, metrics, nodes)`,
    `  ip netns exec ${ns} curl ${n1.admin}/stats        # node1 control API (healthz, stats, metrics)`,
  ];
  if (c.demo)
    lines.push(
      `  ip netns exec ${ns} npx sc-cluster loadgen --trace ${c.demo.trace} --target ${c.vipUrl.replace(/\/$/, "")} \\`,
      `      --verify ${c.demo.manifest} --requests 2000`,
    );
  if (c.testbed.plan.expose)
    lines.push(`From this machine too (--expose): curl ${c.vipUrl}   curl ${d.admin}/nodes`);
  lines.push(`Status: sc-cluster status${p}    Stop: sc-cluster down${p}    Logs: ${c.logDir}/<host>.log`);
  return lines.join("\n");
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(spec, argv);
  if (positionals.length > 0) throw new UsageError(`up: unexpected argument '${positionals[0]}'`);
  const prefix = optStr(values, "prefix") ?? DEFAULT_PREFIX;
  const detach = bool(values, "detach");
  const json = bool(values, "json");
  const cacheRaw = optStr(values, "cache-bytes")!;
  try {
    parseByteSize(cacheRaw);
  } catch (err) {
    throw new UsageError(`--cache-bytes: ${(err as Error).message}`);
  }
  const timeoutS = numberOpt(values, "timeout", false)!;
  if (!(timeoutS > 0)) throw new UsageError("--timeout must be a positive number of seconds");

  // Leftovers of a crashed cluster are cleaned by startCluster; a running one is not replaced
  // behind its user's back.
  const existing = await readClusterStatus(prefix);
  const hint = `stop it with 'sc-cluster down${prefix === DEFAULT_PREFIX ? "" : ` --prefix ${prefix}`}' or pick another --prefix`;
  const live = existing?.cluster?.processes.filter((p) => p.running) ?? [];
  if (live.length > 0)
    throw new UsageError(
      `up: cluster '${prefix}' is already running (${live.map((x) => `${x.host} pid ${x.pid}`).join(", ")}); ${hint}`,
    );
  if (existing && !existing.cluster) {
    // A testbed made by `testbed up`, maybe with processes someone started in it by hand.
    const inside = [...(await pidsInNetns(existing.hosts.map((h) => h.netns))).values()].flat();
    if (inside.length > 0)
      throw new UsageError(
        `up: testbed '${prefix}' is up with ${inside.length} process(es) in it (pids ${inside.join(", ")}); ${hint}`,
      );
  }

  const abort = new AbortController();
  let stopRequested: (s: NodeJS.Signals) => void = () => {};
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => (stopRequested = resolve));
  let signalled = 0;
  const removeHandlers = signals((s) => {
    signalled++;
    if (signalled === 1) {
      abort.abort();
      stopRequested(s);
    } else console.error("sc-cluster up: stopping, please wait (processes get SIGKILL after a grace period)");
  });
  try {
    const started = Date.now();
    const cluster = await startCluster({
      prefix,
      nodes: numberOpt(values, "nodes", true),
      clients: numberOpt(values, "clients", true),
      mode: optStr(values, "mode"),
      site: optStr(values, "site"),
      rate: optStr(values, "rate"),
      loss: numberOpt(values, "loss", false),
      expose: bool(values, "expose"),
      cacheBytes: cacheRaw,
      scheduler: optStr(values, "scheduler"),
      weights: weightsOpt(values),
      logDir: optStr(values, "log-dir"),
      startTimeoutMs: timeoutS * 1000,
      signal: abort.signal,
      onProgress: (m) => console.error(`sc-cluster up: ${m}`),
    });
    if (detach) await cluster.detach();
    const status = await cluster.status();
    if (detach) await cluster.close();
    if (json) console.log(JSON.stringify(status, null, 2));
    else {
      console.log(formatClusterStatus(status));
      console.log(howToReach(cluster, prefix));
    }
    console.error(
      `sc-cluster up: cluster '${prefix}' healthy in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    if (detach) {
      console.error(
        `sc-cluster up: detached; the cluster keeps running (sc-cluster down${prefix === DEFAULT_PREFIX ? "" : ` --prefix ${prefix}`} stops it)`,
      );
      return 0;
    }
    console.error("sc-cluster up: running; Ctrl-C stops the cluster and removes the testbed");

    // Someone ran `sc-cluster down` for this prefix: its state file goes, and so do we.
    const record = recordPath(clusterDir(prefix));
    let stopping = false;
    cluster.onExit((e) => {
      // A moment later: if `down` ran elsewhere, the state is gone and there is nothing to report.
      setTimeout(() => {
        if (stopping || !existsSync(record)) return;
        const how = e.signal ?? `code ${e.code}`;
        if (e.code === 0) {
          console.error(`sc-cluster up: ${e.host} (pid ${e.pid}) was stopped from outside (${how})`);
          return;
        }
        void logTail(e.log, 10).then((tail) =>
          console.error(
            `sc-cluster up: ${e.host} (pid ${e.pid}) ended (${how}) while running` +
              (e.role === "node" ? "; the dispatcher takes it out of scheduling" : "") +
              (tail ? `. Last lines of ${e.log}:\n${tail.replace(/^/gm, "  | ")}` : ""),
          ),
        );
      }, 1000).unref();
    });
    const removedElsewhere = new Promise<"down">((resolve) => {
      const t = setInterval(() => {
        if (!existsSync(record)) {
          clearInterval(t);
          resolve("down");
        }
      }, 1000);
      void stopSignal.then(() => clearInterval(t));
    });
    const why = await Promise.race([stopSignal, removedElsewhere]);
    stopping = true;
    if (why === "down") console.error(`sc-cluster up: cluster '${prefix}' was taken down by another command`);
    else console.error(`sc-cluster up: ${why}: stopping the cluster`);
    const r = await cluster.stop();
    if (why !== "down")
      console.error(
        `sc-cluster up: stopped ${r.processes.length} processes, removed ${r.netns.length} namespaces`,
      );
    return 0;
  } finally {
    removeHandlers();
  }
}

export const command: Command = { spec, run };
export default command;
