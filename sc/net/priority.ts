// Marks a node's Socket Cloning traffic (the SC link's TCP sockets, the UDP socket that relays
// client packets to clones in GUE) so that egress queues send it ahead of bulk response data:
// DSCP CS5 in the IP header (honoured by the testbed's links and by any DSCP-aware switch or
// qdisc, see docs/deployment.md) and SO_PRIORITY for the sending host's own qdisc (pfifo_fast
// and prio map priority 6 to their first band). Node 20 has no API for either (node:net's
// setTypeOfService came in Node 24, node:dgram has none), so the setsockopt calls live in the
// sc/tun addon (native/sockopt.c) and take the fd of node's handle.
//
// Marking is best effort: a socket that cannot be marked still carries traffic, only without
// priority. Failures are counted by reason and logged once per reason, never thrown.
import type * as dgram from "node:dgram";
import * as net from "node:net";
import { Counter, type Registry } from "prom-client";
import { loadAddon, type NativeAddon } from "../tun/addon.js";

export interface TrafficMarking {
  /** The DSCP codepoint (6 bits). */
  dscp: number;
  /** SO_PRIORITY (0-6 need no privilege; 7 and above need CAP_NET_ADMIN). */
  priority: number;
}

/**
 * CS5, RFC 4594's class for signalling, and TC_PRIO_INTERACTIVE (6), the highest priority an
 * unprivileged process may set and the one pfifo_fast puts in its first band.
 */
export const SC_MARKING: Readonly<TrafficMarking> = { dscp: 40, priority: 6 };

/** The IP TOS / traffic class byte of a marking (DSCP in the upper 6 bits, ECN bits 0). */
export function tosByte(m: TrafficMarking): number {
  return (m.dscp & 0x3f) << 2;
}

export const MARK_FAILURES = ["no-addon", "no-fd", "setsockopt"] as const;
export type MarkFailure = (typeof MARK_FAILURES)[number];

export interface MarkCounters {
  /** Sockets marked. */
  marked: number;
  /** Sockets left unmarked, by reason. */
  failed: Record<MarkFailure, number>;
}

type SocketOptions = Pick<NativeAddon, "setSocketPriority" | "getSocketPriority">;
/** A node:net or node:dgram socket, or a socket the addon owns (it knows its fd). */
type Markable = net.Socket | dgram.Socket | { readonly fd: number };

/**
 * Marks sockets with one marking. A TCP socket that is still connecting (its fd does not
 * exist yet) is marked when it connects.
 */
export class TrafficMarker {
  readonly counters: MarkCounters = {
    marked: 0,
    failed: Object.fromEntries(MARK_FAILURES.map((r) => [r, 0])) as Record<MarkFailure, number>,
  };
  private readonly logged = new Set<MarkFailure>();
  private native: SocketOptions | Error | undefined;

  constructor(
    private readonly log: (message: string) => void,
    readonly marking: Readonly<TrafficMarking> = SC_MARKING,
    /** The socket option calls (default: the addon, loaded on first use); an Error if unavailable. */
    native?: SocketOptions | Error,
  ) {
    this.native = native;
  }

  /** Marks `sock` now, or once it connects; false when it could not be marked (counted). */
  mark(sock: Markable): boolean {
    if (sock instanceof net.Socket && sock.connecting) {
      sock.once("connect", () => this.mark(sock));
      return true;
    }
    const native = this.options();
    if (native instanceof Error) return this.fail("no-addon", native.message);
    const fd = socketFd(sock);
    if (fd < 0) return this.fail("no-fd", "the socket has no file descriptor (closed, or not bound yet)");
    const errno = native.setSocketPriority(fd, tosByte(this.marking), this.marking.priority);
    if (errno !== 0) return this.fail("setsockopt", `setsockopt: errno ${errno}`);
    this.counters.marked++;
    return true;
  }

  private options(): SocketOptions | Error {
    if (this.native === undefined) {
      try {
        this.native = loadAddon();
      } catch (err) {
        this.native = err as Error;
      }
    }
    return this.native;
  }

  private fail(reason: MarkFailure, detail: string): false {
    this.counters.failed[reason]++;
    if (!this.logged.has(reason)) {
      this.logged.add(reason);
      this.log(
        `SC traffic priority: a socket could not be marked (DSCP ${this.marking.dscp}, priority ` +
          `${this.marking.priority}): ${detail}; its traffic is sent unprioritised (logged once)`,
      );
    }
    return false;
  }
}

/**
 * The fd of a node:net or node:dgram socket, or -1. Both keep it on their libuv handle; the
 * dgram socket's handle sits behind a private symbol (its `_handle` getter is deprecated,
 * DEP0112, and warns).
 */
export function socketFd(sock: Markable): number {
  if ("fd" in sock && typeof sock.fd === "number") return sock.fd;
  let handle: unknown;
  if (sock instanceof net.Socket) handle = (sock as unknown as { _handle?: unknown })._handle;
  else {
    const state = Object.getOwnPropertySymbols(sock).find((s) => s.description === "state symbol");
    handle = state
      ? (sock as unknown as Record<symbol, { handle?: unknown } | undefined>)[state]?.handle
      : undefined;
  }
  const fd = (handle as { fd?: unknown } | null | undefined)?.fd;
  return typeof fd === "number" ? fd : -1;
}

/** [tos, priority] of a socket as the kernel reports them, or null (tests, diagnostics). */
export function socketMarking(sock: Markable, native: SocketOptions = loadAddon()): TrafficMarking | null {
  const fd = socketFd(sock);
  if (fd < 0) return null;
  const [tos, priority] = native.getSocketPriority(fd);
  return tos < 0 ? null : { dscp: tos >> 2, priority };
}

/**
 * The marker's counters in Prometheus form, for the node's registry:
 * `sc_traffic_marked_sockets_total` and `sc_traffic_marking_failures_total{reason}`.
 */
export function registerMarkingMetrics(marker: TrafficMarker, registers: Registry[]): void {
  new Counter({
    name: "sc_traffic_marked_sockets_total",
    help: "SC sockets (SC links, GUE relay) marked with the SC traffic's DSCP and socket priority",
    registers,
    collect() {
      this.reset();
      this.inc(marker.counters.marked);
    },
  });
  new Counter({
    name: "sc_traffic_marking_failures_total",
    help: "SC sockets left unmarked (their traffic is sent without priority), by reason",
    labelNames: ["reason"],
    registers,
    collect() {
      this.reset();
      for (const reason of MARK_FAILURES) this.inc({ reason }, marker.counters.failed[reason]);
    },
  });
}
