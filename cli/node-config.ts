// `sc-cluster node`'s option values turned into the node's configuration (NodeConfig), without
// I/O: the command (node.ts) adds what needs files read (the cluster secret, the admin token)
// and the logger. The option table itself is server/node/options.ts.
import { hostPort, int, list, optStr, str, UsageError, type ParsedValues } from "../common/args.js";
import { STACKS, type NodeConfig, type Stack } from "../server/node/node.js";
import { MAX_NODE_WORKERS } from "../server/node/workers.js";
import { CACHE_POLICIES, type CachePolicy } from "../server/cache/doc-cache.js";
import { needsCluster } from "../server/modes/mode.js";
import { MODE_NAMES, MODES } from "../server/modes/table.js";
import { parsePeer, type ClusterConfig } from "../server/membership/config.js";
import { ACCESS_LOG_DEFAULTS, ACCESS_LOG_FORMATS, type AccessLogFormat } from "../server/http/access-log.js";
import { CODINGS } from "../server/http/encoding.js";
import type { ContentCoding } from "../server/http/doc.js";

/** The parts of NodeConfig the command adds itself: the logger, and what files give. */
export type NodeConfigBase = Omit<NodeConfig, "logger" | "trust" | "admin">;

/** A node's options, converted and checked. */
export interface NodeSettings {
  config: NodeConfigBase;
  /** --log-level, checked by createLogger. */
  logLevel: string;
  /** What needs the cluster secret (e.g. "--mode sc"), for trustFrom's error; undefined: the node runs without. */
  secretNeededBy: string | undefined;
  /** --admin's address; null: no control plane. */
  adminListen: { host: string; port: number } | null;
  /** --workers: data-path worker threads. */
  workers: number;
}

const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A byte size: a whole number with an optional K, M or G (powers of 1024) suffix. */
export function bytes(values: ParsedValues, name: string): number {
  const raw = str(values, name);
  const m = /^(\d+)([kmg]?)i?b?$/i.exec(raw.trim());
  if (!m) throw new UsageError(`--${name} must be a byte size like 65536, 64K, 256M or 1G, got '${raw}'`);
  const n = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--${name} must be positive, got '${raw}'`);
  return n;
}

export function oneOf<T extends string>(values: ParsedValues, name: string, allowed: readonly T[]): T {
  const v = str(values, name);
  if (!(allowed as readonly string[]).includes(v)) {
    throw new UsageError(`--${name} must be one of ${allowed.join(", ")}, got '${v}'`);
  }
  return v as T;
}

/** --precompressed: "none", or a comma list of codings. */
export function codings(values: ParsedValues): ContentCoding[] {
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
export function membersUrl(text: string): string {
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
export function tlsFiles(values: ParsedValues): { certFile: string; keyFile: string } | undefined {
  const certFile = optStr(values, "tls-cert");
  const keyFile = optStr(values, "tls-key");
  if (certFile !== undefined && keyFile !== undefined) return { certFile, keyFile };
  if (certFile === undefined && keyFile === undefined) return undefined;
  throw new UsageError("give both --tls-cert FILE and --tls-key FILE (or neither: no HTTPS)");
}

/** --root or --origin: exactly one. */
function documentSource(values: ParsedValues): { root: string } | { origin: string } {
  const root = optStr(values, "root");
  const origin = optStr(values, "origin");
  if (root !== undefined && origin === undefined) return { root };
  if (origin !== undefined && root === undefined) return { origin };
  throw new UsageError(
    "node: give exactly one of --root DIR and --origin URL\nTry 'sc-cluster node --help'.",
  );
}

/** --peer and the cluster ports: the membership of a cluster node; undefined without peers. */
function clusterFrom(values: ParsedValues, nodeId: string): ClusterConfig | undefined {
  const peers = list(values, "peer");
  if (peers.length === 0) return undefined;
  return {
    self: nodeId,
    members: peers.map(parsePeer),
    scPort: int(values, "sc-port", 1, 65535),
    peerPort: int(values, "peer-port", 1, 65535),
    guePort: int(values, "gue-port", 0, 65535),
  };
}

/**
 * The node's options as its configuration. `hostNodeId`: the --node-id default (the host name
 * and pid). The checks run in the order the options were always checked, so a command line
 * with one bad value gets the same error as ever.
 */
export function nodeConfigFrom(values: ParsedValues, hostNodeId: string): NodeSettings {
  const source = documentSource(values);
  const adminRaw = str(values, "admin");
  const nodeId = optStr(values, "node-id") ?? hostNodeId;
  const stack = oneOf<Stack>(values, "stack", STACKS);
  if (stack !== "user" && list(values, "gue-allow").length > 0) {
    throw new UsageError("--gue-allow is for the GUE input of --stack user");
  }
  const cluster = clusterFrom(values, nodeId);
  const mode = oneOf(values, "mode", MODE_NAMES);
  const listen =
    stack === "user"
      ? { host: str(values, "vip"), port: int(values, "port", 1, 65535) }
      : hostPort(str(values, "listen"), "--listen");
  const tun = str(values, "tun");
  const adminListen = adminRaw === "none" ? null : hostPort(adminRaw, "--admin");
  return {
    config: { nodeId, stack, listen, tun, ...source, ...servingFrom(values, { stack, mode, cluster }) },
    logLevel: str(values, "log-level"),
    secretNeededBy: needsCluster(MODES[mode]) ? `--mode ${mode}` : undefined,
    adminListen,
    workers: int(values, "workers", 1, MAX_NODE_WORKERS),
  };
}

type Serving = Omit<NodeConfigBase, "nodeId" | "stack" | "listen" | "tun" | "root" | "origin">;

/** The cache, the mode and its settings, the timeouts and limits. */
function servingFrom(
  values: ParsedValues,
  o: { stack: Stack; mode: string; cluster: ClusterConfig | undefined },
): Serving {
  return {
    cacheBytes: bytes(values, "cache-bytes"),
    cachePolicy: oneOf<CachePolicy>(values, "cache-policy", CACHE_POLICIES),
    mode: o.mode,
    ...(o.cluster ? { cluster: o.cluster } : {}),
    guePort: o.stack === "user" ? int(values, "gue-port", 0, 65535) : 0,
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
    revalidateTtlMs: int(values, "revalidate-ttl", 0),
    ...featuresFrom(values),
  };
}

/**
 * --tls-record-layer auto: our own record layer where sessions are cloned (--mode sc: a clone
 * seals the response in the session, docs/tls.md), OpenSSL's everywhere else.
 */
function recordLayer(values: ParsedValues): "openssl" | "own" {
  const layer = oneOf(values, "tls-record-layer", ["auto", "openssl", "own"] as const);
  if (layer !== "auto") return layer;
  return optStr(values, "mode") === "sc" ? "own" : "openssl";
}

/** What is off unless asked for: the membership poll, the access log, the 404 page, HTTPS. */
function featuresFrom(values: ParsedValues): Partial<Serving> {
  const membersFrom = optStr(values, "members-from");
  const accessLog = optStr(values, "access-log");
  const notFoundPage = optStr(values, "not-found-page");
  const members =
    membersFrom !== undefined
      ? { membersFrom: { url: membersUrl(membersFrom), intervalMs: int(values, "members-interval", 100) } }
      : {};
  const log =
    accessLog !== undefined
      ? {
          accessLog: {
            path: accessLog,
            format: oneOf<AccessLogFormat>(values, "access-log-format", ACCESS_LOG_FORMATS),
            bufferBytes: bytes(values, "access-log-buffer"),
            flushMs: ACCESS_LOG_DEFAULTS.flushIntervalMs,
          },
        }
      : {};
  const cacheControl = list(values, "cache-control");
  const page = notFoundPage !== undefined ? { notFoundPage } : {};
  const precompressed = codings(values);
  const tls = tlsFiles(values);
  return {
    ...members,
    ...log,
    cacheControl,
    ...page,
    precompressed,
    ...(tls
      ? {
          tls: {
            port: int(values, "tls-port", 1, 65535),
            ...tls,
            recordLayer: recordLayer(values),
          },
        }
      : {}),
  };
}
