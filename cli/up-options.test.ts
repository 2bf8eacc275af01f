// `sc-cluster up`'s option values: what it checks before touching the machine, the options of
// the cluster it starts, the dashboard's host names (up-options.ts, no I/O).
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCommand } from "../common/args.js";
import { DEFAULT_PREFIX } from "../testbed/topology.js";
import { command } from "./up.js";
import { clusterOptionsFrom, dashboardHostNames, downCommand, upOptionsFrom } from "./up-options.js";
import { throwsUsage } from "./testing.js";

const parse = (...args: string[]) => parseCommand(command.spec, args);
const up = (...args: string[]) => {
  const { values, positionals } = parse(...args);
  return upOptionsFrom(values, positionals);
};
const cluster = (...args: string[]) => {
  const { values, positionals } = parse(...args);
  return clusterOptionsFrom(values, upOptionsFrom(values, positionals));
};

test("upOptionsFrom: the defaults", () => {
  assert.deepEqual(up(), {
    prefix: DEFAULT_PREFIX,
    detach: false,
    json: false,
    cacheBytes: "256M",
    timeoutS: 60,
    rate: undefined,
    loss: undefined,
  });
});

test("upOptionsFrom: each option as given, the loss with or without %", () => {
  assert.deepEqual(
    up(
      ...["--prefix", "t-", "--detach", "--json", "--cache-bytes", "64K", "--timeout", "2.5"],
      "--rate",
      "10mbit",
      "--loss",
      "1.5%",
    ),
    { prefix: "t-", detach: true, json: true, cacheBytes: "64K", timeoutS: 2.5, rate: "10mbit", loss: 1.5 },
  );
  assert.equal(up("--loss", "3").loss, 3);
});

test("upOptionsFrom: bad values, and an argument that is not an option", () => {
  // parseCommand refuses them already; upOptionsFrom does not rely on it.
  throwsUsage(() => upOptionsFrom(parse().values, ["now"]), "up: unexpected argument 'now'");
  throwsUsage(
    () => up("--cache-bytes", "lots"),
    /^--cache-bytes: cache size must be a byte size like .* got 'lots'$/,
  );
  throwsUsage(() => up("--cache-bytes", "0"), "--cache-bytes: cache size must be positive, got '0'");
  throwsUsage(() => up("--timeout", "0"), "--timeout must be a positive number of seconds");
  throwsUsage(() => up("--timeout", "soon"), "--timeout must be a number, got 'soon'");
  throwsUsage(() => up("--loss", "some"), "--loss must be a number, got 'some'");
  throwsUsage(() => up("--loss", ""), "--loss must be a number, got ''");
});

test("clusterOptionsFrom: the defaults leave the plan's own defaults (undefined) in place", () => {
  assert.deepEqual(cluster(), {
    prefix: DEFAULT_PREFIX,
    nodes: 3,
    clients: 1,
    mode: "local",
    workers: 1,
    site: undefined,
    rate: undefined,
    loss: undefined,
    expose: false,
    cacheBytes: "256M",
    accessLog: false,
    scheduler: "wlc",
    weights: undefined,
    logDir: undefined,
    startTimeoutMs: 60_000,
  });
});

test("clusterOptionsFrom: each option converted; --no-expose wins; --no-tls turns HTTPS off", () => {
  const o = cluster(
    ...["--nodes", "5", "--clients", "2", "--mode", "sc", "--site", "/srv/site", "--scheduler", "mh"],
    ...["--weights", "1,2,3,0,1", "--access-log", "--log-dir", "/tmp/l", "--timeout", "1.5", "--expose"],
    ...["--no-tls", "--loss", "2", "--rate", "1gbit", "--cache-bytes", "1G", "--prefix", "x-"],
    ...["--workers", "4"],
  );
  assert.deepEqual(o, {
    prefix: "x-",
    nodes: 5,
    clients: 2,
    mode: "sc",
    workers: 4,
    site: "/srv/site",
    rate: "1gbit",
    loss: 2,
    expose: true,
    cacheBytes: "1G",
    accessLog: true,
    scheduler: "mh",
    weights: [1, 2, 3, 0, 1],
    tls: false,
    logDir: "/tmp/l",
    startTimeoutMs: 1500,
  });
  assert.equal(cluster("--expose", "--no-expose").expose, false);
  assert.equal("tls" in cluster(), false);
});

test("clusterOptionsFrom: whole numbers for --nodes, --clients, --workers and --weights", () => {
  throwsUsage(() => cluster("--workers", "1.5"), "--workers must be a whole number, got '1.5'");
  throwsUsage(() => cluster("--workers", "many"), "--workers must be a whole number, got 'many'");
  throwsUsage(() => cluster("--nodes", "2.5"), "--nodes must be a whole number, got '2.5'");
  throwsUsage(() => cluster("--clients", "two"), "--clients must be a whole number, got 'two'");
  throwsUsage(
    () => cluster("--weights", "1,x"),
    "--weights must be whole numbers separated by commas, got '1,x'",
  );
  throwsUsage(
    () => cluster("--weights", "1,-1"),
    "--weights must be whole numbers separated by commas, got '1,-1'",
  );
});

test("dashboardHostNames: host names, lower case; anything else refused", () => {
  const values = (...names: string[]) => parse(...names.flatMap((n) => ["--dashboard-host", n])).values;
  assert.deepEqual(dashboardHostNames(values()), []);
  assert.deepEqual(dashboardHostNames(values("Dash.Example.org", "lab-1")), ["dash.example.org", "lab-1"]);
  throwsUsage(() => dashboardHostNames(values("a b")), "--dashboard-host must be a host name, got 'a b'");
});

test("downCommand names the prefix unless it is the default", () => {
  assert.equal(downCommand(DEFAULT_PREFIX), "sc-cluster down");
  assert.equal(downCommand("lab-"), "sc-cluster down --prefix lab-");
});
