// Turns a parsed request into a prepared response for a document from the store: method and
// path checks, cache/source lookup, the choice of representation (http/encoding.ts), then the
// pure response logic of http/response.ts. Writing is the connection's job, so a mode (e.g.
// Socket Cloning's receiving node) can prepare a response, learn its exact length, and write it
// wherever it must go.
import type { HttpRequest } from "../http/parser.js";
import {
  docResponse,
  errorResponse,
  notFoundPageResponse,
  redirectResponse,
  WholeResponses,
  type PreparedResponse,
} from "../http/response.js";
import { KNOWN_METHODS } from "../http/status.js";
import { encodePath, normalizePath } from "../http/url-path.js";
import { selectRepresentation } from "../http/encoding.js";
import type { CacheRules } from "../http/cache-rules.js";
import type { DateCache } from "../http/date.js";
import type { DocStore } from "./doc-store.js";
import type { Lookup } from "../source/source.js";
import type { Doc } from "../http/doc.js";

const ALLOW = "Allow: GET, HEAD\r\n";

/** What an operator configures about responses (same on every node of a cluster). */
export interface ResponsePolicy {
  /** Cache-Control / Expires per path pattern. */
  cacheRules?: CacheRules;
  /** Normalised path of the page sent with every 404 (e.g. "/404.html"). */
  notFoundPage?: string;
}

export class Responder {
  private readonly whole = new WholeResponses();

  constructor(
    readonly store: DocStore,
    private readonly dates: DateCache,
    private policy: ResponsePolicy = {},
  ) {}

  /** New Cache-Control rules (SIGHUP); responses prepared from now on follow them. */
  setCacheRules(rules: CacheRules | undefined): void {
    const { cacheRules: _old, ...rest } = this.policy;
    this.policy = rules === undefined ? rest : { ...rest, cacheRules: rules };
  }

  /** The response for `req`; synchronous when the document is cached (the fast path). */
  respond(req: HttpRequest, keepAlive: boolean, nowMs: number): PreparedResponse | Promise<PreparedResponse> {
    const isHead = req.method === "HEAD";
    if (req.method !== "GET" && !isHead) {
      const status = KNOWN_METHODS.has(req.method) ? 405 : 501;
      // CONNECT would turn the connection into a tunnel: never continue on it.
      return errorResponse(status, keepAlive && req.method !== "CONNECT", this.dates.dateLine(nowMs), ALLOW);
    }
    const norm = normalizePath(req.path);
    if (!norm.ok) {
      if (norm.status === 404) return this.notFound(req, keepAlive, nowMs);
      return errorResponse(norm.status, keepAlive, this.dates.dateLine(nowMs), "", isHead);
    }
    const found = this.store.lookup(norm.path);
    if (!(found instanceof Promise)) return this.fromLookup(req, found, keepAlive, nowMs);
    return found.then((r) => this.fromLookup(req, r, keepAlive, Date.now()));
  }

  /** The response for a document obtained elsewhere (e.g. a peer's cache), with the usual rules. */
  respondWithDoc(req: HttpRequest, doc: Doc, keepAlive: boolean, nowMs: number): PreparedResponse {
    const rep = selectRepresentation(req, doc);
    const extra = this.policy.cacheRules?.linesFor(doc.key, nowMs) ?? null;
    return docResponse(req, rep, keepAlive, this.dates.dateLine(nowMs), extra, this.whole);
  }

  private fromLookup(
    req: HttpRequest,
    r: Lookup,
    keepAlive: boolean,
    nowMs: number,
  ): PreparedResponse | Promise<PreparedResponse> {
    const date = this.dates.dateLine(nowMs);
    switch (r.kind) {
      case "doc":
        return this.respondWithDoc(req, r.doc, keepAlive, nowMs);
      case "redirect":
        return redirectResponse(301, encodePath(r.path) + req.query, keepAlive, date, req.method === "HEAD");
      case "error":
        if (r.status === 404) return this.notFound(req, keepAlive, nowMs);
        return errorResponse(r.status, keepAlive, date, "", req.method === "HEAD");
    }
  }

  /** 404 with the configured page when there is one (and it loads), else the plain 404. */
  private notFound(
    req: HttpRequest,
    keepAlive: boolean,
    nowMs: number,
  ): PreparedResponse | Promise<PreparedResponse> {
    const isHead = req.method === "HEAD";
    const pagePath = this.policy.notFoundPage;
    const plain = () => errorResponse(404, keepAlive, this.dates.dateLine(nowMs), "", isHead);
    if (pagePath === undefined) return plain();
    const page = (r: Lookup): PreparedResponse => {
      if (r.kind !== "doc" || r.doc.body === null) return plain();
      return notFoundPageResponse(
        r.doc as Doc & { body: Buffer },
        keepAlive,
        this.dates.dateLine(nowMs),
        isHead,
      );
    };
    const found = this.store.lookup(pagePath);
    return found instanceof Promise ? found.then(page) : page(found);
  }
}
