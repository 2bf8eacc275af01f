// The control plane: fastify on its own address, never on the data path.
//   GET /healthz  200 {"status":"ok"} while serving, 503 {"status":"draining"} during shutdown
//   GET /stats    JSON snapshot: requests by code, bytes, connections, cache and source counters
//   GET /metrics  Prometheus text (prom-client, the node's own Registry)
//   POST /purge   {"url"|"prefix": PATH} or {"all": true}: drop cached documents on every member
//                 (server/node/purge.ts); the one change, so it needs the bearer token
// Every request passes the AdminGuard (sc/auth/admin-access.ts): a Host that names this server
// (421 otherwise), and for any change a bearer token.
import Fastify, { LogController } from "fastify";
import { Counter, type Registry } from "prom-client";
import type { Logger } from "../log.js";
import { listenError } from "../errors.js";
import { PURGE_BODY_SCHEMA } from "./purge.js";
import {
  ADMIN_REFUSAL_REASONS,
  AdminGuard,
  adminAuthFrom,
  type AdminEndpoint,
} from "../../sc/auth/admin-access.js";
import type { ClusterTrust } from "../../sc/auth/secret.js";

export interface AdminOptions {
  host: string;
  port: number;
  logger: Logger;
  registry: Registry;
  guard: AdminGuard;
  stats: () => unknown;
  healthy: () => boolean;
  /** POST /purge: the checked body in, the answer out (server/node/purge.ts). */
  purge?: (body: unknown) => Promise<{ status: number; body: unknown }>;
}

export interface AdminServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startAdmin(opts: AdminOptions): Promise<AdminServer> {
  const app = Fastify({
    loggerInstance: opts.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 16 * 1024,
    // Reject unknown fields instead of silently dropping them (a typo must not pass).
    ajv: { customOptions: { removeAdditional: false } },
  });
  const guard = opts.guard;
  new Counter({
    name: "sc_admin_refused_total",
    help: "Admin API requests refused: host (Host header names another server), read_only (a change without any token configured), no_token, bad_token",
    labelNames: ["reason"],
    registers: [opts.registry],
    collect() {
      this.reset();
      for (const r of ADMIN_REFUSAL_REASONS) this.inc({ reason: r }, guard.refused[r]);
    },
  });
  app.addHook("onRequest", async (req, reply) => {
    const refusal = guard.check(req.method, req.headers);
    if (refusal !== null)
      return reply.code(refusal.status).headers(refusal.headers).send({ error: refusal.message });
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
  const purge = opts.purge;
  if (purge !== undefined) {
    app.post("/purge", { schema: { body: PURGE_BODY_SCHEMA } }, async (req, reply) => {
      const r = await purge(req.body);
      return reply.code(r.status).send(r.body);
    });
  }
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

/** What a node's admin API answers with (the guard and the server are made from the endpoint). */
export type AdminHandlers = Pick<AdminOptions, "stats" | "healthy" | "purge">;

/**
 * The admin API on `endpoint`, guarded by the endpoint's token or the cluster secret's admin
 * token (an open API is logged as a warning).
 */
export function startGuardedAdmin(
  endpoint: AdminEndpoint,
  trust: ClusterTrust | null,
  log: Logger,
  registry: Registry,
  handlers: AdminHandlers,
): Promise<AdminServer> {
  const guard = new AdminGuard(adminAuthFrom(trust, endpoint.token), [
    endpoint.host,
    ...(endpoint.names ?? []),
  ]);
  if (guard.auth.kind === "open") log.warn(guard.describe());
  else log.info(guard.describe());
  return startAdmin({ host: endpoint.host, port: endpoint.port, logger: log, registry, guard, ...handlers });
}
