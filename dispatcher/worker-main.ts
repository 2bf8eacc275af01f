// A dispatcher data-path worker thread (--workers N; workers.ts starts them): opens one
// queue of the multi-queue TUN device and its own GUE socket, forwards what its queue
// delivers with its own Forwarder and connection table, applies the control plane's changes
// in the order they come, and posts its counters every STATS_INTERVAL_MS.
import { parentPort, workerData } from "node:worker_threads";
import { DataPath } from "./datapath.js";
import {
  snapshotOf,
  STATS_INTERVAL_MS,
  type WorkerCommand,
  type WorkerInit,
  type WorkerMessage,
} from "./workers.js";

const TICK_MS = 1000;

function post(m: WorkerMessage): void {
  parentPort?.postMessage(m);
}

/** The main thread's epoch timestamp on this thread's performance.now() clock. */
function localTime(epoch: number): number {
  return Number.isFinite(epoch) ? epoch - performance.timeOrigin : epoch;
}

function main(): void {
  const port = parentPort;
  if (!port) throw new Error("dispatcher/worker-main.js runs as a worker thread");
  const init = workerData as WorkerInit;
  let dp: DataPath;
  try {
    dp = DataPath.open(init.config, init.tun, true);
  } catch (err) {
    post({ type: "error", message: `cannot open TUN queue or socket: ${(err as Error).message}` });
    return;
  }
  const f = dp.forwarder;
  if (f.schedulerName !== init.scheduler) f.setScheduler(init.scheduler);
  for (const n of init.nodes) {
    f.upsertNode(n.spec);
    if (n.checked) {
      f.setHealth(n.spec.id, n.healthy ? "up" : n.gone ? "gone" : "down", localTime(n.downSinceEpoch));
    }
    if (n.removed) f.removeNode(n.spec.id);
  }
  const tick = setInterval(() => f.tick(performance.now()), TICK_MS);
  const snapshot = () => snapshotOf(f, dp.ioStats());
  const stats = setInterval(() => post({ type: "stats", snapshot: snapshot() }), STATS_INTERVAL_MS);
  const stop = () => {
    clearInterval(tick);
    clearInterval(stats);
    dp.close();
    post({ type: "stats", snapshot: snapshot() });
    port.close();
  };
  port.on("message", (cmd: WorkerCommand) => {
    switch (cmd.op) {
      case "upsert":
        f.upsertNode(cmd.spec);
        break;
      case "remove":
        f.removeNode(cmd.id);
        break;
      case "health":
        f.setHealth(cmd.id, cmd.state, localTime(cmd.atEpoch));
        break;
      case "scheduler":
        f.setScheduler(cmd.name);
        break;
      case "stop":
        stop();
        break;
    }
  });
  dp.start((err) => {
    post({ type: "error", message: `TUN queue failed: ${err.message}` });
    stop();
  });
  post({ type: "stats", snapshot: snapshot() });
  post({ type: "ready" });
}

main();
