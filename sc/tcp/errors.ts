// Errors of the user-space TCP stack, shaped like node:net's system errors so code written for
// node sockets (the HTTP server's Conn) reads them the same way: `code` is an errno name
// ("ECONNRESET", "EADDRINUSE") or an ERR_TCP_* name for what node has no errno for.

export class TcpError extends Error {
  constructor(
    message: string,
    readonly code: string,
    options?: ErrorOptions & { syscall?: string },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TcpError";
    this.syscall = options?.syscall;
  }

  /** The call that failed ("connect", "read"), as node's system errors carry it. */
  readonly syscall: string | undefined;
  /** node's system errors carry the errno name here too. */
  get errno(): string {
    return this.code;
  }
}
