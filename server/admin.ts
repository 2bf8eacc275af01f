// The control plane: fastify on its own address, never on the data path.
//   GET /healthz  200 {"status":"ok"} while serving, 503 {"status":"draining"} during shutdown
//   GET /stats    JSON snapshot: requests by code, bytes, connections, cache and source counters
//   GET /metrics  Prometheus text (prom-client, the node's own Registry)
import Fastify, { LogController } from "fastify";
import type { Registry } from "prom-client";
import type { Logger } from "./log.js";
import { listenError } from "./errors.js";

export interface AdminOptions {
  host: string;
  port: number;
  logger: Logger;
  registry: Registry;
  stats: () => unknown;
  healthy: () => boolean;
}

export interface AdminServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startAdmin(opts: AdminOptions): Promise<AdminServer> {
  const app = Fastify({
    loggerInstance: opts.logger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.get("/healthz", async (_req, reply) => {
    const ok = opts.healthy();
    return reply.code(ok ? 200 : 503).send({ status: ok ? "ok" : "draining" });
  });
  app.get("/stats", async () => opts.stats());
  app.get("/metrics", async (_req, reply) => {
    const text = await opts.registry.metrics();
    return reply.type(opts.registry.contentType).send(text);
  });
  try {
    await app.listen({ host: opts.host, port: opts.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw listenError(err, "the admin server", opts.host, opts.port);
  }
  const addr = app.server.address();
  return {
    address: { host: opts.host, port: typeof addr === "object" && addr ? addr.port : opts.port },
    close: () => app.close(),
  };
}
