// The dashboard's replay button: `sc-cluster loadgen` run in the client host against the VIP,
// replaying the demo trace with every response checked against the manifest, bounded in
// requests and seconds (and killed if it overstays). The loadgen is the same program a user
// runs by hand (docs/loadgen.md); its --json result is summarised for the page.
import type { ChildProcess } from "node:child_process";
import type { ReplayResult } from "../../loadgen/index.js";
import { CLI_BIN } from "../processes.js";

export interface ReplaySettings {
  trace: string;
  manifest: string;
  /** The VIP's URL, e.g. http://198.18.100.1 */
  target: string;
  /** Stop after this many requests ... */
  requests: number;
  /** ... or after this many seconds, whichever comes first. */
  durationS: number;
  /** Keep-alive connections (several requests each: each request may be cloned on its own). */
  conns: number;
}

/** What the page shows about a finished replay. */
export interface ReplayOutcome {
  /** Every request answered and verified byte for byte. */
  ok: boolean;
  requests: number;
  verified: number;
  verifyFailures: number;
  errors: number;
  errorsByKind: Record<string, number>;
  /** The first few verification failures, as the loadgen describes them. */
  failureSamples: unknown[];
  elapsedS: number;
  rps: number;
  mbps: number;
  latencyMs: { p50: number; p99: number } | null;
  stoppedBy: string | null;
  /** Why there is no result (the loadgen failed to run), or null. */
  problem: string | null;
}

/** Runs a program in a host's namespace (a Testbed does). */
export interface Spawner {
  spawn(
    host: string,
    cmd: string,
    args: string[],
    options: { stdio: ["ignore", "pipe", "pipe"] },
  ): ChildProcess;
}

/** Grace beyond the replay's own bound before the loadgen is killed. */
const OVERSTAY_MS = 30_000;

export function loadgenArgs(s: ReplaySettings): string[] {
  return [
    "loadgen",
    "--trace",
    s.trace,
    "--target",
    s.target,
    "--verify",
    s.manifest,
    "--requests",
    String(s.requests),
    "--duration",
    String(s.durationS),
    "--conns",
    String(s.conns),
    "--keepalive",
    "--json",
    "-",
  ];
}

/** The page's summary of a loadgen --json result (and its exit code). */
export function summarise(r: ReplayResult, exitCode: number | null): ReplayOutcome {
  return {
    ok: exitCode === 0 && r.verify_failures === 0 && r.errors === 0 && r.requests > 0,
    requests: r.requests,
    verified: r.ok,
    verifyFailures: r.verify_failures,
    errors: r.errors,
    errorsByKind: r.errors_by_kind,
    failureSamples: r.verify_failure_samples.slice(0, 3),
    elapsedS: r.elapsed_s,
    rps: r.rps,
    mbps: r.mbps,
    latencyMs: r.latency_ms ? { p50: r.latency_ms.p50, p99: r.latency_ms.p99 } : null,
    stoppedBy: r.stopped_by,
    problem: null,
  };
}

function failed(problem: string): ReplayOutcome {
  return {
    ok: false,
    requests: 0,
    verified: 0,
    verifyFailures: 0,
    errors: 0,
    errorsByKind: {},
    failureSamples: [],
    elapsedS: 0,
    rps: 0,
    mbps: 0,
    latencyMs: null,
    stoppedBy: null,
    problem,
  };
}

/** Runs one bounded, verified replay from `host`; never rejects (a failure is an outcome). */
export function runReplayFrom(
  spawner: Spawner,
  host: string,
  settings: ReplaySettings,
  signal?: AbortSignal,
): Promise<ReplayOutcome> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawner.spawn(host, process.execPath, [CLI_BIN, ...loadgenArgs(settings)], {
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (err) {
      resolve(failed(`could not start the loadgen: ${(err as Error).message}`));
      return;
    }
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on("data", (b: Buffer) => {
      if (stderr.length < 16_384) stderr += b.toString();
    });
    const kill = () => child.kill("SIGKILL");
    const overstay = setTimeout(kill, settings.durationS * 1000 + OVERSTAY_MS);
    if (signal?.aborted) kill();
    else signal?.addEventListener("abort", kill, { once: true });
    child.on("error", (err) => {
      clearTimeout(overstay);
      resolve(failed(`could not start the loadgen: ${err.message}`));
    });
    child.on("close", (code, sig) => {
      clearTimeout(overstay);
      signal?.removeEventListener("abort", kill);
      try {
        resolve(summarise(JSON.parse(stdout) as ReplayResult, code));
      } catch {
        const last = stderr.trim().split("\n").slice(-3).join(" / ");
        resolve(
          failed(`the loadgen ended (${sig ?? `code ${code}`}) without a result${last ? `: ${last}` : ""}`),
        );
      }
    });
  });
}
