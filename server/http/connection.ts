// One client connection: feeds the parser, runs each request through the mode hook and the
// responder, and writes responses strictly in request order. Requests are handled one at a
// time; pipelined ones wait in the parser (input beyond a bound is left in the socket by
// pausing it), and a response that cannot be written yet (backpressure) holds the pipeline.
//
// Time limits are deadlines checked by the server's sweep (no timer per connection):
//   header  the rest of a request must arrive within headerMs of its first byte (408, close);
//   idle    a keep-alive connection with nothing in flight closes after idleMs (FIN, no 408);
//   send    a client that does not read our response for sendMs is reset;
//   linger  after our FIN, the client has lingerMs to close its side before a reset.
import type { Conn } from "../transport/conn.js";
import { ParseError, RequestParser, type HttpRequest, type ParserLimits } from "./parser.js";
import { errorResponse, statusOfHead, type PreparedResponse } from "./response.js";
import type { DateCache } from "./date.js";
import type { ConnectionControl, Decision, LocalResponder, RequestHook } from "./hook.js";
import type { ServerStats } from "./stats.js";
import type { Logger } from "../log.js";
import type { RequestRecord } from "./access-log.js";

/** Told about every request once it is answered (access log, request-duration histogram). */
export interface RequestObserver {
  completed(r: RequestRecord): void;
}

export interface Timeouts {
  headerMs: number;
  idleMs: number;
  sendMs: number;
  lingerMs: number;
}

/** What a connection needs from the server that owns it. */
export interface HttpConnectionHost {
  readonly responder: LocalResponder;
  readonly mode: RequestHook;
  readonly stats: ServerStats;
  readonly limits: ParserLimits;
  readonly timeouts: Timeouts;
  readonly dates: DateCache;
  readonly log: Logger;
  /** True while the server shuts down: finish the current response, then close. */
  readonly draining: boolean;
  /** Sees each answered request (null: nobody listens). */
  readonly requests?: RequestObserver | null;
  connectionClosed(c: HttpConnection): void;
}

/** Head and body are sent as one buffer (one write, one segment train) up to this size. */
const COALESCE_MAX = 16 * 1024;
/** True when body starts where head ends in the same memory (one response buffer). */
function adjacent(head: Buffer, body: Buffer): boolean {
  return head.buffer === body.buffer && head.byteOffset + head.length === body.byteOffset;
}
/** Unparsed input kept while the pipeline is busy before the socket is paused. */
const MAX_BUFFERED = 64 * 1024;
const EMPTY = Buffer.alloc(0);
/** nginx's status for a request whose client closed the connection before it was answered. */
const CLIENT_CLOSED = 499;

interface CurrentRequest {
  readonly req: HttpRequest;
  /** Wall clock (the log's timestamp) and monotonic clock (the duration) when it was taken up. */
  readonly startMs: number;
  readonly startedAt: number;
  /** Set by servedBy(): the clone's node, status and lengths. */
  clone: { node: string; status: number; length: number; headLength: number } | null;
}

const enum Wait {
  None,
  Header,
  Idle,
  Send,
  Linger,
}

export class HttpConnection implements ConnectionControl {
  private readonly parser: RequestParser;
  /** A request is being decided, loaded or streamed: the pipeline waits for it. */
  private busy = false;
  /** The last write hit backpressure: wait for 'drain'. */
  private blocked = false;
  /** end() was called: ignore input, wait for the client to close. */
  private closing = false;
  private readEnded = false;
  private paused = false;
  private waitKind = Wait.None;
  /** When the current wait expires (ms since epoch; Infinity for none). */
  deadline = Infinity;
  private drainWaiters: (() => void)[] = [];
  /** While lingering: the smallest our send queue has been (0 once drained), and when it shrank. */
  private lingerQueued = 0;
  private lingerProgressAt = 0;
  /** The request being answered, for its access-log record (null between requests). */
  private current: CurrentRequest | null = null;

  constructor(
    readonly id: number,
    readonly conn: Conn,
    private readonly env: HttpConnectionHost,
  ) {
    this.parser = new RequestParser(env.limits);
    env.stats.connectionsAccepted++;
    env.stats.connectionsOpen++;
    conn.on("data", this.onData);
    conn.on("end", this.onEnd);
    conn.on("drain", this.onDrain);
    conn.on("error", this.onError);
    conn.on("close", this.onClose);
    this.updateDeadline(Date.now());
  }

  /** The mode had the current request answered by another node (Socket Cloning's clone). */
  servedBy(node: string, head: Uint8Array, length: number): void {
    if (this.current !== null)
      this.current.clone = { node, status: statusOfHead(head), length, headLength: head.length };
  }

  /** Reports the current request (or, with none, a refused one) to the observer, once. */
  private completed(status: number, sent: number, headLength: number, clonedTo: string | null = null): void {
    const obs = this.env.requests;
    const cur = this.current;
    this.current = null;
    if (obs == null) return;
    obs.completed({
      req: cur?.req ?? null,
      remoteAddr: this.conn.remoteAddress,
      startMs: cur?.startMs ?? Date.now(),
      durationS: cur === null ? 0 : (performance.now() - cur.startedAt) / 1000,
      status,
      bodyBytes: Math.max(0, sent - headLength),
      sentBytes: sent,
      clonedTo,
    });
  }

  /** The connection went away before the current request was answered (nginx's 499). */
  private abandoned(): void {
    if (this.current !== null) this.completed(CLIENT_CLOSED, 0, 0);
  }

  /** Part of a request has arrived and the rest has not. */
  get midMessage(): boolean {
    return this.parser.midMessage;
  }

  flushed(): Promise<void> {
    if (this.conn.writableLength === 0 || this.conn.destroyed) return Promise.resolve();
    // A zero-length write completes once everything queued before it has been flushed.
    return new Promise((resolve) => this.conn.write(EMPTY, () => resolve()));
  }

  /** Called by the server's sweep; acts if the current deadline has passed. */
  checkDeadline(now: number): void {
    if (now < this.deadline) return;
    switch (this.waitKind) {
      case Wait.Header:
        this.env.stats.headerTimeouts++;
        this.sendAndClose(errorResponse(408, false, this.env.dates.dateLine(now)));
        break;
      case Wait.Idle:
        this.env.stats.idleTimeouts++;
        this.closeGracefully();
        break;
      case Wait.Send:
        this.env.stats.sendTimeouts++;
        this.conn.destroy();
        break;
      case Wait.Linger: {
        // The client's linger time runs from when our bytes are out; while they still drain
        // through a slow link, only a client that stops taking them for the send timeout is cut.
        const queued = this.conn.writableLength;
        if (queued > 0) {
          if (queued < this.lingerQueued) {
            this.lingerQueued = queued;
            this.lingerProgressAt = now;
          }
          if (now - this.lingerProgressAt < this.env.timeouts.sendMs) {
            this.deadline = now + this.env.timeouts.lingerMs / 4;
            break;
          }
          this.env.stats.sendTimeouts++;
        } else if (this.lingerQueued > 0) {
          this.lingerQueued = 0; // just drained: the linger starts now
          this.deadline = now + this.env.timeouts.lingerMs;
          break;
        }
        this.conn.destroy();
        break;
      }
    }
  }

  /** Server shutdown: close now if nothing is in flight, else after the current response. */
  drain(): void {
    if (!this.busy && !this.blocked && !this.parser.midMessage) this.closeGracefully();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closing) return;
    this.parser.feed(chunk);
    this.pump();
  };

  private readonly onEnd = (): void => {
    this.readEnded = true;
    if (this.closing) this.conn.destroy();
    else this.pump();
  };

  private readonly onDrain = (): void => {
    this.blocked = false;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
    this.pump();
  };

  private readonly onError = (err: Error): void => {
    this.env.log.debug({ conn: this.id, err: err.message }, "connection error");
  };

  private readonly onClose = (): void => {
    this.closing = true;
    this.deadline = Infinity;
    this.env.stats.connectionsOpen--;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
    this.env.connectionClosed(this);
  };

  /** Handles every complete request it can, in order, until one has to wait. */
  private pump(): void {
    if (this.closing || this.conn.destroyed) return;
    let handled = false;
    while (!this.busy && !this.blocked) {
      const m = this.parser.next();
      if (m === null) break;
      handled = true;
      if (m instanceof ParseError) {
        this.env.log.debug({ conn: this.id, status: m.status, reason: m.reason }, "bad request");
        this.sendAndClose(errorResponse(m.status, false, this.env.dates.dateLine(Date.now())));
        return;
      }
      this.handle(m);
      if (this.closing) return;
    }
    if (!this.busy && !this.blocked) {
      // Client finished sending (a partial request at EOF is dropped), or shutdown: close.
      if (this.readEnded || (this.env.draining && !this.parser.midMessage)) {
        this.closeGracefully();
        return;
      }
    }
    this.flow();
    if (handled) this.waitKind = Wait.None; // activity: restart the idle/header clock
    this.updateDeadline(Date.now());
  }

  private handle(req: HttpRequest): void {
    if (this.env.requests != null) {
      this.current = { req, startMs: Date.now(), startedAt: performance.now(), clone: null };
    }
    let d: Decision | Promise<Decision>;
    try {
      d = this.env.mode.decide(req, this);
    } catch (err) {
      this.modeFailed(err);
      return;
    }
    if (d instanceof Promise) {
      this.busy = true;
      d.then(
        (settled) => {
          this.busy = false;
          if (this.closing || this.conn.destroyed) {
            // A clone may have answered it before the client went away.
            if (settled === "done") this.modeDone();
            else this.abandoned();
            return;
          }
          this.apply(req, settled);
          this.pump();
        },
        (err: unknown) => {
          this.busy = false;
          this.modeFailed(err);
        },
      );
      return;
    }
    this.apply(req, d);
  }

  private apply(req: HttpRequest, d: Decision): void {
    if (d === "serve") this.serve(req);
    else if (d === "done") {
      this.modeDone();
      this.env.stats.modeHandled++;
      if (!req.keepAlive || this.env.draining) this.closeGracefully();
    } else {
      this.send(this.env.responder.respondWithDoc(req, d.doc, this.keepAlive(req), Date.now()));
    }
  }

  /** Logs a request the mode answered: where its clone served it, or 499 if nothing was sent. */
  private modeDone(): void {
    const c = this.current?.clone;
    if (c == null) this.abandoned();
    else this.completed(c.status, c.length, c.headLength, c.node);
  }

  private modeFailed(err: unknown): void {
    this.env.log.error({ conn: this.id, mode: this.env.mode.name, err: String(err) }, "mode failed");
    if (!this.closing && !this.conn.destroyed) {
      this.sendAndClose(errorResponse(500, false, this.env.dates.dateLine(Date.now())));
    }
  }

  private keepAlive(req: HttpRequest): boolean {
    return req.keepAlive && !this.env.draining;
  }

  private serve(req: HttpRequest): void {
    let r: PreparedResponse | Promise<PreparedResponse>;
    try {
      r = this.env.responder.respond(req, this.keepAlive(req), Date.now());
    } catch (err) {
      // A bug must cost this request, not the process.
      this.env.log.error({ conn: this.id, path: req.path, err: String(err) }, "responder failed");
      this.sendAndClose(errorResponse(500, false, this.env.dates.dateLine(Date.now())));
      return;
    }
    if (!(r instanceof Promise)) {
      this.send(r);
      return;
    }
    this.busy = true;
    r.then(
      (resp) => {
        this.busy = false;
        if (this.closing || this.conn.destroyed) {
          this.abandoned();
          return;
        }
        this.send(resp);
        this.pump();
      },
      (err: unknown) => {
        this.busy = false;
        this.modeFailed(err);
      },
    );
  }

  private sendAndClose(resp: PreparedResponse): void {
    this.send(resp);
    this.closeGracefully();
  }

  private send(resp: PreparedResponse): void {
    const conn = this.conn;
    this.env.stats.countResponse(resp.status, resp.length);
    let ok: boolean;
    const body = resp.body;
    if (body === null) ok = conn.write(resp.head);
    else if (adjacent(resp.head, body)) {
      // One buffer already (http/response.ts WHOLE_MAX): written as it is, nothing copied.
      ok = conn.write(Buffer.from(body.buffer, resp.head.byteOffset, resp.head.length + body.length));
    } else if (body.length <= COALESCE_MAX) {
      const buf = Buffer.allocUnsafe(resp.head.length + body.length);
      resp.head.copy(buf, 0);
      body.copy(buf, resp.head.length);
      ok = conn.write(buf);
    } else {
      conn.cork?.();
      conn.write(resp.head);
      ok = conn.write(body);
      conn.uncork?.();
    }
    if (!ok) this.blocked = true;
    if (resp.stream === null) this.completed(resp.status, resp.length, resp.head.length);
    else {
      this.busy = true;
      void this.streamBody(resp);
      return;
    }
    if (resp.close) this.closeGracefully();
  }

  /** Sends a document that is not in memory, chunk by chunk, honouring backpressure. */
  private async streamBody(resp: PreparedResponse): Promise<void> {
    const { doc, start, end } = resp.stream!;
    let sent = resp.head.length;
    try {
      for await (const chunk of doc.read!(start, end)) {
        if (this.conn.destroyed) {
          this.completed(resp.status, sent, resp.head.length);
          return;
        }
        sent += chunk.length;
        if (!this.conn.write(chunk)) {
          this.blocked = true;
          this.updateDeadline(Date.now());
          await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
        }
      }
    } catch (err) {
      // Headers are gone already: the only honest signal left is to reset the connection.
      this.env.stats.aborted++;
      this.env.log.warn({ conn: this.id, path: doc.key, err: String(err) }, "body stream failed");
      this.completed(resp.status, sent, resp.head.length);
      this.conn.destroy();
      return;
    }
    this.completed(resp.status, sent, resp.head.length);
    this.busy = false;
    if (resp.close) this.closeGracefully();
    else this.pump();
  }

  /** Sends FIN once queued bytes are out; input from then on is discarded. */
  private closeGracefully(): void {
    if (this.closing) return;
    this.closing = true;
    this.conn.end();
    if (this.paused) {
      this.paused = false;
      this.conn.resume(); // keep reading so the client's FIN (or RST) is seen
    }
    this.waitKind = Wait.Linger;
    const now = Date.now();
    this.lingerQueued = this.conn.writableLength;
    this.lingerProgressAt = now;
    this.deadline = now + this.env.timeouts.lingerMs;
  }

  private flow(): void {
    const pause = this.blocked || (this.busy && this.parser.buffered > MAX_BUFFERED);
    if (pause === this.paused) return;
    this.paused = pause;
    if (pause) this.conn.pause();
    else this.conn.resume();
  }

  private updateDeadline(now: number): void {
    if (this.closing) return;
    const kind = this.blocked
      ? Wait.Send
      : this.busy
        ? Wait.None
        : this.parser.midMessage
          ? Wait.Header
          : Wait.Idle;
    if (kind === this.waitKind) return; // keep the clock from when this wait began
    this.waitKind = kind;
    const t = this.env.timeouts;
    this.deadline =
      kind === Wait.Header
        ? now + t.headerMs
        : kind === Wait.Idle
          ? now + t.idleMs
          : kind === Wait.Send
            ? now + t.sendMs
            : Infinity;
  }
}
