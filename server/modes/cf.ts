// --mode cf-lru / cf-lfu: cooperative caching with cache forwarding, the baselines Socket
// Cloning is measured against (paper sections 1 and 4; docs/cooperative-caching.md).
//
// Every URL has a home node (the URL mapper over the members). A request for a document whose
// home is this node is served here as usual (cache, else the origin). Any other request is
// forwarded at the cache level: this node fetches the document from its home node's memory
// over the peer link (the home loads it from the origin first when it does not hold it, and
// keeps it), then answers the client itself. The document is not kept here: each document
// lives in one node's memory, so the cluster's caches add up to one large cache, as in the
// paper, where the documents far exceed the sum of the nodes' memories.
//
// Replacement is the node cache's policy, fixed by the mode: LRU or LFU with dynamic ageing.
//
// Transfers: one fetch per URL at a time on a node (later requests join it); the body is
// copied once, into a buffer of its final size (FillingBody), and goes out to every joined
// client as it arrives. Small documents (up to 64 KiB) are gathered first and sent with their
// head in one write, like cached ones.
//
// Failures: a peer that is down, refuses, times out or answers an error makes this node serve
// the request from its own store (the origin; the copy is then kept here). A peer that dies
// mid-body: the rest of the body comes from the origin, checked to be the same document
// (ETag and size), so clients always get exact bytes; if the origin's copy differs, the
// connections that already started are reset rather than sent a mix.
import { byLabel, mirrorCounter, mirrorCounterBy } from "../metrics-mirror.js";
import { performance } from "node:perf_hooks";
import { Histogram, type Registry } from "prom-client";
import type { ClusterContext, ConnectionControl, Decision, Mode, ModeDefinition } from "./mode.js";
import { selfMember } from "../membership/config.js";
import type { CachePolicy } from "../cache/doc-cache.js";
import { makeDoc, type Doc, type RangeReader } from "../http/doc.js";
import type { DocStore } from "../store/doc-store.js";
import type { HttpRequest } from "../http/parser.js";
import { encodePath, normalizePath } from "../http/url-path.js";
import { errorResponse, redirectResponse, type PreparedResponse } from "../http/response.js";
import { sendPrepared } from "../http/send.js";
import type { ServerStats } from "../http/stats.js";
import type { DateCache } from "../http/date.js";
import type { Logger } from "../log.js";
import type { UrlMapper } from "../membership/mapper.js";
import { listenError } from "../errors.js";
import { PeerServer } from "../peer/peer-server.js";
import { PEER_FAILURES, PeerLink, type PeerError, type PeerFailure } from "../peer/peer-client.js";
import type { FillingBody } from "../peer/filling-body.js";
import type { PeerDocMeta } from "../peer/protocol.js";
import { PEER_AUTH_FAILURES, PeerAuth, type PeerAuthFailure } from "../peer/auth.js";

export interface CfSettings {
  /** Keep-alive connections from this node to each peer's endpoint. */
  peerConnections: number;
  /** Connect, answer-head and body-gap timeout toward a peer (ms). */
  peerTimeoutMs: number;
  /** A peer that failed to connect is not tried again for this long (ms). */
  peerDownMs: number;
  /** Documents up to this size are received whole before the reply (one write with the head). */
  smallBytes: number;
  /** Largest document accepted from a peer (a home forwards only what it holds in memory). */
  maxObjectBytes: number;
}

export const CF_DEFAULTS: CfSettings = {
  peerConnections: 16,
  peerTimeoutMs: 5000,
  peerDownMs: 1000,
  smallBytes: 64 * 1024,
  maxObjectBytes: 1024 * 1024 * 1024,
};

/** What a peer fetch comes to, shared by every request that joined it. */
type Outcome =
  | { kind: "doc"; doc: Doc }
  | { kind: "serve" }
  | { kind: "error"; status: 403 | 404 }
  | { kind: "redirect"; path: string };

const SERVE: Outcome = { kind: "serve" };

export class CfCounters {
  /** Requests for documents whose home is this node (served through the local store). */
  home = 0;
  /** Requests for another node's documents served from a copy held here (kept after a fallback). */
  localCopy = 0;
  /** Requests for another node's documents answered through a peer fetch (started or joined). */
  forwarded = 0;
  /** Peer fetches started. */
  peerFetches = 0;
  /** Peer fetches the home answered from its memory cache. */
  peerHits = 0;
  /** Requests that joined a peer fetch already in flight. */
  joined = 0;
  /** Peer fetches for documents the home does not hold in memory (served from our own source). */
  notHeld = 0;
  /** Falls back to the origin because the peer failed (before or during the body). */
  fallbacks = 0;
  /** Of those, bodies completed from the origin after the peer stopped mid-transfer. */
  resumed = 0;
  /** Bodies given up (origin copy differs or failed after a peer stopped mid-transfer). */
  brokenBodies = 0;
  readonly errors: Record<PeerFailure, number> = Object.fromEntries(
    PEER_FAILURES.map((r) => [r, 0]),
  ) as Record<PeerFailure, number>;
}

/** The reader of a document known from a HEAD answer only: never called for HEAD, 304, 412. */
const noBody: RangeReader = () => ({
  [Symbol.asyncIterator]: () => ({
    next: () => Promise.reject(new Error("a HEAD answer from a peer has no body")),
  }),
});

function docFrom(meta: PeerDocMeta, body: Buffer | null, read: RangeReader | null): Doc {
  return makeDoc({
    key: meta.key,
    size: meta.size,
    mtimeMs: meta.mtimeMs,
    etag: meta.etag,
    contentType: meta.contentType,
    body,
    read,
  });
}

/** The mode's block in the node's /stats (see docs/cooperative-caching.md). */
export type CfStats = {
  policy: CachePolicy;
  /** Requests by route: this node's own documents, another's held here, forwarded. */
  requests: { home: number; localCopy: number; forwarded: number };
  peerFetches: number;
  peerHits: number;
  joined: number;
  notHeld: number;
  peerBytes: number;
  /** Origin fetches caused by CF: after a peer failed, and as home for a peer's miss. */
  originFetches: { fallback: number; homeMiss: number };
  resumed: number;
  brokenBodies: number;
  peerErrors: Record<PeerFailure, number>;
  inflight: number;
  peersDown: string[];
  /** This node as a home: what it sent to peers. */
  served: {
    fromCache: number;
    fromOrigin: number;
    bytes: number;
    notHeld: number;
    other: number;
    refused: number;
    /** Requests refused for their authenticator, by reason. */
    authRefused: Record<PeerAuthFailure, number>;
  };
};

export class CfMode implements Mode {
  readonly counters = new CfCounters();
  private readonly links = new Map<string, PeerLink>();
  /** Peer fetches in flight, by path (HEAD fetches by "HEAD " + path). */
  private readonly inflight = new Map<string, Promise<Outcome>>();
  private readonly store: DocStore;
  private readonly serverStats: ServerStats;
  private readonly dates: DateCache;
  private readonly log: Logger;
  private readonly fetchSeconds: Histogram;

  private constructor(
    readonly name: string,
    private readonly selfId: string,
    private readonly mapper: UrlMapper,
    private readonly settings: CfSettings,
    private readonly server: PeerServer,
    auth: PeerAuth | null,
    ctx: ClusterContext,
  ) {
    this.store = ctx.store;
    this.serverStats = ctx.stats;
    this.dates = ctx.dates;
    this.log = ctx.log;
    const cluster = ctx.cluster;
    const self = selfMember(cluster);
    for (const m of cluster.members) {
      if (m.id === self.id) continue;
      this.links.set(
        m.id,
        new PeerLink(m.id, m.addr, cluster.peerPort, {
          selfId: self.id,
          auth,
          localAddress: self.addr,
          connections: settings.peerConnections,
          timeoutMs: settings.peerTimeoutMs,
          downMs: settings.peerDownMs,
          maxObjectBytes: settings.maxObjectBytes,
        }),
      );
    }
    this.fetchSeconds = this.registerMetrics(ctx.registry);
  }

  static async create(name: string, ctx: ClusterContext): Promise<CfMode> {
    const cluster = ctx.cluster;
    const self = selfMember(cluster);
    const settings = readSettings(ctx.modeSettings);
    // Requests between nodes are signed with the secret's own key for this plane.
    const auth =
      ctx.trust.kind === "secret" ? new PeerAuth(ctx.trust.secret.key("peer-cache"), cluster.members) : null;
    if (auth === null) ctx.log.warn("cf: peer cache requests are not authenticated (--insecure-dev)");
    let server: PeerServer;
    try {
      server = await PeerServer.start({
        host: self.addr,
        port: cluster.peerPort,
        store: ctx.store,
        allowed: new Set(cluster.members.map((m) => m.addr)),
        auth,
        log: ctx.log,
      });
    } catch (err) {
      throw listenError(err, "the peer cache endpoint", self.addr, cluster.peerPort);
    }
    return new CfMode(name, self.id, ctx.mapper, settings, server, auth, ctx);
  }

  /** Where the peer endpoint listens. */
  get peerAddress(): { host: string; port: number } {
    return this.server.address;
  }

  decide(req: HttpRequest, ctl: ConnectionControl): Decision | Promise<Decision> {
    const isHead = req.method === "HEAD";
    if (req.method !== "GET" && !isHead) return "serve";
    const norm = normalizePath(req.path);
    if (!norm.ok) return "serve";
    const path = norm.path;
    const home = this.mapper.lookup(path);
    const link = home === undefined ? undefined : this.links.get(home);
    if (link === undefined) {
      this.counters.home++;
      return "serve";
    }
    if (this.store.cache.peek(path) !== undefined) {
      this.counters.localCopy++;
      return "serve";
    }
    this.counters.forwarded++;
    // A HEAD can use a GET's answer; a GET cannot use a HEAD's.
    let flight = this.inflight.get(path) ?? (isHead ? this.inflight.get(`HEAD ${path}`) : undefined);
    if (flight !== undefined) this.counters.joined++;
    else flight = this.startFetch(path, isHead, link);
    return flight.then((o) => this.decision(req, ctl, o));
  }

  private startFetch(path: string, head: boolean, link: PeerLink): Promise<Outcome> {
    const key = head ? `HEAD ${path}` : path;
    // Called by fetch() only after its first await, so `flight` is set by then.
    const release = () => {
      if (this.inflight.get(key) === flight) this.inflight.delete(key);
    };
    const flight: Promise<Outcome> = this.fetch(path, head, link, release).catch((err: unknown): Outcome => {
      // A bug must cost this request a local answer, not the connection.
      this.log.error({ path, err: String(err) }, "cf: peer fetch failed unexpectedly");
      release();
      return SERVE;
    });
    this.inflight.set(key, flight);
    return flight;
  }

  /** One peer fetch; `release` takes it out of the in-flight map once nobody should join it. */
  private async fetch(path: string, head: boolean, link: PeerLink, release: () => void): Promise<Outcome> {
    this.counters.peerFetches++;
    const t0 = performance.now();
    const r = await link.fetch(path, head);
    if (r.kind !== "failed" || r.reason !== "down")
      this.fetchSeconds.observe((performance.now() - t0) / 1000);
    if (r.kind !== "doc") {
      release();
      switch (r.kind) {
        case "failed":
          this.counters.errors[r.reason]++;
          this.counters.fallbacks++;
          this.log.debug(
            { path, peer: link.peerId, reason: r.reason, detail: r.detail },
            "cf: peer fetch failed",
          );
          return SERVE;
        case "not-held":
          this.counters.notHeld++;
          return SERVE;
        case "error":
          return { kind: "error", status: r.status };
        case "redirect":
          return { kind: "redirect", path: r.path };
      }
    }
    if (r.meta.fromCache) this.counters.peerHits++;
    const body = r.body;
    if (body === null) {
      release();
      return { kind: "doc", doc: docFrom(r.meta, null, noBody) };
    }
    if (r.meta.size <= this.settings.smallBytes) {
      try {
        await r.bodyDone;
      } catch (err) {
        // Nothing has been sent yet: serve the request from our own store instead.
        this.counters.errors[(err as PeerError).reason]++;
        this.counters.fallbacks++;
        return SERVE;
      } finally {
        release();
      }
      return { kind: "doc", doc: docFrom(r.meta, body.buf, null) };
    }
    // Large: answer now and stream as the bytes arrive; requests may join until the body is in.
    r.bodyDone
      .catch((err: PeerError) => this.resumeFromOrigin(path, r.meta, body, err))
      .finally(release)
      .catch(() => undefined);
    return { kind: "doc", doc: docFrom(r.meta, null, (start, end) => body.read(start, end)) };
  }

  /** The peer stopped mid-body: fill the rest from the origin, if it has the same document. */
  private async resumeFromOrigin(
    path: string,
    meta: PeerDocMeta,
    body: FillingBody,
    err: PeerError,
  ): Promise<void> {
    this.counters.errors[err.reason]++;
    this.counters.fallbacks++;
    this.log.warn(
      { path, at: body.received, size: meta.size, err: err.message },
      "cf: peer transfer cut, resuming from the origin",
    );
    try {
      const found = await this.store.lookup(path);
      if (found.kind === "doc" && found.doc.etag === meta.etag && found.doc.size === meta.size) {
        const doc = found.doc;
        if (doc.body !== null) body.append(doc.body.subarray(body.received));
        else if (doc.read !== null)
          for await (const chunk of doc.read(body.received, meta.size - 1)) body.append(chunk);
        if (body.complete) {
          this.counters.resumed++;
          return;
        }
      }
      throw new Error(`the origin's ${path} is not the document the peer was sending`);
    } catch (e) {
      this.counters.brokenBodies++;
      this.log.warn({ path, err: String(e) }, "cf: cannot complete a cut peer transfer");
      body.fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private async decision(req: HttpRequest, ctl: ConnectionControl, o: Outcome): Promise<Decision> {
    switch (o.kind) {
      case "doc":
        return { doc: o.doc };
      case "serve":
        return "serve";
      case "error":
        return this.answer(
          ctl,
          errorResponse(o.status, req.keepAlive, this.date(), "", req.method === "HEAD"),
        );
      case "redirect":
        return this.answer(
          ctl,
          redirectResponse(
            301,
            encodePath(o.path) + req.query,
            req.keepAlive,
            this.date(),
            req.method === "HEAD",
          ),
        );
    }
  }

  /** Sends an authoritative answer (404, 403, a redirect) from the home node ourselves. */
  private async answer(ctl: ConnectionControl, resp: PreparedResponse): Promise<Decision> {
    this.serverStats.countResponse(resp.status, resp.length);
    await sendPrepared(ctl.conn, resp);
    return "done";
  }

  private date(): Buffer {
    return this.dates.dateLine(Date.now());
  }

  stats(): CfStats {
    const c = this.counters;
    const s = this.server.stats;
    return {
      policy: this.store.cache.policy,
      requests: { home: c.home, localCopy: c.localCopy, forwarded: c.forwarded },
      peerFetches: c.peerFetches,
      peerHits: c.peerHits,
      joined: c.joined,
      notHeld: c.notHeld,
      peerBytes: this.peerBytes(),
      originFetches: { fallback: c.fallbacks, homeMiss: s.homeMisses },
      resumed: c.resumed,
      brokenBodies: c.brokenBodies,
      peerErrors: { ...c.errors },
      inflight: this.inflight.size,
      peersDown: [...this.links.values()].filter((l) => l.down).map((l) => l.peerId),
      served: {
        fromCache: s.servedFromCache,
        fromOrigin: s.servedFromOrigin,
        bytes: s.servedBytes,
        notHeld: s.notHeld,
        other: s.otherAnswers,
        refused: s.refused,
        authRefused: { ...s.authFailures },
      },
    };
  }

  private peerBytes(): number {
    let n = 0;
    for (const l of this.links.values()) n += l.bytes;
    return n;
  }

  async close(): Promise<void> {
    await this.server.close();
    await Promise.all([...this.links.values()].map((l) => l.close()));
  }

  /** This node's peer endpoint: what it sent to peers and whom it refused. */
  private registerServingMetrics(registry: Registry): void {
    const s = this.server.stats;
    mirrorCounter(
      registry,
      "sc_cf_peer_served_bytes_total",
      "Document bytes this node sent to peers",
      () => s.servedBytes,
    );
    mirrorCounter(
      registry,
      "sc_cf_peer_refused_total",
      "Connections to the peer endpoint from non-members, dropped",
      () => s.refused,
    );
    mirrorCounterBy(
      registry,
      "sc_cf_peer_auth_refused_total",
      "Peer cache requests refused (403) for their authenticator, by reason: missing, unknown_node, wrong_address, stale, bad_mac",
      ["reason"],
      () => byLabel("reason", PEER_AUTH_FAILURES, s.authFailures),
    );
    mirrorCounterBy(
      registry,
      "sc_cf_peer_served_total",
      "Documents this node sent to peers, by where it had them from",
      ["from"],
      () => [
        [{ from: "cache" }, s.servedFromCache],
        [{ from: "origin" }, s.servedFromOrigin],
      ],
    );
  }

  /** This node's requests: where they were served from, and its fetches from peers. */
  private registerMetrics(registry: Registry): Histogram {
    this.registerServingMetrics(registry);
    const c = this.counters;
    const s = this.server.stats;
    const mirror = (name: string, help: string, read: () => number) =>
      mirrorCounter(registry, name, help, read);
    mirror(
      "sc_cf_peer_fetches_total",
      "Documents this node fetched from their home node's cache (peer fetches started)",
      () => c.peerFetches,
    );
    mirror(
      "sc_cf_peer_hits_total",
      "Peer fetches the home node answered from its memory cache",
      () => c.peerHits,
    );
    mirror("sc_cf_peer_bytes_total", "Document bytes received from peers", () => this.peerBytes());
    mirror("sc_cf_joined_total", "Requests that joined a peer fetch already in flight", () => c.joined);
    mirror(
      "sc_cf_peer_not_held_total",
      "Peer fetches for documents the home does not hold in memory (served from own source)",
      () => c.notHeld,
    );
    mirror(
      "sc_cf_resumed_total",
      "Peer transfers cut mid-body and completed from the origin",
      () => c.resumed,
    );
    mirrorCounterBy(
      registry,
      "sc_cf_origin_fetches_total",
      "Origin fetches caused by cache forwarding: as home for a peer's miss (home_miss), or after a peer failed (fallback)",
      ["reason"],
      () => [
        [{ reason: "home_miss" }, s.homeMisses],
        [{ reason: "fallback" }, c.fallbacks],
      ],
    );
    mirrorCounterBy(
      registry,
      "sc_cf_peer_errors_total",
      "Peer fetches that failed, by reason (the request was then served from the origin)",
      ["reason"],
      () => byLabel("reason", PEER_FAILURES, c.errors),
    );
    mirrorCounterBy(
      registry,
      "sc_cf_requests_total",
      "Requests by route: home (this node's own documents), copy (another's, held here), forwarded (via a peer fetch)",
      ["route"],
      () => [
        [{ route: "home" }, c.home],
        [{ route: "copy" }, c.localCopy],
        [{ route: "forwarded" }, c.forwarded],
      ],
    );
    return new Histogram({
      name: "sc_cf_peer_fetch_seconds",
      help: "Time from starting a peer fetch to the peer's answer head",
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    });
  }
}

function positiveInt(v: unknown, name: string, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
    throw new Error(`${name} must be a positive whole number, got ${String(v)}`);
  }
  return v;
}

/** CF's settings from the node's mode settings (other modes' keys are ignored). */
export function readSettings(s: Readonly<Record<string, unknown>>): CfSettings {
  return {
    peerConnections: positiveInt(s.peerConnections, "peerConnections", CF_DEFAULTS.peerConnections),
    peerTimeoutMs: positiveInt(s.peerTimeoutMs, "peerTimeoutMs", CF_DEFAULTS.peerTimeoutMs),
    peerDownMs: positiveInt(s.peerDownMs, "peerDownMs", CF_DEFAULTS.peerDownMs),
    smallBytes: positiveInt(s.peerSmallBytes, "peerSmallBytes", CF_DEFAULTS.smallBytes),
    maxObjectBytes: positiveInt(s.peerMaxObjectBytes, "peerMaxObjectBytes", CF_DEFAULTS.maxObjectBytes),
  };
}

/** cf-lru and cf-lfu: the same mode over the two cache policies. */
export const CF_MODES: readonly ModeDefinition[] = (
  ["lru", "lfu"] as const satisfies readonly CachePolicy[]
).map((policy) => ({
  name: `cf-${policy}`,
  summary: `cooperative caching: fetch from the home node's memory, reply here; ${policy.toUpperCase()} cache`,
  needs: "cluster",
  cachePolicy: policy,
  create: (ctx: ClusterContext) => CfMode.create(`cf-${policy}`, ctx),
}));
