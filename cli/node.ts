// `sc-cluster node`: one cluster node serving static documents over HTTP/1.1.
import type { Command } from "./command.js";
import {
  hostPort,
  int,
  list,
  optStr,
  parseConfigured,
  str,
  UsageError,
  type CommandSpec,
  type ParsedValues,
} from "../common/args.js";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../server/log.js";
import type { RunningNode } from "../server/node/node.js";
import { staticView } from "../server/membership/runtime.js";
import { createLogger, LOG_LEVELS } from "../server/log.js";
import { defaultNodeId, startNode, STACKS, type NodeConfig, type Stack } from "../server/node/node.js";
import { MAX_NODE_WORKERS, startNodeWorkers } from "../server/node/workers.js";
import { CACHE_POLICIES, type CachePolicy } from "../server/cache/doc-cache.js";
import { needsCluster } from "../server/modes/mode.js";
import { MODE_NAMES, MODES } from "../server/modes/table.js";
import { NODE_SPEC, RELOADABLE_NODE_OPTIONS } from "../server/node/options.js";
import { untilSignal } from "../server/node/signals.js";
import { parsePeer, type ClusterConfig } from "../server/membership/config.js";
import { trustFrom } from "../sc/auth/trust-options.js";
import { adminEndpointFrom } from "../sc/auth/admin-access-options.js";
import { ACCESS_LOG_DEFAULTS, ACCESS_LOG_FORMATS, type AccessLogFormat } from "../server/http/access-log.js";
import { CODINGS } from "../server/http/encoding.js";
import type { ContentCoding } from "../server/http/doc.js";
import { EXIT } from "../common/errors.js";

/** --precompressed: "none", or a comma list of codings. */
function codings(values: ParsedValues): ContentCoding[] {
  const raw = str(values, "precompressed").trim();
  if (raw === "none") return [];
  const out: ContentCoding[] = [];
  for (const part of raw.split(",")) {
    const c = part.trim();
    if (!(CODINGS as readonly string[]).includes(c)) {
      throw new UsageError(`--precompressed takes none or a list of ${CODINGS.join(", ")}, got '${raw}'`);
    }
    if (!out.includes(c as ContentCoding)) out.push(c as ContentCoding);
  }
  return out;
}

/** --members-from: the dispatcher's admin base URL (http only: the node sends its token there). */
function membersUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UsageError(`--members-from must be a URL like http://198.18.0.1:9100, got '${text}'`);
  }
  if (u.protocol !== "http:" || u.search !== "" || u.hash !== "" || u.username !== "")
    throw new UsageError(
      `--members-from must be http://HOST:PORT[/PATH] without query or user, got '${text}'`,
    );
  return text.replace(/\/+$/, "");
}

/** --tls-cert and --tls-key: both (HTTPS on --tls-port) or neither. */
function tlsFiles(values: ParsedValues): { certFile: string; keyFile: string } | undefined {
  const certFile = optStr(values, "tls-cert");
  const keyFile = optStr(values, "tls-key");
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new UsageError("give both --tls-cert FILE and --tls-key FILE (or neither: no HTTPS)");
  return certFile !== undefined ? { certFile, keyFile: keyFile! } : undefined;
}

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

const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A byte size: a whole number with an optional K, M or G (powers of 1024) suffix. */
function bytes(values: ParsedValues, name: string): number {
  const raw = str(values, name);
  const m = /^(\d+)([kmg]?)i?b?$/i.exec(raw.trim());
  if (!m) throw new UsageError(`--${name} must be a byte size like 65536, 64K, 256M or 1G, got '${raw}'`);
  const n = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--${name} must be positive, got '${raw}'`);
  return n;
}

function oneOf<T extends string>(values: ParsedValues, name: string, allowed: readonly T[]): T {
  const v = str(values, name);
  if (!(allowed as readonly string[]).includes(v)) {
    throw new UsageError(`--${name} must be one of ${allowed.join(", ")}, got '${v}'`);
  }
  return v as T;
}

export const command: Command = {
  spec: NODE_SPEC,
  async run(argv) {
    const { values } = await parseConfigured(this.spec, argv, process.env);
    const root = optStr(values, "root");
    const origin = optStr(values, "origin");
    if ((root === undefined) === (origin === undefined)) {
      throw new UsageError(
        "node: give exactly one of --root DIR and --origin URL\nTry 'sc-cluster node --help'.",
      );
    }
    const adminRaw = str(values, "admin");
    const nodeId = optStr(values, "node-id") ?? defaultNodeId();
    const logger = createLogger(str(values, "log-level"), { role: "node", node: nodeId });
    const stack = oneOf<Stack>(values, "stack", STACKS);
    const peers = list(values, "peer");
    if (stack !== "user" && list(values, "gue-allow").length > 0) {
      throw new UsageError("--gue-allow is for the GUE input of --stack user");
    }
    const cluster: ClusterConfig | undefined =
      peers.length === 0
        ? undefined
        : {
            self: nodeId,
            members: peers.map(parsePeer),
            scPort: int(values, "sc-port", 1, 65535),
            peerPort: int(values, "peer-port", 1, 65535),
            guePort: int(values, "gue-port", 0, 65535),
          };
    const mode = oneOf(values, "mode", MODE_NAMES);
    const trust = await trustFrom(
      values,
      process.env,
      needsCluster(MODES[mode]) ? `--mode ${mode}` : undefined,
    );
    const nodeConfig: NodeConfig = {
      nodeId,
      trust,
      stack,
      listen:
        stack === "user"
          ? { host: str(values, "vip"), port: int(values, "port", 1, 65535) }
          : hostPort(str(values, "listen"), "--listen"),
      tun: str(values, "tun"),
      ...(root !== undefined ? { root } : { origin: origin! }),
      admin: adminRaw === "none" ? null : await adminEndpointFrom(values, hostPort(adminRaw, "--admin")),
      cacheBytes: bytes(values, "cache-bytes"),
      cachePolicy: oneOf<CachePolicy>(values, "cache-policy", CACHE_POLICIES),
      mode,
      ...(cluster ? { cluster } : {}),
      guePort: stack === "user" ? int(values, "gue-port", 0, 65535) : 0,
      gueAllow: list(values, "gue-allow"),
      modeSettings: {
        cloneTimeoutMs: int(values, "clone-timeout", 1),
        localMaxBytes: values["clone-local-max-bytes"] === "0" ? 0 : bytes(values, "clone-local-max-bytes"),
        stallMs: int(values, "clone-stall-timeout", 1),
        sendTimeoutMs: int(values, "send-timeout", 1),
        idleTimeoutMs: int(values, "idle-timeout", 1),
        peerConnections: int(values, "peer-connections", 1),
        peerTimeoutMs: int(values, "peer-timeout", 1),
      },
      timeouts: {
        headerMs: int(values, "header-timeout", 1),
        idleMs: int(values, "idle-timeout", 1),
        sendMs: int(values, "send-timeout", 1),
        lingerMs: int(values, "linger-timeout", 1),
      },
      limits: { maxBodyBytes: bytes(values, "max-body-bytes") },
      maxConnections: int(values, "max-connections", 1),
      maxInMemoryBytes: bytes(values, "max-object-bytes"),
      fsConcurrency: int(values, "fs-concurrency", 1),
      originConnections: int(values, "origin-connections", 1),
      originTimeoutMs: int(values, "origin-timeout", 1),
      logger,
      revalidateTtlMs: int(values, "revalidate-ttl", 0),
      ...(optStr(values, "members-from") !== undefined
        ? {
            membersFrom: {
              url: membersUrl(str(values, "members-from")),
              intervalMs: int(values, "members-interval", 100),
            },
          }
        : {}),
      ...(optStr(values, "access-log") !== undefined
        ? {
            accessLog: {
              path: optStr(values, "access-log")!,
              format: oneOf<AccessLogFormat>(values, "access-log-format", ACCESS_LOG_FORMATS),
              bufferBytes: bytes(values, "access-log-buffer"),
              flushMs: ACCESS_LOG_DEFAULTS.flushIntervalMs,
            },
          }
        : {}),
      cacheControl: list(values, "cache-control"),
      ...(optStr(values, "not-found-page") !== undefined
        ? { notFoundPage: optStr(values, "not-found-page")! }
        : {}),
      precompressed: codings(values),
      ...(tlsFiles(values)
        ? {
            tls: {
              port: int(values, "tls-port", 1, 65535),
              ...tlsFiles(values)!,
              recordLayer: oneOf(values, "tls-record-layer", ["openssl", "own"] as const),
            },
          }
        : {}),
    };
    const workers = int(values, "workers", 1, MAX_NODE_WORKERS);
    if (workers > 1)
      return runWorkers(
        nodeConfig,
        workers,
        str(values, "log-level"),
        int(values, "drain-grace", 0),
        int(values, "shutdown-timeout", 0),
      );
    const node = await startNode(nodeConfig);
    // logrotate's convention: after moving the file, SIGUSR1 makes the node open a new one.
    const reopen = () => {
      logger.info("SIGUSR1: re-opening the access log");
      node.reopenLogs();
    };
    process.on("SIGUSR1", reopen);
    const a = node.address;
    const ad = node.adminAddress;
    const ta = node.tlsAddress;
    logger.info(
      {
        listen: `${a.host}:${a.port}`,
        ...(ta ? { https: `${ta.host}:${ta.port}` } : {}),
        admin: ad ? `${ad.host}:${ad.port}` : null,
        stack: str(values, "stack"),
        mode: str(values, "mode"),
        source: root ?? origin,
        cacheBytes: node.cache.maxBytes,
        cachePolicy: node.cache.policy,
      },
      "node listening",
    );
    const onHup = () => void reloadNode(this.spec, argv, values, node, logger, cluster);
    process.on("SIGHUP", onHup);
    const signal = await untilSignal();
    const drainMs = int(values, "drain-grace", 0);
    if (signal === "SIGTERM" && drainMs > 0) {
      node.beginDrain();
      logger.info({ signal, drainMs }, "node draining: unhealthy for the dispatcher, still serving");
      await Promise.race([sleep(drainMs), untilSignal()]);
    }
    process.off("SIGHUP", onHup);
    process.off("SIGUSR1", reopen);
    logger.info({ signal }, "node stopping");
    await node.shutdown(int(values, "shutdown-timeout", 0));
    logger.info(node.snapshot().http as object, "node stopped");
    return EXIT.ok;
  },
};

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
  const a = node.address;
  const ad = node.adminAddress;
  logger.info(
    {
      listen: `${a.host}:${a.port}`,
      admin: ad ? `${ad.host}:${ad.port}` : null,
      stack: cfg.stack,
      mode: cfg.mode,
      workers,
    },
    "node listening",
  );
  const ended = await Promise.race([untilSignal(), node.failed]);
  if (ended instanceof Error) {
    await node.shutdown(0);
    throw ended;
  }
  if (ended === "SIGTERM" && drainMs > 0) {
    node.beginDrain();
    logger.info({ signal: ended, drainMs }, "node draining: unhealthy for the dispatcher, still serving");
    await Promise.race([sleep(drainMs), untilSignal()]);
  }
  logger.info({ signal: ended }, "node stopping");
  await node.shutdown(shutdownMs);
  logger.info(node.snapshot().http as object, "node stopped");
  return EXIT.ok;
}

export default command;
