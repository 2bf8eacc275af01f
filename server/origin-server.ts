// The origin file server (the paper's NFS server): fastify + @fastify/static over a directory.
// Nodes started with --origin fetch documents from it. Its validators match what nodes compute
// from the same files: a strong ETag "size-mtime" (see http/validators.ts) and Last-Modified,
// and Content-Type comes from the same MIME table.
import Fastify, { LogController } from "fastify";
import fastifyStatic from "@fastify/static";
import { contentTypeFor } from "./http/mime.js";
import type { Logger } from "./log.js";
import { checkRootDir, listenError } from "./errors.js";

export interface OriginOptions {
  root: string;
  host: string;
  port: number;
  logger: Logger;
}

export interface OriginServer {
  /** The bound address (port resolved when 0 was asked for). */
  address: { host: string; port: number };
  /** Requests received so far (every method and status). */
  readonly requests: number;
  close(): Promise<void>;
}

export async function startOrigin(opts: OriginOptions): Promise<OriginServer> {
  const root = await checkRootDir(opts.root);
  const app = Fastify({
    loggerInstance: opts.logger,
    logController: new LogController({ disableRequestLogging: true }),
    keepAliveTimeout: 60_000,
  });
  let requests = 0;
  app.addHook("onRequest", async () => {
    requests++;
  });
  await app.register(fastifyStatic, {
    root,
    prefix: "/",
    index: ["index.html"],
    redirect: true,
    dotfiles: "ignore",
    etag: true,
    lastModified: true,
    acceptRanges: true,
    cacheControl: false,
    wildcard: true,
  });
  app.addHook("onSend", async (request, reply, payload) => {
    const etag = reply.getHeader("etag");
    if (typeof etag === "string" && etag.startsWith('W/"')) reply.header("etag", etag.slice(2));
    if (reply.statusCode === 200 || reply.statusCode === 206) {
      const path = request.url.split("?")[0] ?? "/";
      reply.header("content-type", contentTypeFor(path.endsWith("/") ? path + "index.html" : path));
    }
    return payload;
  });
  try {
    await app.listen({ host: opts.host, port: opts.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw listenError(err, "the origin", opts.host, opts.port);
  }
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  return {
    address: { host: opts.host, port },
    get requests() {
      return requests;
    },
    close: () => app.close(),
  };
}
