// HTTPS on a node: TLS termination in front of the HTTP server. OpenSSL (node:tls) does the
// handshake over any Conn (our user-space TcpSocket through a Duplex adapter, or a node:net
// socket); once it is done the TLSSocket is the Conn the HTTP server reads and writes, so the
// server never knows it is encrypted. TLS 1.3 and 1.2 are served (1.2 counted apart: only 1.3
// sessions can later be carried by our own record layer, sc/tls), ALPN says http/1.1, and the
// certificate can be swapped at run time (SIGHUP) without touching open connections.
import { readFile } from "node:fs/promises";
import { Duplex } from "node:stream";
import tls from "node:tls";
import { Counter, type Registry } from "prom-client";
import type { Conn, ConnListener } from "./conn.js";
import { UserError } from "../../common/errors.js";
import { TAKEOVER_FAILURES, TlsRecordConn, TlsTakeover, type TakeoverFailure } from "./tls-takeover.js";
import { TcpSocket } from "../../sc/tcp/socket.js";
import { fragmentForMss } from "../../sc/tls/sealed-stream.js";

export interface TlsFiles {
  /** PEM certificate chain (leaf first). */
  certFile: string;
  /** PEM private key of the leaf. */
  keyFile: string;
}

export interface TlsOptions extends TlsFiles {
  /** A handshake must finish within this long (ms), else the connection is reset. */
  handshakeTimeoutMs: number;
  /** Handshakes in progress at most; beyond, new connections are reset (counted as busy). */
  maxHandshakes: number;
  /**
   * TLS 1.3 connections are carried by our own record layer after the handshake
   * (server/transport/tls-takeover.ts) instead of OpenSSL's; TLS 1.2 stays with OpenSSL.
   */
  takeOver?: boolean;
}

export const TLS_VERSIONS = ["TLSv1.3", "TLSv1.2"] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];
export const TLS_FAILURE_REASONS = ["timeout", "closed", "protocol", "busy"] as const;
export type TlsFailureReason = (typeof TLS_FAILURE_REASONS)[number];

export interface TlsCounters {
  handshakes: Record<TlsVersion, number>;
  failures: Record<TlsFailureReason, number>;
  /** Handshakes in progress now. */
  pending: number;
  /** Certificates installed (the first one included). */
  certificateLoads: number;
  /** TLS 1.3 connections our record layer carries after the handshake. */
  takenOver: number;
  /** NewSessionTickets OpenSSL sent before those take-overs (found by decrypting them). */
  ticketsAccounted: number;
  /** Take-overs that failed, by reason (the connection was reset). */
  takeoverFailures: Record<TakeoverFailure, number>;
}

/** Reads the certificate and key and builds the context, or a UserError that says why not. */
export async function loadSecureContext(files: TlsFiles): Promise<tls.SecureContext> {
  let cert: Buffer;
  let key: Buffer;
  try {
    [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
  } catch (err) {
    throw new UserError(`cannot read the TLS certificate or key: ${(err as Error).message}`);
  }
  try {
    return tls.createSecureContext({
      cert,
      key,
      minVersion: "TLSv1.2",
      // ECDHE only (TLS 1.3 always is); forward secrecy for the 1.2 clients too.
      ciphers: "ECDHE+AESGCM:ECDHE+CHACHA20",
      honorCipherOrder: true,
    });
  } catch (err) {
    // OpenSSL's message names the problem (bad PEM, key does not match the certificate).
    throw new UserError(
      `TLS certificate ${files.certFile} / key ${files.keyFile}: ${(err as Error).message}`,
    );
  }
}

/**
 * node:tls wraps a stream.Duplex; our TcpSocket is an EventEmitter shaped like net.Socket.
 * This carries bytes both ways with backpressure: the socket pauses while the TLS layer's
 * buffer is full, and a write waits for 'drain' when the socket's queue is.
 */
export class ConnDuplex extends Duplex {
  private waitingWrite: ((err?: Error | null) => void) | null = null;
  /** The connection was taken away from the TLS layer (take-over): nothing passes any more. */
  private detached = false;
  /** Writes attempted after detach() (OpenSSL wrote something we did not account for). */
  lateWrites = 0;

  constructor(
    private readonly conn: Conn,
    /** Sees every raw byte both ways (the take-over's record tap). */
    private tap: { inbound(b: Buffer): void; outbound(b: Buffer): void } | null = null,
  ) {
    super({ allowHalfOpen: true });
    conn.on("data", this.onData);
    conn.on("end", this.onEnd);
    conn.on("drain", this.onDrain);
    conn.on("error", this.onError);
    conn.on("close", this.onClose);
  }

  /**
   * Takes the connection away from the TLS layer: its listeners are removed, what the TLS
   * layer writes from now on is dropped and counted, and destroying this Duplex leaves the
   * connection open.
   */
  detach(): void {
    this.detached = true;
    this.conn.removeListener("data", this.onData);
    this.conn.removeListener("end", this.onEnd);
    this.conn.removeListener("drain", this.onDrain);
    this.conn.removeListener("error", this.onError);
    this.conn.removeListener("close", this.onClose);
  }

  /** No more tapping (the connection stays with OpenSSL: TLS 1.2). */
  stopTap(): void {
    this.tap = null;
  }

  override _read(): void {
    if (!this.detached) this.conn.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.detached) {
      this.lateWrites++;
      cb(new Error("taken over"));
      return;
    }
    this.tap?.outbound(chunk);
    if (this.conn.destroyed) cb(new Error("connection closed"));
    else if (this.conn.write(chunk)) cb();
    else this.waitingWrite = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.detached) this.conn.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.releaseWrite(err ?? new Error("destroyed"));
    if (!this.detached && !this.conn.destroyed) this.conn.destroy();
    cb(err);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.tap?.inbound(chunk);
    if (!this.push(chunk)) this.conn.pause();
  };
  private readonly onEnd = (): void => {
    this.push(null);
  };
  private readonly onDrain = (): void => this.releaseWrite(null);
  private readonly onError = (err: Error): void => {
    this.destroy(err);
  };
  private readonly onClose = (): void => {
    this.releaseWrite(new Error("connection closed"));
    this.destroy();
  };

  private releaseWrite(err: Error | null): void {
    const cb = this.waitingWrite;
    this.waitingWrite = null;
    cb?.(err);
  }
}

/** The TLS terminator of a node: one secure context (swappable), counters, handshakes. */
export class TlsTermination {
  readonly counters: TlsCounters = {
    handshakes: { "TLSv1.3": 0, "TLSv1.2": 0 },
    failures: { timeout: 0, closed: 0, protocol: 0, busy: 0 },
    pending: 0,
    certificateLoads: 1,
    takenOver: 0,
    ticketsAccounted: 0,
    takeoverFailures: { no_secrets: 0, unsupported_suite: 0, bad_record: 0, late_write: 0, closed: 0 },
  };

  private constructor(
    private context: tls.SecureContext,
    private readonly opts: TlsOptions,
  ) {}

  static async create(opts: TlsOptions): Promise<TlsTermination> {
    return new TlsTermination(await loadSecureContext(opts), opts);
  }

  /**
   * Reads the certificate and key again (SIGHUP). New handshakes use them; open connections
   * keep theirs. A bad file throws a UserError and the old certificate stays.
   */
  async reload(files: TlsFiles = this.opts): Promise<void> {
    this.context = await loadSecureContext(files);
    this.counters.certificateLoads++;
  }

  /**
   * Runs the server handshake on `conn`; `onSecure` gets the TLS socket (a Conn) once it is
   * done. A failed, slow or surplus handshake resets the connection and is counted.
   */
  accept(conn: Conn, onSecure: (secure: Conn) => void): void {
    const c = this.counters;
    if (c.pending >= this.opts.maxHandshakes) {
      c.failures.busy++;
      conn.destroy();
      return;
    }
    c.pending++;
    const tap = this.opts.takeOver ? new TlsTakeover() : null;
    const duplex = new ConnDuplex(conn, tap);
    const secure = new tls.TLSSocket(duplex, {
      isServer: true,
      secureContext: this.context,
      ALPNProtocols: ["http/1.1"],
      requestCert: false,
    });
    // The TLS socket sits on a JS stream, so it does not know the peer: the access log does.
    Object.defineProperty(secure, "remoteAddress", { value: conn.remoteAddress });
    Object.defineProperty(secure, "remotePort", { value: conn.remotePort });
    if (tap !== null)
      secure.on("keylog", (line: Buffer) => {
        // The suite is known from the ServerHello on, before the first secret is reported.
        const suite = secure.getCipher()?.standardName;
        if (suite !== undefined) tap.setSuite(suite);
        tap.keylog(line);
      });
    let done = false;
    const finish = (failure: TlsFailureReason | null) => {
      if (done) return;
      done = true;
      c.pending--;
      clearTimeout(timer);
      secure.off("secure", onOk);
      secure.off("close", onClose);
      if (failure !== null) {
        c.failures[failure]++;
        tap?.wipe();
        secure.destroy();
        conn.destroy();
      }
    };
    const onOk = () => {
      const version = secure.getProtocol();
      if (version !== "TLSv1.3" && version !== "TLSv1.2") {
        finish("protocol");
        return;
      }
      finish(null);
      c.handshakes[version]++;
      if (tap === null) onSecure(secure);
      else if (version !== "TLSv1.3") {
        // OpenSSL keeps TLS 1.2: stop decrypting its records on the side.
        duplex.stopTap();
        tap.wipe();
        onSecure(secure);
      } else this.takeOver(conn, duplex, secure, tap, onSecure);
    };
    const onClose = () => finish("closed");
    // After the handshake the HTTP connection listens for errors; before it, they end it here.
    secure.on("error", () => finish("protocol"));
    secure.once("secure", onOk);
    secure.once("close", onClose);
    const timer = setTimeout(() => finish("timeout"), this.opts.handshakeTimeoutMs);
    timer.unref();
  }

  /**
   * After 'secure', OpenSSL still writes its NewSessionTickets (same tick); one turn of the
   * event loop later the tap has seen them, and our record layer takes over from there.
   */
  private takeOver(
    conn: Conn,
    duplex: ConnDuplex,
    secure: tls.TLSSocket,
    tap: TlsTakeover,
    onSecure: (c: Conn) => void,
  ): void {
    setImmediate(() => {
      const fail = (reason: TakeoverFailure) => {
        this.counters.takeoverFailures[reason]++;
        tap.wipe();
        secure.destroy();
        conn.destroy();
      };
      if (conn.destroyed) return fail("closed");
      // Records that fill whole segments (as a clone's: sc/tls/sealed-stream.ts), on our stack.
      const s = tap.session(
        conn instanceof TcpSocket ? { maxFragment: fragmentForMss(conn.conn.snd.mss) } : {},
      );
      if (typeof s === "string") return fail(s);
      duplex.detach();
      secure.destroy(); // no close_notify: the session goes on in our record layer
      tap.wipe();
      if (duplex.lateWrites > 0) {
        s.session.wipe();
        return fail("late_write");
      }
      this.counters.takenOver++;
      this.counters.ticketsAccounted += s.ticketsSeen;
      // TlsRecordConn follows net.Socket's shape: a Conn (its EventEmitter typings are wider).
      onSecure(new TlsRecordConn(conn, s.session, s.early));
    });
  }

  /**
   * A listener that hands out connections once their handshake is done. It does not release the
   * transport (no dispose): on the user-space stack the plain HTTP listener beside it does.
   */
  listener(inner: ConnListener): ConnListener {
    return {
      address: inner.address,
      onConnection: (handler) => inner.onConnection((conn) => this.accept(conn, handler)),
      close: () => inner.close(),
    };
  }

  stats(): Record<string, unknown> {
    return {
      ...this.counters,
      handshakes: { ...this.counters.handshakes },
      failures: { ...this.counters.failures },
    };
  }
}

/** sc_tls_handshakes_total{version} and sc_tls_handshake_failures_total{reason}, read at scrape time. */
export function registerTlsMetrics(registry: Registry, term: TlsTermination): void {
  new Counter({
    name: "sc_tls_handshakes_total",
    help: "TLS handshakes completed, by protocol version (TLSv1.2 clients are served locally, never cloned)",
    labelNames: ["version"],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of TLS_VERSIONS) this.inc({ version: v }, term.counters.handshakes[v]);
    },
  });
  new Counter({
    name: "sc_tls_handshake_failures_total",
    help: "TLS handshakes that failed, by reason (timeout, closed: the client went away, protocol: refused by OpenSSL, busy: too many at once)",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of TLS_FAILURE_REASONS) this.inc({ reason: r }, term.counters.failures[r]);
    },
  });
  new Counter({
    name: "sc_tls_takeovers_total",
    help: "TLS 1.3 connections our own record layer carries after OpenSSL's handshake (--tls-record-layer own)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(term.counters.takenOver);
    },
  });
  new Counter({
    name: "sc_tls_takeover_failures_total",
    help: "Take-overs refused (connection reset), by reason (docs/tls.md)",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of TAKEOVER_FAILURES) this.inc({ reason: r }, term.counters.takeoverFailures[r]);
    },
  });
}
