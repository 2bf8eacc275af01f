// `sc-cluster dispatcher`: the LVS-style layer-4 dispatcher (dispatcher/service.ts).
import { UsageError, type CommandSpec, CONFIG_OPTIONS, parseConfigured } from "../common/args.js";
import type { Command } from "./command.js";
import { TRUST_OPTIONS, trustFrom } from "../sc/auth/trust-options.js";
import { ADMIN_ACCESS_OPTIONS, adminEndpointFrom } from "../sc/auth/admin-access-options.js";
import { EXIT } from "../common/errors.js";
import type { AdminEndpoint } from "../sc/auth/admin-access.js";
import type { ClusterTrust } from "../sc/auth/secret.js";
import type { NodeSpec } from "../dispatcher/nodes.js";
import type { DispatcherConfig, DispatcherService } from "../dispatcher/service.js";
import type { L4Config, LardOptions } from "./dispatcher-config.js";

const spec: CommandSpec = {
  name: "dispatcher",
  summary: "Layer-4 dispatcher: spreads TCP connections to the VIP over the nodes in GUE (direct return)",
  usage: "sc-cluster dispatcher --node ID=ADDR[:PORT][,weight=W][,admin=URL] ... [options]",
  options: {
    vip: {
      type: "string",
      help: "Virtual IP the clients connect to",
      default: "198.18.100.1",
      value: "ADDR",
    },
    port: {
      type: "string",
      help: "TCP port(s) of the service, e.g. 80,443 for HTTP and HTTPS (lard: one port)",
      default: "80",
      value: "PORT[,PORT...]",
    },
    node: {
      type: "string",
      multiple: true,
      value: "SPEC",
      help: "A node: ID=ADDR[:PORT][,weight=W][,admin=URL]; PORT is its GUE port, admin its control API (health checks GET URL/healthz)",
    },
    mode: {
      type: "string",
      help:
        "l4: layer-4 forwarding of whole connections (default); lard: LARD front-end, which accepts each " +
        "connection itself, reads the first request and hands the connection off to a --mode lard node, resuming " +
        "it on another node if that one dies; the --health-* checks apply, --dead-grace does not (docs/lard.md)",
      default: "l4",
      value: "MODE",
    },
    "lard-t-low": {
      type: "string",
      help: "--mode lard: a node with fewer connections than this is underloaded (LARD's T_low)",
      default: "25",
      value: "N",
    },
    "lard-t-high": {
      type: "string",
      help: "--mode lard: a node above this many connections is loaded, at twice it overloaded (T_high)",
      default: "65",
      value: "N",
    },
    scheduler: { type: "string", help: "rr, wrr, lc, wlc, sh or mh", default: "wlc", value: "NAME" },
    "state-file": {
      type: "string",
      help:
        "sh/mh: file that keeps the connections opened while a node was out of scheduling (the ones a " +
        "restart cannot rebuild from the hash); read at start, rewritten as they change (docs/dispatcher.md)",
      value: "PATH",
    },
    admin: {
      type: "string",
      help: "Admin API listen address",
      default: "127.0.0.1:9100",
      value: "ADDR:PORT",
    },
    ...ADMIN_ACCESS_OPTIONS,
    tun: { type: "string", help: "TUN device the VIP is routed to", default: "sctun", value: "NAME" },
    ...TRUST_OPTIONS,
    "gue-port": {
      type: "string",
      help: "Default GUE (UDP) port of the nodes",
      default: "6080",
      value: "PORT",
    },
    output: {
      type: "string",
      help:
        "How GUE leaves: tun (outer packets written to the TUN, batched), udp (a batched UDP socket: " +
        "one sendmmsg per read batch, UDP GSO per node) or raw (the outer packets from a raw IP socket, " +
        "one sendmmsg per read batch)",
      default: "tun",
      value: "MODE",
    },
    source: {
      type: "string",
      help: "Outer source address (default: this host's address facing the nodes)",
      value: "ADDR",
    },
    "gue-variant": {
      type: "string",
      help: "GUE variant sent: 0 (4-byte header) or 1 (bare IPv4)",
      default: "0",
      value: "V",
    },
    "udp-checksum": {
      type: "boolean",
      help: "Compute outer UDP checksums (default: 0, like IPVS --tun-nocsum)",
    },
    "no-udp-gso": {
      type: "boolean",
      help: "--output udp: one datagram per sendmmsg entry, no UDP GSO (for paths that refuse GSO)",
    },
    workers: {
      type: "string",
      help:
        "Data-path worker threads, one per queue of a multi-queue TUN device (1: forward on the main " +
        "thread; > 1 needs the device made with multi_queue or created here). Default: one per core, " +
        "or 1 if the device exists without multi_queue",
      value: "N",
    },
    "max-conns": {
      type: "string",
      help: "Connection-table size (with workers: shared out evenly between them)",
      default: "1048576",
      value: "N",
    },
    "max-half-open": {
      type: "string",
      help: "Half-open (SYN_RECV) entries allowed (default max-conns/8)",
      value: "N",
    },
    "timeout-established": {
      type: "string",
      help: "Idle timeout of established connections, s",
      default: "900",
      value: "S",
    },
    "timeout-syn": { type: "string", help: "Timeout of half-open connections, s", default: "60", value: "S" },
    "timeout-syn-flood": {
      type: "string",
      help: "Half-open timeout while over half the half-open budget is used, s",
      default: "5",
      value: "S",
    },
    "timeout-fin": {
      type: "string",
      help: "Timeout after the client's FIN (FIN_WAIT, TIME_WAIT), s",
      default: "120",
      value: "S",
    },
    "timeout-close": { type: "string", help: "Timeout after a RST, s", default: "10", value: "S" },
    "health-interval": { type: "string", help: "Health-check interval, ms", default: "1000", value: "MS" },
    "health-timeout": { type: "string", help: "Health-check timeout, ms", default: "500", value: "MS" },
    "health-fall": {
      type: "string",
      help: "Failed checks before a node is taken out",
      default: "2",
      value: "N",
    },
    "health-rise": { type: "string", help: "Good checks before it is taken back", default: "2", value: "N" },
    "dead-grace": {
      type: "string",
      help:
        "A node failing its health checks gets no new connections but keeps its established ones this " +
        "long before they are reset (at once when its admin port refuses, or it was removed), s",
      default: "60",
      value: "S",
    },
    ...CONFIG_OPTIONS,
  },
  epilog: [
    "Reads client packets from the TUN device (the VIP must be routed to it), keeps a connection table,",
    "and forwards each connection's packets to its node in GUE over UDP; nodes answer clients directly.",
    'Prints one JSON line {"ready":true,...} on stdout when forwarding, JSON log lines on stderr;',
    'SIGTERM/SIGINT stop it and print {"stopped":true,"stats":...}. Admin API: GET /healthz /stats',
    "/metrics /nodes, PUT|DELETE /nodes/ID, PUT /scheduler (docs/dispatcher.md); the changes need",
    "`Authorization: Bearer TOKEN` (the cluster secret's token, or --admin-token-file), else 403/401.",
    "Example: sc-cluster dispatcher --scheduler mh --admin 198.18.0.1:9100 \\",
    "  --node node1=198.18.0.11,admin=http://198.18.0.11:9080 --node node2=198.18.0.12,admin=http://198.18.0.12:9080",
    "Every option is also an SC_<OPTION> environment variable; precedence flag > environment > --config file",
    "> default (docs/configuration.md). SIGHUP re-reads them and applies --scheduler and the --node list",
    "(added, changed and removed nodes: weights, admin URLs; removed ones drain) without dropping connections.",
  ].join("\n"),
};

function log(message: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), msg: message, ...fields }) + "\n");
}

export const command: Command = {
  spec,
  async run(argv) {
    const { values } = await parseConfigured(spec, argv, process.env);
    // Loaded here so `--help` does not load the native addon.
    const { dispatcherOptionsFrom } = await import("./dispatcher-config.js");
    const options = dispatcherOptionsFrom(values);
    const admin = await adminEndpointFrom(values, options.adminListen);
    const trust = await trustFrom(values, process.env, undefined);
    if (options.mode === "lard") return runLard({ ...options.lard, trust, admin });
    return runL4({ ...options.config, admin, trust, log }, argv);
  },
};

/** --mode l4: the forwarder (dispatcher/service.ts) until SIGTERM/SIGINT; SIGHUP reloads. */
async function runL4(config: L4Config & DispatcherConfig, argv: string[]): Promise<number> {
  const { DispatcherService } = await import("../dispatcher/service.js");
  const { readyRecord } = await import("./dispatcher-config.js");
  const svc = await DispatcherService.start(config);
  const ready = readyRecord(svc.control.stats(), {
    output: config.output,
    workers: svc.workers,
    tun: svc.tun.name,
    admin: svc.adminUrl,
    pid: process.pid,
  });
  process.stdout.write(JSON.stringify(ready) + "\n");
  log("dispatcher ready", { admin: svc.adminUrl, nodes: config.nodes.length });
  const reload = new NodeListReload(svc, argv, config.nodes);
  const onHup = () => void reload.run();
  process.on("SIGHUP", onHup);
  const err = await untilStopped(svc);
  process.off("SIGHUP", onHup);
  return stopped(svc.control.stats(), err, "dispatcher");
}

/** SIGHUP: the scheduler and the --node list, re-read (flags, environment, config file). */
class NodeListReload {
  constructor(
    private readonly svc: DispatcherService,
    private readonly argv: string[],
    /** The --node list in force: what the next reload compares with. */
    private nodes: NodeSpec[],
  ) {}

  async run(): Promise<void> {
    const control = this.svc.control;
    try {
      const { reloadFrom } = await import("./dispatcher-config.js");
      const { ipv4ToString } = await import("../sc/wire/index.js");
      const next = (await parseConfigured(spec, this.argv, process.env)).values;
      const { scheduler, nodes, put, remove } = reloadFrom(next, this.nodes);
      if (scheduler !== control.scheduler) control.setScheduler(scheduler);
      for (const n of put)
        control.putNode(n.id, {
          addr: ipv4ToString(n.addr),
          port: n.port,
          weight: n.weight,
          admin: n.admin ?? null,
        });
      for (const id of remove) control.deleteNode(id);
      this.nodes = nodes;
      log("reloaded", { scheduler, put: put.map((n) => n.id), removed: remove });
    } catch (err) {
      log("reload refused: nothing changed", { error: (err as Error).message });
    }
  }
}

/** Until SIGTERM or SIGINT stops the service, or it fails: the failure, if any. */
async function untilStopped(svc: { stop(): Promise<void>; done: Promise<Error | undefined> }) {
  const stop = () => void svc.stop();
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  const err = await svc.done;
  process.off("SIGTERM", stop);
  process.off("SIGINT", stop);
  return err;
}

/** The {"stopped":true,...} line; a service that stopped on an error failed. */
function stopped(stats: unknown, err: Error | undefined, what: string): number {
  process.stdout.write(JSON.stringify({ stopped: true, stats }) + "\n");
  if (err) {
    log(`${what} stopped on error`, { error: err.message });
    return EXIT.failed;
  }
  return EXIT.ok;
}

/** --mode lard: the LARD front-end (dispatcher/lard/service.ts) instead of the L4 forwarder. */
async function runLard(
  o: LardOptions & { trust: ClusterTrust | null; admin: AdminEndpoint },
): Promise<number> {
  const { LardService } = await import("../dispatcher/lard/service.js");
  const { ipv4ToString } = await import("../sc/wire/index.js");
  const { localAddressFacing } = await import("../dispatcher/service.js");
  if (o.trust === null)
    throw new UsageError(
      "--mode lard needs the cluster secret (--secret-file FILE, the nodes' file) or --insecure-dev",
    );
  const first = o.nodes[0];
  if (first === undefined) throw new UsageError("--mode lard needs at least one --node");
  const facing = localAddressFacing(first.addr);
  const source = o.source ?? (facing === undefined ? undefined : ipv4ToString(facing));
  if (source === undefined) throw new UsageError("no local address on the nodes' subnet: give --source ADDR");
  const svc = await LardService.start({
    vip: o.vip,
    port: o.port,
    tun: o.tun,
    // A weight-0 node takes no new connections in L4; here, no handoffs (not even a link).
    nodes: o.nodes
      .filter((n) => n.weight > 0)
      .map((n) => ({
        id: n.id,
        addr: ipv4ToString(n.addr),
        guePort: n.port,
        ...(n.admin !== undefined ? { admin: n.admin } : {}),
      })),
    health: o.health,
    source,
    trust: o.trust,
    policy: { tLow: o.tLow, tHigh: o.tHigh },
    admin: o.admin,
    log,
  });
  process.stdout.write(
    JSON.stringify({
      ready: true,
      pid: process.pid,
      mode: "lard",
      vip: o.vip,
      port: o.port,
      admin: svc.adminUrl,
    }) + "\n",
  );
  log("LARD front-end ready", { admin: svc.adminUrl, nodes: o.nodes.length });
  const err = await untilStopped(svc);
  return stopped(svc.stats(), err, "LARD front-end");
}

export default command;
