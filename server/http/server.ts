// The HTTP server proper: adopts connections from any transport (ConnListener), owns the
// per-connection state, sweeps deadlines, and shuts down gracefully.
import type { Conn, ConnListener } from "../transport/conn.js";
import { HttpConnection, type HttpConnectionHost, type Timeouts } from "./connection.js";
import type { ParserLimits } from "./parser.js";
import { DateCache } from "./date.js";
import type { LocalResponder, RequestHook } from "./hook.js";
import type { ServerStats } from "./stats.js";
import type { Logger } from "../log.js";
import type { RequestObserver } from "./connection.js";

export interface HttpServerOptions {
  responder: LocalResponder;
  mode: RequestHook;
  stats: ServerStats;
  limits: ParserLimits;
  timeouts: Timeouts;
  dates: DateCache;
  log: Logger;
  /** Connections beyond this are refused (closed at once). */
  maxConnections: number;
  /** Sees every answered request (access log, duration histogram). */
  requests?: RequestObserver | null;
}

export class HttpServer implements HttpConnectionHost {
  readonly responder: LocalResponder;
  readonly mode: RequestHook;
  readonly stats: ServerStats;
  readonly limits: ParserLimits;
  readonly timeouts: Timeouts;
  readonly dates: DateCache;
  readonly log: Logger;
  readonly requests: RequestObserver | null;
  readonly connections = new Set<HttpConnection>();
  draining = false;
  refused = 0;
  private nextId = 1;
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly listeners: ConnListener[] = [];
  private readonly maxConnections: number;
  private closedWaiters: (() => void)[] = [];

  constructor(opts: HttpServerOptions) {
    this.responder = opts.responder;
    this.mode = opts.mode;
    this.stats = opts.stats;
    this.limits = opts.limits;
    this.timeouts = opts.timeouts;
    this.dates = opts.dates;
    this.log = opts.log;
    this.maxConnections = opts.maxConnections;
    this.requests = opts.requests ?? null;
    const t = opts.timeouts;
    // A quarter of the shortest timeout, between 10 ms and 1 s: deadlines fire at most that late.
    const tick = Math.max(10, Math.min(1000, Math.min(t.headerMs, t.idleMs, t.sendMs, t.lingerMs) / 4));
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), tick);
    this.sweepTimer.unref();
  }

  /** Serves connections accepted by `listener` until shutdown. */
  attach(listener: ConnListener): void {
    this.listeners.push(listener);
    listener.onConnection((conn) => this.handle(conn));
  }

  /** Adopts one connection (from a listener, or handed over by a mode). */
  handle(conn: Conn): HttpConnection | null {
    if (this.draining || this.connections.size >= this.maxConnections) {
      this.refused++;
      conn.destroy();
      return null;
    }
    const c = new HttpConnection(this.nextId++, conn, this);
    this.connections.add(c);
    return c;
  }

  connectionClosed(c: HttpConnection): void {
    this.connections.delete(c);
    if (this.connections.size === 0) {
      const waiters = this.closedWaiters;
      this.closedWaiters = [];
      for (const w of waiters) w();
    }
  }

  sweep(now: number): void {
    for (const c of this.connections) c.checkDeadline(now);
  }

  /**
   * Stops accepting, lets each connection finish its current response and close, and resets
   * whatever is still open after `graceMs`.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.draining = true;
    await Promise.all(this.listeners.map((l) => l.close()));
    for (const c of this.connections) c.drain();
    await this.allClosed(graceMs);
    for (const c of this.connections) c.conn.destroy();
    await this.allClosed(1000); // 'close' follows destroy() within a tick or two
    clearInterval(this.sweepTimer);
    for (const l of this.listeners) await l.dispose?.();
  }

  private async allClosed(ms: number): Promise<void> {
    if (this.connections.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.closedWaiters.push(resolve)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
    ]);
    clearTimeout(timer);
  }
}
