// `sc-cluster up`: the whole local cluster (testbed, origin, dispatcher, N nodes) with one
// command; runs until Ctrl-C/SIGTERM, or returns once healthy with --detach. cluster/ does the work;
// the foreground `up` also serves the live dashboard (cluster/dashboard/). `npm start` runs it
// with the first-run settings (package.json).
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { UsageError, optStr, parseCommand, type CommandSpec, type ParsedValues } from "../common/args.js";
import type { Command } from "./command.js";
import {
  DEFAULT_MODE,
  DEFAULT_NODES,
  DEFAULT_SCHEDULER,
  DEFAULT_WORKERS,
  clusterDir,
  formatClusterStatus,
  readClusterStatus,
  startCluster,
  type Cluster,
  type ProcessExit,
} from "../cluster/index.js";
import {
  DEFAULT_DASHBOARD_HOST,
  DEFAULT_DASHBOARD_PORT,
  parseListen,
  startDashboard,
  type Dashboard,
} from "../cluster/dashboard/server.js";
import { logTail } from "../cluster/processes.js";
import { recordPath } from "../cluster/state.js";
import { addonPath } from "../sc/tun/addon.js";
import { pidsInNetns } from "../testbed/netns.js";
import { TestbedEnvironmentError, checkEnvironment } from "../testbed/testbed.js";
import { DEFAULT_PREFIX, MAX_NODES } from "../testbed/topology.js";
import { MAX_NODE_WORKERS } from "../server/node/workers.js";
import { EXIT, UserError } from "../common/errors.js";
import {
  clusterOptionsFrom,
  dashboardHostNames,
  downCommand,
  upOptionsFrom,
  type UpOptions,
} from "./up-options.js";

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
    workers: {
      type: "string",
      value: "N",
      help:
        `Data-path worker threads per node, 1..${MAX_NODE_WORKERS} (sc-cluster node --workers): node TUNs made ` +
        "multi-queue, dispatcher without UDP GSO; not with --mode lard",
      default: String(DEFAULT_WORKERS),
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
    "access-log": {
      type: "boolean",
      help: "Every node writes a combined-format access log to <log-dir>/<host>.access.log (loadgen --trace reads it)",
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
    "no-expose": {
      type: "boolean",
      help: "Do not expose (overrides --expose; for `npm start -- --no-expose`)",
    },
    dashboard: {
      type: "string",
      value: "ADDR:PORT",
      help:
        `Serve the live dashboard here, or 'none' (default ${DEFAULT_DASHBOARD_HOST}:${DEFAULT_DASHBOARD_PORT}, ` +
        "a free port if that one is taken; not with --detach)",
    },
    "dashboard-host": {
      type: "string",
      value: "NAME",
      multiple: true,
      help: "A host name the dashboard answers to besides IP addresses and localhost (Host check against DNS rebinding)",
    },
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
    "no-tls": {
      type: "boolean",
      help: "HTTP only: no demo CA and certificate, no HTTPS on port 443 of the VIP (lard never has HTTPS)",
    },
  },
  epilog: [
    "Makes the testbed (sc-cluster testbed), starts the origin in host 'origin' (198.18.0.2:8000), nodes",
    "node1..N (our TCP stack on their TUN, GUE from the dispatcher, control API on 198.18.0.(10+K):9080), then",
    "the dispatcher (VIP 198.18.100.1:80 and :443, admin 198.18.0.1:9100); waits until every health check passes and",
    "the VIP answers a request from the client host. Ctrl-C or SIGTERM stops everything and removes the",
    "testbed. A process that fails to start is named with the last lines of its log, and everything is",
    "removed again. Progress goes to stderr. See docs/cluster.md.",
    "",
    "While it runs, the dashboard (docs/dashboard.md) shows the topology and, live, each node's requests/s,",
    "clones, cache hit ratio and bytes out, and replays the demo trace on request. `npm start` is",
    "`up --nodes 4 --mode sc --expose`: the demo site at http://198.18.100.1/ from this machine too.",
    "HTTPS: a CA and a certificate for the VIP are made per run (<cluster dir>/tls/ca.crt is what clients",
    "trust); nodes serve TLS 1.3 (and 1.2) on 443 beside HTTP (docs/tls.md); --no-tls leaves it out.",
  ].join("\n"),
};

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

/** What to do when this machine cannot run the cluster (the README's Troubleshooting has more). */
class FirstRunError extends UserError {
  constructor(message: string) {
    super(message, "ERR_FIRST_RUN");
  }
}

const DOCKER_HINT = "or run the cluster in containers with docker compose (docs/docker.md)";

/** Root, tools, /dev/net/tun and the TUN addon, checked before anything is made. */
async function checkMachine(rate: string | undefined, loss: number | undefined): Promise<void> {
  try {
    await checkEnvironment({ rate: rate ?? null, loss: loss ?? 0 });
  } catch (err) {
    if (!(err instanceof TestbedEnvironmentError)) throw err;
    if (/needs root/.test(err.message))
      throw new FirstRunError(
        "needs root: it creates network namespaces, links and TUN devices on this machine.\n" +
          `Run it with sudo (sudo npm start, or sudo npx sc-cluster up), ${DOCKER_HINT}.`,
      );
    throw new FirstRunError(
      `${err.message}\n(scripts/setup-host.sh installs what the cluster needs; ${DOCKER_HINT})`,
    );
  }
  if (!existsSync(addonPath()))
    throw new FirstRunError(
      `the TUN addon is not built (${addonPath()} is missing): run \`npm ci\` (or \`npm run install\`) in ` +
        "the checkout; it needs g++, make and python3 (scripts/setup-host.sh installs them)",
    );
}

/** Whether host:port can be listened on now (so a bad --dashboard fails before the cluster starts). */
function listenable(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", (err: NodeJS.ErrnoException) => resolve(err));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(undefined)));
  });
}

interface DashboardChoice {
  host: string;
  port: number;
}

/** --dashboard: where to listen, or undefined for none. The default port falls back to a free one. */
async function chooseDashboard(v: ParsedValues, detach: boolean): Promise<DashboardChoice | undefined> {
  const raw = optStr(v, "dashboard");
  if (detach) {
    if (raw !== undefined && raw !== "none")
      throw new UsageError(
        "up: --dashboard needs a foreground up (the dashboard is served by it); drop --detach",
      );
    return undefined;
  }
  let listen: ReturnType<typeof parseListen>;
  try {
    listen = parseListen(raw ?? `${DEFAULT_DASHBOARD_HOST}:${DEFAULT_DASHBOARD_PORT}`);
  } catch (err) {
    throw new UsageError(`--dashboard: ${(err as Error).message}`);
  }
  if (listen === "none") return undefined;
  const err = await listenable(listen.host, listen.port);
  if (!err) return listen;
  if (raw === undefined && err.code === "EADDRINUSE") return { host: listen.host, port: 0 };
  throw new UsageError(
    `--dashboard ${raw}: cannot listen there (${err.code ?? err.message}); pick another ADDR:PORT, or none`,
  );
}

function howToReach(c: Cluster, prefix: string, dashboard: Dashboard | undefined): string {
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
  if (c.tls)
    lines.push(
      `  ip netns exec ${ns} curl --cacert ${c.tls.caCert} ${c.tls.url}   # HTTPS, TLS 1.3`,
      `HTTPS uses a demo CA made for this run: trust ${c.tls.caCert} (curl --cacert, or a browser's`,
      "  authorities; on Debian: cp it to /usr/local/share/ca-certificates/sc-cluster.crt && update-ca-certificates).",
      "  Its key stays in the cluster directory; `down` removes both.",
    );
  if (c.demo)
    lines.push(
      `  ip netns exec ${ns} npx sc-cluster loadgen --trace ${c.demo.trace} --target ${c.vipUrl.replace(/\/$/, "")} \\`,
      `      --verify ${c.demo.manifest} --requests 2000`,
    );
  if (c.testbed.plan.expose)
    lines.push(`From this machine too (--expose): curl ${c.vipUrl}   curl ${d.admin}/nodes   (or a browser)`);
  lines.push(`Status: sc-cluster status${p}    Stop: sc-cluster down${p}    Logs: ${c.logDir}/<host>.log`);
  if (dashboard) lines.push("", `Dashboard: ${dashboard.url}`);
  return lines.join("\n");
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(spec, argv);
  const up = upOptionsFrom(values, positionals);
  await checkMachine(up.rate, up.loss);
  const dashboardAt = await chooseDashboard(values, up.detach);
  const hostNames = dashboardHostNames(values);
  await refuseRunning(up.prefix);
  const stop = new StopRequest();
  try {
    const started = Date.now();
    const cluster = await startCluster({
      ...clusterOptionsFrom(values, up),
      signal: stop.abort.signal,
      onProgress: (m) => console.error(`sc-cluster up: ${m}`),
    });
    const dashboard = dashboardAt ? await openDashboard(cluster, dashboardAt, hostNames) : undefined;
    await announce(cluster, up, dashboard, started);
    if (up.detach) {
      console.error(
        `sc-cluster up: detached; the cluster keeps running (${downCommand(up.prefix)} stops it)`,
      );
      return EXIT.ok;
    }
    return await runUntilStopped(cluster, up.prefix, dashboard, stop.requested);
  } finally {
    stop.close();
  }
}

/** Leftovers of a crashed cluster are cleaned by startCluster; a running one is not replaced behind its user's back. */
async function refuseRunning(prefix: string): Promise<void> {
  const existing = await readClusterStatus(prefix);
  const hint = `stop it with '${downCommand(prefix)}' or pick another --prefix`;
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
}

/** The first SIGINT/SIGTERM aborts the start-up and stops the running cluster; later ones only say to wait. */
class StopRequest {
  readonly abort = new AbortController();
  /** The first signal. */
  readonly requested: Promise<NodeJS.Signals>;
  private resolve: (s: NodeJS.Signals) => void = () => {};
  private count = 0;
  private readonly removeHandlers: () => void;

  constructor() {
    this.requested = new Promise<NodeJS.Signals>((resolve) => (this.resolve = resolve));
    this.removeHandlers = signals((s) => this.onSignal(s));
  }

  private onSignal(s: NodeJS.Signals): void {
    this.count++;
    if (this.count === 1) {
      this.abort.abort();
      this.resolve(s);
    } else console.error("sc-cluster up: stopping, please wait (processes get SIGKILL after a grace period)");
  }

  close(): void {
    this.removeHandlers();
  }
}

/** The dashboard, its URL in the cluster's record; if it cannot listen, the cluster is stopped again. */
async function openDashboard(cluster: Cluster, at: DashboardChoice, hostNames: string[]): Promise<Dashboard> {
  let dashboard: Dashboard;
  try {
    dashboard = await startDashboard({ cluster, ...at, hostNames });
  } catch (err) {
    await cluster.stop();
    throw new FirstRunError(
      `the dashboard cannot listen on ${at.host}:${at.port} (${(err as Error).message}); ` +
        "the cluster was stopped again. Pick another --dashboard ADDR:PORT, or none",
    );
  }
  await cluster.setDashboard(dashboard.url);
  return dashboard;
}

/** Healthy: the status (or its JSON) and how to reach the cluster on stdout; a detached cluster is left to run. */
async function announce(cluster: Cluster, up: UpOptions, dashboard: Dashboard | undefined, started: number) {
  if (up.detach) await cluster.detach();
  const status = await cluster.status();
  if (up.detach) await cluster.close();
  if (up.json) console.log(JSON.stringify(status, null, 2));
  else {
    console.log(formatClusterStatus(status));
    console.log(howToReach(cluster, up.prefix, dashboard));
  }
  console.error(
    `sc-cluster up: cluster '${up.prefix}' healthy in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}

/** Foreground: until a signal, or until `sc-cluster down` for this prefix removed its state; then stop. */
async function runUntilStopped(
  cluster: Cluster,
  prefix: string,
  dashboard: Dashboard | undefined,
  stopSignal: Promise<NodeJS.Signals>,
): Promise<number> {
  if (dashboard) console.error(`sc-cluster up: dashboard at ${dashboard.url}`);
  console.error("sc-cluster up: running; Ctrl-C stops the cluster and removes the testbed");
  // Someone ran `sc-cluster down` for this prefix: its state file goes, and so do we.
  const record = recordPath(clusterDir(prefix));
  const state = { stopping: false };
  reportExits(cluster, record, () => state.stopping);
  const why = await Promise.race([stopSignal, recordRemoved(record, stopSignal)]);
  state.stopping = true;
  await dashboard?.close();
  if (why === "down") console.error(`sc-cluster up: cluster '${prefix}' was taken down by another command`);
  else console.error(`sc-cluster up: ${why}: stopping the cluster`);
  const r = await cluster.stop();
  if (why !== "down")
    console.error(
      `sc-cluster up: stopped ${r.processes.length} processes, removed ${r.netns.length} namespaces`,
    );
  return EXIT.ok;
}

/** A process that ends while the cluster runs is reported, unless the cluster is stopping or gone. */
function reportExits(cluster: Cluster, record: string, stopping: () => boolean): void {
  cluster.onExit((e) => {
    // A moment later: if `down` ran elsewhere, the state is gone and there is nothing to report.
    setTimeout(() => {
      if (stopping() || !existsSync(record)) return;
      if (e.code === 0) console.error(`sc-cluster up: ${processEnded(e, "")}`);
      else void logTail(e.log, 10).then((tail) => console.error(`sc-cluster up: ${processEnded(e, tail)}`));
    }, 1000).unref();
  });
}

/** What to say about a process that ended while the cluster ran; `tail`: the last lines of its log. */
export function processEnded(e: ProcessExit, tail: string): string {
  const how = e.signal ?? `code ${e.code}`;
  if (e.code === 0) return `${e.host} (pid ${e.pid}) was stopped from outside (${how})`;
  return (
    `${e.host} (pid ${e.pid}) ended (${how}) while running` +
    (e.role === "node" ? "; the dispatcher takes it out of scheduling" : "") +
    (tail ? `. Last lines of ${e.log}:\n${tail.replace(/^/gm, "  | ")}` : "")
  );
}

/** Resolves once the cluster's state file is gone (checked each second until `until` settles). */
function recordRemoved(record: string, until: Promise<unknown>): Promise<"down"> {
  return new Promise<"down">((resolve) => {
    const t = setInterval(() => {
      if (!existsSync(record)) {
        clearInterval(t);
        resolve("down");
      }
    }, 1000);
    void until.then(() => clearInterval(t));
  });
}

export const command: Command = { spec, run };
export default command;
