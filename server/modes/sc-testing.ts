// Test support: Socket Cloning nodes in one process, in real time, without TUN devices. Each
// node has its own TcpStack owning the VIP, the mode, an HttpServer on the stack, and a real
// ScTransport on a loopback address of its own (127/8), so SC links are authenticated for real.
// A LiveNet carries the IPv4 packets: client -> VIP to the entry node (as the dispatcher would),
// node -> client to the client's stack, and a node's GUE forwarding to the peer's packet hook.
// Packets to any other address are kept in `strays`: a victim must see none. Not product code.
import { createHash } from "node:crypto";
import { Registry } from "prom-client";
import { SocketCloning, SC_DEFAULTS, type ScSettings } from "./sc.js";
import { HttpServer } from "../http/server.js";
import { DEFAULT_LIMITS } from "../http/parser.js";
import { DateCache } from "../http/date.js";
import { Responder } from "../store/responder.js";
import { DocStore } from "../store/doc-store.js";
import { createDocCache } from "../cache/doc-cache.js";
import { makeDoc } from "../http/doc.js";
import { ServerStats } from "../http/stats.js";
import { pino } from "pino";
import { UrlMapper } from "../membership/mapper.js";
import type { ClusterConfig, ClusterMember } from "../membership/config.js";
import type { Timeouts } from "../http/connection.js";
import type { NodeContext } from "./mode.js";
import type { PacketHandler } from "../transport/user-stack.js";
import type { DocSource, Lookup } from "../source/source.js";
import { TcpStack } from "../../sc/tcp/stack.js";
import { TcpServer, connectTcp, type TcpSocket } from "../../sc/tcp/socket.js";
import type { TcpConfig } from "../../sc/tcp/config.js";
import { ScTransport, type ScLinkLimits } from "../../sc/clone/transport.js";
import { freePort } from "../../sc/clone/testing.js";
import type { LinkKey } from "../../sc/auth/link.js";
import { ipv4FromString, readIpv4 } from "../../sc/wire/addr.js";
import tls from "node:tls";
import { ConnDuplex, TlsTermination } from "../transport/tls.js";
import type { ConnListener } from "../transport/conn.js";

export const VIP = "198.18.100.1";
export const CLIENT = "198.18.0.2";
export const HTTP_PORT = 80;
export const TLS_PORT = 443;
export const TEST_KEY: LinkKey = { kind: "secret", key: Buffer.alloc(32, 0x5c) };

/** This process's own loopback addresses (127/8 is local as a whole on Linux). */
export function loopbackAddr(host: number): string {
  return `127.${((process.pid >> 8) & 0xff) ^ 0xa5}.${process.pid & 0xff}.${host}`;
}

/** Documents served from memory. */
class MemorySource implements DocSource {
  readonly describe = "memory";
  constructor(private readonly docs: ReadonlyMap<string, Buffer>) {}
  load(path: string): Promise<Lookup> {
    const body = this.docs.get(path);
    if (body === undefined) return Promise.resolve({ kind: "error", status: 404, reason: "not found" });
    const doc = makeDoc({
      key: path,
      size: body.length,
      mtimeMs: 0,
      etag: `"${path.length}-${body.length}"`,
      contentType: "application/octet-stream",
      body,
    });
    return Promise.resolve({ kind: "doc", doc });
  }
  stats(): Record<string, number> {
    return {};
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A TcpStack on the wall clock with one timer for its earliest deadline (as TcpTunRuntime). */
class LiveStack {
  readonly stack: TcpStack;
  private timer: NodeJS.Timeout | undefined = undefined;
  private timerAt = Infinity;
  private closed = false;

  constructor(addresses: string[], config: Partial<TcpConfig>, output: (p: Uint8Array) => void) {
    const origin = performance.now();
    this.stack = new TcpStack({
      addresses,
      clock: () => performance.now() - origin,
      config: { ...config, gsoMaxBytes: 0 },
      output: (p) => output(p),
      onTimersChanged: () => this.arm(),
    });
  }

  private arm(): void {
    if (this.closed) return;
    const at = this.stack.pollAt();
    if (at === undefined || at >= this.timerAt) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.fire, Math.max(0, Math.ceil(at - this.stack.now())));
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    this.stack.poll(this.stack.now());
    this.arm();
  };

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}

export interface ScTestNode {
  readonly id: string;
  /** Member (loopback) address: SC link and GUE source. */
  readonly addr: string;
  readonly stack: TcpStack;
  readonly mode: SocketCloning;
  readonly transport: ScTransport;
  readonly http: HttpServer;
  readonly stats: ServerStats;
  /** The mode's hook for inbound packets (null: straight to the stack). */
  readonly hook: { handler: PacketHandler | null };
  /** The node's metrics registry (the mode registers its metrics there). */
  readonly registry: Registry;
  /** The node's log lines at warn level and above, parsed. */
  readonly logged: { msg: string; [field: string]: unknown }[];
}

export interface ScClusterOptions {
  nodes: number;
  docs: Record<string, Buffer>;
  settings?: Partial<ScSettings>;
  /** The HTTP pipeline's own timeouts (default: long, so the mode's deadlines are what is tested). */
  timeouts?: Partial<Timeouts>;
  limits?: Partial<ScLinkLimits>;
  tcp?: Partial<TcpConfig>;
  /** The SC link key of every node (default TEST_KEY; `{ kind: "insecure-dev" }`). */
  key?: LinkKey;
  /** HTTPS on TLS_PORT too, our record layer after OpenSSL's handshake (as --tls-record-layer own). */
  tls?: { certFile: string; keyFile: string };
  /** Nodes that say they are data-path worker `index` of `count` (read at each clone: tests may change it). */
  workers?: Record<string, { index: number; count: number }>;
}

/** A record of a packet a node's stack sent. */
export interface SentPacket {
  readonly node: string;
  readonly dst: number;
  readonly packet: Uint8Array;
}

export class ScTestCluster {
  readonly nodes: ScTestNode[] = [];
  readonly members: ClusterMember[];
  readonly mapper: UrlMapper;
  /** Every packet node stacks sent (to clients or elsewhere), in order. */
  readonly sent: SentPacket[] = [];
  /** Packets to an address that is neither a client nor the VIP. */
  readonly strays: SentPacket[] = [];
  /** Return false to drop a client packet a node forwards to a clone's node. */
  forwardFilter: ((packet: Uint8Array, from: ScTestNode, to: ScTestNode) => boolean) | undefined;
  private readonly clients = new Map<number, LiveStack>();
  private readonly live: LiveStack[] = [];
  private readonly vip = ipv4FromString(VIP) as number;
  private queue: (() => TcpStack | undefined)[] = [];
  private scheduled = false;

  private constructor(members: ClusterMember[]) {
    this.members = members;
    this.mapper = new UrlMapper(members.map((m) => ({ id: m.id, weight: m.weight })));
  }

  static async start(o: ScClusterOptions): Promise<ScTestCluster> {
    const members = Array.from({ length: o.nodes }, (_, i) => ({
      id: `n${i + 1}`,
      addr: loopbackAddr(10 + i),
      weight: 1,
    }));
    const c = new ScTestCluster(members);
    const ports = await Promise.all(members.map((m) => freePort(m.addr)));
    const peers = members.map((m, i) => ({ id: m.id, host: m.addr, port: ports[i]! }));
    const docs = new Map(Object.entries(o.docs));
    for (const m of members) {
      const cluster: ClusterConfig = { self: m.id, members, scPort: 0, peerPort: 0, guePort: 0 };
      const tls = o.tls === undefined ? null : await termination(o.tls);
      c.nodes.push(c.makeNode(m, cluster, peers, docs, o, tls));
    }
    await Promise.all(c.nodes.map((n) => n.transport.start()));
    await Promise.all(c.nodes.map((n) => n.transport.waitForPeers(5000)));
    return c;
  }

  private makeNode(
    m: ClusterMember,
    cluster: ClusterConfig,
    peers: { id: string; host: string; port: number }[],
    docs: ReadonlyMap<string, Buffer>,
    o: ScClusterOptions,
    tls: TlsTermination | null,
  ): ScTestNode {
    // The stack and the mode call back into the node before it is complete.
    const ref: { node?: ScTestNode } = {};
    const hook: { handler: PacketHandler | null } = { handler: null };
    const live = new LiveStack([VIP], o.tcp ?? {}, (p) => {
      if (ref.node !== undefined) this.fromNode(ref.node, p);
    });
    this.live.push(live);
    const stats = new ServerStats();
    const dates = new DateCache();
    const logged: ScTestNode["logged"] = [];
    const log = pino({ level: "warn" }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    const registry = new Registry();
    const store = new DocStore(createDocCache("lru", 64 << 20), new MemorySource(docs));
    const responder = new Responder(store, dates);
    const settings: ScSettings = { ...SC_DEFAULTS, ...o.settings };
    const transport = new ScTransport({
      nodeId: m.id,
      listenHost: m.addr,
      listenPort: peers.find((p) => p.id === m.id)!.port,
      peers,
      key: o.key ?? TEST_KEY,
      localAddress: m.addr,
      limits: o.limits ?? {},
      onClone: (msg, from, reply) => mode.onClone(msg, from, reply),
      onCancel: (id, from, reply) => mode.onCancel(id, from, reply),
      onCloneAck: (ack, from) => mode.onCloneAck(ack, from),
      onDone: (id, from) => mode.onDone(id, from),
      onInboundLost: (peer) => mode.onInboundLost(peer),
    });
    const ctx: NodeContext = {
      nodeId: m.id,
      store,
      responder,
      stats,
      dates,
      registry,
      log,
      httpPort: HTTP_PORT,
      ...(tls === null ? {} : { tlsPort: TLS_PORT }),
      ...(o.workers?.[m.id] ? { worker: o.workers[m.id] } : {}),
      modeSettings: {},
    };
    const mode: SocketCloning = new SocketCloning(ctx, settings, {
      stack: live.stack,
      vip: VIP,
      setPacketHandler: (h) => (hook.handler = h),
      cluster,
      mapper: this.mapper,
      transport,
      forward: (packet, peer) => {
        if (ref.node !== undefined) this.forward(ref.node, peer, Uint8Array.from(packet));
      },
      close: () => Promise.resolve(),
    });
    const http = new HttpServer({
      responder,
      mode,
      stats,
      limits: DEFAULT_LIMITS,
      timeouts: { headerMs: 60_000, idleMs: 60_000, sendMs: 60_000, lingerMs: 5_000, ...o.timeouts },
      dates,
      log,
      maxConnections: 10_000,
    });
    http.attach(stackListener(live.stack, HTTP_PORT));
    if (tls !== null) http.attach(tls.listener(stackListener(live.stack, TLS_PORT)));
    ref.node = {
      id: m.id,
      addr: m.addr,
      stack: live.stack,
      mode,
      transport,
      http,
      stats,
      hook,
      registry,
      logged,
    };
    return ref.node;
  }

  node(id: string): ScTestNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** A document path whose home is node `id`, from `paths`. */
  homedAt(id: string, paths: string[]): string {
    const p = paths.find((x) => this.mapper.lookup(x) === id);
    if (p === undefined) throw new Error(`no path homed at ${id}`);
    return p;
  }

  /** A client host: its own stack at `addr`. Its packets to the VIP go to `entry`. */
  client(entry: string, config: Partial<TcpConfig> = {}, addr = CLIENT): TestClient {
    const a = ipv4FromString(addr) as number;
    let live = this.clients.get(a);
    if (live === undefined) {
      const entryNode = this.node(entry);
      live = new LiveStack([addr], config, (p) => this.fromClient(entryNode, p));
      this.clients.set(a, live);
      this.live.push(live);
    }
    return new TestClient(live.stack);
  }

  private fromClient(entry: ScTestNode, p: Uint8Array): void {
    if (readIpv4(p, 16) !== this.vip) return;
    this.enqueue(() => {
      if (entry.hook.handler !== null) entry.hook.handler(p, "tun", "");
      else entry.stack.receive(p);
      return entry.stack;
    });
  }

  private fromNode(n: ScTestNode, p: Uint8Array): void {
    const dst = readIpv4(p, 16);
    const rec = { node: n.id, dst, packet: p };
    this.sent.push(rec);
    const client = this.clients.get(dst);
    if (client === undefined) {
      this.strays.push(rec);
      return;
    }
    this.enqueue(() => {
      client.stack.receive(p);
      return client.stack;
    });
  }

  private forward(from: ScTestNode, peer: ClusterMember, p: Uint8Array): void {
    const to = this.nodes.find((x) => x.addr === peer.addr);
    if (to === undefined) return;
    if (this.forwardFilter !== undefined && !this.forwardFilter(p, from, to)) return;
    this.enqueue(() => {
      if (to.hook.handler !== null) to.hook.handler(p, "gue", from.addr);
      else to.stack.receive(p);
      return to.stack;
    });
  }

  /** Deliveries run in a later macrotask (as packets from a device would), then flush. */
  private enqueue(deliver: () => TcpStack | undefined): void {
    this.queue.push(deliver);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const q = this.queue;
      this.queue = [];
      const touched = new Set<TcpStack>();
      for (const d of q) {
        const s = d();
        if (s !== undefined) touched.add(s);
      }
      for (const s of touched) s.flush();
    });
  }

  async close(): Promise<void> {
    for (const n of this.nodes) {
      await n.http.shutdown(0);
      await n.mode.close();
    }
    for (const l of this.live) l.close();
  }
}

/** A listener on the VIP of a node's stack. */
function stackListener(stack: TcpStack, port: number): ConnListener {
  const server = new TcpServer(stack, { allowHalfOpen: true, noDelay: true });
  server.listen(port, VIP);
  return {
    address: { host: VIP, port },
    onConnection: (h) => server.on("connection", h),
    close: () => {
      if (server.listening) server.close();
      return Promise.resolve();
    },
  };
}

function termination(files: { certFile: string; keyFile: string }): Promise<TlsTermination> {
  return TlsTermination.create({ ...files, handshakeTimeoutMs: 10_000, maxHandshakes: 100, takeOver: true });
}

/** A client host's stack: open connections to the VIP. */
export class TestClient {
  constructor(readonly stack: TcpStack) {}

  connect(port = HTTP_PORT): TcpSocket {
    const s = connectTcp(this.stack, { host: VIP, port, noDelay: true });
    s.on("error", () => undefined);
    return s;
  }

  /**
   * A TLS client (OpenSSL, node:tls) over a connection to TLS_PORT, trusting `ca`. `raw` sees
   * every byte the client receives, as it arrives (before OpenSSL).
   */
  connectTls(ca: string, o: tls.ConnectionOptions = {}, raw?: (b: Buffer) => void): tls.TLSSocket {
    const tcp = this.connect(TLS_PORT);
    const duplex = new ConnDuplex(
      tcp,
      raw === undefined ? null : { inbound: raw, outbound: () => undefined },
    );
    return tls.connect({ socket: duplex, ca, host: VIP, servername: "localhost", ...o });
  }
}

/** A test document's bytes: the same for the same path and size. */
export function testContent(path: string, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = createHash("sha256").update(path).digest().readUInt32BE(0);
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/**
 * A site of `count` documents under `dir`, alternately `smallSize` and `largeSize` bytes, and
 * pickers of one document of each kind homed at a given node.
 */
export function testSite(dir: string, smallSize: number, largeSize: number, count = 24) {
  const paths = Array.from({ length: count }, (_, i) => `/${dir}/${i}.bin`);
  const docs: Record<string, Buffer> = {};
  for (const [i, p] of paths.entries()) docs[p] = testContent(p, i % 2 === 0 ? smallSize : largeSize);
  const sized = (size: number) => paths.filter((p) => docs[p]!.length === size);
  return {
    paths,
    docs,
    small: (id: string, c: ScTestCluster) => c.homedAt(id, sized(smallSize)),
    large: (id: string, c: ScTestCluster) => c.homedAt(id, sized(largeSize)),
  };
}

/** A byte stream as the response reader needs it: our TcpSocket or a node:tls socket. */
export interface ByteStream {
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  on(event: "close", listener: () => void): unknown;
  off(event: "data", listener: (chunk: Buffer) => void): unknown;
  off(event: "close", listener: () => void): unknown;
}

/** Reads one HTTP/1.1 response (Content-Length framed) from the stream. */
export function readResponse(s: ByteStream): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    let head: Buffer | null = null;
    let status = 0;
    let want = 0;
    let chunks: Buffer[] = [];
    let have = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      if (head === null) {
        const all = Buffer.concat(chunks);
        const end = all.indexOf("\r\n\r\n");
        if (end < 0) return;
        head = all.subarray(0, end + 4);
        const text = head.toString("latin1");
        status = Number(text.slice(9, 12));
        want = head.length + Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? "0");
        chunks = [all];
      }
      if (have < want) return;
      s.off("data", onData);
      s.off("close", onClose);
      resolve({ status, body: Buffer.concat(chunks).subarray(head.length, want) });
    };
    const onClose = () => reject(new Error(`connection closed after ${have} bytes`));
    s.on("data", onData);
    s.on("close", onClose);
  });
}

/** Polls `cond` every 10 ms until true or `ms` pass (for state that has no event of its own). */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
