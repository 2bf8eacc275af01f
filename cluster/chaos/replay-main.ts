// The chaos run's replay, run inside the client host (`ip netns exec <prefix>client node
// replay-main.js '<json>'`): runReplay against the VIP, a JSON line of running totals about
// every second on stdout, then the result. SIGTERM stops issuing requests (in-flight ones end
// within the request timeout) and still prints the result.
import { runReplay, type ReplayOptions } from "../../loadgen/replay/run.js";

/** What the runner passes (JSON, argv[2]). */
export type ReplayChildOptions = Pick<
  ReplayOptions,
  "trace" | "verify" | "target" | "clients" | "conns" | "keepalive" | "rate" | "durationS" | "timeoutMs"
> & { verify: string };

export type ReplayChildLine =
  | {
      type: "progress";
      epochMs: number;
      elapsedS: number;
      requests: number;
      ok: number;
      errors: number;
      verifyFailures: number;
      bytes: number;
      errorsByKind: Record<string, number>;
      verifyFailuresByKind: Record<string, number>;
    }
  | { type: "result"; result: Awaited<ReturnType<typeof runReplay>> }
  | { type: "error"; message: string };

const SAMPLE_EVERY_S = 1;

async function main(): Promise<void> {
  const opts = JSON.parse(process.argv[2] ?? "{}") as ReplayChildOptions;
  const ac = new AbortController();
  process.once("SIGTERM", () => ac.abort());
  const out = (line: ReplayChildLine) => process.stdout.write(JSON.stringify(line) + "\n");
  let last = -Infinity;
  try {
    const result = await runReplay({
      ...opts,
      progressIntervalMs: 250,
      signal: ac.signal,
      onProgress: (p) => {
        // Every worker reports; one line per second is enough for the timeline.
        if (p.elapsedS - last < SAMPLE_EVERY_S) return;
        last = p.elapsedS;
        out({
          type: "progress",
          epochMs: Date.now(),
          elapsedS: p.elapsedS,
          requests: p.requests,
          ok: p.ok,
          errors: p.errors,
          verifyFailures: p.verifyFailures,
          bytes: p.bytes,
          errorsByKind: p.errorsByKind ?? {},
          verifyFailuresByKind: p.verifyFailuresByKind ?? {},
        });
      },
    });
    out({ type: "result", result });
  } catch (err) {
    out({ type: "error", message: (err as Error).message });
    process.exitCode = 1;
  }
}

await main();
