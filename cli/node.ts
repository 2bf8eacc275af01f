// `sc-cluster node`: one cluster node serving static documents over HTTP/1.1.
import type { Command } from "./command.js";
import {
  int,
  list,
  optStr,
  parseConfigured,
  UsageError,
  type CommandSpec,
  type ParsedValues,
} from "../common/args.js";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../server/log.js";
import type { RunningNode } from "../server/node/node.js";
import { staticView } from "../server/membership/runtime.js";
import { createLogger, LOG_LEVELS } from "../server/log.js";
import { defaultNodeId, startNode, type NodeConfig } from "../server/node/node.js";
import { startNodeWorkers } from "../server/node/workers.js";
import { NODE_SPEC, RELOADABLE_NODE_OPTIONS } from "../server/node/options.js";
import { untilSignal } from "../server/node/signals.js";
import { parsePeer, type ClusterConfig } from "../server/membership/config.js";
import { trustFrom } from "../sc/auth/trust-options.js";
import { adminEndpointFrom } from "../sc/auth/admin-access-options.js";
import { EXIT } from "../common/errors.js";
import { bytes, nodeConfigFrom, oneOf, tlsFiles, type NodeSettings } from "./node-config.js";

/**
 * SIGHUP: parse again (flags as given, the environment and the config file re-read), then
 * apply what can change at run time. A bad value refuses the whole reload (logged), so a
 * typo in the file never half-applies.
 */
async function reloadNode(
  spec: CommandSpec,
  argv: string[],
  current: ParsedValues,
  node: RunningNode,
  logger: Logger,
  cluster: ClusterConfig | undefined,
): Promise<void> {
  try {
    const next = (await parseConfigured(spec, argv, process.env)).values;
    const cacheBytes = bytes(next, "cache-bytes");
    const ttl = int(next, "revalidate-ttl", 0);
    const level = oneOf(next, "log-level", LOG_LEVELS);
    int(next, "drain-grace", 0);
    int(next, "shutdown-timeout", 0);
    const peers = list(next, "peer").map(parsePeer);
    if (cluster && node.membership && optStr(next, "members-from") === undefined && peers.length === 0)
      throw new UsageError("--peer: a cluster node needs its members");
    const restart = Object.keys(spec.options).filter(
      (k) => !RELOADABLE_NODE_OPTIONS.includes(k) && JSON.stringify(next[k]) !== JSON.stringify(current[k]),
    );
    const cacheControl = list(next, "cache-control");
    const tls = tlsFiles(next);
    if ((tls === undefined) !== (node.tlsAddress === null))
      throw new UsageError("turning HTTPS on or off needs a restart (--tls-cert, --tls-key)");
    node.setCacheControl(cacheControl); // validates before anything below changes
    // The certificate is read and checked before anything else changes; a bad one refuses the reload.
    if (tls) await node.reloadTls(tls);
    if (cacheBytes !== node.cache.maxBytes) node.cache.resize(cacheBytes);
    node.store.ttlMs = ttl;
    logger.level = level;
    if (node.membership && cluster) {
      if (optStr(next, "members-from") !== undefined) await node.pollMembers();
      else node.membership.apply(staticView({ ...cluster, members: peers }));
    }
    for (const k of RELOADABLE_NODE_OPTIONS) current[k] = next[k];
    logger.info(
      {
        cacheBytes,
        revalidateTtlMs: ttl,
        logLevel: level,
        cacheControl,
        ...(tls ? { tlsCertificate: tls.certFile } : {}),
        ...(restart.length ? { needRestart: restart } : {}),
      },
      restart.length ? "reloaded (some changes need a restart)" : "reloaded",
    );
  } catch (err) {
    logger.error({ error: (err as Error).message }, "reload refused: nothing changed");
  }
}

export const command: Command = {
  spec: NODE_SPEC,
  async run(argv) {
    const { values } = await parseConfigured(this.spec, argv, process.env);
    const settings = nodeConfigFrom(values, defaultNodeId());
    // Read again when used (a SIGHUP may change them), but a bad value must fail the start.
    int(values, "drain-grace", 0);
    int(values, "shutdown-timeout", 0);
    const config = await withAccess(settings, values);
    if (settings.workers > 1)
      return runWorkers(
        config,
        settings.workers,
        settings.logLevel,
        int(values, "drain-grace", 0),
        int(values, "shutdown-timeout", 0),
      );
    return runNode(config, { spec: this.spec, argv, values });
  },
};

/** The configuration completed: the logger, and the trust and admin token from the files the options name. */
async function withAccess(settings: NodeSettings, values: ParsedValues): Promise<NodeConfig> {
  const logger = createLogger(settings.logLevel, { role: "node", node: settings.config.nodeId });
  const trust = await trustFrom(values, process.env, settings.secretNeededBy);
  const admin = settings.adminListen === null ? null : await adminEndpointFrom(values, settings.adminListen);
  return { ...settings.config, trust, admin, logger };
}

/** What a SIGHUP parses again: the command line and the values in force (updated by each reload). */
interface ReloadSource {
  spec: CommandSpec;
  argv: string[];
  values: ParsedValues;
}

/** One node on this thread until a signal; SIGHUP reloads, SIGUSR1 re-opens the access log. */
async function runNode(cfg: NodeConfig, reload: ReloadSource): Promise<number> {
  const logger = cfg.logger;
  const node = await startNode(cfg);
  // logrotate's convention: after moving the file, SIGUSR1 makes the node open a new one.
  const reopen = () => {
    logger.info("SIGUSR1: re-opening the access log");
    node.reopenLogs();
  };
  process.on("SIGUSR1", reopen);
  logger.info(
    {
      ...listeningAt(node.address, node.tlsAddress, node.adminAddress),
      stack: cfg.stack,
      mode: cfg.mode,
      source: cfg.root ?? cfg.origin,
      cacheBytes: node.cache.maxBytes,
      cachePolicy: node.cache.policy,
    },
    "node listening",
  );
  const onHup = () => void reloadNode(reload.spec, reload.argv, reload.values, node, logger, cfg.cluster);
  process.on("SIGHUP", onHup);
  // --drain-grace and --shutdown-timeout are read when used: a SIGHUP may have changed them.
  const signal = await untilSignal();
  await drain(node, logger, signal, int(reload.values, "drain-grace", 0));
  process.off("SIGHUP", onHup);
  process.off("SIGUSR1", reopen);
  logger.info({ signal }, "node stopping");
  return stopped(node, logger, int(reload.values, "shutdown-timeout", 0));
}

type Address = { host: string; port: number };

/** The addresses of the "node listening" record: HTTP, HTTPS when served, the control plane or null. */
export function listeningAt(
  http: Address,
  https: Address | null,
  admin: Address | null,
): { listen: string; https?: string; admin: string | null } {
  return {
    listen: `${http.host}:${http.port}`,
    ...(https ? { https: `${https.host}:${https.port}` } : {}),
    admin: admin ? `${admin.host}:${admin.port}` : null,
  };
}

/** SIGTERM with a --drain-grace: unhealthy for the dispatcher but serving, until the grace ends or another signal. */
async function drain(
  node: { beginDrain(): void },
  logger: Logger,
  signal: NodeJS.Signals,
  drainMs: number,
): Promise<void> {
  if (signal !== "SIGTERM" || drainMs <= 0) return;
  node.beginDrain();
  logger.info({ signal, drainMs }, "node draining: unhealthy for the dispatcher, still serving");
  await Promise.race([sleep(drainMs), untilSignal()]);
}

/** Resets what is still open after `shutdownMs` and logs the node's last HTTP counters. */
async function stopped(
  node: { shutdown(graceMs: number): Promise<void>; snapshot(): Record<string, unknown> },
  logger: Logger,
  shutdownMs: number,
): Promise<number> {
  await node.shutdown(shutdownMs);
  logger.info(node.snapshot().http as object, "node stopped");
  return EXIT.ok;
}

/** --workers N > 1: the node on worker threads (server/node/workers.ts) until a signal. */
async function runWorkers(
  cfg: NodeConfig,
  workers: number,
  logLevel: string,
  drainMs: number,
  shutdownMs: number,
): Promise<number> {
  const logger = cfg.logger;
  const node = await startNodeWorkers(cfg, workers, logLevel);
  logger.info(
    { ...listeningAt(node.address, null, node.adminAddress), stack: cfg.stack, mode: cfg.mode, workers },
    "node listening",
  );
  const ended = await Promise.race([untilSignal(), node.failed]);
  if (ended instanceof Error) {
    await node.shutdown(0);
    throw ended;
  }
  await drain(node, logger, ended, drainMs);
  logger.info({ signal: ended }, "node stopping");
  return stopped(node, logger, shutdownMs);
}

export default command;
