// node:net-style sockets on top of TcpStack, so the HTTP server runs unchanged on this stack
// or on node:net. TcpSocket follows net.Socket where it costs nothing: 'connect', 'data'
// (Buffer), 'end', 'finish', 'drain', 'timeout', 'error', 'close'(hadError); write() with
// backpressure, end(), destroy(), pause()/resume(), setTimeout(), setNoDelay(),
// setKeepAlive(), address fields as dotted strings, bytesRead/bytesWritten, readyState.
// TcpServer follows net.Server: listen(), close(), address(), 'connection', 'listening',
// 'close'.
//
// Differences from node:net (documented in docs/tcp.md):
//  - write() keeps a reference to the Buffer it is given (no copy): do not modify it after.
//  - write callbacks run when the peer has ACKNOWLEDGED the bytes (node: when the kernel took
//    them). 'drain' comes when the unacknowledged + unsent bytes fall to half the high-water
//    mark, so a pipe never runs dry.
//  - A network error (ECONNRESET, ETIMEDOUT, ...) is emitted as 'error' only if the socket has
//    an 'error' listener; either way 'close' follows with hadError = true and `closeReason`.
//    (node:net would throw an unhandled 'error' and take the process down.)

import { EventEmitter } from "node:events";
import { StringDecoder } from "node:string_decoder";
import { type TcpConnection } from "./connection.js";
import {
  EV_ACKED,
  EV_CLOSED,
  EV_DATA,
  EV_ESTABLISHED,
  EV_FIN,
  EV_FINISHED,
  EV_TIMEOUT,
  type CloseReason,
} from "./types.js";
import type { ConnectionOwner, TcpListener, TcpStack } from "./stack.js";
import { ipv4ToString } from "../wire/addr.js";
import { TcpError } from "./errors.js";

export interface TcpSocketOptions {
  allowHalfOpen?: boolean;
  /** Bytes queued (unsent + unacknowledged) above which write() returns false. */
  highWaterMark?: number;
}

type WriteCallback = (err?: Error | null) => void;

interface PendingCallback {
  /** Total bytes written (since the start) that must be acknowledged first. */
  until: number;
  cb: WriteCallback;
}

const ERRORS: Partial<Record<CloseReason, [string, string]>> = {
  reset: ["ECONNRESET", "read ECONNRESET"],
  refused: ["ECONNREFUSED", "connect ECONNREFUSED"],
  timeout: ["ETIMEDOUT", "connection timed out"],
  "zero-window": ["ETIMEDOUT", "connection timed out (peer window closed too long)"],
};

function netError(reason: CloseReason, conn: TcpConnection): Error | undefined {
  const e = ERRORS[reason];
  if (e === undefined) return undefined;
  return new TcpError(`${e[1]} ${ipv4ToString(conn.remoteAddr)}:${conn.remotePort}`, e[0], {
    syscall: reason === "refused" ? "connect" : "read",
  });
}

export class TcpSocket extends EventEmitter implements ConnectionOwner {
  readonly stack: TcpStack;
  /** The state machine (for exportState and the cloning hooks). */
  readonly conn: TcpConnection;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily = "IPv4";
  readonly localAddress: string;
  readonly localPort: number;
  bytesRead = 0;
  bytesWritten = 0;
  /** Why the connection ended, once it has ('closed', 'reset', 'timeout', ...). */
  closeReason: CloseReason | undefined = undefined;
  readonly allowHalfOpen: boolean;
  readonly writableHighWaterMark: number;
  connecting: boolean;

  private flowing: boolean | null = null;
  /** Chunks taken from the connection (or given at import) and not yet emitted. */
  // Received chunks not yet emitted, consumed from readPos on: Array.shift() is O(n) past
  // ~16K elements in V8, and a client sending tiny segments to a paused reader queues that many.
  private readBuf: Buffer[] = [];
  private readPos = 0;
  private deliverScheduled = false;
  private delivering = false;
  private endEmitted = false;
  private writableEnded = false;
  private finishEmitted = false;
  private closeEmitted = false;
  private isDestroyed = false;
  private needDrain = false;
  private callbacks: PendingCallback[] = [];
  private decoder: StringDecoder | undefined = undefined;

  /** @internal Use TcpServer, connectTcp() or importState(). */
  constructor(stack: TcpStack, conn: TcpConnection, opts: TcpSocketOptions = {}) {
    super();
    this.stack = stack;
    this.conn = conn;
    conn.socket = this;
    this.remoteAddress = ipv4ToString(conn.remoteAddr);
    this.remotePort = conn.remotePort;
    this.localAddress = ipv4ToString(conn.localAddr);
    this.localPort = conn.localPort;
    this.allowHalfOpen = opts.allowHalfOpen ?? stack.cfg.allowHalfOpen;
    this.writableHighWaterMark = opts.highWaterMark ?? stack.cfg.sndBufSize;
    this.connecting = conn.state === "SYN-SENT";
    this.on("newListener", (event: string) => {
      if (event === "data" && this.flowing === null) this.resume();
    });
  }

  // ------------------------------------------------------------------ node:net surface

  get destroyed(): boolean {
    return this.isDestroyed;
  }

  get pending(): boolean {
    return this.connecting;
  }

  get readyState(): "opening" | "open" | "readOnly" | "writeOnly" | "closed" {
    if (this.connecting) return "opening";
    if (this.isDestroyed || this.closeEmitted) return "closed";
    const readable = !this.endEmitted;
    const writable = !this.writableEnded;
    if (readable && writable) return "open";
    if (readable) return "readOnly";
    if (writable) return "writeOnly";
    return "closed";
  }

  /** Bytes written and not yet acknowledged by the peer. */
  get writableLength(): number {
    return this.conn.txQueue.length;
  }

  get readableLength(): number {
    let n = this.conn.rxQueued;
    for (let i = this.readPos; i < this.readBuf.length; i++) n += this.readBuf[i]!.length;
    return n;
  }

  get writable(): boolean {
    return !this.isDestroyed && !this.writableEnded;
  }

  get readable(): boolean {
    return !this.isDestroyed && !this.endEmitted;
  }

  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: "IPv4", port: this.localPort };
  }

  write(data: Uint8Array | string, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): boolean {
    if (typeof encoding === "function") {
      cb = encoding;
      encoding = undefined;
    }
    if (this.isDestroyed || this.writableEnded) {
      const err = Object.assign(
        new Error(this.isDestroyed ? "This socket has been destroyed" : "write after end"),
        {
          code: this.isDestroyed ? "ERR_STREAM_DESTROYED" : "ERR_STREAM_WRITE_AFTER_END",
        },
      );
      queueMicrotask(() => {
        cb?.(err);
        if (this.listenerCount("error") > 0) this.emit("error", err);
      });
      return false;
    }
    const buf = typeof data === "string" ? Buffer.from(data, encoding) : data;
    if (buf.length > 0) {
      this.conn.send(buf, this.stack.now());
      this.bytesWritten += buf.length;
      this.stack.touch(this.conn);
    }
    if (cb !== undefined) {
      if (buf.length === 0 && this.conn.txQueue.length === 0) queueMicrotask(() => cb!(null));
      else this.callbacks.push({ until: this.bytesWritten, cb });
    }
    const ok = this.writableLength < this.writableHighWaterMark;
    if (!ok) this.needDrain = true;
    return ok;
  }

  /**
   * Sends FIN after everything queued (a clone with dropWhenAcked but not finWithLastSegment
   * vanishes instead; on an original whose FIN is delegated to its clone it sends nothing).
   */
  end(
    data?: Uint8Array | string | (() => void),
    encoding?: BufferEncoding | (() => void),
    cb?: () => void,
  ): this {
    if (typeof data === "function") {
      cb = data;
      data = undefined;
    } else if (typeof encoding === "function") {
      cb = encoding;
      encoding = undefined;
    }
    if (data !== undefined && !this.writableEnded && !this.isDestroyed) this.write(data, encoding);
    if (cb !== undefined) this.once("finish", cb);
    if (this.writableEnded || this.isDestroyed) return this;
    this.writableEnded = true;
    this.conn.close(this.stack.now());
    this.stack.touch(this.conn);
    this.onConnectionEvents(this.conn);
    // A delegated FIN may have been acknowledged before the application ended its side.
    if (this.conn.finAcknowledged) this.emitFinish();
    return this;
  }

  /** Aborts the connection with RST (nothing for a connection that never got established). */
  destroy(err?: Error): this {
    if (this.isDestroyed) return this;
    this.isDestroyed = true;
    this.connecting = false;
    // Both FINs are out in CLOSING, LAST-ACK and TIME-WAIT: an abort sends no RST there (RFC
    // 9293 3.10.5), and the stack lets the handshake finish by itself, as Linux does for an
    // orphaned socket, so the peer's last ACK finds the connection instead of drawing a RST.
    if (!this.conn.isClosed() && !this.conn.bothFinsSent) {
      this.conn.abort();
      this.stack.touch(this.conn);
    }
    this.closeReason ??= "aborted";
    this.failCallbacks(() => err ?? new Error("socket destroyed"));
    queueMicrotask(() => {
      if (err !== undefined && this.listenerCount("error") > 0) this.emit("error", err);
      this.emitClose(err !== undefined);
    });
    return this;
  }

  /** node:net destroySoon(): end(), then destroy once finished. */
  destroySoon(): void {
    this.end();
    if (this.finishEmitted) this.destroy();
    else this.once("finish", () => this.destroy());
  }

  /**
   * Socket Cloning: remove this connection with no FIN and no RST (a clone's job is done).
   * 'close' follows with closeReason 'dropped'.
   */
  dropSilently(): void {
    if (this.conn.isClosed()) return;
    this.conn.dropSilently();
    this.stack.touch(this.conn);
    this.onConnectionEvents(this.conn);
  }

  /**
   * Socket Cloning, FIN delegation on the ORIGINAL in shadow mode (see
   * TcpConnection.delegateFin): the clone sends this connection's FIN at `finSeq` (the response
   * end) with its last segment. Afterwards end() sends no FIN of its own ('finish' once the
   * client acknowledged the clone's FIN); write() still takes the rest of a resumed response,
   * which must end exactly at finSeq. Returns false when the FIN cannot be delegated (not in
   * shadow mode, already closing, or the client acknowledged beyond finSeq + 1).
   */
  delegateFin(finSeq: number): boolean {
    const ok = this.conn.delegateFin(finSeq, this.stack.now());
    this.stack.touch(this.conn);
    this.onConnectionEvents(this.conn);
    return ok;
  }

  /** True once this connection's FIN was delegated to a clone (delegateFin). */
  get finDelegated(): boolean {
    return this.conn.cloning.finDelegated;
  }

  /**
   * Socket Cloning, on the ORIGINAL while a clone answers: see TcpConnection.setShadow. In
   * shadow mode the connection emits nothing; leaving it sends an ACK if one is owed.
   * `ackedThrough`, when leaving: how far the client is known to have acknowledged (the
   * router's count), which the send state catches up to if the stack missed that ACK.
   */
  setShadow(on: boolean, ackedThrough?: number): this {
    this.conn.setShadow(on, this.stack.now(), ackedThrough);
    this.stack.touch(this.conn);
    if (ackedThrough !== undefined) this.onConnectionEvents(this.conn);
    return this;
  }

  pause(): this {
    this.flowing = false;
    return this;
  }

  resume(): this {
    this.flowing = true;
    this.scheduleDeliver();
    return this;
  }

  isPaused(): boolean {
    return this.flowing === false;
  }

  setTimeout(ms: number, cb?: () => void): this {
    this.conn.setIdleTimeout(ms, this.stack.now());
    this.stack.touch(this.conn);
    if (cb !== undefined) {
      if (ms === 0) this.removeListener("timeout", cb);
      else this.once("timeout", cb);
    }
    return this;
  }

  setNoDelay(noDelay = true): this {
    this.conn.opts.noDelay = noDelay;
    this.stack.touch(this.conn);
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    if (initialDelay > 0) this.conn.opts.keepAliveIdle = initialDelay;
    this.conn.setKeepAlive(enable, this.stack.now());
    this.stack.touch(this.conn);
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  /** node:net setEncoding: 'data' carries strings decoded with this encoding from now on. */
  setEncoding(encoding: BufferEncoding = "utf8"): this {
    this.decoder = new StringDecoder(encoding);
    return this;
  }

  /** No-ops: writes made in one tick already leave together (the flush is deferred). */
  cork(): void {}

  uncork(): void {}

  /** Async iteration over received chunks (ends at 'end', throws on 'error'). */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    const queue: Buffer[] = [];
    let done = false;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const onData = (b: Buffer): void => {
      queue.push(b);
      wake?.();
    };
    const onEnd = (): void => {
      done = true;
      wake?.();
    };
    const onError = (e: Error): void => {
      failure = e;
      done = true;
      wake?.();
    };
    this.on("data", onData);
    this.on("end", onEnd);
    this.on("close", onEnd);
    this.on("error", onError);
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift()!;
        if (failure !== undefined) throw failure;
        if (done) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      this.off("data", onData);
      this.off("end", onEnd);
      this.off("close", onEnd);
      this.off("error", onError);
    }
  }

  // ------------------------------------------------------------------ from the stack

  /** @internal Handles conn.events (called by the stack and after app calls). */
  onConnectionEvents(conn: TcpConnection): void {
    const ev = conn.events;
    conn.events = 0;
    if (ev & EV_ESTABLISHED && this.connecting) {
      this.connecting = false;
      this.emit("connect");
      this.emit("ready");
    }
    if (ev & EV_ACKED) this.onAcked();
    if (ev & (EV_DATA | EV_FIN) || (conn.peerFinForApp && !this.endEmitted)) this.scheduleDeliver();
    // (A delegated FIN can be acknowledged before the application called end().)
    if (ev & EV_FINISHED && this.writableEnded) this.emitFinish();
    if (ev & EV_TIMEOUT) this.emit("timeout");
    if (ev & EV_CLOSED) this.onClosed(conn.closeReason ?? "closed");
  }

  /** @internal Data to hand out before anything received (importState's synthetic request). */
  prependReceived(data: Uint8Array): void {
    if (data.length === 0) return;
    this.readBuf = [Buffer.isBuffer(data) ? data : Buffer.from(data), ...this.readBuf.slice(this.readPos)];
    this.readPos = 0;
    this.scheduleDeliver();
  }

  private onAcked(): void {
    const acked = this.bytesWritten - this.conn.txQueue.length;
    while (this.callbacks.length > 0 && this.callbacks[0].until <= acked) this.callbacks.shift()!.cb(null);
    if (this.needDrain && this.writableLength <= this.writableHighWaterMark / 2 && !this.isDestroyed) {
      this.needDrain = false;
      this.emit("drain");
    }
  }

  private emitFinish(): void {
    if (this.finishEmitted) return;
    this.finishEmitted = true;
    this.emit("finish");
  }

  private onClosed(reason: CloseReason): void {
    this.closeReason ??= reason;
    this.connecting = false;
    if (this.isDestroyed) return; // destroy() emits close itself
    this.isDestroyed = true;
    const err = netError(reason, this.conn);
    if (reason === "closed" || reason === "dropped") {
      this.onAcked();
      if (reason === "dropped" && this.writableEnded) this.emitFinish();
      // Deliver what is left, then 'end' (if the peer closed), then 'close'.
      this.flushReadable(true);
      this.failCallbacks(() => new Error("socket closed"));
      this.emitClose(false);
      return;
    }
    this.failCallbacks(() => err ?? new Error(`socket ${reason}`));
    if (err !== undefined && this.listenerCount("error") > 0) this.emit("error", err);
    this.emitClose(err !== undefined);
  }

  /** The error is made only when a write callback waits for it (a stack trace costs ~µs). */
  private failCallbacks(makeErr: () => Error): void {
    const cbs = this.callbacks;
    if (cbs.length === 0) return;
    this.callbacks = [];
    const err = makeErr();
    for (const c of cbs) c.cb(err);
  }

  private emitClose(hadError: boolean): void {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.emit("close", hadError);
  }

  private scheduleDeliver(): void {
    if (this.deliverScheduled || this.flowing !== true) return;
    this.deliverScheduled = true;
    queueMicrotask(() => {
      this.deliverScheduled = false;
      this.flushReadable(false);
    });
  }

  /** Emits buffered data while flowing; then 'end' once the peer's FIN was reached. */
  private flushReadable(closing: boolean): void {
    if (this.delivering) return;
    this.delivering = true;
    try {
      for (;;) {
        if (this.readPos === this.readBuf.length) {
          this.readBuf = [];
          this.readPos = 0;
          if (this.conn.rxQueued === 0) break;
          this.readBuf = this.conn.takeReceived(this.stack.now());
          this.stack.touch(this.conn); // a window update may be due
        }
        if (this.flowing !== true && !closing) return;
        if (this.flowing !== true) break;
        const chunk = this.readBuf[this.readPos++]!;
        this.bytesRead += chunk.length;
        if (this.decoder === undefined) this.emit("data", chunk);
        else {
          const text = this.decoder.write(chunk);
          if (text.length > 0) this.emit("data", text);
        }
      }
      if (
        this.conn.peerFinForApp &&
        !this.endEmitted &&
        this.readPos === this.readBuf.length &&
        this.conn.rxQueued === 0 &&
        (this.flowing === true || closing)
      ) {
        this.endEmitted = true;
        this.emit("end");
        if (!this.allowHalfOpen && !this.writableEnded && !this.isDestroyed) this.end();
      }
    } finally {
      this.delivering = false;
    }
  }
}

// ------------------------------------------------------------------ server

export interface TcpServerOptions extends TcpSocketOptions {
  /** Apply setNoDelay to accepted sockets (node:net option). */
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  /** Accepted sockets start paused (node:net option). */
  pauseOnConnect?: boolean;
}

export class TcpServer extends EventEmitter {
  readonly stack: TcpStack;
  private readonly opts: TcpServerOptions;
  private listener: TcpListener | undefined = undefined;
  private readonly sockets = new Set<TcpSocket>();
  private closing = false;
  private closeCallbacks: Array<(err?: Error) => void> = [];
  /** node:net maxConnections: accepted connections beyond it are reset. */
  maxConnections: number | undefined = undefined;

  constructor(stack: TcpStack, opts: TcpServerOptions = {}, connectionListener?: (s: TcpSocket) => void) {
    super();
    this.stack = stack;
    this.opts = opts;
    if (connectionListener !== undefined) this.on("connection", connectionListener);
  }

  get listening(): boolean {
    return this.listener !== undefined;
  }

  /** listen(port[, host][, cb]) or listen({ port, host }[, cb]). host defaults to any local address. */
  listen(
    port: number | { port: number; host?: string },
    host?: string | (() => void),
    cb?: () => void,
  ): this {
    let p: number;
    let h: string | undefined;
    if (typeof port === "object") {
      p = port.port;
      h = port.host;
      if (typeof host === "function") cb = host;
    } else {
      p = port;
      if (typeof host === "function") cb = host;
      else h = host;
    }
    if (h === "0.0.0.0" || h === "") h = undefined;
    this.listener = this.stack.listen(p, h, { accept: (conn) => this.accept(conn) });
    this.closing = false;
    if (cb !== undefined) this.once("listening", cb);
    queueMicrotask(() => this.emit("listening"));
    return this;
  }

  address(): { address: string; family: string; port: number } | null {
    const l = this.listener;
    if (l === undefined) return null;
    return { address: l.addr === 0 ? "0.0.0.0" : ipv4ToString(l.addr), family: "IPv4", port: l.port };
  }

  /** Stops accepting; 'close' is emitted once every accepted connection has closed. */
  close(cb?: (err?: Error) => void): this {
    if (this.listener === undefined) {
      const err = new TcpError("Server is not running.", "ERR_SERVER_NOT_RUNNING");
      if (cb !== undefined) queueMicrotask(() => cb(err));
      return this;
    }
    this.stack.unlisten(this.listener);
    this.listener = undefined;
    this.closing = true;
    if (cb !== undefined) this.closeCallbacks.push(cb);
    this.maybeClosed();
    return this;
  }

  getConnections(cb: (err: Error | null, count: number) => void): void {
    const n = this.sockets.size;
    queueMicrotask(() => cb(null, n));
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  private accept(conn: TcpConnection): TcpSocket {
    const s = new TcpSocket(this.stack, conn, this.opts);
    if (this.maxConnections !== undefined && this.sockets.size >= this.maxConnections) {
      s.destroy();
      return s;
    }
    this.sockets.add(s);
    s.once("close", () => {
      this.sockets.delete(s);
      this.maybeClosed();
    });
    if (this.opts.noDelay !== undefined) conn.opts.noDelay = this.opts.noDelay;
    if (this.opts.keepAlive) s.setKeepAlive(true, this.opts.keepAliveInitialDelay ?? 0);
    if (this.opts.pauseOnConnect) s.pause();
    this.emit("connection", s);
    return s;
  }

  private maybeClosed(): void {
    if (!this.closing || this.sockets.size > 0) return;
    this.closing = false;
    const cbs = this.closeCallbacks;
    this.closeCallbacks = [];
    queueMicrotask(() => {
      for (const cb of cbs) cb();
      this.emit("close");
    });
  }
}

export interface TcpConnectOptions extends TcpSocketOptions {
  host: string | number;
  port: number;
  localAddress?: string | number;
  localPort?: number;
  noDelay?: boolean;
}

/** Active open, node:net connect()-style: 'connect' is emitted once established. */
export function connectTcp(stack: TcpStack, opts: TcpConnectOptions, onConnect?: () => void): TcpSocket {
  // The SYN only goes out on the next flush, so no event can precede the socket's creation
  // (its constructor takes over as the connection's owner).
  const placeholder: ConnectionOwner = { onConnectionEvents: () => undefined };
  const conn = stack.connect(opts.host, opts.port, placeholder, opts.localAddress, opts.localPort);
  const socket = new TcpSocket(stack, conn, opts);
  if (opts.noDelay !== undefined) conn.opts.noDelay = opts.noDelay;
  if (onConnect !== undefined) socket.once("connect", onConnect);
  return socket;
}
