// Worker-thread entry of HealthWorker (health-worker.ts): a HealthChecker over the node list
// the main thread sends, posting verdicts and check records back.
import { parentPort, workerData } from "node:worker_threads";
import { HealthChecker, type CheckedNode, type HealthOptions } from "./health.js";
import type { FromHealthWorker, ToHealthWorker } from "./health-worker.js";

const port = parentPort;
if (port === null) throw new Error("health-worker-main runs as a worker thread");
const post = (m: FromHealthWorker) => port.postMessage(m);

// The main thread's view, with the verdicts this thread gave since applied at once (the main
// thread's next snapshot says the same, or a later truth).
let nodes: CheckedNode[] = [];
const checker = new HealthChecker(
  workerData as HealthOptions,
  () => nodes,
  (id, state, reason) => {
    const n = nodes.find((x) => x.id === id);
    if (n) {
      n.healthy = state === "up";
      n.gone = state === "gone";
    }
    post({ type: "verdict", id, state, reason });
  },
  (id, health) => post({ type: "checked", id, health }),
);

port.on("message", (m: ToHealthWorker) => {
  switch (m.type) {
    case "nodes":
      nodes = m.nodes;
      checker.start();
      break;
    case "round":
      nodes = m.nodes;
      void checker.round().then(() => post({ type: "round", seq: m.seq }));
      break;
    case "stop":
      void checker.stop().then(() => {
        post({ type: "stopped" });
        port.close();
      });
      break;
  }
});
