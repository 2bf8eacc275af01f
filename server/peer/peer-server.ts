// The peer cache endpoint of a cooperative-caching node (protocol.ts): other nodes of the
// cluster fetch the documents this node is home for. It answers from the node's own DocStore,
// so a document it does not hold is loaded from the origin once (single-flight) and cached
// here, which makes this node its holder; and every peer request counts as a use in the
// cache's LRU/LFU ranking, as it must for the cluster-wide replacement to work.
//
// Raw node:http: a small, fixed protocol on the LAN between nodes, where the per-request cost
// matters (CF does it on most requests) and fastify would only add routing we do not need.
// It listens on the node's internal address only and drops connections from any address that
// is not a cluster member, so clients never reach it; each request must carry a member's
// authenticator (auth.ts) from that member's address, else 403 + x-sc-auth-error.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { DocStore } from "../store/doc-store.js";
import { encodePath, normalizePath } from "../http/url-path.js";
import type { Lookup } from "../source/source.js";
import type { Logger } from "../log.js";
import { H_AUTH_ERROR, H_FROM, H_KEY, H_MTIME, H_REDIRECT, STATUS_NOT_HELD } from "./protocol.js";
import { PEER_AUTH_FAILURES, type PeerAuth, type PeerAuthFailure } from "./auth.js";

export interface PeerServerOptions {
  host: string;
  port: number;
  store: DocStore;
  /** Remote addresses allowed to connect (the members' internal addresses); null: any. */
  allowed: ReadonlySet<string> | null;
  /** Checks each request's authenticator; null: none checked (--insecure-dev). */
  auth: PeerAuth | null;
  log: Logger;
  /** Wall clock, ms (the requests' timestamps are compared with it). */
  now?: () => number;
}

export class PeerServerStats {
  /** Peer requests answered with a document, by where it came from. */
  servedFromCache = 0;
  servedFromOrigin = 0;
  /** Body bytes sent to peers. */
  servedBytes = 0;
  /** Peer requests this node answered by loading from the origin (or joining such a load). */
  homeMisses = 0;
  /** Documents a peer asked for that are not held in memory here (413). */
  notHeld = 0;
  /** Other answers: redirects, 403/404, load failures, bad requests. */
  otherAnswers = 0;
  /** Connections dropped because they came from outside the cluster. */
  refused = 0;
  /** Requests refused (403) for their authenticator, by reason. */
  readonly authFailures: Record<PeerAuthFailure, number> = Object.fromEntries(
    PEER_AUTH_FAILURES.map((r) => [r, 0]),
  ) as Record<PeerAuthFailure, number>;
}

export class PeerServer {
  readonly stats = new PeerServerStats();
  private readonly server: Server;

  private constructor(private readonly opts: PeerServerOptions) {
    this.server = createServer(
      // Outlive the requesters' keep-alive (30 s) so they, not we, close idle connections:
      // a request is then never sent on a connection we are closing.
      { keepAliveTimeout: 65_000, headersTimeout: 10_000, requestTimeout: 60_000 },
      (req, res) => this.handle(req, res),
    );
    this.server.on("connection", (sock: Socket) => {
      sock.setNoDelay(true);
      if (opts.allowed !== null && !opts.allowed.has(sock.remoteAddress ?? "")) {
        this.stats.refused++;
        opts.log.warn({ remote: sock.remoteAddress }, "peer endpoint: connection from a non-member refused");
        sock.destroy();
      }
    });
    this.server.on("clientError", (_err, sock: Socket) => sock.destroy());
  }

  static async start(opts: PeerServerOptions): Promise<PeerServer> {
    const s = new PeerServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.server.once("error", reject);
      s.server.listen(opts.port, opts.host, () => {
        s.server.off("error", reject);
        resolve();
      });
    });
    return s;
  }

  get address(): { host: string; port: number } {
    const a = this.server.address();
    return typeof a === "object" && a !== null ? { host: a.address, port: a.port } : { host: "", port: 0 };
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    res.on("error", () => undefined);
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) return this.bare(res, 405);
    const url = req.url ?? "";
    if (this.opts.auth !== null) {
      const failure = this.opts.auth.verify(
        req.headers,
        req.method ?? "",
        url,
        req.socket.remoteAddress,
        (this.opts.now ?? Date.now)(),
      );
      if (failure !== null) return this.refuse(res, failure, req.socket.remoteAddress);
    }
    const q = url.indexOf("?");
    const norm = normalizePath(q === -1 ? url : url.slice(0, q));
    if (!norm.ok) return this.bare(res, 400);
    const found = this.opts.store.lookup(norm.path);
    if (!(found instanceof Promise)) {
      this.reply(res, found, true, head);
      return;
    }
    found.then(
      // From a worker's L1 miss the answer may still be from the node's memory (its shared cache).
      (r) => {
        const cached = r.kind === "doc" && r.cached === true;
        if (!cached) this.stats.homeMisses++;
        this.reply(res, r, cached, head);
      },
      () => this.bare(res, 500),
    );
  }

  private reply(res: ServerResponse, r: Lookup, fromCache: boolean, head: boolean): void {
    if (res.destroyed) return;
    if (r.kind === "redirect") {
      this.stats.otherAnswers++;
      res.writeHead(301, { "content-length": 0, [H_REDIRECT]: encodePath(r.path) });
      res.end();
      return;
    }
    if (r.kind === "error") return this.bare(res, r.status);
    const doc = r.doc;
    if (doc.body === null) {
      this.stats.notHeld++;
      return this.bare(res, STATUS_NOT_HELD);
    }
    if (fromCache) this.stats.servedFromCache++;
    else this.stats.servedFromOrigin++;
    res.writeHead(200, {
      "content-length": doc.size,
      "content-type": doc.contentType,
      etag: doc.etag,
      [H_MTIME]: String(doc.mtimeMs),
      [H_KEY]: encodePath(doc.key),
      [H_FROM]: fromCache ? "cache" : "origin",
    });
    if (head) res.end();
    else {
      this.stats.servedBytes += doc.size;
      res.end(doc.body);
    }
  }

  /** 403 for a request without a valid authenticator; the connection is closed after it. */
  private refuse(res: ServerResponse, failure: PeerAuthFailure, remote: string | undefined): void {
    // Logged once per reason (a flood must not flood the log); all are counted.
    if (this.stats.authFailures[failure]++ === 0)
      this.opts.log.warn(
        { remote, reason: failure },
        "peer endpoint: request refused for its authenticator (further ones are only counted: sc_cf_peer_auth_refused_total)",
      );
    res.writeHead(403, { "content-length": 0, [H_AUTH_ERROR]: failure, connection: "close" });
    res.end();
  }

  private bare(res: ServerResponse, status: number): void {
    if (res.destroyed) return;
    if (status !== STATUS_NOT_HELD) this.stats.otherAnswers++;
    res.writeHead(status, { "content-length": 0 });
    res.end();
  }
}
