// One data-path worker of `sc-cluster node --workers N` (workers.ts starts them): a whole
// node (startNode) on its own TUN queue, its own steered GUE socket and its cluster plane,
// without an admin API (the main thread has it), its store an L1 of the node's shared cache.
// Posts its /stats snapshot every WORKER_STATS_MS and answers the main thread's metrics requests.
import { parentPort, workerData } from "node:worker_threads";
import { createLogger } from "../log.js";
import { startNode, type RunningNode } from "./node.js";
import {
  trustFromMain,
  WORKER_STATS_MS,
  type NodeWorkerCommand,
  type NodeWorkerInit,
  type NodeWorkerMessage,
} from "./workers.js";

const port = parentPort;
const init = workerData as NodeWorkerInit;

function post(m: NodeWorkerMessage): void {
  port?.postMessage(m);
}

async function main(): Promise<void> {
  if (!port) throw new Error("server/node/worker-main.js runs as a worker thread");
  const logger = createLogger(init.logLevel, { role: "node", node: init.config.nodeId, worker: init.index });
  let node: RunningNode;
  try {
    node = await startNode({
      ...init.config,
      logger,
      trust: trustFromMain(init.config.trust),
      admin: null,
      worker: { index: init.index, count: init.count },
      sharedCache: init.cachePort,
    });
  } catch (err) {
    post({ type: "error", message: (err as Error).message });
    port.close();
    return;
  }
  const timer = setInterval(() => post({ type: "stats", snapshot: node.snapshot() }), WORKER_STATS_MS);
  port.on("message", (cmd: NodeWorkerCommand) => {
    switch (cmd.op) {
      case "metrics":
        void node.registry.getMetricsAsJSON().then((json) => post({ type: "metrics", id: cmd.id, json }));
        break;
      case "drain":
        node.beginDrain();
        break;
      case "stop":
        clearInterval(timer);
        void node.shutdown(cmd.graceMs).finally(() => {
          post({ type: "stats", snapshot: node.snapshot() });
          port.close();
        });
        break;
    }
  });
  post({ type: "stats", snapshot: node.snapshot() });
  post({ type: "ready", address: node.address });
}

void main();
