// --stack user: our own TCP stack (sc/tcp) on a TUN device (sc/tun), owning one address (the
// VIP). Client packets reach the stack two ways: read from the TUN (the VIP is routed to this
// host, e.g. `testbed --vip-host node1`) or decapsulated from GUE over UDP (sc/gue: the
// dispatcher, Linux IPVS or Katran in front; and peer nodes forwarding packets of cloned
// connections). Replies always leave through the TUN with the VIP as source (direct return).
// Its TcpSocket follows node:net's Socket, so it is a Conn as it is. Loaded lazily: the
// kernel stack never needs the native TUN addon.
import { existsSync } from "node:fs";
import type { ConnListener } from "./conn.js";
import type { TcpStack } from "../../sc/tcp/stack.js";
import type { TcpTunRuntime } from "../../sc/tcp/runtime.js";
import type { TunDevice } from "../../sc/tun/index.js";
import type { TcpServer } from "../../sc/tcp/socket.js";
import { Counter, type Registry } from "prom-client";
import { GUE_DROP_REASONS, GueReceiver } from "../../sc/gue/receiver.js";
import { Ipv4CidrSet, ipv4CidrFromString, isWireError, type Ipv4Cidr } from "../../sc/wire/index.js";
import { UserError } from "../../common/errors.js";

export interface UserStackOptions {
  /** TUN device to attach to (the testbed makes a persistent "sctun" in each host). */
  tun: string;
  /** The address the stack answers for (the VIP). */
  address: string;
  /** Overrides of the TCP stack's configuration (sc/tcp/config.ts). */
  tcpConfig?: Record<string, unknown>;
  /**
   * Receive client packets in GUE on this UDP port, only from senders in allowFrom (the
   * dispatcher or another front, and the cluster's members). Undefined: no GUE input.
   */
  gue?: { port: number; allowFrom: Ipv4CidrSet };
  /**
   * Node --workers N: this stack is worker `index` of `count`. It opens its own queue of the
   * (multi-queue) TUN device and its GUE socket joins a SO_REUSEPORT group steered by the
   * inner packet's source (sc/gue/steering.ts), so a connection's packets all reach it.
   */
  worker?: { index: number; count: number };
  /** Write GSO packets through the TUN's virtio header (default true). */
  gso?: boolean;
}

export type PacketSource = "tun" | "gue";

// Loaded lazily with the rest of the user stack (the kernel stack never needs the addon).
type TcpServerClass = typeof TcpServer;
type TcpServerInstance = InstanceType<TcpServerClass>;

/** Whether the node opens its GUE input, and whom it takes packets from. */
export type GueInputPlan = { open: true; port: number; allow: Ipv4CidrSet } | { open: false; why: string };

/**
 * Who may send GUE to a node: the cluster's members (Socket Cloning forwards client packets
 * between nodes) plus `--gue-allow` prefixes (the dispatcher's address, or an IPVS/Katran
 * front). With neither, the input stays closed: an open one lets any host that reaches the
 * port inject client packets with any source; `--gue-allow 0.0.0.0/0` asks for that
 * explicitly. Pure; throws UserError for a bad prefix.
 */
export function planGueInput(
  port: number,
  members: readonly string[],
  gueAllow: readonly string[],
): GueInputPlan {
  if (port === 0) return { open: false, why: "--gue-port 0" };
  const cidrs: Ipv4Cidr[] = [];
  for (const text of [...members, ...gueAllow]) {
    const c = ipv4CidrFromString(text);
    if (isWireError(c)) throw new UserError(`--gue-allow '${text}': ${c.detail}`);
    cidrs.push(c);
  }
  if (cidrs.length === 0) {
    return {
      open: false,
      why:
        "no --gue-allow and no --peer: nobody to take GUE from (give --gue-allow ADDR[/LEN] for the " +
        "dispatcher's address, or --gue-allow 0.0.0.0/0 to accept any sender)",
    };
  }
  return { open: true, port, allow: new Ipv4CidrSet(cidrs) };
}

/** The GUE input's counters as Prometheus metrics (read at scrape time). */
export function registerGueMetrics(registry: Registry, gue: GueReceiver): void {
  new Counter({
    name: "sc_gue_datagrams_total",
    help: "UDP datagrams received on the GUE input",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(gue.datagrams);
    },
  });
  new Counter({
    name: "sc_gue_drops_total",
    help: "GUE datagrams dropped, by reason (not_allowed: sender outside the allow-list)",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of GUE_DROP_REASONS) this.inc({ reason: r }, gue.drops[r]);
    },
  });
  new Counter({
    name: "sc_gue_wrong_worker_total",
    help: "GUE packets that reached a worker other than the one the steering gives them to (--workers N; must stay 0)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(gue.wrongWorker);
    },
  });
}

/**
 * The user-space TCP stack's drops and deadline aborts as Prometheus metrics (read at scrape
 * time): what hostile input costs (bad-source, syn-fin, challenge-ack limits, ...) is visible
 * without reading /stats.
 */
export function registerTcpMetrics(registry: Registry, stack: TcpStack): void {
  new Counter({
    name: "sc_tcp_drops_total",
    help: "Segments the user-space TCP stack dropped, by reason (docs/tcp.md)",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(stack.counters.drops)) this.inc({ reason }, n);
    },
  });
  new Counter({
    name: "sc_tcp_zero_window_aborts_total",
    help: "Connections reset because the peer kept its window closed past zeroWindowTimeout",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stack.counters.zeroWindowAborts);
    },
  });
  new Counter({
    name: "sc_tcp_resets_sent_total",
    help: "RST segments the user-space TCP stack sent",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stack.counters.resetsSent);
    },
  });
}

/**
 * Sees every inbound packet before the stack (the Socket Cloning Packet Router). It must
 * hand the packet to `stack.receive()` itself if the stack should see it; the packet is a
 * view valid only during the call.
 */
export type PacketHandler = (packet: Uint8Array, source: PacketSource, from: string) => void;

export interface UserStack {
  readonly stack: TcpStack;
  readonly runtime: TcpTunRuntime;
  readonly tun: TunDevice;
  readonly gue: GueReceiver | null;
  readonly address: string;
  /** Replaces the inbound packet path (null: straight to the stack). */
  setPacketHandler(h: PacketHandler | null): void;
  /** Starts accepting HTTP connections on `port` of the stack's address. */
  listen(port: number): UserListener;
  stats(): Record<string, unknown>;
  close(): Promise<void>;
}

export interface UserListener extends ConnListener {
  /** The stack's counters (for /stats). */
  tcpStats(): Record<string, unknown>;
}

export async function openUserStack(opts: UserStackOptions): Promise<UserStack> {
  const { TcpTunRuntime } = await import("../../sc/tcp/runtime.js");
  const tun = await openTun(opts);
  let runtime: TcpTunRuntime;
  try {
    runtime = new TcpTunRuntime(tun, { addresses: [opts.address], config: opts.tcpConfig ?? {} });
  } catch (err) {
    tun.close();
    throw err;
  }
  const inbound = new InboundPath(runtime.stack);
  tun.onPackets((batch) => {
    for (let i = 0; i < batch.count; i++) inbound.receive(batch.packet(i), "tun", "");
    inbound.flush();
  });
  let gue: GueReceiver | null = null;
  if (opts.gue) {
    try {
      gue = await openGueInput(opts.gue, opts.worker, inbound);
    } catch (err) {
      runtime.close();
      tun.close();
      throw new Error(`GUE port ${opts.gue.port}: ${(err as Error).message}`, { cause: err });
    }
  }
  const { TcpServer } = await import("../../sc/tcp/socket.js");
  return new OpenUserStack(opts.address, runtime, tun, gue, inbound, TcpServer);
}

/** Attaches to the node's TUN device (never creates one: see below). */
async function openTun(opts: UserStackOptions): Promise<TunDevice> {
  const { TunDevice } = await import("../../sc/tun/index.js");
  // Attach only: TUNSETIFF would create a missing device, and a node on a fresh TUN that no
  // route points to runs but never sees a packet.
  if (!existsSync(`/sys/class/net/${opts.tun}`)) {
    throw new Error(
      `TUN device '${opts.tun}' does not exist in this network namespace; run the node inside a ` +
        `testbed host (sc-cluster up / sc-cluster testbed up) or create and route it first ` +
        `(ip tuntap add dev ${opts.tun} mode tun; ip link set ${opts.tun} up)`,
    );
  }
  return TunDevice.open({
    name: opts.tun,
    up: true,
    maxBatch: 256,
    // vnetHdr: the stack writes GSO super-packets (up to ~64 KB) that the kernel cuts into
    // MSS-sized segments; one TUN write per ~44 segments instead of one each (docs/tcp.md).
    vnetHdr: opts.gso ?? true,
    // One worker: attach to the device whichever kind it is (a multi-queue one works too).
    multiQueue: opts.worker !== undefined ? true : "auto",
  });
}

/** Where inbound packets go: straight to the stack, or to the mode's handler (the Packet Router). */
class InboundPath {
  handler: PacketHandler | null = null;

  constructor(private readonly stack: TcpStack) {}

  receive(packet: Uint8Array, source: PacketSource, from: string): void {
    const h = this.handler;
    if (h === null) this.stack.receive(packet);
    else h(packet, source, from);
  }

  /** After a batch: one stack flush (ACKs coalesce, one TUN write call). */
  flush(): void {
    this.stack.flush();
  }
}

function openGueInput(
  gue: NonNullable<UserStackOptions["gue"]>,
  worker: UserStackOptions["worker"],
  inbound: InboundPath,
): Promise<GueReceiver> {
  return GueReceiver.open({
    port: gue.port,
    allowFrom: gue.allowFrom,
    onPacket: (packet, from) => inbound.receive(packet, "gue", from),
    onBatchEnd: () => inbound.flush(),
    ...(worker ? { steering: { workers: worker.count, index: worker.index } } : {}),
  });
}

/** The opened stack: listeners on its address, its counters, and closing all of it. */
class OpenUserStack implements UserStack {
  readonly stack: TcpStack;
  private readonly servers: TcpServerInstance[] = [];

  constructor(
    readonly address: string,
    readonly runtime: TcpTunRuntime,
    readonly tun: TunDevice,
    readonly gue: GueReceiver | null,
    private readonly inbound: InboundPath,
    private readonly TcpServer: TcpServerClass,
  ) {
    this.stack = runtime.stack;
  }

  setPacketHandler(h: PacketHandler | null): void {
    this.inbound.handler = h;
  }

  listen(port: number): UserListener {
    const server = new this.TcpServer(this.stack, { allowHalfOpen: true, noDelay: true });
    server.listen(port, this.address);
    this.servers.push(server);
    let closed = false;
    return {
      address: { host: this.address, port },
      onConnection(h) {
        server.on("connection", h);
      },
      close() {
        if (!closed) {
          closed = true;
          server.close();
        }
        return Promise.resolve();
      },
      dispose: () => this.close(),
      tcpStats: () => this.stats(),
    };
  }

  stats(): Record<string, unknown> {
    return {
      connections: this.stack.connections,
      counters: this.stack.counters,
      tun: this.tun.stats,
      ...(this.gue ? { gue: this.gue.stats() } : {}),
    };
  }

  async close(): Promise<void> {
    for (const s of this.servers) if (s.listening) s.close();
    this.runtime.close();
    this.tun.close();
    await this.gue?.close();
  }
}
