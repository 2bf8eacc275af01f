// `sc-cluster up`: the whole local cluster (testbed, origin, dispatcher, N nodes) with one
// command; runs until Ctrl-C/SIGTERM, or returns once healthy with --detach. cluster/ does the work;
// the foreground `up` also serves the live dashboard (cluster/dashboard/). `npm start` runs it
// with the first-run settings (package.json).
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import {
  UsageError,
  bool,
  list,
  optStr,
  parseCommand,
  type CommandSpec,
  type ParsedValues,
} from "../common/args.js";
import { checkHostName } from "../sc/auth/admin-access.js";
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
import { EXIT, UserError } from "../common/errors.js";

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
  const loss = numberOpt(values, "loss", false);
  await checkMachine(optStr(values, "rate"), loss);
  const dashboardAt = await chooseDashboard(values, detach);
  const dashboardHosts = list(values, "dashboard-host").map((n) => {
    const c = checkHostName(n);
    if (c === undefined) throw new UsageError(`--dashboard-host must be a host name, got '${n}'`);
    return c;
  });

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
      loss,
      expose: bool(values, "expose") && !bool(values, "no-expose"),
      cacheBytes: cacheRaw,
      accessLog: bool(values, "access-log"),
      scheduler: optStr(values, "scheduler"),
      weights: weightsOpt(values),
      ...(bool(values, "no-tls") ? { tls: false } : {}),
      logDir: optStr(values, "log-dir"),
      startTimeoutMs: timeoutS * 1000,
      signal: abort.signal,
      onProgress: (m) => console.error(`sc-cluster up: ${m}`),
    });
    let dashboard: Dashboard | undefined;
    if (dashboardAt) {
      try {
        dashboard = await startDashboard({ cluster, ...dashboardAt, hostNames: dashboardHosts });
      } catch (err) {
        await cluster.stop();
        throw new FirstRunError(
          `the dashboard cannot listen on ${dashboardAt.host}:${dashboardAt.port} (${(err as Error).message}); ` +
            "the cluster was stopped again. Pick another --dashboard ADDR:PORT, or none",
        );
      }
      await cluster.setDashboard(dashboard.url);
    }
    if (detach) await cluster.detach();
    const status = await cluster.status();
    if (detach) await cluster.close();
    if (json) console.log(JSON.stringify(status, null, 2));
    else {
      console.log(formatClusterStatus(status));
      console.log(howToReach(cluster, prefix, dashboard));
    }
    console.error(
      `sc-cluster up: cluster '${prefix}' healthy in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    if (detach) {
      console.error(
        `sc-cluster up: detached; the cluster keeps running (sc-cluster down${prefix === DEFAULT_PREFIX ? "" : ` --prefix ${prefix}`} stops it)`,
      );
      return EXIT.ok;
    }
    if (dashboard) console.error(`sc-cluster up: dashboard at ${dashboard.url}`);
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
    await dashboard?.close();
    if (why === "down") console.error(`sc-cluster up: cluster '${prefix}' was taken down by another command`);
    else console.error(`sc-cluster up: ${why}: stopping the cluster`);
    const r = await cluster.stop();
    if (why !== "down")
      console.error(
        `sc-cluster up: stopped ${r.processes.length} processes, removed ${r.netns.length} namespaces`,
      );
    return EXIT.ok;
  } finally {
    removeHandlers();
  }
}

export const command: Command = { spec, run };
export default command;
