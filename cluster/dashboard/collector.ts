// Polls the node and dispatcher control APIs (through the cluster library's helper in the
// client host: the launcher's namespace cannot reach the LAN) and turns each poll into a
// Snapshot. It polls only while someone listens (a browser on the event stream, a replay),
// one poll at a time.
import {
  makeSnapshot,
  type DispatcherStatsDoc,
  type NodeStatsDoc,
  type Sample,
  type Snapshot,
} from "./snapshot.js";

/** Where the documents come from; a Cluster provides all of it. */
export interface StatsSource {
  nodes: { host: string; admin: string }[];
  dispatcherAdmin: string;
  json<T>(url: string, timeoutMs: number): Promise<T>;
}

const POLL_TIMEOUT_MS = 1500;

export class StatsCollector {
  private prev: Sample | undefined;
  private latestSnapshot: Snapshot | undefined;
  private inFlight: Promise<Snapshot> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(s: Snapshot) => void>();
  private holds = 0;
  private closed = false;

  constructor(
    private readonly source: StatsSource,
    readonly intervalMs = 1000,
  ) {}

  get latest(): Snapshot | undefined {
    return this.latestSnapshot;
  }

  /** Polls now (or joins the poll in flight) and tells every listener. */
  poll(): Promise<Snapshot> {
    this.inFlight ??= this.sample()
      .then((cur) => {
        const snap = makeSnapshot(cur, this.prev);
        this.prev = cur;
        this.latestSnapshot = snap;
        for (const l of this.listeners) l(snap);
        return snap;
      })
      .finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  /** Calls `listener` with every snapshot from now on; polling runs while anyone listens. */
  subscribe(listener: (s: Snapshot) => void): () => void {
    this.listeners.add(listener);
    const release = this.hold();
    return () => {
      this.listeners.delete(listener);
      release();
    };
  }

  /** Keeps polling without a listener (e.g. during a replay); call the result to let go. */
  hold(): () => void {
    this.holds++;
    if (this.holds === 1) this.schedule(0);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      if (this.holds === 0) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
    };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.listeners.clear();
  }

  private schedule(delayMs: number): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.poll()
        .catch(() => {
          /* a failed poll shows up as nodes without stats in the next one */
        })
        .finally(() => {
          if (this.holds > 0) this.schedule(this.intervalMs);
        });
    }, delayMs);
  }

  private async sample(): Promise<Sample> {
    const get = async <T>(url: string): Promise<{ stats?: T; error?: string }> => {
      try {
        return { stats: await this.source.json<T>(url, POLL_TIMEOUT_MS) };
      } catch (err) {
        return { error: (err as Error).message };
      }
    };
    const [dispatcher, nodes] = await Promise.all([
      get<DispatcherStatsDoc>(`${this.source.dispatcherAdmin}/stats`),
      Promise.all(this.source.nodes.map((x) => get<NodeStatsDoc>(`${x.admin}/stats`))),
    ]);
    return {
      at: Date.now(),
      dispatcher,
      nodes: this.source.nodes.map((x, i) => ({ host: x.host, ...nodes[i] })),
    };
  }
}
