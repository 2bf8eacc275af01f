// Errors a user can act on (a bad option, a missing /dev/net/tun, an address in use), and the
// exit codes of every sc-cluster command. The CLI prints a UserError as one line, without a
// stack, and exits with its exitCode; anything else is a bug and keeps its stack trace.

/** Exit codes of every `sc-cluster` command (README "Commands"). */
export const EXIT = {
  /** Done; for a replay: every request answered and verified. */
  ok: 0,
  /** The command failed (a UserError's message says why), or a replay saw wrong bytes. */
  failed: 1,
  /** Bad command line: unknown option, bad value, missing argument. */
  usage: 2,
  /** A replay finished with request errors (timeouts, resets) but no wrong bytes. */
  requestErrors: 3,
} as const;

export class UserError extends Error {
  /**
   * @param code a stable name of the failure for scripts and tests: an errno name ("EADDRINUSE",
   *   "EPERM") where the system said so, otherwise "ERR_<WHAT>".
   */
  constructor(
    message: string,
    readonly code = "ERR_FAILED",
    options?: ErrorOptions & { exitCode?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = options?.exitCode ?? EXIT.failed;
  }

  readonly exitCode: number;
}
