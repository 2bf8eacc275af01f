// Runs `sc-cluster loadgen` (trace replay with verification) inside a testbed host, where the
// VIP and the proxies are reachable, and returns its JSON result. The CLI in a child process
// rather than the library in this one: the load generator gets its own process (its CPU is
// measured apart from the benchmark's) in the client's network namespace.
import { fileURLToPath } from "node:url";
import type { Testbed } from "../../testbed/index.js";
import type { ReplayResult } from "../../loadgen/index.js";
import { UserError } from "../../common/errors.js";

const BIN = fileURLToPath(new URL("../../../bin/sc-cluster.js", import.meta.url));

export interface LoadOptions {
  trace: string;
  manifest: string;
  target: string;
  clients: number;
  conns: number;
  keepalive: boolean;
  /** Stop issuing after this many seconds (and/or requests); at least one is given. */
  durationS?: number;
  requests?: number;
  /** Per-request timeout (connect, headers, body gaps), ms. */
  timeoutMs?: number;
  /** An https:// target: the CA to trust (PEM file). */
  ca?: string;
}

/** The loadgen arguments for these options (after `sc-cluster`). */
export function loadgenArgs(o: LoadOptions): string[] {
  const args = [
    "loadgen",
    "--trace",
    o.trace,
    "--target",
    o.target,
    "--clients",
    String(o.clients),
    "--conns",
    String(o.conns),
    "--verify",
    o.manifest,
    "--json",
    "-",
    "--timeout",
    String(o.timeoutMs ?? 10_000),
  ];
  if (o.keepalive) args.push("--keepalive");
  if (o.ca !== undefined) args.push("--ca", o.ca);
  if (o.durationS !== undefined) args.push("--duration", String(o.durationS));
  if (o.requests !== undefined) args.push("--requests", String(o.requests));
  if (o.durationS === undefined && o.requests === undefined) throw new Error("loadgen run needs a bound");
  return args;
}

export class LoadgenError extends UserError {
  constructor(message: string) {
    super(message, "ERR_LOADGEN");
  }
}

/**
 * Runs the load generator in `host` and waits for it. Bounded: killed (SIGKILL) when it runs
 * past its duration (or 600 s for a request count) plus timeout and a minute of slack.
 * `onStart` gets its PID (it is the node process itself: ip netns exec execs in place).
 */
export async function runLoadgen(
  tb: Testbed,
  host: string,
  o: LoadOptions,
  onStart?: (pid: number) => void,
  signal?: AbortSignal,
): Promise<ReplayResult> {
  const child = tb.spawn(host, process.execPath, [BIN, ...loadgenArgs(o)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid !== undefined) onStart?.(child.pid);
  const out: Buffer[] = [];
  let err = "";
  child.stdout!.on("data", (b: Buffer) => out.push(b));
  child.stderr!.on("data", (b: Buffer) => {
    err = (err + b.toString("utf8")).slice(-4000);
  });
  const boundS = (o.durationS ?? 600) + (o.timeoutMs ?? 10_000) / 1000 + 60;
  const timer = setTimeout(() => child.kill("SIGKILL"), boundS * 1000);
  // Interrupted: the load generator stops issuing (as on Ctrl-C) and reports what it did.
  const onAbort = () => child.kill("SIGINT");
  signal?.addEventListener("abort", onAbort, { once: true });
  const [code, killedBy] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (c, s) => resolve([c, s]));
  }).finally(() => {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  });
  signal?.throwIfAborted();
  const text = Buffer.concat(out).toString("utf8");
  const start = text.indexOf("{");
  // Exit codes 1 (verification failures) and 3 (transport errors) still carry a result.
  if (start < 0 || (code !== 0 && code !== 1 && code !== 3))
    throw new LoadgenError(
      `loadgen in ${host} ${killedBy ? `was killed by ${killedBy}` : `exited with code ${code}`}` +
        `${err.trim() ? `:\n${err.trim()}` : ""}`,
    );
  return JSON.parse(text.slice(start)) as ReplayResult;
}
