// Prometheus metrics for one node, in a Registry of its own (not prom-client's global one, so
// several nodes can live in one process, e.g. in tests). Values are read from the data path's
// plain counters at scrape time.
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ServerStats } from "../http/stats.js";
import type { DocCache } from "../cache/doc-cache.js";
import type { DocStore } from "../store/doc-store.js";
import type { Membership } from "../membership/runtime.js";
import type { AccessLogCounters } from "../http/access-log.js";
import { mirrorCounter, mirrorGauge } from "../metrics-mirror.js";

export interface MetricSources {
  nodeId: string;
  stats: ServerStats;
  /**
   * The node's document cache and store; null on a data-path worker whose documents come from
   * the node's shared cache (the main thread reports those, registerDocumentMetrics).
   */
  documents: { cache: DocCache; store: DocStore } | null;
}

export function createMetrics(src: MetricSources): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ node: src.nodeId });
  const { stats } = src;

  new Counter({
    name: "sc_http_requests_total",
    help: "HTTP responses sent, by status code",
    labelNames: ["code"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [code, n] of Object.entries(stats.requests())) this.inc({ code }, n);
    },
  });
  mirrorCounter(
    registry,
    "sc_http_response_bytes_total",
    "Bytes of HTTP responses (head + body)",
    () => stats.responseBytes,
  );
  mirrorCounter(
    registry,
    "sc_http_mode_handled_total",
    "Requests answered by the cluster mode, not locally",
    () => stats.modeHandled,
  );
  new Counter({
    name: "sc_http_timeouts_total",
    help: "Connections timed out, by kind (header: 408; idle: keep-alive expiry; send: client not reading)",
    labelNames: ["kind"],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ kind: "header" }, stats.headerTimeouts);
      this.inc({ kind: "idle" }, stats.idleTimeouts);
      this.inc({ kind: "send" }, stats.sendTimeouts);
    },
  });
  if (src.documents) registerDocumentMetrics(registry, src.documents.cache, src.documents.store);
  mirrorGauge(registry, "sc_tcp_connections", "Open client connections", () => stats.connectionsOpen);
  mirrorCounter(
    registry,
    "sc_tcp_connections_accepted_total",
    "Client connections accepted",
    () => stats.connectionsAccepted,
  );
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** The document cache's and the source's counters (a node's, or the shared cache of its workers). */
export function registerDocumentMetrics(registry: Registry, cache: DocCache, store: DocStore): void {
  mirrorCounter(registry, "sc_cache_hits_total", "Document cache hits", () => cache.stats().hits);
  mirrorCounter(registry, "sc_cache_misses_total", "Document cache misses", () => cache.stats().misses);
  mirrorCounter(
    registry,
    "sc_cache_evictions_total",
    "Documents evicted from the cache",
    () => cache.stats().evictions,
  );
  mirrorGauge(registry, "sc_cache_bytes", "Bytes held by the document cache", () => cache.stats().bytes);
  mirrorGauge(registry, "sc_cache_max_bytes", "Byte bound of the document cache", () => cache.maxBytes);
  mirrorGauge(registry, "sc_cache_entries", "Documents in the cache", () => cache.stats().entries);
  mirrorCounter(
    registry,
    "sc_source_loads_total",
    "Document loads from the root or origin (cache misses that fetched)",
    () => store.loads,
  );
  mirrorCounter(
    registry,
    "sc_source_joined_total",
    "Cache misses that joined a load already in flight",
    () => store.joined,
  );
}

/** Buckets of the request-duration histogram: 0.5 ms .. 10 s. */
export const REQUEST_DURATION_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * sc_http_request_duration_seconds{served="local"|"cloned"}: from a request being taken up to
 * its response handed to the transport (cloned: until the client acknowledged the clone's
 * response). Observed on the node the request arrived at.
 */
export function registerRequestDuration(registry: Registry): (cloned: boolean, seconds: number) => void {
  const h = new Histogram({
    name: "sc_http_request_duration_seconds",
    help: "Time to answer a request, by where it was served (local, or cloned to another node)",
    labelNames: ["served"],
    buckets: REQUEST_DURATION_BUCKETS,
    registers: [registry],
  });
  const local = h.labels("local");
  const cloned = h.labels("cloned");
  return (isCloned, seconds) => (isCloned ? cloned : local).observe(seconds);
}

/** The access log's counters (server/http/access-log.ts). */
export function registerAccessLogMetrics(registry: Registry, counters: AccessLogCounters): void {
  mirrorCounter(registry, "sc_access_log_lines_total", "Access log lines written", () => counters.lines);
  new Counter({
    name: "sc_access_log_dropped_total",
    help: "Access log lines lost, by reason (buffer: the disk or pipe stalled and the buffer was full; write: a write failed)",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ reason: "buffer" }, counters.dropped);
      this.inc({ reason: "write" }, counters.failed);
    },
  });
  mirrorCounter(
    registry,
    "sc_access_log_reopens_total",
    "Access log files re-opened (SIGUSR1)",
    () => counters.reopens,
  );
}

/** The node's own counters beside the data path's: purges, revalidations, membership. */
export function registerNodeMetrics(
  registry: Registry,
  store: DocStore | null,
  membership: Membership | null,
  poll: { readonly polls: number; readonly failures: number } | null,
): void {
  if (poll) {
    mirrorCounter(
      registry,
      "sc_membership_polls_total",
      "GET /nodes polls of the dispatcher (--members-from)",
      () => poll.polls,
    );
    mirrorCounter(
      registry,
      "sc_membership_poll_failures_total",
      "Membership polls that failed or gave a refused view",
      () => poll.failures,
    );
  }
  if (store) registerStoreMetrics(registry, store);
  if (membership)
    mirrorCounter(
      registry,
      "sc_membership_changes_total",
      "Membership views installed (the first one included)",
      () => membership.changes,
    );
}

/** Purges and revalidations of a store (a node's, or the shared cache of its workers). */
export function registerStoreMetrics(registry: Registry, store: DocStore): void {
  mirrorCounter(
    registry,
    "sc_purges_total",
    "Purges applied to this node's cache (POST /purge, own or forwarded)",
    () => store.purges,
  );
  mirrorCounter(
    registry,
    "sc_purged_entries_total",
    "Cached documents dropped by purges",
    () => store.purgedEntries,
  );
  new Counter({
    name: "sc_revalidations_total",
    help: "Cached documents checked with the source after --revalidate-ttl, by result: unchanged (304), changed (new version or gone), error (kept)",
    labelNames: ["result"],
    registers: [registry],
    collect() {
      this.reset();
      const r = store.revalidation;
      this.inc({ result: "unchanged" }, r.unchanged);
      this.inc({ result: "changed" }, r.changed);
      this.inc({ result: "error" }, r.errors);
    },
  });
}
