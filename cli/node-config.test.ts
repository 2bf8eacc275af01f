// `sc-cluster node`'s option values as its configuration: the defaults, each option's
// conversion, and the errors for bad values (nodeConfigFrom, no I/O).
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCommand } from "../common/args.js";
import { throwsUsage } from "./testing.js";
import { UserError } from "../common/errors.js";
import { NODE_SPEC } from "../server/node/options.js";
import { NODE_DEFAULTS } from "../server/node/node.js";
import { MAX_NODE_WORKERS } from "../server/node/workers.js";
import { SC_DEFAULTS } from "../server/modes/sc.js";
import { CF_DEFAULTS } from "../server/modes/cf.js";
import { CLUSTER_DEFAULTS } from "../server/membership/config.js";
import { ACCESS_LOG_DEFAULTS } from "../server/http/access-log.js";
import { nodeConfigFrom } from "./node-config.js";
import { listeningAt } from "./node.js";

const MiB = 1024 * 1024;

/** The settings of `sc-cluster node ARGS` on host "h-1". */
const settings = (...args: string[]) => nodeConfigFrom(parseCommand(NODE_SPEC, args).values, "h-1");
const config = (...args: string[]) => settings("--root", "/srv", ...args).config;
const usage = (message: string | RegExp, ...args: string[]) => throwsUsage(() => settings(...args), message);

test("defaults: a user-stack node on the VIP, the cache and limits of the option table", () => {
  assert.deepEqual(settings("--root", "/srv"), {
    config: {
      nodeId: "h-1",
      stack: "user",
      listen: { host: "198.18.100.1", port: 80 },
      tun: "sctun",
      root: "/srv",
      cacheBytes: 256 * MiB,
      cachePolicy: "lru",
      mode: "local",
      guePort: CLUSTER_DEFAULTS.guePort,
      gueAllow: [],
      modeSettings: {
        cloneTimeoutMs: SC_DEFAULTS.cloneTimeoutMs,
        localMaxBytes: SC_DEFAULTS.localMaxBytes,
        stallMs: SC_DEFAULTS.stallMs,
        sendTimeoutMs: NODE_DEFAULTS.timeouts.sendMs,
        idleTimeoutMs: NODE_DEFAULTS.timeouts.idleMs,
        peerConnections: CF_DEFAULTS.peerConnections,
        peerTimeoutMs: CF_DEFAULTS.peerTimeoutMs,
      },
      timeouts: NODE_DEFAULTS.timeouts,
      limits: { maxBodyBytes: MiB },
      maxConnections: NODE_DEFAULTS.maxConnections,
      maxInMemoryBytes: 64 * MiB,
      fsConcurrency: NODE_DEFAULTS.fsConcurrency,
      originConnections: NODE_DEFAULTS.originConnections,
      originTimeoutMs: NODE_DEFAULTS.originTimeoutMs,
      revalidateTtlMs: 0,
      cacheControl: [],
      precompressed: ["br", "gzip"],
    },
    logLevel: "info",
    secretNeededBy: undefined,
    adminListen: { host: "127.0.0.1", port: 9080 },
    workers: 1,
  });
});

test("exactly one of --root and --origin", () => {
  assert.equal(settings("--origin", "http://198.18.0.2:8000").config.origin, "http://198.18.0.2:8000");
  assert.equal(settings("--origin", "http://o:1").config.root, undefined);
  const message = "node: give exactly one of --root DIR and --origin URL\nTry 'sc-cluster node --help'.";
  usage(message);
  usage(message, "--root", "/srv", "--origin", "http://o:1");
});

test("--stack kernel listens on --listen, takes no GUE; --stack is checked", () => {
  const c = config("--stack", "kernel", "--listen", "127.0.0.1:8081");
  assert.deepEqual(c.listen, { host: "127.0.0.1", port: 8081 });
  assert.equal(c.guePort, 0);
  assert.deepEqual(config("--vip", "198.18.1.1", "--port", "8080").listen, {
    host: "198.18.1.1",
    port: 8080,
  });
  assert.equal(config("--gue-port", "7000").guePort, 7000);
  usage("--listen must be ADDR:PORT, got '8080'", "--root", "/s", "--stack", "kernel", "--listen", "8080");
  usage("--port must be between 1 and 65535, got 0", "--root", "/s", "--port", "0");
  usage("--stack must be one of kernel, user, got 'bsd'", "--root", "/s", "--stack", "bsd");
  usage(
    "--gue-allow is for the GUE input of --stack user",
    ...["--root", "/s", "--stack", "kernel", "--gue-allow", "198.18.0.1"],
  );
  assert.deepEqual(config("--gue-allow", "198.18.0.1", "--gue-allow", "198.18.0.0/15").gueAllow, [
    "198.18.0.1",
    "198.18.0.0/15",
  ]);
});

test("--peer makes a cluster of this node and its members; cluster modes need the secret", () => {
  const s = settings(
    ...["--root", "/s", "--node-id", "n1", "--mode", "sc", "--sc-port", "7001", "--peer-port", "7002"],
    ...["--peer", "n1=198.18.0.11", "--peer", "n2=198.18.0.12,weight=3"],
  );
  assert.equal(s.config.nodeId, "n1");
  assert.deepEqual(s.config.cluster, {
    self: "n1",
    members: [
      { id: "n1", addr: "198.18.0.11", weight: 1 },
      { id: "n2", addr: "198.18.0.12", weight: 3 },
    ],
    scPort: 7001,
    peerPort: 7002,
    guePort: CLUSTER_DEFAULTS.guePort,
  });
  assert.equal(s.config.mode, "sc");
  assert.equal(s.secretNeededBy, "--mode sc");
  assert.equal(settings("--root", "/s", "--mode", "cf-lru").secretNeededBy, "--mode cf-lru");
  assert.equal(config().cluster, undefined);
  assert.throws(() => settings("--root", "/s", "--peer", "n1"), UserError);
  usage(/^--mode must be one of local, .*got 'fast'$/, "--root", "/s", "--mode", "fast");
});

test("byte sizes take K, M and G suffixes; zero and words are refused", () => {
  assert.equal(config("--cache-bytes", "64K").cacheBytes, 64 * 1024);
  assert.equal(config("--cache-bytes", "1g").cacheBytes, 1024 * MiB);
  assert.equal(config("--cache-bytes", "12345").cacheBytes, 12345);
  assert.equal(config("--max-object-bytes", "2MiB").maxInMemoryBytes, 2 * MiB);
  assert.deepEqual(config("--max-body-bytes", "8k").limits, { maxBodyBytes: 8192 });
  assert.equal((config("--clone-local-max-bytes", "0").modeSettings ?? {}).localMaxBytes, 0);
  assert.equal((config("--clone-local-max-bytes", "16K").modeSettings ?? {}).localMaxBytes, 16384);
  usage(
    "--cache-bytes must be a byte size like 65536, 64K, 256M or 1G, got 'lots'",
    ...["--root", "/s", "--cache-bytes", "lots"],
  );
  usage("--max-body-bytes must be positive, got '0'", "--root", "/s", "--max-body-bytes", "0");
});

test("timeouts, limits and the mode's settings each come from their option", () => {
  const c = config(
    ...["--header-timeout", "11", "--idle-timeout", "12", "--send-timeout", "13", "--linger-timeout", "14"],
    ...["--clone-timeout", "15", "--clone-stall-timeout", "16", "--peer-connections", "17"],
    ...["--peer-timeout", "18", "--max-connections", "19", "--fs-concurrency", "20"],
    ...["--origin-connections", "21", "--origin-timeout", "22", "--revalidate-ttl", "23"],
    ...["--cache-policy", "lfu"],
  );
  assert.deepEqual(c.timeouts, { headerMs: 11, idleMs: 12, sendMs: 13, lingerMs: 14 });
  assert.deepEqual(c.modeSettings, {
    cloneTimeoutMs: 15,
    localMaxBytes: SC_DEFAULTS.localMaxBytes,
    stallMs: 16,
    sendTimeoutMs: 13,
    idleTimeoutMs: 12,
    peerConnections: 17,
    peerTimeoutMs: 18,
  });
  assert.deepEqual(
    [c.maxConnections, c.fsConcurrency, c.originConnections, c.originTimeoutMs, c.revalidateTtlMs],
    [19, 20, 21, 22, 23],
  );
  assert.equal(c.cachePolicy, "lfu");
  usage("--cache-policy must be one of lru, lfu, got 'fifo'", "--root", "/s", "--cache-policy", "fifo");
  usage(
    "--header-timeout must be between 1 and 9007199254740991, got 0",
    "--root",
    "/s",
    "--header-timeout",
    "0",
  );
  usage("--idle-timeout must be a whole number, got '1s'", "--root", "/s", "--idle-timeout", "1s");
});

test("--admin none, an address, or an error; --log-level and --workers pass through", () => {
  assert.equal(settings("--root", "/s", "--admin", "none").adminListen, null);
  assert.deepEqual(settings("--root", "/s", "--admin", "0.0.0.0:9999").adminListen, {
    host: "0.0.0.0",
    port: 9999,
  });
  usage("--admin must be ADDR:PORT, got 'localhost'", "--root", "/s", "--admin", "localhost");
  assert.equal(settings("--root", "/s", "--log-level", "debug").logLevel, "debug");
  assert.equal(settings("--root", "/s", "--workers", "4").workers, 4);
  usage(
    `--workers must be between 1 and ${MAX_NODE_WORKERS}, got ${MAX_NODE_WORKERS + 1}`,
    ...["--root", "/s", "--workers", String(MAX_NODE_WORKERS + 1)],
  );
});

test("--members-from: an http base URL without its trailing slash, polled every --members-interval", () => {
  assert.deepEqual(
    config("--members-from", "http://198.18.0.1:9100/", "--members-interval", "250").membersFrom,
    {
      url: "http://198.18.0.1:9100",
      intervalMs: 250,
    },
  );
  assert.equal(config().membersFrom, undefined);
  usage(
    "--members-from must be a URL like http://198.18.0.1:9100, got 'dispatcher'",
    ...["--root", "/s", "--members-from", "dispatcher"],
  );
  usage(
    "--members-from must be http://HOST:PORT[/PATH] without query or user, got 'https://d:9100'",
    ...["--root", "/s", "--members-from", "https://d:9100"],
  );
  usage(
    /--members-interval must be between 100 and/,
    "--root",
    "/s",
    "--members-from",
    "http://d:1",
    "--members-interval",
    "5",
  );
});

test("--access-log, --cache-control, --not-found-page and --precompressed", () => {
  assert.deepEqual(
    config("--access-log", "-", "--access-log-format", "json", "--access-log-buffer", "1M").accessLog,
    {
      path: "-",
      format: "json",
      bufferBytes: MiB,
      flushMs: ACCESS_LOG_DEFAULTS.flushIntervalMs,
    },
  );
  assert.equal(config().accessLog, undefined);
  usage(
    /^--access-log-format must be one of combined, json, got 'xml'$/,
    "--root",
    "/s",
    "--access-log",
    "a",
    "--access-log-format",
    "xml",
  );
  assert.deepEqual(
    config("--cache-control", "*.css=max-age=60", "--cache-control", "**=no-cache").cacheControl,
    ["*.css=max-age=60", "**=no-cache"],
  );
  assert.equal(config("--not-found-page", "/404.html").notFoundPage, "/404.html");
  assert.equal("notFoundPage" in config(), false);
  assert.deepEqual(config("--precompressed", "none").precompressed, []);
  assert.deepEqual(config("--precompressed", " gzip , gzip ").precompressed, ["gzip"]);
  usage(
    "--precompressed takes none or a list of br, gzip, got 'zstd'",
    "--root",
    "/s",
    "--precompressed",
    "zstd",
  );
});

test("HTTPS needs both --tls-cert and --tls-key", () => {
  assert.deepEqual(config("--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-port", "8443").tls, {
    port: 8443,
    certFile: "c.pem",
    keyFile: "k.pem",
    recordLayer: "openssl",
  });
  assert.equal(
    config("--tls-cert", "c", "--tls-key", "k", "--tls-record-layer", "own").tls?.recordLayer,
    "own",
  );
  // auto (the default): our record layer where TLS sessions are cloned, OpenSSL elsewhere.
  const layer = (...args: string[]) => config("--tls-cert", "c", "--tls-key", "k", ...args).tls?.recordLayer;
  assert.equal(layer("--mode", "sc"), "own");
  assert.equal(layer("--mode", "sc", "--tls-record-layer", "openssl"), "openssl");
  assert.equal(layer("--mode", "lard"), "openssl");
  assert.equal(layer("--mode", "local"), "openssl");
  assert.equal(config().tls, undefined);
  const both = "give both --tls-cert FILE and --tls-key FILE (or neither: no HTTPS)";
  usage(both, "--root", "/s", "--tls-cert", "c.pem");
  usage(both, "--root", "/s", "--tls-key", "k.pem");
  usage(
    "--tls-record-layer must be one of auto, openssl, own, got 'boring'",
    ...["--root", "/s", "--tls-cert", "c", "--tls-key", "k", "--tls-record-layer", "boring"],
  );
});

test("the first bad option in the order they were always checked is the one reported", () => {
  usage(/exactly one of --root/, "--stack", "bsd");
  usage(/--stack must be one of/, "--root", "/s", "--stack", "bsd", "--cache-bytes", "lots");
  usage(/--cache-bytes must be/, "--root", "/s", "--cache-bytes", "lots", "--precompressed", "zstd");
});

test("listeningAt: the addresses of the 'node listening' record", () => {
  const http = { host: "198.18.100.1", port: 80 };
  assert.deepEqual(listeningAt(http, null, null), { listen: "198.18.100.1:80", admin: null });
  assert.deepEqual(
    listeningAt(http, { host: "198.18.100.1", port: 443 }, { host: "127.0.0.1", port: 9080 }),
    {
      listen: "198.18.100.1:80",
      https: "198.18.100.1:443",
      admin: "127.0.0.1:9080",
    },
  );
});
