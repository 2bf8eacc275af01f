// What the dashboard shows, computed from two polls of the control APIs: per node the requests
// it answered, clones sent and received, cache hit ratio and bytes out (totals and rates per
// second), and the dispatcher's view of each node. Pure: the poll time is a parameter, so rates
// are tested without clocks.

/** The parts of a node's `/stats` the dashboard reads (docs/server.md, docs/socket-cloning.md). */
export interface NodeStatsDoc {
  mode?: string;
  http?: { responses?: number; responseBytes?: number };
  connections?: { open?: number };
  cache?: { hits?: number; misses?: number; bytes?: number; entries?: number };
  sc?: { clonesSent?: number; clonesReceived?: number; failures?: Record<string, number> };
}

/** The parts of the dispatcher's `/stats` the dashboard reads (docs/dispatcher.md). */
export interface DispatcherStatsDoc {
  scheduler?: string;
  packets?: { received?: number };
  connections?: { entries?: number };
  nodes?: {
    id: string;
    eligible?: boolean;
    healthy?: boolean;
    weight?: number;
    scheduled?: number;
    connections?: { active?: number; inactive?: number };
  }[];
}

/** One poll: every document, or why it could not be read. */
export interface Sample {
  /** When the poll was made (ms, any monotonic clock). */
  at: number;
  nodes: { host: string; stats?: NodeStatsDoc; error?: string }[];
  dispatcher: { stats?: DispatcherStatsDoc; error?: string };
}

export interface NodeView {
  host: string;
  /** The control API answered. */
  up: boolean;
  error?: string;
  /** Responses this node sent (it answered the request itself or as a clone's home). */
  requests: number;
  requestsPerSec: number | null;
  /** Body and header bytes of those responses. */
  bytesOut: number;
  bytesOutPerSec: number | null;
  /** Null when the node's mode does not clone (no `sc` block). */
  clonesSent: number | null;
  clonesReceived: number | null;
  clonesSentPerSec: number | null;
  cloneFailures: number | null;
  cacheHits: number;
  cacheMisses: number;
  /** hits / (hits + misses) since the node started; null before the first lookup. */
  cacheHitRatio: number | null;
  cacheBytes: number;
  openConnections: number;
  /** The dispatcher's view: connections it tracks to this node, whether it schedules to it. */
  dispatcher: {
    active: number;
    inactive: number;
    scheduled: number;
    scheduledPerSec: number | null;
    eligible: boolean;
  } | null;
}

export interface Snapshot {
  at: number;
  /** Seconds between this poll and the one the rates come from (null for the first). */
  intervalS: number | null;
  nodes: NodeView[];
  dispatcher: {
    up: boolean;
    error?: string;
    scheduler: string | null;
    connections: number;
    packetsPerSec: number | null;
  };
  totals: {
    requests: number;
    requestsPerSec: number | null;
    bytesOut: number;
    bytesOutPerSec: number | null;
    clonesSent: number;
    clonesReceived: number;
    clonesSentPerSec: number | null;
    cacheHitRatio: number | null;
  };
}

const n = (v: number | undefined): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

/** Per-second rate of a counter, or null without an earlier value; a reset (restart) gives null. */
export function rate(prev: number | undefined, cur: number, seconds: number | null): number | null {
  if (prev === undefined || seconds === null || !(seconds > 0) || cur < prev) return null;
  return (cur - prev) / seconds;
}

function ratio(hits: number, misses: number): number | null {
  return hits + misses > 0 ? hits / (hits + misses) : null;
}

function sumRates(values: (number | null)[]): number | null {
  return values.some((v) => v !== null) ? values.reduce<number>((s, v) => s + (v ?? 0), 0) : null;
}

/** The dashboard's view of `cur`, with rates from `prev` (the poll before it), if any. */
export function makeSnapshot(cur: Sample, prev?: Sample): Snapshot {
  const seconds = prev ? (cur.at - prev.at) / 1000 : null;
  const dNodes = new Map((cur.dispatcher.stats?.nodes ?? []).map((d) => [d.id, d]));
  const pdNodes = new Map((prev?.dispatcher.stats?.nodes ?? []).map((d) => [d.id, d]));
  const nodes = cur.nodes.map((node): NodeView => {
    const s = node.stats;
    const p = prev?.nodes.find((x) => x.host === node.host)?.stats;
    const sc = s?.sc;
    const requests = n(s?.http?.responses);
    const bytesOut = n(s?.http?.responseBytes);
    const hits = n(s?.cache?.hits);
    const misses = n(s?.cache?.misses);
    const d = dNodes.get(node.host);
    const pd = pdNodes.get(node.host);
    return {
      host: node.host,
      up: s !== undefined,
      ...(node.error !== undefined ? { error: node.error } : {}),
      requests,
      requestsPerSec: p ? rate(p.http?.responses, requests, seconds) : null,
      bytesOut,
      bytesOutPerSec: p ? rate(p.http?.responseBytes, bytesOut, seconds) : null,
      clonesSent: sc ? n(sc.clonesSent) : null,
      clonesReceived: sc ? n(sc.clonesReceived) : null,
      clonesSentPerSec: sc && p?.sc ? rate(p.sc.clonesSent, n(sc.clonesSent), seconds) : null,
      cloneFailures: sc ? Object.values(sc.failures ?? {}).reduce((a, b) => a + n(b), 0) : null,
      cacheHits: hits,
      cacheMisses: misses,
      cacheHitRatio: ratio(hits, misses),
      cacheBytes: n(s?.cache?.bytes),
      openConnections: n(s?.connections?.open),
      dispatcher: d
        ? {
            active: n(d.connections?.active),
            inactive: n(d.connections?.inactive),
            scheduled: n(d.scheduled),
            scheduledPerSec: pd ? rate(pd.scheduled, n(d.scheduled), seconds) : null,
            eligible: d.eligible === true,
          }
        : null,
    };
  });
  const ds = cur.dispatcher.stats;
  const up = nodes.filter((x) => x.up);
  const hits = up.reduce((a, x) => a + x.cacheHits, 0);
  const misses = up.reduce((a, x) => a + x.cacheMisses, 0);
  return {
    at: cur.at,
    intervalS: seconds,
    nodes,
    dispatcher: {
      up: ds !== undefined,
      ...(cur.dispatcher.error !== undefined ? { error: cur.dispatcher.error } : {}),
      scheduler: ds?.scheduler ?? null,
      connections: n(ds?.connections?.entries),
      packetsPerSec: ds
        ? rate(prev?.dispatcher.stats?.packets?.received, n(ds.packets?.received), seconds)
        : null,
    },
    totals: {
      requests: up.reduce((a, x) => a + x.requests, 0),
      requestsPerSec: sumRates(up.map((x) => x.requestsPerSec)),
      bytesOut: up.reduce((a, x) => a + x.bytesOut, 0),
      bytesOutPerSec: sumRates(up.map((x) => x.bytesOutPerSec)),
      clonesSent: up.reduce((a, x) => a + (x.clonesSent ?? 0), 0),
      clonesReceived: up.reduce((a, x) => a + (x.clonesReceived ?? 0), 0),
      clonesSentPerSec: sumRates(up.map((x) => x.clonesSentPerSec)),
      cacheHitRatio: ratio(hits, misses),
    },
  };
}
