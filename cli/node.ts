// `sc-cluster node`: one cluster node serving static documents over HTTP/1.1.
import type { Command } from "./command.js";
import {
  CONFIG_OPTIONS,
  hostPort,
  int,
  list,
  optStr,
  parseConfigured,
  str,
  UsageError,
  type CommandSpec,
  type ParsedValues,
} from "./args.js";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../server/log.js";
import type { RunningNode } from "../server/node/node.js";
import { staticView } from "../server/membership/runtime.js";
import { createLogger, LOG_LEVELS } from "../server/log.js";
import {
  defaultNodeId,
  NODE_DEFAULTS,
  startNode,
  STACKS,
  type NodeConfig,
  type Stack,
} from "../server/node/node.js";
import { MAX_NODE_WORKERS, startNodeWorkers } from "../server/node/workers.js";
import { CACHE_POLICIES, type CachePolicy } from "../server/cache/doc-cache.js";
import { MODES } from "../server/modes/mode.js";
import { untilSignal } from "../server/node/signals.js";
import { CLUSTER_DEFAULTS, parsePeer, type ClusterConfig } from "../server/membership/config.js";
import { SC_DEFAULTS } from "../server/modes/sc.js";
import { CF_DEFAULTS } from "../server/modes/cf.js";
import { TRUST_OPTIONS, trustFrom } from "./trust.js";
import { ADMIN_ACCESS_OPTIONS, adminEndpointFrom } from "./admin-access.js";
import { ACCESS_LOG_DEFAULTS, ACCESS_LOG_FORMATS, type AccessLogFormat } from "../server/http/access-log.js";
import { CODINGS } from "../server/http/encoding.js";
import type { ContentCoding } from "../server/http/doc.js";

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

/** The options SIGHUP applies to a running node; any other change is reported as needing a restart. */
export const RELOADABLE_NODE_OPTIONS = [
  "cache-bytes",
  "revalidate-ttl",
  "log-level",
  "peer",
  "members-interval",
  "drain-grace",
  "shutdown-timeout",
  "cache-control",
  "tls-cert",
  "tls-key",
];

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

const ms = (help: string, def: number) => ({
  type: "string" as const,
  value: "MS",
  help,
  default: String(def),
});

export const command: Command = {
  spec: {
    name: "node",
    summary: "Run a cluster node: the static HTTP/1.1 server with its document cache",
    usage:
      "sc-cluster node (--root DIR | --origin URL) [--stack user --vip ADDR | --stack kernel --listen ADDR:PORT] [options]",
    options: {
      stack: {
        type: "string",
        value: STACKS.join("|"),
        help: "TCP stack: user (our TCP on a TUN device: root or CAP_NET_ADMIN) or kernel (node:net sockets)",
        default: "user",
      },
      listen: {
        type: "string",
        value: "ADDR:PORT",
        help: "HTTP address to listen on (--stack kernel)",
        default: "127.0.0.1:8080",
      },
      vip: {
        type: "string",
        value: "ADDR",
        help: "Address our stack answers for (--stack user)",
        default: "198.18.100.1",
      },
      port: { type: "string", value: "N", help: "HTTP port on the VIP (--stack user)", default: "80" },
      "tls-cert": {
        type: "string",
        value: "FILE",
        help: "Serve HTTPS (TLS 1.3, and 1.2 counted apart; ALPN http/1.1) with this PEM certificate chain, leaf first; needs --tls-key; SIGHUP re-reads both",
      },
      "tls-key": { type: "string", value: "FILE", help: "PEM private key of --tls-cert" },
      "tls-record-layer": {
        type: "string",
        value: "openssl|own",
        help: "Who carries TLS 1.3 records after the handshake: OpenSSL, or our own record layer taking the session over (sc/tls, docs/tls.md); TLS 1.2 always stays with OpenSSL",
        default: "openssl",
      },
      "tls-port": {
        type: "string",
        value: "N",
        help: "HTTPS port (on the VIP with --stack user, on --listen's address with --stack kernel)",
        default: "443",
      },
      tun: {
        type: "string",
        value: "NAME",
        help: "TUN device our stack runs on (--stack user)",
        default: "sctun",
      },
      workers: {
        type: "string",
        value: "N",
        help:
          "Data-path worker threads (--stack user --mode local, GUE input): each has its own queue of the " +
          "multi-queue TUN device, TCP stack, cache and GUE socket, steered by the client's address and port",
        default: "1",
      },
      root: { type: "string", value: "DIR", help: "Serve documents from this directory" },
      origin: {
        type: "string",
        value: "URL",
        help: "Fetch documents from this origin server (http://host:port)",
      },
      admin: {
        type: "string",
        value: "ADDR:PORT",
        help: "Control plane address (/healthz, /stats, /metrics), or 'none'",
        default: "127.0.0.1:9080",
      },
      ...ADMIN_ACCESS_OPTIONS,
      "node-id": {
        type: "string",
        value: "ID",
        help: "Node identity in logs and metrics [default: <hostname>-<pid>]",
      },
      mode: {
        type: "string",
        value: Object.keys(MODES).join("|"),
        help: `Cluster mode: ${Object.values(MODES)
          .map((m) => `${m.name} (${m.summary})`)
          .join("; ")}`,
        default: "local",
      },
      peer: {
        type: "string",
        value: "ID=ADDR[,weight=W]",
        multiple: true,
        help: "A cluster member (this node included) and its internal address; cluster modes need every member",
      },
      ...TRUST_OPTIONS,
      "gue-port": {
        type: "string",
        value: "PORT",
        help: "UDP port for client packets in GUE from the dispatcher and peers (--stack user; 0: off)",
        default: String(CLUSTER_DEFAULTS.guePort),
      },
      "gue-allow": {
        type: "string",
        value: "ADDR[/LEN]",
        multiple: true,
        help:
          "Also take GUE from these senders: the dispatcher's address, or an IPVS/Katran front. " +
          "The --peer members are always allowed; with neither the GUE input stays closed; 0.0.0.0/0 allows anyone",
      },
      "sc-port": {
        type: "string",
        value: "PORT",
        help: "TCP port of the SC server (Socket Cloning messages) on every node's internal address",
        default: String(CLUSTER_DEFAULTS.scPort),
      },
      "clone-timeout": ms(
        "Socket Cloning: wait this long for a clone's SC-ACK, then serve the request here",
        SC_DEFAULTS.cloneTimeoutMs,
      ),
      "clone-local-max-bytes": {
        type: "string",
        value: "SIZE",
        help: "Socket Cloning: serve documents known to be at most this size where they arrive (0: always clone)",
        default: String(SC_DEFAULTS.localMaxBytes),
      },
      "clone-stall-timeout": ms(
        "Socket Cloning: take a connection back when its clone makes no progress this long",
        SC_DEFAULTS.stallMs,
      ),
      "peer-port": {
        type: "string",
        value: "PORT",
        help: "TCP port of the peer cache endpoint on every node's internal address (cf-lru, cf-lfu)",
        default: String(CLUSTER_DEFAULTS.peerPort),
      },
      "peer-connections": {
        type: "string",
        value: "N",
        help: "Cooperative caching: keep-alive connections to each peer's cache endpoint",
        default: String(CF_DEFAULTS.peerConnections),
      },
      "peer-timeout": ms(
        "Cooperative caching: connect, answer and body-gap timeout toward a peer (then the origin serves)",
        CF_DEFAULTS.peerTimeoutMs,
      ),
      "cache-bytes": {
        type: "string",
        value: "SIZE",
        help: "Document cache size in bytes (K/M/G suffixes)",
        default: "256M",
      },
      "cache-policy": {
        type: "string",
        value: "lru|lfu",
        help: "Cache replacement policy (cf-lru and cf-lfu set their own)",
        default: "lru",
      },
      "max-object-bytes": {
        type: "string",
        value: "SIZE",
        help: "Largest document held in memory; larger files stream from disk (--root) or get 502 (--origin)",
        default: "64M",
      },
      "header-timeout": ms(
        "A request must arrive whole within this time of its first byte (else 408)",
        NODE_DEFAULTS.timeouts.headerMs,
      ),
      "idle-timeout": ms("Close a keep-alive connection idle this long", NODE_DEFAULTS.timeouts.idleMs),
      "send-timeout": ms(
        "Reset a connection whose client reads nothing for this long (also while it is cloned or resumed: --mode sc)",
        NODE_DEFAULTS.timeouts.sendMs,
      ),
      "linger-timeout": ms(
        "After closing, wait this long for the client's FIN before a reset",
        NODE_DEFAULTS.timeouts.lingerMs,
      ),
      "max-connections": {
        type: "string",
        value: "N",
        help: "Refuse connections beyond this many",
        default: String(NODE_DEFAULTS.maxConnections),
      },
      "max-body-bytes": {
        type: "string",
        value: "SIZE",
        help: "Largest request body skipped (else 413)",
        default: "1M",
      },
      "fs-concurrency": {
        type: "string",
        value: "N",
        help: "Whole-file reads in flight at once (--root)",
        default: String(NODE_DEFAULTS.fsConcurrency),
      },
      "origin-connections": {
        type: "string",
        value: "N",
        help: "Keep-alive connections to the origin (--origin)",
        default: String(NODE_DEFAULTS.originConnections),
      },
      "origin-timeout": ms(
        "Connect, header and body timeout toward the origin (504 when hit)",
        NODE_DEFAULTS.originTimeoutMs,
      ),
      "shutdown-timeout": ms("On SIGINT/SIGTERM, reset connections still open after this long", 5000),
      "log-level": {
        type: "string",
        value: "LEVEL",
        help: `Log level: ${LOG_LEVELS.join("|")}`,
        default: "info",
      },
      "revalidate-ttl": ms(
        "Check a cached document with the origin (conditional GET; --root: a stat) once it is this old; 0: never",
        0,
      ),
      "members-from": {
        type: "string",
        value: "URL",
        help:
          "Learn the membership from the dispatcher's admin API (GET URL/nodes, with the admin token): " +
          "nodes join, drain and leave without restarts; --peer is the membership until the first answer",
      },
      "members-interval": ms("How often to poll --members-from", 1000),
      "drain-grace": ms(
        "On SIGTERM, answer /healthz 503 and keep serving this long (the dispatcher moves new connections away), then stop",
        4000,
      ),
      ...CONFIG_OPTIONS,
      "access-log": {
        type: "string",
        value: "PATH|-",
        help: "Write an access log line per request to this file ('-': standard output); SIGUSR1 re-opens the file",
      },
      "access-log-format": {
        type: "string",
        value: ACCESS_LOG_FORMATS.join("|"),
        help: "Access log format: combined (Apache/nginx, plus node=, cloned-to=, rt=, sent=) or json (one object a line)",
        default: "combined",
      },
      "access-log-buffer": {
        type: "string",
        value: "SIZE",
        help: "Unwritten access log bytes held at most; beyond, lines are dropped and counted (never blocks requests)",
        default: "4M",
      },
      "cache-control": {
        type: "string",
        value: "PATTERN=VALUE",
        multiple: true,
        help:
          "Cache-Control for documents whose path matches PATTERN (* within a segment, ** across, ?; " +
          "no / in PATTERN: the file name); first match wins; a max-age also sends Expires",
      },
      "not-found-page": {
        type: "string",
        value: "PATH",
        help: "Document sent (status 404) for every missing path, e.g. /404.html",
      },
      precompressed: {
        type: "string",
        value: "br,gzip|none",
        help: "Serve precompressed siblings (x.br, x.gz) of compressible documents to clients that accept them",
        default: CODINGS.join(","),
      },
    },
    epilog:
      "Exactly one of --root and --origin is required. Logs are JSON lines on stdout; the data path logs\n" +
      "only at debug level. SIGINT: stop accepting, finish current responses, exit. SIGTERM: the same after\n" +
      "--drain-grace of reporting unhealthy (a second signal cuts it short). SIGHUP: reload --cache-bytes,\n" +
      "--revalidate-ttl, --log-level, the TLS certificate and key (docs/tls.md) and the membership\n" +
      "(--peer, or a poll of --members-from) from the environment and the config file, without\n" +
      "dropping connections; other changes need a restart.\n" +
      "Every option is also an SC_<OPTION> environment variable (SC_CACHE_BYTES=512M); precedence:\n" +
      "flag > environment > config file > default (docs/configuration.md).",
  },
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
    const mode = oneOf(values, "mode", Object.keys(MODES));
    const trust = await trustFrom(
      values,
      process.env,
      MODES[mode]?.needsCluster ? `--mode ${mode}` : undefined,
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
    return 0;
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
  return 0;
}

export default command;
