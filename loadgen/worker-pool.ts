// The worker threads of a load run (the trace replay and the single-URL run): spawn one per
// init, start them all together once every one is ready, pass their progress on, ask them to
// stop when the signal aborts, and collect what each reports when done. The workers are always
// terminated before this returns, on success or failure.
import { Worker } from "node:worker_threads";

/** What every load worker sends: "ready" once, "progress" now and then, "done" once. */
export type LoadWorkerMessage = { type: "ready" } | { type: "progress" } | { type: "done" };

export interface LoadWorkersSpec<Init, M extends LoadWorkerMessage> {
  /** The worker script, and its workerData for each worker. */
  script: URL;
  inits: Init[];
  /** Called once every worker is ready: the message that starts them all. */
  start: () => unknown;
  onProgress: (worker: number, msg: Extract<M, { type: "progress" }>) => void;
  /** Set: a worker that exits with a non-zero code before all are done fails the run with this. */
  exitError?: (worker: number, code: number) => Error;
  /** Aborting sends every worker { type: "stop" }. */
  signal?: AbortSignal;
}

export interface LoadWorkersOutcome<Done> {
  /** Each worker's "done" message, in the order they arrived. */
  done: Done[];
  /** The signal aborted while the workers ran. */
  aborted: boolean;
}

function isType<M extends LoadWorkerMessage, T extends LoadWorkerMessage["type"]>(
  msg: M,
  type: T,
): msg is Extract<M, { type: T }> {
  return msg.type === type;
}

export async function runLoadWorkers<Init, M extends LoadWorkerMessage>(
  spec: LoadWorkersSpec<Init, M>,
): Promise<LoadWorkersOutcome<Extract<M, { type: "done" }>>> {
  const count = spec.inits.length;
  const workers: Worker[] = [];
  const done: Extract<M, { type: "done" }>[] = [];
  const finished = new Promise<void>((resolve, reject) => {
    let ready = 0;
    const fail = (err: Error) => {
      for (const w of workers) void w.terminate();
      reject(err);
    };
    spec.inits.forEach((init, w) => {
      const worker = new Worker(spec.script, { workerData: init });
      workers.push(worker);
      worker.on("message", (msg: M) => {
        if (isType(msg, "ready")) {
          if (++ready === count) {
            const start = spec.start();
            for (const x of workers) x.postMessage(start);
          }
        } else if (isType(msg, "progress")) {
          spec.onProgress(w, msg);
        } else if (isType(msg, "done")) {
          done.push(msg);
          if (done.length === count) resolve();
        }
      });
      worker.on("error", (err) => fail(err));
      const exitError = spec.exitError;
      if (exitError) {
        worker.on("exit", (code) => {
          if (done.length < count && code !== 0) fail(exitError(w, code));
        });
      }
    });
  });

  let aborted = false;
  const onAbort = () => {
    aborted = true;
    for (const w of workers) w.postMessage({ type: "stop" });
  };
  spec.signal?.addEventListener("abort", onAbort, { once: true });
  if (spec.signal?.aborted) onAbort();
  try {
    await finished;
  } finally {
    spec.signal?.removeEventListener("abort", onAbort);
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return { done, aborted };
}
