// The running dispatcher: reads client packets from the TUN device the VIP is routed to,
// runs them through the Forwarder, and sends the GUE packets out, either
//   - "tun": whole outer IPv4/UDP/GUE packets written back into the same TUN device, which
//     the kernel routes to the nodes (one batched write per read batch), or
//   - "udp": client packets handed to the addon's batched UDP socket, which puts the GUE
//     header on in C and sends a read batch's worth with one sendmmsg, grouped by node with
//     UDP GSO (sc/tun/udp.ts), or
//   - "raw": the same whole outer packets as "tun", sent from a raw IPv4 socket (IP_HDRINCL)
//     with one sendmmsg per read batch: the kernel's IP output only, no TUN receive path.
// docs/dispatcher.md compares the two (bench/dispatcher-forward.ts). RSTs to clients are
// always written to the TUN device. Plus the control plane: health checks and the admin API.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { networkInterfaces } from "node:os";
import type { FastifyInstance } from "fastify";
import { Counter, type Registry } from "prom-client";
import { TunDevice, UdpBatchSocket, type PacketBatch } from "../sc/tun/index.js";
import { GUE_PORT, ipv4FromString, ipv4ToString, isWireError, type GueVariant } from "../sc/wire/index.js";
import type { ClusterTrust } from "../sc/auth/secret.js";
import { AdminGuard, adminAuthFrom, type AdminEndpoint } from "../sc/auth/admin-access.js";
import { buildAdmin } from "./admin.js";
import type { ConnTimeouts } from "./conn-table.js";
import { DispatcherControl } from "./control.js";
import { Forwarder, type ForwarderOutput } from "./forwarder.js";
import { HandoverFile } from "./handover-file.js";
import { DEFAULT_HEALTH, type HealthOptions } from "./health.js";
import { createMetrics } from "./metrics.js";
import type { Node, NodeSpec } from "./nodes.js";
import type { SchedulerName } from "./schedulers.js";

export type OutputMode = "tun" | "udp" | "raw";

const READ_BATCH = 256;

export interface DispatcherConfig {
  /** uint32 */
  vip: number;
  port: number;
  /** Further service ports balanced like `port` (443 beside 80). */
  extraPorts?: readonly number[];
  scheduler: SchedulerName;
  nodes: NodeSpec[];
  /** TUN device the VIP is routed to (attached to if it exists, else created). */
  tun: string;
  output: OutputMode;
  /** Outer source address; default: this host's address on the nodes' subnet. */
  source?: number;
  guePort?: number;
  variant?: GueVariant;
  udpChecksum?: boolean;
  /**
   * --output udp: group each batch's datagrams by node and send runs of equal size as one
   * UDP GSO message (default true); false sends one datagram per sendmmsg entry.
   */
  udpGso?: boolean;
  /** --output udp: largest GSO segment (UDP payload; + 28 must fit the path MTU). Default 1472. */
  udpGsoMaxSegment?: number;
  maxConnections?: number;
  maxHalfOpen?: number;
  timeouts?: Partial<ConnTimeouts>;
  /** How long a down node keeps its established connections before they are reset (ms). */
  deadGraceMs?: number;
  health?: HealthOptions;
  /** Admin API listen address and access (token, Host names); none: no admin API. */
  admin?: AdminEndpoint;
  /** The cluster secret (admin bearer token) or --insecure-dev; null: neither given. */
  trust?: ClusterTrust | null;
  /**
   * sh/mh: the state file for the connections a restart cannot rebuild from the hash
   * (handover.ts); read at start, kept up to date. None: a restart rebuilds from the hash only.
   */
  stateFile?: string;
  /** Structured log lines (one JSON object per line is what the CLI prints). */
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export class DispatcherStartError extends Error {
  readonly userFacing = true;
  constructor(message: string) {
    super(message);
    this.name = "DispatcherStartError";
  }
}

/** Every IPv4 address of this host (a client packet claiming one is spoofed). */
export function localAddresses(): number[] {
  const out: number[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      const addr = a.family === "IPv4" ? ipv4FromString(a.address) : null;
      if (addr !== null && !isWireError(addr)) out.push(addr);
    }
  }
  return out;
}

/** This host's IPv4 address on the same subnet as `addr`, if any. */
export function localAddressFacing(addr: number): number | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family !== "IPv4" || a.internal) continue;
      const local = ipv4FromString(a.address);
      const mask = ipv4FromString(a.netmask);
      if (isWireError(local) || isWireError(mask)) continue;
      if ((local & mask) >>> 0 === (addr & mask) >>> 0) return local;
    }
  }
  return undefined;
}

function isLocalAddress(addr: number): boolean {
  return Object.values(networkInterfaces()).some((list) =>
    (list ?? []).some((a) => a.family === "IPv4" && a.address === ipv4ToString(addr)),
  );
}

/**
 * Packets written into a TUN device with a local source address are martians unless the
 * device has accept_local=1 (measured: without it the kernel drops every one silently).
 */
function enableAcceptLocal(dev: string): void {
  const path = `/proc/sys/net/ipv4/conf/${dev}/accept_local`;
  if (!existsSync(path)) return;
  if (readFileSync(path, "utf8").trim() === "1") return;
  try {
    writeFileSync(path, "1");
  } catch (err) {
    throw new DispatcherStartError(
      `cannot set ${path} to 1 (${(err as Error).message}); it is needed to route GUE packets with this ` +
        "host's address as source out of the TUN device. Set it as root, or use --source VIP or --output udp",
    );
  }
}

export class DispatcherService {
  readonly forwarder: Forwarder;
  readonly control: DispatcherControl;
  readonly metrics: Registry;
  readonly tun: TunDevice;
  readonly source: number;
  private udp: UdpBatchSocket | undefined;
  private admin: FastifyInstance | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private handover: HandoverFile | undefined;
  private closing = false;
  /** Resolves when the service stops (stop() or a fatal TUN error). */
  readonly done: Promise<Error | undefined>;
  private finish: (err: Error | undefined) => void = () => {};
  adminUrl: string | undefined;

  private constructor(
    private readonly config: DispatcherConfig,
    tun: TunDevice,
    source: number,
  ) {
    this.tun = tun;
    this.source = source;
    this.done = new Promise((resolve) => (this.finish = resolve));
    const log = config.log ?? (() => {});
    const output: ForwarderOutput =
      config.output === "tun"
        ? {
            toNode: (_node: Node, packet: Uint8Array) => void this.tun.write(packet),
            toClient: (packet: Uint8Array) => void this.tun.write(packet),
          }
        : config.output === "raw"
          ? {
              toNode: (_node: Node, packet: Uint8Array) => void this.udp?.sendIpv4(packet, 0, packet.length),
              toClient: (packet: Uint8Array) => void this.tun.write(packet),
            }
          : {
              toNode: (node: Node, packet: Uint8Array) => void this.udp?.send(node.addr, node.port, packet),
              toNodeRange: (node: Node, buf: Uint8Array, off: number, len: number) =>
                void this.udp?.sendRange(node.addr, node.port, buf, off, len),
              toClient: (packet: Uint8Array) => void this.tun.write(packet),
            };
    this.forwarder = new Forwarder(
      {
        vip: config.vip,
        port: config.port,
        ...(config.extraPorts ? { extraPorts: config.extraPorts } : {}),
        scheduler: config.scheduler,
        // udp: the socket puts on the variant-0 header in C; variant 1 has none to put on.
        encap: config.output === "udp" ? "inner" : "ipv4",
        localAddr: source,
        localAddrs: localAddresses(),
        ...(config.deadGraceMs !== undefined ? { deadGraceMs: config.deadGraceMs } : {}),
        variant: config.variant,
        udpChecksum: config.udpChecksum,
        maxConnections: config.maxConnections,
        maxHalfOpen: config.maxHalfOpen,
        timeouts: config.timeouts,
      },
      output,
    );
    this.control = new DispatcherControl(this.forwarder, {
      health: config.health ?? DEFAULT_HEALTH,
      // Off the data path's thread: a busy event loop here made healthy nodes fail checks.
      healthWorker: {
        onError: (err) => {
          log("health checker failed", { error: err.message });
          void this.stop(err);
        },
      },
      clock: () => performance.now(),
      log,
      guePort: config.guePort ?? GUE_PORT,
      ioStats: () => ({
        output: config.output,
        source: ipv4ToString(this.source),
        tun: { name: this.tun.name, ...this.tun.stats },
        ...(this.udp ? { udp: this.udp.stats } : {}),
      }),
    });
    for (const n of config.nodes) this.forwarder.upsertNode(n);
    const writeDrops = () => this.tun.stats.writeDrops;
    const udpErrors = () => this.udp?.stats.sendDrops ?? 0;
    this.metrics = createMetrics(this.control, (registry) => {
      new Counter({
        name: "sc_dispatcher_tun_write_drops_total",
        help: "Packets the TUN device did not take (send buffer full, invalid, closed)",
        registers: [registry],
        collect() {
          this.reset();
          this.inc(writeDrops());
        },
      });
      new Counter({
        name: "sc_dispatcher_udp_send_errors_total",
        help: "GUE packets the UDP or raw socket did not send (--output udp/raw: send buffer full, unreachable, invalid)",
        registers: [registry],
        collect() {
          this.reset();
          this.inc(udpErrors());
        },
      });
    });
  }

  /** Opens the TUN device and sockets, starts forwarding, health checks and the admin API. */
  static async start(config: DispatcherConfig): Promise<DispatcherService> {
    const log = config.log ?? (() => {});
    let source = config.source;
    if (source === undefined) {
      const first = config.nodes[0];
      source = first ? localAddressFacing(first.addr) : undefined;
      if (source === undefined && config.output !== "udp") {
        throw new DispatcherStartError(
          "no local address on the nodes' subnet to use as the GUE source: give --source ADDR",
        );
      }
    }
    let tun: TunDevice;
    try {
      // Larger read batches than the default 64 amortise each wake-up under load.
      tun = TunDevice.open({ name: config.tun, up: true, maxBatch: READ_BATCH });
    } catch (err) {
      throw new DispatcherStartError((err as Error).message);
    }
    const svc = new DispatcherService(config, tun, source ?? 0);
    try {
      if (config.output === "tun" && isLocalAddress(svc.source)) enableAcceptLocal(tun.name);
      if (config.output !== "tun") svc.openUdp();
      svc.tun.on("error", (err: Error) => {
        log("TUN device failed", { error: err.message });
        void svc.stop(err);
      });
      if (config.stateFile !== undefined) {
        svc.handover = new HandoverFile(config.stateFile, svc.forwarder, log);
        svc.handover.start(performance.now());
      }
      svc.tun.onPackets((batch) => svc.onBatch(batch));
      svc.tickTimer = setInterval(() => svc.forwarder.tick(performance.now()), 1000);
      svc.control.start();
      if (config.admin) await svc.listenAdmin(config.admin);
    } catch (err) {
      await svc.stop();
      throw err;
    }
    return svc;
  }

  private onBatch(batch: PacketBatch): void {
    const now = performance.now();
    const f = this.forwarder;
    const buf = batch.buffer;
    for (let i = 0; i < batch.count; i++) f.input(buf, batch.offset(i), batch.length(i), now);
  }

  private openUdp(): void {
    try {
      this.udp = UdpBatchSocket.open({
        address: this.config.source ?? 0,
        raw: this.config.output === "raw",
        maxBatch: 1,
        gro: false,
        sendBufferSize: 4 << 20,
        receiveBufferSize: 0,
        encapsulate: (this.config.variant ?? 0) === 0,
        gso: this.config.udpGso !== false,
        gsoMaxSegment: this.config.udpGsoMaxSegment ?? 1472,
      });
    } catch (err) {
      throw new DispatcherStartError(`cannot open the GUE UDP socket: ${(err as Error).message}`);
    }
  }

  private async listenAdmin(addr: AdminEndpoint): Promise<void> {
    const guard = new AdminGuard(adminAuthFrom(this.config.trust ?? null, addr.token), [
      addr.host,
      ...(addr.names ?? []),
    ]);
    this.config.log?.(guard.describe(), guard.auth.kind === "open" ? { level: "warn" } : {});
    const app = buildAdmin(this.control, this.metrics, guard);
    this.admin = app;
    try {
      await app.listen({ host: addr.host, port: addr.port });
    } catch (err) {
      throw new DispatcherStartError(
        `admin API cannot listen on ${addr.host}:${addr.port}: ${(err as Error).message}`,
      );
    }
    const a = app.server.address();
    const port = typeof a === "object" && a ? a.port : addr.port;
    this.adminUrl = `http://${addr.host.includes(":") ? `[${addr.host}]` : addr.host}:${port}`;
  }

  /** Stops everything; the persistent TUN device stays. Idempotent. */
  async stop(err?: Error): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    await this.handover?.stop();
    await this.control.stop();
    await this.admin?.close().catch(() => {});
    this.tun.close();
    this.udp?.close();
    this.finish(err);
  }
}
