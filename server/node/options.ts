// The options of `sc-cluster node`, as one table: the CLI parses with it, the cluster launcher
// checks the node arguments it is given against it, and the deployment checks read it.
import { CONFIG_OPTIONS, type CommandSpec } from "../../common/args.js";
import { TRUST_OPTIONS } from "../../sc/auth/trust-options.js";
import { ADMIN_ACCESS_OPTIONS } from "../../sc/auth/admin-access-options.js";
import { LOG_LEVELS } from "../log.js";
import { CODINGS } from "../http/encoding.js";
import { ACCESS_LOG_FORMATS } from "../http/access-log.js";
import { CLUSTER_DEFAULTS } from "../membership/config.js";
import { MODE_NAMES, MODES } from "../modes/table.js";
import { SC_DEFAULTS } from "../modes/sc.js";
import { CF_DEFAULTS } from "../modes/cf.js";
import { NODE_DEFAULTS, STACKS } from "./node.js";

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

const ms = (help: string, def: number) => ({
  type: "string" as const,
  value: "MS",
  help,
  default: String(def),
});

export const NODE_SPEC: CommandSpec = {
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
      value: "auto|openssl|own",
      help: "Who carries TLS 1.3 records after the handshake: OpenSSL, or our own record layer taking the session over (sc/tls, docs/tls.md), which --mode sc needs to clone TLS connections; auto: own with --mode sc, else openssl. TLS 1.2 always stays with OpenSSL",
      default: "auto",
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
        "Data-path worker threads (--stack user, GUE input; modes local, sc, cf-lru, cf-lfu): each has its own " +
        "queue of the multi-queue TUN device, TCP stack and GUE socket, steered by the client's address and " +
        "port; in the cluster modes worker i uses the SC and peer ports + 100 x i, and every member must run the same N",
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
      value: MODE_NAMES.join("|"),
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
};
