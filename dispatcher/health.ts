// Health checks: GET `${admin}/healthz` on every node that has an admin URL, once per
// interval, with short timeouts (undici). A node goes down after `fall` failures in a row
// and comes back after `rise` successes; its first result counts at once, so a fresh
// dispatcher needs no warm-up. With the defaults (1 s interval, 500 ms timeout, fall 2) a
// node that dies leaves scheduling within 2.5 s of its last good answer.
import { Agent, request } from "undici";

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
}

export interface NodeHealth {
  /** ms since the epoch of the last finished check. */
  lastCheck?: number;
  /** Latency of the last successful check in ms. */
  lastLatencyMs?: number;
  /** Why the last check failed (empty after a success). */
  lastError?: string;
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

export class HealthChecker {
  private readonly agent: Agent;
  private readonly tracks = new Map<string, Track>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly options: HealthOptions,
    private readonly nodes: () => readonly CheckedNode[],
    private readonly setHealthy: (id: string, healthy: boolean, reason: string) => void,
  ) {
    this.agent = new Agent({
      connectTimeout: options.timeoutMs,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: Math.max(options.intervalMs * 2, 4000),
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
    let error = "";
    try {
      const res = await request(t.url, {
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.options.timeoutMs),
        headers: { "user-agent": "sc-cluster-dispatcher" },
      });
      await res.body.dump();
      if (res.statusCode < 200 || res.statusCode > 299) error = `HTTP ${res.statusCode}`;
    } catch (err) {
      const e = err as Error & { code?: string };
      error = e.code ?? e.name;
      if (e.message) error += `: ${e.message}`;
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
    const node = this.nodes().find((n) => n.id === id);
    if (!node) return;
    if (error === "" && !node.healthy && (t.fresh || t.successes >= this.options.rise)) {
      this.setHealthy(id, true, t.fresh ? "first check passed" : `${t.successes} checks passed`);
    } else if (error !== "" && node.healthy && (t.fresh || t.failures >= this.options.fall)) {
      this.setHealthy(id, false, error);
    }
    t.fresh = false;
  }
}
