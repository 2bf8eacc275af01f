// Running the system tools the testbed drives (ip, tc, nft, sh), with errors that name
// the command that failed and carry its stderr.
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { UserError } from "../common/errors.js";

export interface RunOptions {
  /** Written to the command's stdin (then closed). */
  input?: string;
  /** Kill the command (SIGKILL) after this long; default 30 s. */
  timeoutMs?: number;
  /** Throw CommandError on a non-zero exit (default true). */
  check?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface RunResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A command exited non-zero, was killed, or could not start. */
export class CommandError extends UserError {
  constructor(
    message: string,
    readonly command: string[],
    readonly result?: RunResult,
  ) {
    super(message, "ERR_COMMAND");
  }
}

export function describeCommand(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(a) ? a : JSON.stringify(a))).join(" ");
}

const SBIN_TOOLS = new Set(["ip", "tc", "nft", "sysctl"]);

/** Runs argv[0] with argv[1..] (no shell) and collects its output. */
export function run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error("run: empty command");
  const timeoutMs = options.timeoutMs ?? 30_000;
  // Resolve bare names the way checkEnvironment found them: ip, tc and nft live in the sbin
  // directories, which a user's PATH may lack even when running as root.
  const exe = SBIN_TOOLS.has(cmd) ? (findExecutable(cmd) ?? cmd) : cmd;
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: options.env ?? process.env,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    // A command that exits before reading all its input makes stdin emit EPIPE; the
    // exit code tells what happened.
    child.stdin.on("error", () => {});
    child.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const hint = e.code === "ENOENT" ? ` (is '${cmd}' installed and on PATH?)` : "";
      reject(new CommandError(`cannot run ${describeCommand(argv)}: ${e.message}${hint}`, argv));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const result: RunResult = {
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      };
      if (timedOut) {
        reject(
          new CommandError(`${describeCommand(argv)} did not finish within ${timeoutMs} ms`, argv, result),
        );
      } else if ((options.check ?? true) && code !== 0) {
        reject(new CommandError(failureMessage(argv, result, options.input), argv, result));
      } else {
        resolve(result);
      }
    });
    child.stdin.end(options.input ?? "");
  });
}

function failureMessage(argv: string[], r: RunResult, input: string | undefined): string {
  const how = r.code === null ? `killed by ${r.signal}` : `exit ${r.code}`;
  const stderr = r.stderr.trim();
  let detail = stderr;
  // `ip -batch -` says "Command failed -:N": show that input line.
  const batchLine = /Command failed -:(\d+)/.exec(stderr);
  if (batchLine && input !== undefined) {
    const line = input.split("\n")[Number(batchLine[1]) - 1];
    if (line !== undefined) detail += `\n  (batch line ${batchLine[1]}: ${line})`;
  }
  // `sh -x` traces every command with "+ "; name the last one, which is the one that failed.
  if (argv.includes("-exc")) {
    const lines = stderr.split("\n");
    const traced = lines.filter((l) => l.startsWith("+ "));
    const messages = lines.filter((l) => !l.startsWith("+ ") && l.trim() !== "");
    // Errors the shell finds itself (a failed redirection) come before the trace line and
    // carry the script line number instead: "sh: 3: cannot create ...".
    const shellLine = /^sh: (\d+): /.exec(messages[messages.length - 1] ?? "");
    const script = argv[argv.indexOf("-exc") + 1] ?? "";
    const failed = shellLine
      ? `+ ${script.split("\n")[Number(shellLine[1]) - 1] ?? "?"}`
      : traced[traced.length - 1];
    detail = `${failed ? `'${failed.slice(2)}' failed` : "a command failed"}${
      messages.length ? `: ${messages.join("\n")}` : ""
    }`;
    const i = argv.indexOf("-exc");
    argv = argv.slice(0, i + 1).concat("<script>");
  }
  return `${describeCommand(argv)} failed (${how})${detail ? `: ${detail}` : ""}`;
}

/** Finds an executable on PATH (plus the sbin directories root usually has). */
export function findExecutable(name: string): string | undefined {
  const dirs = (process.env.PATH ?? "").split(delimiter).concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}
