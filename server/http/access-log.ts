// Access logs: one line per request, in the combined log format (default) or as JSON lines,
// to a file or stdout. The formatting is pure; the writer buffers lines and writes them in
// the background, one write in flight at a time, so the data path never waits on the disk:
// past `maxBufferBytes` of unwritten lines, new lines are dropped and counted. `reopen()`
// (SIGUSR1, the logrotate convention) re-opens the file by name after the write in flight.
//
// Combined, with the node's fields after Apache's/nginx's (loadgen's CLF reader takes any
// trailing fields):
//   198.18.0.2 - - [06/Dec/2026:19:21:18 +0000] "GET /a.html HTTP/1.1" 200 1839 "-" "curl/7.88.1" node=node1 cloned-to=node2 rt=0.000412 sent=2101
// `cloned-to=-` when the node served the request itself; %b is body bytes ("-" for none),
// sent= the bytes of head and body, rt= seconds from the request being taken up to its
// response handed to the transport (for a cloned one: until the client acknowledged it).
import { open, type FileHandle } from "node:fs/promises";
import { write as fsWrite } from "node:fs";
import type { HttpRequest } from "./parser.js";

export const ACCESS_LOG_FORMATS = ["combined", "json"] as const;
export type AccessLogFormat = (typeof ACCESS_LOG_FORMATS)[number];

/** One finished request, as the connection reports it. */
export interface RequestRecord {
  /** The request; null when none could be parsed (400, 408): logged with request "-". */
  readonly req: HttpRequest | null;
  readonly remoteAddr: string | undefined;
  /** When the request was taken up (ms since the epoch). */
  readonly startMs: number;
  readonly durationS: number;
  readonly status: number;
  readonly bodyBytes: number;
  /** Head plus body bytes. */
  readonly sentBytes: number;
  /** The node a clone of the connection served it on, or null (served here). */
  readonly clonedTo: string | null;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

/** "06/Dec/2026:19:21:18 +0000" (Apache %t, nginx $time_local, in UTC). */
export function clfDate(ms: number): string {
  const d = new Date(ms);
  return (
    `${pad2(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000`
  );
}

/**
 * A value made safe inside a quoted CLF field or a bare token: `"` and `\` escaped with a
 * backslash, space (when `bare`), controls and non-ASCII as \xHH (nginx's escaping). Linear.
 */
export function escapeClf(s: string, bare = false): string {
  let out = "";
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let rep: string | null = null;
    if (c === 34 || c === 92) rep = `\\${s[i]}`;
    else if (c < 0x20 || c >= 0x7f || (bare && c === 32))
      rep = `\\x${(c & 0xff).toString(16).padStart(2, "0")}`;
    if (rep === null) continue;
    out += s.slice(from, i) + rep;
    from = i + 1;
  }
  return from === 0 ? s : out + s.slice(from);
}

function header(req: HttpRequest | null, name: string): string | undefined {
  if (req === null) return undefined;
  const h = req.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}

const requestLine = (req: HttpRequest) => `${req.method} ${req.target} HTTP/1.${req.versionMinor}`;

/** The combined log format line for one request (no line end). */
export function formatCombined(r: RequestRecord, node: string): string {
  const q = (v: string | undefined) => (v === undefined ? "-" : escapeClf(v));
  return (
    `${escapeClf(r.remoteAddr ?? "-", true)} - - [${clfDate(r.startMs)}] ` +
    `"${r.req === null ? "-" : escapeClf(requestLine(r.req))}" ${r.status} ${r.bodyBytes > 0 ? r.bodyBytes : "-"} ` +
    `"${q(header(r.req, "referer"))}" "${q(header(r.req, "user-agent"))}" ` +
    `node=${escapeClf(node, true)} cloned-to=${r.clonedTo === null ? "-" : escapeClf(r.clonedTo, true)} ` +
    `rt=${r.durationS.toFixed(6)} sent=${r.sentBytes}`
  );
}

/**
 * One JSON object per line, with the field names loadgen's JSON reader looks for by default
 * (time, remote_addr, method, url, protocol, status, bytes). Non-ASCII is \u-escaped, so a
 * line is ASCII (one byte per character).
 */
export function formatJson(r: RequestRecord, node: string): string {
  const req = r.req;
  const line = JSON.stringify({
    time: new Date(r.startMs).toISOString(),
    remote_addr: r.remoteAddr ?? null,
    method: req?.method ?? null,
    url: req?.target ?? null,
    protocol: req ? `HTTP/1.${req.versionMinor}` : null,
    status: r.status,
    bytes: r.bodyBytes,
    sent: r.sentBytes,
    duration: Number(r.durationS.toFixed(6)),
    referer: header(req, "referer") ?? null,
    user_agent: header(req, "user-agent") ?? null,
    node,
    cloned_to: r.clonedTo,
  });
  return line.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Where the writer's bytes go; every call completes through its callback. */
export interface LogSink {
  write(data: Buffer, done: (err: Error | null) => void): void;
  /** Re-opens the destination by name (after logrotate moved the file). */
  reopen(done: (err: Error | null) => void): void;
  close(done: () => void): void;
}

/** Appends to a file, created if missing (mode 0640); reopen() opens the name again. */
export async function fileSink(path: string): Promise<LogSink> {
  let fh: FileHandle = await open(path, "a", 0o640);
  return {
    write(data, done) {
      fh.write(data).then(
        () => done(null),
        (err: Error) => done(err),
      );
    },
    reopen(done) {
      open(path, "a", 0o640).then(
        (next) => {
          const old = fh;
          fh = next;
          old.close().then(
            () => done(null),
            () => done(null),
          );
        },
        (err: Error) => done(err),
      );
    },
    close(done) {
      fh.close().then(done, done);
    },
  };
}

const STDOUT_RETRY_MS = 10;

/** Standard output (fd 1), written through libuv's thread pool, so a slow pipe cannot block. */
export function stdoutSink(): LogSink {
  return {
    write(data, done) {
      const step = (off: number): void =>
        fsWrite(1, data, off, data.length - off, null, (err, n) => {
          // A pipe the process made non-blocking: wait for the reader (bounded by the buffer).
          if (err?.code === "EAGAIN") setTimeout(step, STDOUT_RETRY_MS, off).unref();
          else if (err) done(err);
          else if (off + n < data.length) step(off + n);
          else done(null);
        });
      step(0);
    },
    reopen: (done) => done(null),
    close: (done) => done(),
  };
}

export interface AccessLogOptions {
  /** Unwritten bytes beyond which new lines are dropped (counted). */
  maxBufferBytes: number;
  /** Write as soon as this many bytes wait. */
  flushBytes: number;
  /** Else write what waits at least this often. */
  flushIntervalMs: number;
  /** Write errors and failed reopens (the node logs them). */
  onError?: (err: Error, during: "write" | "reopen") => void;
}

export const ACCESS_LOG_DEFAULTS = { maxBufferBytes: 4 << 20, flushBytes: 64 << 10, flushIntervalMs: 1000 };

export interface AccessLogCounters {
  /** Lines handed to the sink. */
  lines: number;
  /** Lines dropped because the buffer was full (the disk or pipe stalled). */
  dropped: number;
  /** Lines lost in failed writes. */
  failed: number;
  writeErrors: number;
  reopens: number;
}

/** Buffered, bounded, non-blocking line writer (see the file comment). */
export class AccessLog {
  readonly counters: AccessLogCounters = { lines: 0, dropped: 0, failed: 0, writeErrors: 0, reopens: 0 };
  private pending: string[] = [];
  private pendingBytes = 0;
  /** Bytes (and lines) of the write in flight. */
  private inflightBytes = 0;
  private writing = false;
  private reopenWanted = false;
  /** Lines queued before reopen() was asked for: they still go to the old file. */
  private beforeReopen = 0;
  private closing: (() => void) | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly sink: LogSink,
    private readonly opts: AccessLogOptions,
  ) {
    this.timer = setInterval(() => this.kick(), opts.flushIntervalMs);
    this.timer.unref();
  }

  /** Queues one line (no line end); drops it when the buffer is full. Never blocks. */
  write(line: string): void {
    const n = line.length + 1;
    if (this.closing !== null || this.pendingBytes + this.inflightBytes + n > this.opts.maxBufferBytes) {
      this.counters.dropped++;
      return;
    }
    this.pending.push(line);
    this.pendingBytes += n;
    if (this.pendingBytes >= this.opts.flushBytes) this.kick();
  }

  /** Bytes waiting to be written (queued and in flight). */
  get buffered(): number {
    return this.pendingBytes + this.inflightBytes;
  }

  /** Re-opens the file once the lines logged so far are written to the old one (SIGUSR1). */
  reopen(): void {
    this.reopenWanted = true;
    this.beforeReopen = this.pending.length;
    this.kick();
  }

  /** Writes everything queued, then closes the sink. */
  close(): Promise<void> {
    clearInterval(this.timer);
    return new Promise((resolve) => {
      this.closing = () => this.sink.close(resolve);
      this.kick();
    });
  }

  private kick(): void {
    if (this.writing) return;
    if (this.reopenWanted && this.beforeReopen === 0) {
      this.reopenWanted = false;
      this.writing = true;
      this.sink.reopen((err) => {
        this.writing = false;
        if (err) this.opts.onError?.(err, "reopen");
        else this.counters.reopens++;
        this.kick();
      });
      return;
    }
    if (this.pending.length === 0) {
      const close = this.closing;
      if (close !== null) {
        this.closing = () => undefined;
        close();
      }
      return;
    }
    // Before a reopen only the lines logged before it; else everything queued.
    const n = this.reopenWanted ? this.beforeReopen : this.pending.length;
    const lines = n === this.pending.length ? this.pending : this.pending.slice(0, n);
    this.pending = n === this.pending.length ? [] : this.pending.slice(n);
    this.beforeReopen = 0;
    const data = Buffer.from(lines.join("\n") + "\n", "latin1");
    this.inflightBytes = data.length;
    this.pendingBytes -= data.length;
    this.writing = true;
    this.sink.write(data, (err) => {
      this.writing = false;
      this.inflightBytes = 0;
      if (err) {
        this.counters.writeErrors++;
        this.counters.failed += lines.length;
        this.opts.onError?.(err, "write");
      } else this.counters.lines += lines.length;
      // More waits: write on if a flush is due or we are closing, else at the next tick.
      if (this.pendingBytes >= this.opts.flushBytes || this.closing !== null || this.reopenWanted)
        this.kick();
    });
  }
}

/** Turns finished requests into access log lines of one format. */
export class AccessLogger {
  private readonly format: (r: RequestRecord, node: string) => string;

  constructor(
    readonly log: AccessLog,
    format: AccessLogFormat,
    private readonly node: string,
  ) {
    this.format = format === "json" ? formatJson : formatCombined;
  }

  record(r: RequestRecord): void {
    this.log.write(this.format(r, this.node));
  }
}
