// The origin file server (the paper's NFS server): fastify + @fastify/static over a directory.
// Nodes started with --origin fetch documents from it. Its validators match what nodes compute
// from the same files: a strong ETag "size-mtime" (see http/validators.ts) and Last-Modified,
// and Content-Type comes from the same MIME table.
//
// Which file a request path names is decided by http/url-path.ts, the same mapping the nodes use
// (decoded once, so "/a+b", "/a%2Bb" and "/a%2bb" are the file "a+b"; "..", encoded "/" and NUL
// refused in every spelling), not by @fastify/send, which decodes only some escapes.
// Symlinks are resolved here, not by @fastify/send (which follows them anywhere): the real path
// of every requested file must stay under the real root, as in the node's fs source, or the
// answer is 404. The file sent is the real path, so a link swapped after the check is not
// followed again (only a directory of the real path replaced in between could still be).
import { realpath } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import Fastify, { LogController, type FastifyReply, type FastifyRequest } from "fastify";
import fastifyStatic from "@fastify/static";
import { contentTypeFor } from "../server/http/mime.js";
import { normalizePath } from "../server/http/url-path.js";
import type { Logger } from "../server/log.js";
import { checkRootDir, listenError } from "../server/errors.js";

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
  const root = await realpath(await checkRootDir(opts.root));
  const app = Fastify({
    loggerInstance: opts.logger,
    logController: new LogController({ disableRequestLogging: true }),
    keepAliveTimeout: 60_000,
  });
  let requests = 0;
  app.addHook("onRequest", async () => {
    requests++;
  });
  // serve: false: only reply.sendFile; the route below decides which file it sends.
  await app.register(fastifyStatic, {
    root,
    serve: false,
    index: ["index.html"],
    redirect: true,
    dotfiles: "ignore",
    etag: true,
    lastModified: true,
    acceptRanges: true,
    cacheControl: false,
  });
  app.route({
    method: ["HEAD", "GET"],
    url: "/*",
    handler: (request, reply) => sendInsideRoot(root, request, reply),
  });
  app.addHook("onSend", async (request, reply, payload) => {
    const etag = reply.getHeader("etag");
    if (typeof etag === "string" && etag.startsWith('W/"')) reply.header("etag", etag.slice(2));
    if (reply.statusCode === 200 || reply.statusCode === 206) {
      const norm = normalizePath(pathOf(request.raw.url));
      const path = norm.ok ? norm.path : "/";
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

/**
 * Sends the file the request path names (http/url-path.ts, the nodes' own mapping) by its real
 * path, or 404 when that resolves outside `root` (a real path). A path the mapping refuses gets
 * its status (400 or 404) and nothing is opened.
 */
async function sendInsideRoot(
  root: string,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const norm = normalizePath(pathOf(request.raw.url));
  if (!norm.ok) {
    if (norm.status === 404) return notFound(reply);
    return reply.code(norm.status).send();
  }
  const lexical = join(root, norm.path);
  let real: string;
  try {
    real = await realpath(norm.path.endsWith("/") ? join(lexical, "index.html") : lexical);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "EACCES" || code === "EPERM" ? reply.code(403).send() : notFound(reply);
  }
  if (!inside(root, real)) return notFound(reply);
  // @fastify/static hands send encodeURI(name), which send decodes back to exactly this name.
  // A directory (no trailing slash) is redirected by send, from the request's URL.
  return reply.sendFile(relative(root, real) || ".");
}

/** The path part of a request-target. */
function pathOf(url: string | undefined): string {
  const u = url ?? "/";
  const q = u.indexOf("?");
  return q === -1 ? u : u.slice(0, q);
}

function notFound(reply: FastifyReply): FastifyReply {
  reply.callNotFound();
  return reply;
}

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root + sep);
}
