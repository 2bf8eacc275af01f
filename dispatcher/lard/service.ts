// The running LARD front-end (`sc-cluster dispatcher --mode lard`, docs/lard.md): the I/O
// edges of LardFrontEnd. Client packets come from the TUN device the VIP is routed to; those of
// handed-off connections go on to their node in GUE from a UDP socket, the rest go into the
// front-end's own TCP stack, whose packets (SYN-ACKs, ACKs, its few error pages) are written
// back into the TUN. HANDOFFs travel on one authenticated link per node (handoff-link.ts). A
// node takes handoffs while its link is up and its health checks pass (dispatcher/health.ts,
// on a thread of its own as in the L4 dispatcher). A small read-only admin API answers
// /healthz, /nodes, /stats and /metrics.
import { createSocket, type Socket } from "node:dgram";
import http from "node:http";
import { Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { TunDevice } from "../../sc/tun/index.js";
import type { TcpTunRuntime } from "../../sc/tcp/runtime.js";
import { emitGueHeader, GUE_HEADER_LEN } from "../../sc/wire/gue.js";
import { linkKey } from "../../sc/auth/link.js";
import type { ClusterTrust } from "../../sc/auth/secret.js";
import { AdminGuard, adminAuthFrom, type AdminEndpoint } from "../../sc/auth/admin-access.js";
import { LINK_DROP_REASONS } from "../../sc/clone/transport.js";
import { newTcpPeek, peekTcp } from "../../sc/router/router.js";
import { byLabel, mirrorCounter, mirrorCounterBy, mirrorGauge } from "../../server/metrics-mirror.js";
import { LardFrontEnd, FRONT_END_DROPS, HANDOFF_FAILURES, type FrontEndOptions } from "./front-end.js";
import { HANDOFF_PORT, HandoffClient } from "../../sc/handoff/link.js";
import { UNRESUMABLE_REASONS } from "./resume.js";
import { DEFAULT_HEALTH, type HealthMonitor, type HealthOptions, type NodeHealth } from "../health.js";
import { HealthWorker } from "../health-worker.js";
import type { NodeHealthState } from "../nodes.js";
import { LardPolicy, type LardOptions } from "./policy.js";

export interface LardNodeSpec {
  id: string;
  /** The node's member address: its GUE port and handoff port are there. */
  addr: string;
  guePort: number;
  /** The node's admin API: health checks GET `${admin}/healthz`. None: no checks (its link decides). */
  admin?: string;
}

export interface LardServiceConfig {
  vip: string;
  port: number;
  tun: string;
  nodes: LardNodeSpec[];
  /** Source of GUE packets and handoff links: the address the nodes take GUE from. */
  source: string;
  trust: ClusterTrust;
  policy?: Partial<LardOptions>;
  frontEnd?: Partial<FrontEndOptions>;
  /**
   * Read-only admin API (/healthz, /nodes, /stats, /metrics); none: no admin API. Guarded like
   * the L4 dispatcher's: a Host that names it (421 otherwise, against DNS rebinding).
   */
  admin?: AdminEndpoint;
  /** Health checks of the nodes with an admin URL (the L4 dispatcher's flags and defaults). */
  health?: HealthOptions;
  handoffPort?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

/** Poll the front-end's deadlines this often (they are seconds long). */
const POLL_MS = 100;

function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

type LogFn = (message: string, fields?: Record<string, unknown>) => void;

/** The front-end's packet I/O: the VIP's TUN with its TCP stack, and the GUE socket to the nodes. */
interface PacketIo {
  tun: TunDevice;
  runtime: TcpTunRuntime;
  udp: Socket;
  /** Payload the front-end's own stack sends: its error pages, never a response. */
  out: { payloadBytes: number };
}

async function openPacketIo(config: LardServiceConfig): Promise<PacketIo> {
  const { TunDevice } = await import("../../sc/tun/index.js");
  const { TcpTunRuntime } = await import("../../sc/tcp/runtime.js");
  const tun = TunDevice.open({ name: config.tun, up: true, maxBatch: 256 });
  const out = { payloadBytes: 0 };
  const peek = newTcpPeek();
  const runtime = new TcpTunRuntime(tun, {
    addresses: [config.vip],
    tap: (p) => (out.payloadBytes += peekTcp(p, peek)?.payloadLength ?? 0),
  });
  const udp = createSocket({ type: "udp4" });
  try {
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(0, config.source, () => {
        udp.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    runtime.close();
    tun.close();
    throw err;
  }
  udp.on("error", () => undefined);
  return { tun, runtime, udp, out };
}

/** The front-end and its handoff links, each calling into the other. */
function connectFrontEnd(
  config: LardServiceConfig,
  io: PacketIo,
  log: LogFn,
): { frontEnd: LardFrontEnd; links: HandoffClient } {
  const stack = io.runtime.stack;
  const gue = Buffer.alloc(GUE_HEADER_LEN);
  emitGueHeader(gue);
  const byId = new Map(config.nodes.map((n) => [n.id, n]));
  // Nodes join the policy as their links come up.
  const policy = new LardPolicy([], config.policy);
  // Its callbacks reach `links` only once packets flow, after both exist.
  const fe: LardFrontEnd = new LardFrontEnd(
    stack,
    policy,
    {
      forward: (node, packet) => {
        const n = byId.get(node);
        // The packet is a view into the TUN batch, reused after this call: send() copies.
        if (n !== undefined) io.udp.send([gue, Buffer.from(packet)], n.guePort, n.addr);
      },
      sendHandoff: (node, msg) => links.send(node, msg),
      monotonicUs,
      wallClockMs: () => Date.now(),
    },
    { vip: config.vip, port: config.port, ...config.frontEnd },
  );
  const links = new HandoffClient({
    nodes: config.nodes.map((n) => ({ id: n.id, host: n.addr, port: config.handoffPort ?? HANDOFF_PORT })),
    key: linkKey(config.trust),
    localAddress: config.source,
    onAck: (node, ack) => {
      fe.onAck(node, ack, stack.now());
      stack.flush();
    },
    onEnd: (node, end) => fe.onEnd(node, end.handoffId),
    onHandBack: (node, msg) => {
      fe.onHandBack(node, msg);
      stack.flush();
    },
    onResponse: (node, msg) => fe.onResponse(node, msg),
    onUp: (node) => {
      log("handoff link up", { node });
      fe.onLinkUp(node);
    },
    onDown: (node) => {
      log("handoff link down", { node });
      fe.onLinkDown(node);
      stack.flush();
    },
  });
  return { frontEnd: fe, links };
}

export class LardService {
  readonly registry = new Registry();
  adminUrl: string | undefined;
  private admin: http.Server | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private healthMonitor: HealthMonitor | undefined;
  /** The health checks' verdict per node (none yet: not checked, or no admin URL). */
  private readonly healthState = new Map<string, NodeHealthState>();
  private closing = false;
  private readonly cpuAtStart = process.cpuUsage();
  private readonly latency: Histogram;
  private readonly perConnection: Histogram;
  readonly done: Promise<Error | undefined>;
  private finish: (err: Error | undefined) => void = () => {};

  private constructor(
    readonly config: LardServiceConfig,
    readonly tun: TunDevice,
    readonly runtime: TcpTunRuntime,
    readonly udp: Socket,
    readonly frontEnd: LardFrontEnd,
    readonly links: HandoffClient,
    private readonly out: { payloadBytes: number },
  ) {
    this.done = new Promise((resolve) => (this.finish = resolve));
    [this.latency, this.perConnection] = this.registerMetrics();
  }

  static async start(config: LardServiceConfig): Promise<LardService> {
    const log = config.log ?? (() => {});
    const io = await openPacketIo(config);
    const { frontEnd, links } = connectFrontEnd(config, io, log);
    const svc = new LardService(config, io.tun, io.runtime, io.udp, frontEnd, links, io.out);
    svc.run(log);
    if (config.admin !== undefined) {
      try {
        await svc.listenAdmin(config.admin);
      } catch (err) {
        await svc.stop();
        throw err;
      }
    }
    return svc;
  }

  /** Takes over the TUN's read path, starts health checks, the deadline poll and the links. */
  private run(log: LogFn): void {
    const { frontEnd: fe, tun } = this;
    const stack = this.runtime.stack;
    // Replaces the runtime's read path: handed-off connections' packets go on to their nodes.
    tun.onPackets((batch) => {
      const now = stack.now();
      for (let i = 0; i < batch.count; i++) {
        const p = batch.packet(i);
        if (!fe.take(p, now)) stack.receive(p);
      }
      stack.flush();
      this.drainLatencies();
    });
    tun.on("error", (err: Error) => {
      log("TUN device failed", { error: err.message });
      void this.stop(err);
    });
    this.startHealth();
    this.pollTimer = setInterval(() => {
      fe.poll(stack.now());
      this.drainLatencies();
    }, POLL_MS);
    this.links.start();
  }

  /**
   * Health checks of the nodes with an admin URL; a verdict makes the node eligible or not
   * (LardFrontEnd.onHealth: a node found down keeps its connections, its link decides those).
   */
  private startHealth(): void {
    const checked = this.config.nodes.filter((n) => n.admin !== undefined);
    if (checked.length === 0) return;
    const log = this.config.log ?? (() => {});
    const monitor = new HealthWorker(
      this.config.health ?? DEFAULT_HEALTH,
      () =>
        checked.map((n) => {
          const state = this.healthState.get(n.id);
          return { id: n.id, admin: n.admin, healthy: state === "up", gone: state === "gone" };
        }),
      (id, state, reason) => {
        const was = this.healthState.get(id);
        this.healthState.set(id, state);
        if (was !== state) log("node health", { node: id, state, reason });
        this.frontEnd.onHealth(id, state === "up");
        this.runtime.stack.flush();
      },
      (err) => log("health checker failed", { error: err.message }),
    );
    this.healthMonitor = monitor;
    monitor.start();
  }

  /** A node's last health check (none without an admin URL). */
  health(id: string): (NodeHealth & { state: NodeHealthState | "unchecked" }) | undefined {
    const n = this.config.nodes.find((x) => x.id === id);
    if (n?.admin === undefined) return undefined;
    const h = this.healthMonitor?.health(id) ?? { successes: 0, failures: 0, checks: 0 };
    return { ...h, state: this.healthState.get(id) ?? "unchecked" };
  }

  /** What /stats shows: the front-end's counters, links, policy, CPU per handoff. */
  stats(): Record<string, unknown> {
    const c = this.frontEnd.counters;
    const cpu = process.cpuUsage(this.cpuAtStart);
    const cpuUs = cpu.user + cpu.system;
    const lat = this.frontEnd.latencies;
    return {
      mode: "lard",
      vip: this.config.vip,
      port: this.config.port,
      nodesUp: this.links.nodesUp(),
      eligible: this.config.nodes.filter((n) => this.frontEnd.eligible(n.id)).map((n) => n.id),
      loads: Object.fromEntries(this.frontEnd.policy.nodes().map((n) => [n, this.frontEnd.policy.load(n)])),
      targets: this.frontEnd.policy.targetCount,
      handedOff: this.frontEnd.handedOff,
      counters: c,
      linkDrops: this.links.drops,
      tcp: { connections: this.runtime.stack.connections, counters: this.runtime.stack.counters },
      payloadBytesOut: this.out.payloadBytes,
      cpuUs,
      cpuUsPerHandoff: c.handoffsSent > 0 ? Math.round(cpuUs / c.handoffsSent) : null,
      pendingLatencySamples: lat.length,
    };
  }

  /** Moves the latency samples into the histogram (the front-end only collects them). */
  drainLatencies(): void {
    const l = this.frontEnd.latencies;
    for (const ms of l) this.latency.observe(ms / 1000);
    l.length = 0;
    const h = this.frontEnd.handoffsPerConnection;
    for (const n of h) this.perConnection.observe(n);
    h.length = 0;
  }

  private registerMetrics(): [Histogram, Histogram] {
    registerHandoffMetrics(this.registry, this.frontEnd);
    registerTrafficMetrics(this.registry, this.frontEnd, this.links, this.cpuAtStart);
    collectDefaultMetrics({ register: this.registry });
    return [
      new Histogram({
        name: "sc_lard_handoff_latency_seconds",
        help: "HANDOFF sent -> HANDOFF-ACK received on the front-end",
        buckets: [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.25],
        registers: [this.registry],
      }),
      new Histogram({
        name: "sc_lard_handoffs_per_connection",
        help: "Handoffs each finished connection had (1: none re-handed; keep-alive adds one per request)",
        buckets: [1, 2, 3, 4, 6, 8, 16, 32, 64, 128],
        registers: [this.registry],
      }),
    ];
  }

  private async listenAdmin(addr: AdminEndpoint): Promise<void> {
    const guard = new AdminGuard(adminAuthFrom(this.config.trust, addr.token), [
      addr.host,
      ...(addr.names ?? []),
    ]);
    this.config.log?.(guard.describe(), guard.auth.kind === "open" ? { level: "warn" } : {});
    const server = http.createServer((req, res) => {
      const url = req.url ?? "/";
      const refusal = guard.check(req.method ?? "GET", req.headers);
      if (refusal !== null) {
        res
          .writeHead(refusal.status, { ...refusal.headers, "content-type": "application/json" })
          .end(JSON.stringify({ error: refusal.message }) + "\n");
      } else if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end();
      } else if (url === "/healthz") {
        // The L4 dispatcher's shape: `up` waits until every node is eligible (its link is up).
        const health = {
          status: "ok",
          mode: "lard",
          nodes: this.config.nodes.length,
          eligible: this.config.nodes.filter((n) => this.frontEnd.eligible(n.id)).length,
        };
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(health) + "\n");
      } else if (url === "/nodes") {
        // The L4 dispatcher's shape (`status` reads it): a node is eligible while its link is up
        // and its health checks pass.
        const nodes = this.config.nodes.map((n) => ({
          id: n.id,
          addr: n.addr,
          eligible: this.frontEnd.eligible(n.id),
          link: this.links.isUp(n.id),
          health: this.health(n.id),
          load: this.frontEnd.policy.load(n.id),
        }));
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(nodes) + "\n");
      } else if (url === "/stats") {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(this.stats()) + "\n");
      } else if (url === "/metrics") {
        this.drainLatencies();
        void this.registry.metrics().then(
          (text) => res.writeHead(200, { "content-type": this.registry.contentType }).end(text),
          () => res.writeHead(500).end(),
        );
      } else res.writeHead(404).end();
    });
    this.admin = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(addr.port, addr.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const a = server.address();
    this.adminUrl = `http://${addr.host}:${typeof a === "object" && a !== null ? a.port : addr.port}`;
  }

  async stop(err?: Error): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    await this.healthMonitor?.stop();
    this.links.close();
    this.frontEnd.close();
    const admin = this.admin;
    if (admin !== undefined) {
      admin.closeAllConnections();
      await new Promise<void>((r) => admin.close(() => r()));
    }
    this.runtime.close();
    this.tun.close();
    await new Promise<void>((r) => this.udp.close(() => r()));
    this.finish(err);
  }
}

/** Handoffs: sent, accepted, failed, handed back, resumed, and what a lost node cost. */
function registerHandoffMetrics(registry: Registry, fe: LardFrontEnd): void {
  const c = fe.counters;
  mirrorCounter(registry, "sc_lard_handoffs_total", "HANDOFF messages sent to nodes", () => c.handoffsSent);
  mirrorCounter(
    registry,
    "sc_lard_handoffs_accepted_total",
    "Handoffs the nodes accepted",
    () => c.handoffsAccepted,
  );
  mirrorGauge(
    registry,
    "sc_lard_handed_off_connections",
    "Connections handed off and still known",
    () => fe.handedOff,
  );
  mirrorCounterBy(
    registry,
    "sc_lard_handoff_failures_total",
    "Connections not handed off, or whose handoff failed, by reason (docs/lard.md)",
    ["reason"],
    () => byLabel("reason", HANDOFF_FAILURES, c.failures),
  );
  mirrorCounter(
    registry,
    "sc_lard_handbacks_total",
    "Connections a node gave back for their next request (each handed off again)",
    () => c.handBacks,
  );
  mirrorCounter(
    registry,
    "sc_lard_resumes_total",
    "RESUMEs sent: connections whose node died, continued on another node from the client's ACK",
    () => c.resumesSent,
  );
  mirrorCounter(
    registry,
    "sc_lard_resumes_accepted_total",
    "RESUMEs a node accepted",
    () => c.resumesAccepted,
  );
  mirrorCounterBy(
    registry,
    "sc_lard_node_lost_resets_total",
    "Client connections reset because their node's link went down and no exact resume was possible, by reason (docs/lard.md)",
    ["reason"],
    () => byLabel("reason", UNRESUMABLE_REASONS, c.unresumable),
  );
}

/** Client traffic through the front-end, its drops, its links, and its CPU per request. */
function registerTrafficMetrics(
  registry: Registry,
  fe: LardFrontEnd,
  links: HandoffClient,
  cpuAtStart: NodeJS.CpuUsage,
): void {
  const c = fe.counters;
  mirrorCounter(
    registry,
    "sc_lard_forwarded_packets_total",
    "Client packets forwarded in GUE to the node of their connection",
    () => c.packetsForwarded,
  );
  mirrorCounter(
    registry,
    "sc_lard_forwarded_bytes_total",
    "TCP payload bytes of the forwarded client packets (requests; responses never pass the front-end)",
    () => c.bytesForwarded,
  );
  mirrorCounter(
    registry,
    "sc_lard_connections_accepted_total",
    "Client handshakes completed on the front-end",
    () => c.connectionsAccepted,
  );
  mirrorCounterBy(
    registry,
    "sc_lard_frontend_drops_total",
    "Client packets the front-end dropped, by reason",
    ["reason"],
    () => byLabel("reason", FRONT_END_DROPS, c.drops),
  );
  mirrorCounterBy(
    registry,
    "sc_lard_link_drops_total",
    "Handoff links the front-end closed or that were refused, by reason",
    ["reason"],
    () => byLabel("reason", LINK_DROP_REASONS, links.drops),
  );
  mirrorGauge(
    registry,
    "sc_lard_frontend_cpu_seconds_per_request",
    "Front-end CPU (user + system) since start per handoff sent (every request is one); over a window: rate(process_cpu_seconds_total) / rate(sc_lard_handoffs_total)",
    () => {
      const cpu = process.cpuUsage(cpuAtStart);
      return c.handoffsSent > 0 ? (cpu.user + cpu.system) / 1e6 / c.handoffsSent : 0;
    },
  );
}
