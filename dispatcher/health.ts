// Health checks: GET `${admin}/healthz` on every node that has an admin URL, once per
// interval, with short timeouts (undici). A node goes down after `fall` failures in a row
// and comes back after `rise` successes; its first result counts at once, so a fresh
// dispatcher needs no warm-up. With the defaults (1 s interval, 500 ms timeout, fall 2) a
// node that dies leaves scheduling within 2.5 s of its last good answer.
//
// A down node whose admin port refuses the connection is *gone*: its host answers but the
// process is not there (killed, crashed), so its connections are lost and the forwarder
// resets them at once; a node that times out may be only slow and keeps them for a grace.
// Each check is a fresh connection (no keep-alive), so the first check after a kill is
// refused rather than failing on a stale socket. Redirects are not followed (a 3xx fails the
// check), and failures are reported as a short fixed reason, never the remote's text.
import { Agent, request } from "undici";
import type { NodeHealthState } from "./nodes.js";

export interface HealthOptions {
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failures before a healthy node is marked down. */
  fall: number;
  /** Consecutive successes before a down node is marked up. */
  rise: number;
}

export const DEFAULT_HEALTH: Readonly<HealthOptions> = { intervalMs: 1000, timeoutMs: 500, fall: 2, rise: 2 };

/** What the checker needs to know about a node. */
export interface CheckedNode {
  id: string;
  admin?: string;
  healthy: boolean;
  gone: boolean;
}

/** Why a check failed: fixed words (and the HTTP status), nothing the remote chose. */
export type CheckFailure = "timeout" | "refused" | "reset" | "unreachable" | "failed" | `HTTP ${number}`;

/** Maps an undici / socket error to a CheckFailure. */
export function classifyCheckError(err: unknown): CheckFailure {
  const e = err as { code?: unknown; name?: unknown; cause?: { code?: unknown } } | null;
  const code = typeof e?.code === "string" ? e.code : typeof e?.cause?.code === "string" ? e.cause.code : "";
  switch (code) {
    case "ECONNREFUSED":
      return "refused";
    case "UND_ERR_CONNECT_TIMEOUT":
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
    case "UND_ERR_ABORTED": // the only signal a check has is its timeout
    case "ETIMEDOUT":
      return "timeout";
    case "ECONNRESET":
    case "EPIPE":
    case "UND_ERR_SOCKET":
    case "UND_ERR_CLOSED":
      return "reset";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EHOSTDOWN":
    case "ENETDOWN":
      return "unreachable";
  }
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return "timeout";
  return "failed";
}

export interface NodeHealth {
  /** ms since the epoch of the last finished check. */
  lastCheck?: number;
  /** Latency of the last successful check in ms. */
  lastLatencyMs?: number;
  /** Why the last check failed (empty after a success). */
  lastError?: CheckFailure | "";
  successes: number;
  failures: number;
  checks: number;
}

interface Track extends NodeHealth {
  /** The URL this record is for: a new admin URL starts a fresh record. */
  url: string;
  /** The check under way, if any. */
  inFlight: Promise<void> | undefined;
  /** Result of the previous check decided nothing yet (first check after start or URL change). */
  fresh: boolean;
}

/** Runs the checks (in this thread: HealthChecker; in a worker thread: HealthWorker). */
export interface HealthMonitor {
  /** Checks at once, then every interval. */
  start(): void;
  stop(): Promise<void>;
  /** A round now; resolves when every check of it has finished and its verdict is applied. */
  round(): Promise<void>;
  health(id: string): NodeHealth | undefined;
}

/** Called with each change of a node's health and a short reason. */
export type HealthVerdict = (id: string, state: NodeHealthState, reason: string) => void;

export class HealthChecker implements HealthMonitor {
  private readonly agent: Agent;
  private readonly tracks = new Map<string, Track>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly options: HealthOptions,
    private readonly nodes: () => readonly CheckedNode[],
    private readonly setHealth: HealthVerdict,
    /** Called after each finished check with the node's record (the worker reports them). */
    private readonly onCheck?: (id: string, health: NodeHealth) => void,
  ) {
    this.agent = new Agent({
      connectTimeout: options.timeoutMs,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connections: 2,
    });
  }

  /** Checks at once, then every interval. */
  start(): void {
    if (this.timer || this.stopped) return;
    void this.round();
    this.timer = setInterval(() => void this.round(), this.options.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.agent.close().catch(() => {});
  }

  health(id: string): NodeHealth | undefined {
    const t = this.tracks.get(id);
    if (!t) return undefined;
    const { lastCheck, lastLatencyMs, lastError, successes, failures, checks } = t;
    return { lastCheck, lastLatencyMs, lastError, successes, failures, checks };
  }

  /**
   * One round: a check for every node with an admin URL that has none in flight. Resolves
   * when every node's current check has finished and its result is applied.
   */
  round(): Promise<void> {
    const seen = new Set<string>();
    const started: Promise<void>[] = [];
    for (const node of this.nodes()) {
      if (node.admin === undefined) continue;
      seen.add(node.id);
      const url = `${node.admin}/healthz`;
      let t = this.tracks.get(node.id);
      if (!t || t.url !== url) {
        t = { url, inFlight: undefined, fresh: true, successes: 0, failures: 0, checks: 0 };
        this.tracks.set(node.id, t);
      }
      t.inFlight ??= this.check(node.id, t);
      started.push(t.inFlight);
    }
    for (const id of this.tracks.keys()) if (!seen.has(id)) this.tracks.delete(id);
    return Promise.all(started).then(() => {});
  }

  private async check(id: string, t: Track): Promise<void> {
    const started = performance.now();
    let error: CheckFailure | "" = "";
    try {
      const res = await request(t.url, {
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.options.timeoutMs),
        headers: { "user-agent": "sc-cluster-dispatcher" },
        // A fresh connection per check: see the top of the file.
        reset: true,
      });
      await res.body.dump({ limit: MAX_BODY_BYTES });
      if (res.statusCode < 200 || res.statusCode > 299) error = `HTTP ${res.statusCode}`;
    } catch (err) {
      error = classifyCheckError(err);
    }
    t.inFlight = undefined;
    if (this.stopped || this.tracks.get(id) !== t) return;
    t.checks++;
    t.lastCheck = Date.now();
    t.lastError = error;
    if (error === "") {
      t.lastLatencyMs = performance.now() - started;
      t.successes++;
      t.failures = 0;
    } else {
      t.failures++;
      t.successes = 0;
    }
    this.onCheck?.(id, this.health(id)!);
    const node = this.nodes().find((n) => n.id === id);
    if (!node) return;
    const fresh = t.fresh;
    t.fresh = false;
    if (error === "") {
      if (!node.healthy && (fresh || t.successes >= this.options.rise)) {
        this.setHealth(id, "up", fresh ? "first check passed" : `${t.successes} checks passed`);
      }
    } else if (
      // The first result always counts: a node not yet up gets its "down" verdict too (the
      // dispatcher waits for every node's first verdict before it picks connections up).
      fresh ||
      (node.healthy ? t.failures >= this.options.fall : error === "refused" && !node.gone)
    ) {
      this.setHealth(id, error === "refused" ? "gone" : "down", error);
    }
  }
}

/** A health answer is a few bytes; anything beyond this is not read. */
const MAX_BODY_BYTES = 4096;
