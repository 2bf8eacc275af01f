// The requesting side of cache forwarding: one link per peer, an undici Pool of keep-alive
// connections (bounded) to the peer's endpoint on its internal address. A fetch resolves when
// the peer's answer head is in; a document's body then keeps arriving into a FillingBody, so
// the caller can start replying before the last byte is here.
//
// Bounded in time: connect, answer head (counted from the moment the fetch is asked for, so
// waiting in the pool's queue counts too) and every gap between body chunks are limited to
// `timeoutMs`. A peer that refuses connections or cannot be connected to is skipped for
// `downMs`, so a dead node costs one failed connect per interval, not one per request.
import { Pool, type Dispatcher } from "undici";
import type { IncomingHttpHeaders } from "node:http";
import { encodePath } from "../http/url-path.js";
import { FillingBody } from "./filling-body.js";
import { H_NODE, readPeerAnswer, type PeerDocMeta } from "./protocol.js";
import type { PeerAuth } from "./auth.js";

export type PeerFailure =
  /** Skipped without trying: the peer failed to connect less than downMs ago. */
  | "down"
  /** Connection refused or unreachable. */
  | "refused"
  /** Connect, answer-head or body-gap timeout. */
  | "timeout"
  /** The connection failed before the answer head (reset, closed). */
  | "reset"
  /** The peer answered with a status that is neither a document nor authoritative. */
  | "status"
  /** A malformed answer (headers, length). */
  | "protocol"
  /** The peer refused our authenticator (another cluster secret, clocks apart). */
  | "auth"
  /** The body stopped short (connection lost mid-transfer). */
  | "aborted";

export const PEER_FAILURES: readonly PeerFailure[] = [
  "down",
  "refused",
  "timeout",
  "reset",
  "status",
  "protocol",
  "auth",
  "aborted",
];

export type PeerResult =
  | {
      kind: "doc";
      meta: PeerDocMeta;
      /** null for HEAD. */
      body: FillingBody | null;
      /** Settles when the body is complete (resolves) or has stopped short (rejects with a PeerError). */
      bodyDone: Promise<void>;
    }
  | { kind: "redirect"; path: string }
  | { kind: "error"; status: 403 | 404 }
  | { kind: "not-held" }
  | { kind: "failed"; reason: PeerFailure; detail: string };

export class PeerError extends Error {
  constructor(
    readonly reason: PeerFailure,
    message: string,
  ) {
    super(message);
    this.name = "PeerError";
  }
}

export interface PeerLinkOptions {
  /** This node's id (sent along: the peer checks it against membership and our address). */
  selfId: string;
  /** Signs each request (the cluster secret's peer-cache key); null: unsigned (--insecure-dev). */
  auth: PeerAuth | null;
  /** Internal address to connect from (so the peer recognises a member); null: any. */
  localAddress: string | null;
  connections: number;
  timeoutMs: number;
  downMs: number;
  /** Largest document accepted from a peer. */
  maxObjectBytes: number;
  /** Wall clock, ms: when a down peer is tried again, and the requests' timestamps. */
  now?: () => number;
}

const CONNECT_FAILURES = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL"]);

function classify(err: Error): PeerFailure {
  const code = (err as { code?: string }).code ?? "";
  if (CONNECT_FAILURES.has(code)) return "refused";
  if (code.endsWith("_TIMEOUT") || code === "ETIMEDOUT") return "timeout";
  if (code === "UND_ERR_RES_CONTENT_LENGTH_MISMATCH" || code.startsWith("HPE_")) return "protocol";
  return "reset";
}

export class PeerLink {
  private readonly pool: Pool;
  private readonly now: () => number;
  private downUntil = 0;
  /** Body bytes received from this peer. */
  bytes = 0;

  constructor(
    readonly peerId: string,
    readonly addr: string,
    readonly port: number,
    private readonly opts: PeerLinkOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.pool = new Pool(`http://${addr}:${port}`, {
      connections: opts.connections,
      pipelining: 1,
      connectTimeout: opts.timeoutMs,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      // Shorter than the endpoint's 65 s, so idle connections are closed from this side.
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 30_000,
      ...(opts.localAddress !== null ? { localAddress: opts.localAddress } : {}),
    });
  }

  /** The peer failed to connect recently: do not try it now. */
  get down(): boolean {
    return this.now() < this.downUntil;
  }

  /** Asks the peer for a document; resolves when its answer head has arrived (or on failure). */
  fetch(path: string, head: boolean): Promise<PeerResult> {
    if (this.down)
      return Promise.resolve({ kind: "failed", reason: "down", detail: `${this.peerId} is down` });
    return new Promise<PeerResult>((resolve) => {
      const handler = new PeerFetch(this, this.opts, head, resolve);
      const target = encodePath(path);
      const method = head ? "HEAD" : "GET";
      const auth = this.opts.auth;
      const headers =
        auth === null
          ? { [H_NODE]: this.opts.selfId }
          : auth.sign(this.opts.selfId, method, target, this.now());
      this.pool.dispatch({ path: target, method, headers }, handler);
    });
  }

  /** The peer answered: try it again at once after a failure. */
  reachable(): void {
    this.downUntil = 0;
  }

  /** The peer could not be connected to: skip it for downMs. */
  unreachable(): void {
    this.downUntil = this.now() + this.opts.downMs;
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}

/**
 * One fetch: undici's handler for it, the answer deadline (queueing in the pool included),
 * and the document's body as it fills. Resolves once: with the answer head, or a failure.
 */
class PeerFetch implements Dispatcher.DispatchHandler {
  private settled = false;
  private controller: Dispatcher.DispatchController | null = null;
  private body: FillingBody | null = null;
  private finishBody: (err?: PeerError) => void = () => undefined;
  private readonly deadline: NodeJS.Timeout;

  constructor(
    private readonly link: PeerLink,
    private readonly opts: PeerLinkOptions,
    private readonly head: boolean,
    private readonly resolve: (r: PeerResult) => void,
  ) {
    this.deadline = setTimeout(() => {
      this.fail("timeout", `no answer from ${link.peerId} within ${opts.timeoutMs} ms`);
      this.controller?.abort(new PeerError("timeout", "answer deadline"));
    }, opts.timeoutMs);
  }

  private settle(r: PeerResult): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.deadline);
    this.resolve(r);
  }

  private fail(reason: PeerFailure, detail: string, unreachable = false): void {
    if (unreachable) this.link.unreachable();
    this.settle({ kind: "failed", reason, detail });
  }

  onRequestStart(c: Dispatcher.DispatchController): void {
    this.controller = c;
    if (this.settled) c.abort(new PeerError("timeout", "answer deadline"));
  }

  onResponseStart(c: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    if (this.settled) return c.abort(new PeerError("timeout", "answer deadline"));
    if (status >= 100 && status < 200) return;
    this.link.reachable();
    const a = readPeerAnswer(status, headers, this.opts.maxObjectBytes);
    if (a.kind === "failed") {
      // A bad status comes with an empty body: let it end and keep the connection.
      if (a.reason === "protocol") c.abort(new PeerError(a.reason, a.detail));
      return this.fail(a.reason, a.detail);
    }
    if (a.kind !== "doc") return this.settle(a);
    if (this.head) return this.settle({ kind: "doc", meta: a.meta, body: null, bodyDone: Promise.resolve() });
    const body = (this.body = new FillingBody(a.meta.size));
    const bodyDone = new Promise<void>((res, rej) => {
      this.finishBody = (err) => (err ? rej(err) : res());
    });
    bodyDone.catch(() => undefined); // the caller may not be listening yet
    this.settle({ kind: "doc", meta: a.meta, body, bodyDone });
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    const body = this.body;
    if (body === null) return; // a non-document answer's (empty) body
    if (!body.append(chunk)) {
      c.abort(new PeerError("protocol", "more body than Content-Length"));
      return;
    }
    this.link.bytes += chunk.length;
  }

  onResponseEnd(): void {
    const body = this.body;
    if (body === null) return;
    if (body.complete) this.finishBody();
    else this.finishBody(new PeerError("protocol", `body ended at ${body.received} of ${body.size} bytes`));
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    const body = this.body;
    if (body !== null) {
      const reason =
        err instanceof PeerError ? err.reason : classify(err) === "timeout" ? "timeout" : "aborted";
      this.finishBody(
        new PeerError(
          reason,
          `body from ${this.link.peerId} stopped at ${body.received} of ${body.size} bytes: ${err.message}`,
        ),
      );
      return;
    }
    if (err instanceof PeerError) return this.fail(err.reason, err.message);
    const code = (err as { code?: string }).code;
    const reason = classify(err);
    this.fail(reason, err.message, reason === "refused" || code === "UND_ERR_CONNECT_TIMEOUT");
  }
}
