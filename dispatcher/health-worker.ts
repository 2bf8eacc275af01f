// The health checker on a thread of its own. The dispatcher's data path runs on the main
// thread; while it is busy (a flood, a long batch, a GC pause) the main event loop serves
// timers before sockets, so a check whose answer has arrived still times out there: measured,
// a healthy node was taken out after a 3 s main-thread stall in 600 ms slices
// (docs/dispatcher.md). In a worker the checks keep their own event loop; the main thread
// only sends it the node list and applies the verdicts it posts back.
import { Worker } from "node:worker_threads";
import type { CheckedNode, HealthMonitor, HealthOptions, HealthVerdict, NodeHealth } from "./health.js";
import type { NodeHealthState } from "./nodes.js";

/** Main thread -> worker. */
export type ToHealthWorker =
  | { type: "nodes"; nodes: CheckedNode[] }
  | { type: "round"; seq: number; nodes: CheckedNode[] }
  | { type: "stop" };

/** Worker -> main thread. */
export type FromHealthWorker =
  | { type: "verdict"; id: string; state: NodeHealthState; reason: string }
  | { type: "checked"; id: string; health: NodeHealth }
  | { type: "round"; seq: number }
  | { type: "stopped" };

export class HealthWorker implements HealthMonitor {
  private readonly worker: Worker;
  private readonly records = new Map<string, NodeHealth>();
  private readonly rounds = new Map<number, () => void>();
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly exited: Promise<void>;

  constructor(
    readonly options: HealthOptions,
    private readonly nodes: () => readonly CheckedNode[],
    setHealth: HealthVerdict,
    /** The worker died (an exception in it): checks have stopped. */
    onError: (err: Error) => void,
  ) {
    this.worker = new Worker(new URL("./health-worker-main.js", import.meta.url), { workerData: options });
    this.worker.on("message", (m: FromHealthWorker) => {
      switch (m.type) {
        case "verdict":
          setHealth(m.id, m.state, m.reason);
          break;
        case "checked":
          this.records.set(m.id, m.health);
          break;
        case "round":
          this.rounds.get(m.seq)?.();
          this.rounds.delete(m.seq);
          break;
        case "stopped":
          break;
      }
    });
    this.worker.on("error", onError);
    this.exited = new Promise((resolve) => this.worker.once("exit", () => resolve()));
  }

  start(): void {
    if (this.timer) return;
    this.post({ type: "nodes", nodes: this.snapshot() });
    // Membership changes reach the worker within an interval (and at once with round()).
    this.timer = setInterval(
      () => this.post({ type: "nodes", nodes: this.snapshot() }),
      this.options.intervalMs,
    );
    this.timer.unref();
  }

  round(): Promise<void> {
    const seq = ++this.seq;
    return new Promise((resolve) => {
      this.rounds.set(seq, resolve);
      this.post({ type: "round", seq, nodes: this.snapshot() });
    });
  }

  health(id: string): NodeHealth | undefined {
    const known = this.nodes().some((n) => n.id === id && n.admin !== undefined);
    return known ? this.records.get(id) : undefined;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.post({ type: "stop" });
    await this.exited;
    for (const resolve of this.rounds.values()) resolve();
    this.rounds.clear();
  }

  private post(m: ToHealthWorker): void {
    this.worker.postMessage(m);
  }

  private snapshot(): CheckedNode[] {
    return this.nodes().map((n) => ({
      id: n.id,
      healthy: n.healthy,
      gone: n.gone,
      ...(n.admin !== undefined ? { admin: n.admin } : {}),
    }));
  }
}
