// The chaos run's replay as the runner sees it: the child (replay-main.ts) in the client host,
// its JSON lines turned into progress samples, its result or error, its end.
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { ReplayResult } from "../../loadgen/replay/run.js";
import type { ReplaySample } from "./report.js";
import type { ReplayChildLine } from "./replay-main.js";

/** One line of the child's output, or undefined for a line that is not one of its JSON lines. */
export function parseReplayLine(text: string): ReplayChildLine | undefined {
  try {
    return JSON.parse(text) as ReplayChildLine;
  } catch {
    return undefined;
  }
}

/** A progress line's running totals. */
export function sampleOf(msg: Extract<ReplayChildLine, { type: "progress" }>): ReplaySample {
  return {
    elapsedS: msg.elapsedS,
    requests: msg.requests,
    ok: msg.ok,
    errors: msg.errors,
    verifyFailures: msg.verifyFailures,
    bytes: msg.bytes,
    errorsByKind: msg.errorsByKind,
    verifyFailuresByKind: msg.verifyFailuresByKind,
  };
}

export class ReplayChild {
  readonly samples: ReplaySample[] = [];
  result: ReplayResult | null = null;
  /** The child's error line, or why it gave no result. */
  error: string | null = null;
  /** The replay's start on the wall clock (ms since the epoch), from its first progress line. */
  startEpoch: number | undefined;
  /** Resolves with the first progress line. */
  readonly started: Promise<void>;
  readonly exited: Promise<void>;
  /** Its output is read to the end. */
  readonly linesDone: Promise<void>;
  /** Set once it exited. */
  ended = false;
  private stderr = "";

  /** `onSample` is called with every sample so far, as each arrives. */
  constructor(
    readonly proc: ChildProcess,
    onSample: (samples: readonly ReplaySample[]) => void,
  ) {
    const { stdout, stderr } = proc;
    if (!stdout || !stderr) throw new Error("the replay's output is not piped");
    stderr.on("data", (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.exited = new Promise<void>((res) => proc.once("exit", () => res()));
    void this.exited.then(() => (this.ended = true));
    const lines = createInterface({ input: stdout });
    this.started = new Promise<void>((markStarted) =>
      lines.on("line", (text) => this.take(text, markStarted, onSample)),
    );
    this.linesDone = new Promise<void>((res) => lines.once("close", () => res()));
  }

  private take(text: string, markStarted: () => void, onSample: (s: readonly ReplaySample[]) => void): void {
    const msg = parseReplayLine(text);
    if (msg === undefined) return;
    if (msg.type === "progress") {
      this.startEpoch ??= msg.epochMs - msg.elapsedS * 1000;
      markStarted();
      this.samples.push(sampleOf(msg));
      onSample(this.samples);
    } else if (msg.type === "result") this.result = msg.result;
    else this.error = msg.message;
  }

  /** Still running: neither exited nor killed by a signal. */
  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** What it said on stderr (its last 4000 characters), trimmed. */
  get stderrText(): string {
    return this.stderr.trim();
  }
}
