// The live dashboard `sc-cluster up` serves (docs/dashboard.md): a static page (public/: plain
// HTML, CSS and JS, no build step) and a small JSON API, on 127.0.0.1 by default.
//   GET  /api/cluster   topology and settings (hosts, addresses, mode, VIP, replay bounds)
//   GET  /api/snapshot  the latest per-node numbers (snapshot.ts), polled now if there is none
//   GET  /api/events    server-sent events: `snapshot` every interval, `replay` on each change
//                       (at most 32 streams, 503 beyond; a stream that does not read skips
//                       snapshots and is dropped if it stays behind: events.ts)
//   GET  /api/replay    the replay's state and last result
//   POST /api/replay    starts a bounded, verified trace replay from the client host (409 if one
//                       runs); only from the dashboard's own page (Origin / Sec-Fetch-Site)
//   GET  /api/stats     the dashboard's own counters (streams, skips, refusals)
// Polling the control APIs happens only while a page is open or a replay runs. Every request
// must name this server by an IP literal, localhost or a --dashboard-host name (421): no DNS
// rebinding of another site's name onto it.
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import Fastify, { type FastifyInstance } from "fastify";
import fastifyStatic from "@fastify/static";
import { StatsCollector, type StatsSource } from "./collector.js";
import { runReplayFrom, type ReplayOutcome, type ReplaySettings, type Spawner } from "./replay.js";
import type { Snapshot } from "./snapshot.js";
import { SSE_LIMITS, SseStats, SseSubscriber, type SseLimits } from "./events.js";
import { checkHostName, hostAllowed } from "../../sc/auth/admin-access.js";

/** The page's files, beside this module's source (dist/cluster/dashboard/ -> cluster/dashboard/public/). */
export const PUBLIC_DIR = fileURLToPath(new URL("../../../cluster/dashboard/public/", import.meta.url));

export const DEFAULT_DASHBOARD_HOST = "127.0.0.1";
export const DEFAULT_DASHBOARD_PORT = 8090;
/** The replay button's bounds: a few seconds, a few thousand requests. */
export const DEFAULT_REPLAY = { requests: 3000, durationS: 5, conns: 8 };

/** What the dashboard uses of a Cluster (cluster/cluster.ts), so tests can hand it a stand-in. */
export interface DashboardCluster {
  prefix: string;
  vip: string;
  vipUrl: string;
  originUrl: string;
  site: string;
  plan: { mode: string; scheduler: string };
  testbed: Spawner & { plan: { expose: boolean }; host(name: string): { ip: string; netns: string } };
  /** The demo site's trace and manifest (the replay needs them). */
  demo: { trace: string; manifest: string } | undefined;
  nodes: string[];
  process(host: string): { ip: string; admin?: string };
  json<T>(url: string, timeoutMs?: number): Promise<T>;
}

export interface DashboardOptions {
  cluster: DashboardCluster;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** How often the control APIs are polled while someone watches. */
  intervalMs?: number;
  replay?: Partial<typeof DEFAULT_REPLAY>;
  /** Host names the dashboard answers to besides IP literals and localhost. */
  hostNames?: readonly string[];
  /** Bounds of the event streams (tests lower them). */
  streams?: Partial<SseLimits>;
}

/** The dashboard's own counters (GET /api/stats). */
export interface DashboardStats {
  streams: SseStats;
  refused: { host: number; crossSite: number };
}

export interface Dashboard {
  /** http://ADDR:PORT/ */
  url: string;
  readonly collector: StatsCollector;
  readonly stats: DashboardStats;
  /** Stops a running replay, ends the event streams and the server. */
  close(): Promise<void>;
}

export interface ReplayState {
  running: boolean;
  available: boolean;
  /** Why the button is off (no trace: the cluster serves a --site without one). */
  unavailableReason: string | null;
  bounds: typeof DEFAULT_REPLAY;
  startedAt: string | null;
  last: (ReplayOutcome & { clonesDuring: number | null; finishedAt: string }) | null;
}

/** A listen address ADDR:PORT (IPv6 in brackets), or "none". */
export function parseListen(text: string): { host: string; port: number } | "none" {
  if (text === "none") return "none";
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`expected ADDR:PORT (e.g. 127.0.0.1:8090) or none, got '${text}'`);
  return { host: m[1] ?? m[2]!, port };
}

function hostForUrl(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

function topology(c: DashboardCluster, replay: ReplayState) {
  const tb = c.testbed;
  const dispatcher = c.process("dispatcher");
  return {
    prefix: c.prefix,
    mode: c.plan.mode,
    scheduler: c.plan.scheduler,
    vip: c.vip,
    vipUrl: c.vipUrl,
    exposed: tb.plan.expose,
    site: c.site,
    demo: c.demo !== undefined,
    client: { host: "client", ip: tb.host("client").ip, netns: tb.host("client").netns },
    dispatcher: { host: "dispatcher", ip: dispatcher.ip, admin: dispatcher.admin ?? null },
    origin: { host: "origin", ip: c.process("origin").ip, url: c.originUrl },
    nodes: c.nodes.map((h) => {
      const p = c.process(h);
      return { host: h, ip: p.ip, admin: p.admin ?? null };
    }),
    replay: {
      available: replay.available,
      unavailableReason: replay.unavailableReason,
      bounds: replay.bounds,
    },
  };
}

/**
 * Whether a change comes from the dashboard's own page. Browsers say where a request comes from
 * (Sec-Fetch-Site; Origin on every POST); a request with neither is not from a browser (curl),
 * so no other site can have made it through the user's.
 */
export function sameOrigin(headers: { host?: string; origin?: string; "sec-fetch-site"?: string }): boolean {
  const site = headers["sec-fetch-site"];
  if (site !== undefined) return site === "same-origin";
  const origin = headers.origin;
  if (origin !== undefined) return headers.host !== undefined && origin === `http://${headers.host}`;
  return true;
}

/** Starts the dashboard for a running cluster. Rejects (nothing left open) if it cannot listen. */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const c = options.cluster;
  const host = options.host ?? DEFAULT_DASHBOARD_HOST;
  if (!existsSync(PUBLIC_DIR)) throw new Error(`dashboard: its page is missing (${PUBLIC_DIR})`);
  const collector = new StatsCollector(statsSourceOf(c), options.intervalMs ?? 1000);
  const replay = new ReplayControl(c, collector, { ...DEFAULT_REPLAY, ...options.replay });
  const app: FastifyInstance = Fastify({ logger: false, forceCloseConnections: true });
  const limits: SseLimits = { ...SSE_LIMITS, ...options.streams };
  const stats: DashboardStats = { streams: new SseStats(), refused: { host: 0, crossSite: 0 } };
  guardHostNames(app, allowedHostNames(host, options.hostNames ?? []), stats);
  await app.register(fastifyStatic, { root: PUBLIC_DIR, index: "index.html", cacheControl: false });
  addApiRoutes(app, c, collector, replay, stats);
  addEventsRoute(app, collector, replay, stats, limits);
  try {
    await app.listen({ host, port: options.port ?? DEFAULT_DASHBOARD_PORT });
  } catch (err) {
    collector.close();
    await app.close().catch(() => {});
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : (options.port ?? DEFAULT_DASHBOARD_PORT);
  return new RunningDashboard(`http://${hostForUrl(host)}:${port}/`, app, collector, replay, stats);
}

/** A control API of the cluster's (nodes and the dispatcher have one). */
function adminOf(c: DashboardCluster, host: string): string {
  const admin = c.process(host).admin;
  if (admin === undefined) throw new Error(`dashboard: ${host} has no control API`);
  return admin;
}

/** Where the collector polls: every node's control API and the dispatcher's. */
function statsSourceOf(c: DashboardCluster): StatsSource {
  return {
    nodes: c.nodes.map((h) => ({ host: h, admin: adminOf(c, h) })),
    dispatcherAdmin: adminOf(c, "dispatcher"),
    json: (url, timeoutMs) => c.json(url, timeoutMs),
  };
}

/** The replay button's state before the first replay: off (and why) without the demo site. */
export function initialReplayState(
  demo: DashboardCluster["demo"],
  bounds: typeof DEFAULT_REPLAY,
): ReplayState {
  return {
    running: false,
    available: demo !== undefined,
    unavailableReason: demo
      ? null
      : "the replay needs the demo site's trace and manifest; this cluster serves its own --site",
    bounds,
    startedAt: null,
    last: null,
  };
}

/** The replay button: its state as the page sees it, who hears of changes, the replay running. */
class ReplayControl {
  readonly state: ReplayState;
  private readonly listeners = new Set<(s: ReplayState) => void>();
  private readonly stopReplay = new AbortController();
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly c: DashboardCluster,
    private readonly collector: StatsCollector,
    private readonly bounds: typeof DEFAULT_REPLAY,
  ) {
    this.state = initialReplayState(c.demo, bounds);
  }

  /** Calls `listener` on every change of the state until the returned function is called. */
  listen(listener: (s: ReplayState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private announce(): void {
    for (const l of this.listeners) l(this.state);
  }

  /** Starts a replay (the route checked it is available and none runs). */
  start(): void {
    const demo = this.c.demo;
    if (demo === undefined) return; // not available: the route answered 409
    const settings: ReplaySettings = {
      trace: demo.trace,
      manifest: demo.manifest,
      target: this.c.vipUrl.replace(/\/$/, ""),
      ...this.bounds,
    };
    this.state.running = true;
    this.state.startedAt = new Date().toISOString();
    this.announce();
    this.done = this.run(settings);
  }

  /** The replay, with the clones the nodes sent meanwhile (polled before and after). */
  private async run(settings: ReplaySettings): Promise<void> {
    const release = this.collector.hold();
    const clones = (s: Snapshot | undefined) =>
      s && s.nodes.every((n) => n.up) ? s.totals.clonesSent : undefined;
    const before = clones(await this.collector.poll().catch(() => undefined));
    const outcome = await runReplayFrom(this.c.testbed, "client", settings, this.stopReplay.signal);
    const after = clones(await this.collector.poll().catch(() => undefined));
    this.state.last = {
      ...outcome,
      clonesDuring: before !== undefined && after !== undefined ? after - before : null,
      finishedAt: new Date().toISOString(),
    };
    this.state.running = false;
    release();
    this.announce();
  }

  /** Stops a running replay and waits for its end. */
  async close(): Promise<void> {
    this.stopReplay.abort();
    await this.done;
  }
}

/** The names a request may give in its Host header: this server's and the --dashboard-host ones. */
export function allowedHostNames(host: string, hostNames: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const n of [host, ...hostNames]) {
    const c = checkHostName(n);
    if (c !== undefined) names.add(c);
  }
  return names;
}

// A page elsewhere must not drive the dashboard through the user's browser: requests must
// name this server (no DNS rebinding), and the replay must come from the dashboard's own
// page (same origin) with a JSON body (cross-site, that needs a CORS preflight we refuse).
function guardHostNames(app: FastifyInstance, names: ReadonlySet<string>, stats: DashboardStats): void {
  app.addHook("onRequest", async (req, reply) => {
    if (!hostAllowed(req.headers.host, names)) {
      stats.refused.host++;
      return reply.code(421).send({
        error:
          "unexpected Host header: the dashboard answers to IP addresses, localhost and --dashboard-host names",
      });
    }
  });
}

/** The JSON API but the event stream. */
function addApiRoutes(
  app: FastifyInstance,
  c: DashboardCluster,
  collector: StatsCollector,
  replay: ReplayControl,
  stats: DashboardStats,
): void {
  app.get("/api/cluster", async () => topology(c, replay.state));
  app.get("/api/snapshot", async () => collector.latest ?? (await collector.poll()));
  app.get("/api/replay", async () => replay.state);
  app.get("/api/stats", async () => stats);
  app.post("/api/replay", async (req, reply) => {
    if (!sameOrigin(req.headers)) {
      stats.refused.crossSite++;
      return reply.code(403).send({ error: "the replay starts only from the dashboard's own page" });
    }
    if (!req.headers["content-type"]?.startsWith("application/json"))
      return reply.code(415).send({ error: "send a JSON body ({})" });
    if (!replay.state.available) return reply.code(409).send({ error: replay.state.unavailableReason });
    if (replay.state.running) return reply.code(409).send({ error: "a replay is running" });
    replay.start();
    return reply.code(202).send(replay.state);
  });
}

/** GET /api/events: server-sent snapshots and replay states, at most limits.maxSubscribers streams. */
function addEventsRoute(
  app: FastifyInstance,
  collector: StatsCollector,
  replay: ReplayControl,
  stats: DashboardStats,
  limits: SseLimits,
): void {
  const subscribers = new Set<SseSubscriber>();
  app.get("/api/events", (req, reply) => {
    if (subscribers.size >= limits.maxSubscribers) {
      stats.streams.refusedFull++;
      return reply
        .code(503)
        .header("retry-after", "5")
        .send({ error: `${limits.maxSubscribers} event streams are open already; close a dashboard tab` });
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    const sub = new SseSubscriber(res, limits, stats.streams);
    subscribers.add(sub);
    stats.streams.subscribers = subscribers.size;
    sub.state("replay", replay.state);
    if (collector.latest) sub.snapshot(collector.latest);
    const unlisten = replay.listen((s) => sub.state("replay", s));
    const unsubscribe = collector.subscribe((s) => sub.snapshot(s));
    res.on("close", () => {
      sub.close();
      unsubscribe();
      unlisten();
      subscribers.delete(sub);
      stats.streams.subscribers = subscribers.size;
    });
  });
}

class RunningDashboard implements Dashboard {
  private closing: Promise<void> | undefined;

  constructor(
    readonly url: string,
    private readonly app: FastifyInstance,
    readonly collector: StatsCollector,
    private readonly replay: ReplayControl,
    readonly stats: DashboardStats,
  ) {}

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.replay.close();
      this.collector.close();
      await this.app.close();
    })();
    return this.closing;
  }
}
