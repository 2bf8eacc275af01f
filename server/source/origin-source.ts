// Documents from an origin server over HTTP (--origin URL), the analogue of the paper's NFS
// mount. An undici Pool keeps a bounded set of keep-alive connections with connect, header and
// body timeouts. Bodies are read whole, up to maxObjectBytes.
//
// Validators: a strong ETag from the origin is passed through (our own origin sends the same
// "size-mtime" tag a --root node computes); a weak or missing one is replaced by a strong tag
// over the content (SHA-1), so ranges and If-Range keep working. Last-Modified is passed through
// (now, if the origin sends none). Content-Type comes from our MIME table, like a --root node.
//
// Status mapping: origin 404/410 -> 404, 403 -> 403, a 301/308 to the directory form -> our
// redirect; any other origin status, an oversized object, a refused or reset connection -> 502;
// a connect/header/body timeout -> 504.
import { createHash } from "node:crypto";
import { Pool, errors } from "undici";
import { makeDoc, type Doc } from "../http/doc.js";
import { contentTypeFor } from "../http/mime.js";
import { encodePath } from "../http/url-path.js";
import { httpDate, parseHttpDate } from "../http/validators.js";
import type { DocSource, Lookup } from "./source.js";

export interface OriginSourceOptions {
  /** http://host:port[/prefix] */
  url: string;
  connections: number;
  /** Connect, response-header and body-idle timeout (ms). */
  timeoutMs: number;
  maxObjectBytes: number;
  /** Clock for documents without Last-Modified. */
  now?: () => number;
}

export class OriginSource implements DocSource {
  private readonly pool: Pool;
  private readonly prefix: string;
  private requests = 0;
  private fetchedBytes = 0;
  private failures = 0;
  private timeouts = 0;
  /** Conditional requests answered 304. */
  private notModified = 0;
  /** The validators the origin sent with each document (dropped with the document). */
  private readonly validators = new WeakMap<Doc, Record<string, string>>();

  constructor(private readonly opts: OriginSourceOptions) {
    const u = new URL(opts.url);
    if (u.protocol !== "http:") throw new Error(`--origin must be an http:// URL, got '${opts.url}'`);
    this.prefix = u.pathname.replace(/\/+$/, "");
    this.pool = new Pool(u.origin, {
      connections: opts.connections,
      pipelining: 1,
      connectTimeout: opts.timeoutMs,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  get describe(): string {
    return `origin ${this.opts.url}`;
  }

  async load(path: string): Promise<Lookup> {
    const r = await this.get(path, undefined);
    return r.kind === "unchanged" ? this.fail(502, "origin answered 304 to an unconditional request") : r;
  }

  /** A conditional GET with the validators the origin gave for `doc` (If-None-Match, else If-Modified-Since). */
  revalidate(path: string, doc: Doc): Promise<Lookup | { kind: "unchanged" }> {
    return this.get(path, doc);
  }

  private async get(path: string, cond: Doc | undefined): Promise<Lookup | { kind: "unchanged" }> {
    const reqPath = this.prefix + encodePath(path);
    this.requests++;
    const validators = cond === undefined ? undefined : this.validators.get(cond);
    try {
      const res = await this.pool.request({
        method: "GET",
        path: reqPath,
        headers: { "user-agent": "sc-cluster", ...validators },
      });
      const status = res.statusCode;
      if (status !== 200) {
        const location = res.headers.location;
        await res.body.dump();
        if (status === 304 && validators !== undefined) {
          this.notModified++;
          return { kind: "unchanged" };
        }
        if (status === 404 || status === 410)
          return { kind: "error", status: 404, reason: `origin ${status}` };
        if (status === 403) return { kind: "error", status: 403, reason: "origin 403" };
        if ((status === 301 || status === 308) && typeof location === "string") {
          const target = location.split("?")[0];
          if (!path.endsWith("/") && target === reqPath + "/") return { kind: "redirect", path: `${path}/` };
        }
        return this.fail(502, `origin answered ${status}`);
      }
      const declared = Number(res.headers["content-length"] ?? NaN);
      if (declared > this.opts.maxObjectBytes) {
        res.body.destroy();
        return this.fail(502, `object larger than ${this.opts.maxObjectBytes} bytes`);
      }
      const parts: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > this.opts.maxObjectBytes) {
          res.body.destroy();
          return this.fail(502, `object larger than ${this.opts.maxObjectBytes} bytes`);
        }
        parts.push(chunk as Buffer);
      }
      const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
      this.fetchedBytes += size;
      const etagHdr = res.headers.etag;
      const etag =
        typeof etagHdr === "string" && /^"[\x21\x23-\x7e]*"$/.test(etagHdr)
          ? etagHdr
          : `"${createHash("sha1").update(body).digest("base64url")}"`;
      const lm = parseHttpDate(String(res.headers["last-modified"] ?? ""));
      const key = path.endsWith("/") ? `${path}index.html` : path;
      const doc = makeDoc({
        key,
        size,
        mtimeMs: Number.isNaN(lm) ? (this.opts.now ?? Date.now)() : lm,
        etag,
        contentType: contentTypeFor(key),
        body,
      });
      // The origin's own validators, for revalidation (ours may be a tag we made).
      if (typeof etagHdr === "string" && etagHdr.length <= 256)
        this.validators.set(doc, { "if-none-match": etagHdr });
      else if (!Number.isNaN(lm)) this.validators.set(doc, { "if-modified-since": httpDate(lm) });
      return { kind: "doc", doc };
    } catch (err) {
      if (
        err instanceof errors.ConnectTimeoutError ||
        err instanceof errors.HeadersTimeoutError ||
        err instanceof errors.BodyTimeoutError
      ) {
        this.timeouts++;
        return this.fail(504, (err as Error).message);
      }
      return this.fail(502, (err as Error).message);
    }
  }

  private fail(status: 502 | 504, reason: string): Lookup {
    this.failures++;
    return { kind: "error", status, reason };
  }

  stats(): Record<string, number> {
    return {
      requests: this.requests,
      fetchedBytes: this.fetchedBytes,
      failures: this.failures,
      timeouts: this.timeouts,
      notModified: this.notModified,
    };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
