// The dispatcher's admin API (fastify): health, stats, Prometheus metrics, and membership /
// weight / scheduler changes at run time. Never on the data path.
//
//   GET    /healthz            {"status":"ok", ...}
//   GET    /stats              DispatcherStats (JSON)
//   GET    /metrics            Prometheus text format
//   GET    /nodes              NodeView[]
//   GET    /nodes/:id          NodeView
//   PUT    /nodes/:id          {"addr"?, "port"?, "weight"?, "admin"?}: add (201) or change (200)
//   DELETE /nodes/:id          stop scheduling to it; it drains (200 with the view) or is gone (204)
//   GET    /scheduler          {"scheduler": "mh"}
//   PUT    /scheduler          {"scheduler": "wlc"}: new connections only
//
// Every request passes the AdminGuard (sc/auth/admin-access.ts): its Host must name this
// server (421), and the changes (PUT, DELETE, any method but GET/HEAD) need the bearer token
// (401), or are refused outright when none is configured (403). Reads stay open.
import Fastify, { type FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { byLabel, mirrorCounterBy } from "../server/metrics-mirror.js";
import { ADMIN_REFUSAL_REASONS, type AdminGuard } from "../sc/auth/admin-access.js";
import { ControlError, type DispatcherControl, type NodeUpdate } from "./control.js";
import { SCHEDULER_NAMES } from "./schedulers.js";

const nodeBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    addr: { type: "string", maxLength: 15 },
    port: { type: "integer", minimum: 1, maximum: 65535 },
    weight: { type: "integer", minimum: 0, maximum: 65535 },
    admin: { type: ["string", "null"], maxLength: 2048 },
  },
} as const;

export function buildAdmin(
  control: DispatcherControl,
  registry: Registry,
  guard: AdminGuard,
): FastifyInstance {
  mirrorCounterBy(
    registry,
    "sc_dispatcher_admin_refused_total",
    "Admin API requests refused: host (Host header names another server), read_only (a change without any token configured), no_token, bad_token",
    ["reason"],
    () => byLabel("reason", ADMIN_REFUSAL_REASONS, guard.refused),
  );
  const app = Fastify({
    logger: false,
    bodyLimit: 16 * 1024,
    // Reject unknown fields instead of silently dropping them (a typo must not pass).
    ajv: { customOptions: { removeAdditional: false } },
  });

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof ControlError) return reply.code(err.statusCode).send({ error: err.message });
    const e = err as { statusCode?: number; message?: string };
    const code = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    return reply.code(code).send({ error: e.message ?? "error" });
  });

  // Before the body is read: a refused change costs no parsing.
  app.addHook("onRequest", async (req, reply) => {
    const refusal = guard.check(req.method, req.headers);
    if (refusal !== null)
      return reply.code(refusal.status).headers(refusal.headers).send({ error: refusal.message });
  });

  addReadRoutes(app, control, registry);
  addNodeRoutes(app, control);
  addSchedulerRoutes(app, control);
  return app;
}

/** What anyone may read: health, stats, metrics. */
function addReadRoutes(app: FastifyInstance, control: DispatcherControl, registry: Registry): void {
  app.get("/healthz", async () => {
    const nodes = control.nodes();
    return {
      status: "ok",
      scheduler: control.scheduler,
      nodes: nodes.length,
      eligible: nodes.filter((n) => n.eligible).length,
    };
  });

  app.get("/stats", async () => control.stats());

  app.get("/metrics", async (_req, reply) => {
    const text = await registry.metrics();
    return reply.type(registry.contentType).send(text);
  });
}

/** The node set: list, read one, add or change one, remove (drain) one. */
function addNodeRoutes(app: FastifyInstance, control: DispatcherControl): void {
  app.get("/nodes", async () => control.nodes());

  app.get<{ Params: { id: string } }>("/nodes/:id", async (req) => control.node(req.params.id));

  app.put<{ Params: { id: string }; Body: NodeUpdate }>(
    "/nodes/:id",
    { schema: { body: nodeBody } },
    async (req, reply) => {
      const r = control.putNode(req.params.id, req.body ?? {});
      return reply.code(r.created ? 201 : 200).send(r.node);
    },
  );

  app.delete<{ Params: { id: string } }>("/nodes/:id", async (req, reply) => {
    const draining = control.deleteNode(req.params.id);
    return draining ? reply.code(200).send(draining) : reply.code(204).send();
  });
}

function addSchedulerRoutes(app: FastifyInstance, control: DispatcherControl): void {
  app.get("/scheduler", async () => ({ scheduler: control.scheduler }));

  app.put<{ Body: { scheduler: string } }>(
    "/scheduler",
    {
      schema: {
        body: {
          type: "object",
          required: ["scheduler"],
          additionalProperties: false,
          properties: { scheduler: { type: "string", enum: [...SCHEDULER_NAMES] } },
        },
      },
    },
    async (req) => {
      control.setScheduler(req.body.scheduler);
      return { scheduler: control.scheduler };
    },
  );
}
