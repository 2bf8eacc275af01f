// --mode lard, the node's side of LARD with TCP handoff (docs/lard.md): the front-end
// (dispatcher/lard/) accepts the client's connection, reads the first request and hands the
// connection here in a HANDOFF on an authenticated link. This node imports it (the same
// validated import a Socket Cloning clone goes through, but as a plain socket: it owns the
// connection from now on), answers HANDOFF-ACK, and gives it to its HTTP server as if it had
// accepted it: the received bytes are the first data, later packets come from the front-end in
// GUE, responses go straight to the client. When the connection is gone here, an END tells the
// front-end (its load count and forwarding entry).
import { Counter, Histogram } from "prom-client";
import type { Conn, ConnListener } from "../conn.js";
import { registerMode, type Mode, type ModeContext } from "../modes.js";
import { selfMember } from "../cluster.js";
import { UserFacingError } from "../errors.js";
import { mirrorCounter, mirrorGauge } from "../metrics.js";
import { CloneStatus, CLONE_STATUS_NAMES } from "../../sc/clone/message.js";
import { linkKey } from "../../sc/auth/link.js";
import { decodeState, importState } from "../../sc/tcp/state.js";
import type { TcpStack } from "../../sc/tcp/stack.js";
import type { TcpSocket } from "../../sc/tcp/socket.js";
import { isWireError } from "../../sc/wire/error.js";
import { ipv4FromString, ipv4ToString } from "../../sc/wire/addr.js";
import { LINK_DROP_REASONS } from "../../sc/clone/transport.js";
import type { HandoffMessage } from "../../dispatcher/lard/handoff-message.js";
import { HANDOFF_PORT, HandoffServer, type HandoffReplyLink } from "../../dispatcher/lard/handoff-link.js";

/** A node stops taking a handoff this long before its start deadline (the front-end's view stays safe). */
export const HANDOFF_SAFETY_MS = 50;

export interface HandoffImportPolicy {
  stack: TcpStack;
  /** The VIP and port this node serves: the only local side a handed-off connection may have. */
  vip: number;
  port: number;
  /** Connections taken at most at once (more are refused busy). */
  maxConnections: number;
  /** Handed-off connections open here now. */
  open: number;
}

/**
 * Checks a HANDOFF and imports its connection, or says why not (nothing is sent to the client
 * either way). `wallNow` is the wall clock (ms) the start deadline is compared with.
 */
export function importHandoff(
  msg: HandoffMessage,
  p: HandoffImportPolicy,
  wallNow: number,
): { sock: TcpSocket } | { refused: CloneStatus } {
  if (wallNow > msg.startDeadline - HANDOFF_SAFETY_MS) return { refused: CloneStatus.Expired };
  if (p.open >= p.maxConnections) return { refused: CloneStatus.Busy };
  const snap = decodeState(msg.state);
  if (isWireError(snap)) return { refused: CloneStatus.BadState };
  const t = snap.tuple;
  if (t.localAddr !== p.vip || t.localPort !== p.port) return { refused: CloneStatus.NoListener };
  const old = p.stack.lookup(t.localAddr, t.localPort, t.remoteAddr, t.remotePort);
  if (old !== undefined && !old.isClosed() && old.state !== "TIME-WAIT")
    return { refused: CloneStatus.Exists };
  try {
    const sock = importState(p.stack, { ...snap, seed: msg.seed }, msg.data, {
      localEndpoints: [{ addr: p.vip, port: p.port }],
    });
    return { sock };
  } catch {
    return { refused: CloneStatus.BadState };
  }
}

/** What the mode counts (for /stats and the metrics). */
export interface LardNodeCounters {
  received: number;
  accepted: number;
  refused: Record<string, number>;
  ended: number;
}

/**
 * The node's mode: every request is served here (the front-end already chose this node), and
 * the connections handed off arrive through `listener`, which the node's HTTP server serves.
 */
export class LardNode implements Mode {
  readonly name = "lard";
  readonly counters: LardNodeCounters = { received: 0, accepted: 0, refused: {}, ended: 0 };
  /** Connections handed here that are still open. */
  open = 0;
  private handler: ((conn: Conn) => void) | null = null;
  readonly listener: ConnListener;

  constructor(
    private readonly policy: Omit<HandoffImportPolicy, "open">,
    private readonly wallClock: () => number = Date.now,
    private readonly onOneWay?: (us: number) => void,
    private readonly monotonicUs?: () => number,
  ) {
    this.listener = {
      address: { host: ipv4ToString(policy.vip), port: policy.port },
      onConnection: (h) => {
        this.handler = h;
      },
      close: () => Promise.resolve(),
    };
  }

  decide(): "serve" {
    return "serve";
  }

  /** A HANDOFF from the front-end (its link authenticated it). */
  onHandoff(msg: HandoffMessage, link: HandoffReplyLink): void {
    this.counters.received++;
    const handler = this.handler;
    if (handler === null) return this.refuse(msg, link, CloneStatus.NoListener);
    const made = importHandoff(msg, { ...this.policy, open: this.open }, this.wallClock());
    if ("refused" in made) return this.refuse(msg, link, made.refused);
    const { sock } = made;
    this.counters.accepted++;
    this.open++;
    sock.once("close", () => {
      this.open--;
      this.counters.ended++;
      link.end(msg.handoffId);
    });
    // The ACK first: the front-end forwards the client's packets from then on.
    link.ack(msg.handoffId, CloneStatus.Accepted);
    if (this.onOneWay !== undefined && this.monotonicUs !== undefined && msg.sentAtUs > 0)
      this.onOneWay(this.monotonicUs() - msg.sentAtUs);
    handler(sock as unknown as Conn);
  }

  private refuse(msg: HandoffMessage, link: HandoffReplyLink, status: CloneStatus): void {
    const name = CLONE_STATUS_NAMES[status] ?? String(status);
    this.counters.refused[name] = (this.counters.refused[name] ?? 0) + 1;
    link.ack(msg.handoffId, status);
  }

  stats(): Record<string, unknown> {
    return { ...this.counters, open: this.open };
  }
}

function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

registerMode({
  name: "lard",
  summary: "LARD back-end: serve connections the LARD front-end hands off (dispatcher --mode lard)",
  needsCluster: true,
  needsUserStack: true,
  async create(ctx: ModeContext): Promise<Mode> {
    const { cluster, userStack, trust } = ctx;
    if (cluster === null || userStack === null || trust === null)
      throw new UserFacingError("--mode lard needs --peer members, --stack user and the cluster secret");
    const gue = userStack.gue;
    if (gue === null)
      throw new UserFacingError(
        "--mode lard needs GUE input (--gue-port): the front-end forwards the client's packets in GUE",
      );
    const self = selfMember(cluster);
    const vip = ipv4FromString(userStack.address);
    if (isWireError(vip)) throw new UserFacingError(`--mode lard: bad VIP ${userStack.address}`);
    const oneWay = new Histogram({
      name: "sc_lard_handoff_one_way_seconds",
      help: "HANDOFF sent by the front-end (CLOCK_MONOTONIC stamp) -> imported here; one machine only",
      buckets: [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2],
      registers: [ctx.registry],
    });
    const mode = new LardNode(
      { stack: userStack.stack, vip, port: ctx.httpPort, maxConnections: 100_000 },
      Date.now,
      (us) => oneWay.observe(us / 1e6),
      monotonicUs,
    );
    // The front-end connects from an address the node takes GUE from (the dispatcher's).
    const allow = gue.allow;
    const server = new HandoffServer({
      nodeId: self.id,
      listenHost: self.addr,
      listenPort: HANDOFF_PORT,
      key: linkKey(trust),
      admit: (addr) => {
        const a = ipv4FromString(addr);
        return !isWireError(a) && allow.has(a);
      },
      onHandoff: (msg, link) => mode.onHandoff(msg, link),
    });
    const registry = ctx.registry;
    mirrorCounter(
      registry,
      "sc_lard_handoffs_received_total",
      "HANDOFF messages received",
      () => mode.counters.received,
    );
    mirrorCounter(
      registry,
      "sc_lard_handoffs_accepted_total",
      "Connections handed off to this node and imported",
      () => mode.counters.accepted,
    );
    mirrorGauge(registry, "sc_lard_connections", "Handed-off connections open on this node", () => mode.open);
    const counters = mode.counters;
    new Counter({
      name: "sc_lard_handoffs_refused_total",
      help: "HANDOFF messages refused, by status",
      labelNames: ["status"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [status, n] of Object.entries(counters.refused)) this.inc({ status }, n);
      },
    });
    new Counter({
      name: "sc_lard_link_drops_total",
      help: "Handoff links this node refused or closed, by reason (docs/lard.md)",
      labelNames: ["reason"],
      registers: [registry],
      collect() {
        this.reset();
        for (const reason of LINK_DROP_REASONS) this.inc({ reason }, server.drops[reason]);
      },
    });
    try {
      await server.start();
    } catch (err) {
      throw new UserFacingError(
        `LARD handoff server on ${self.addr}:${HANDOFF_PORT}: ${(err as Error).message}`,
      );
    }
    const stats = mode.stats.bind(mode);
    return Object.assign(mode, {
      stats: () => ({ ...stats(), links: server.linksUp, linkDrops: server.drops }),
      close: () => server.close(),
    });
  },
});
