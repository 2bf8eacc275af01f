// The cluster plan: every argument the launcher passes, option checks, defaults.
import { test } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { planTestbed } from "../testbed/topology.js";
import { hostScript } from "../testbed/scripts.js";
import {
  ClusterOptionError,
  DEFAULT_CACHE_BYTES,
  checkClusterOptions,
  checkExtraArgs,
  checkGueSupport,
  checkModeWorkers,
  checkNodeCount,
  checkWeights,
  checkWorkerCount,
  clusterDir,
  dispatcherNodeSpec,
  parseByteSize,
  peerArgs,
  planCluster,
  planLayout,
  planTls,
  withExtraArgs,
  type Capabilities,
  type ProcessPlan,
} from "./plan.js";

const CAPS: Capabilities = {
  modes: ["local", "sc"],
  schedulers: ["rr", "wrr", "lc", "wlc", "sh", "mh"],
  nodeOptions: [
    "stack",
    "tun",
    "vip",
    "port",
    "origin",
    "admin",
    "node-id",
    "mode",
    "cache-bytes",
    "gue-port",
    "gue-allow",
    "peer",
  ],
};

/** The value after `flag` in args (asserting it is there once). */
function arg(p: ProcessPlan, flag: string): string {
  const at = p.args.indexOf(flag);
  assert.ok(at >= 0, `${p.host}: ${flag} missing in ${p.args.join(" ")}`);
  assert.equal(p.args.indexOf(flag, at + 1), -1, `${p.host}: ${flag} twice`);
  return p.args[at + 1]!;
}

function all(p: ProcessPlan, flag: string): string[] {
  return p.args.flatMap((a, i) => (a === flag ? [p.args[i + 1]!] : []));
}

test("default plan: origin, node1..3 on our stack with GUE, then the dispatcher with every node", () => {
  const plan = planCluster({ stateDir: "/tmp/st" }, CAPS);
  assert.equal(plan.prefix, "sc-");
  assert.deepEqual(
    plan.processes.map((p) => [p.host, p.role]),
    [
      ["origin", "origin"],
      ["node1", "node"],
      ["node2", "node"],
      ["node3", "node"],
      ["dispatcher", "dispatcher"],
    ],
  );
  const [origin, node1, , node3, dispatcher] = plan.processes as [ProcessPlan, ...ProcessPlan[]];
  assert.equal(origin.args[0], "origin");
  assert.equal(arg(origin, "--listen"), "198.18.0.2:8000");
  assert.equal(arg(origin, "--root"), "/tmp/st/sc-/demo-site/root");
  assert.equal(origin.admin, undefined);
  assert.deepEqual(origin.ready, { url: "http://198.18.0.2:8000/", expect: "any" });

  assert.equal(node1!.args[0], "node");
  assert.equal(arg(node1!, "--stack"), "user");
  assert.equal(arg(node1!, "--tun"), "sctun");
  assert.equal(arg(node1!, "--vip"), "198.18.100.1");
  assert.equal(arg(node1!, "--port"), "80");
  assert.equal(arg(node1!, "--gue-port"), "6080");
  // GUE from the dispatcher's address only (the members are allowed by --peer).
  assert.equal(arg(node1!, "--gue-allow"), "198.18.0.1");
  assert.equal(arg(node1!, "--origin"), "http://198.18.0.2:8000");
  assert.equal(arg(node1!, "--admin"), "198.18.0.11:9080");
  assert.equal(arg(node1!, "--node-id"), "node1");
  assert.equal(arg(node1!, "--mode"), "local");
  assert.equal(arg(node1!, "--cache-bytes"), String(DEFAULT_CACHE_BYTES));
  assert.deepEqual(all(node1!, "--peer"), ["node1=198.18.0.11", "node2=198.18.0.12", "node3=198.18.0.13"]);
  assert.equal(node3!.admin, "http://198.18.0.13:9080");
  assert.deepEqual(node3!.ready, { url: "http://198.18.0.13:9080/healthz", expect: 200 });
  assert.equal(node3!.log, "/tmp/st/sc-/node3.log");

  assert.equal(dispatcher!.args[0], "dispatcher");
  assert.equal(arg(dispatcher!, "--vip"), "198.18.100.1");
  assert.equal(arg(dispatcher!, "--port"), "80");
  assert.equal(arg(dispatcher!, "--tun"), "sctun");
  assert.equal(arg(dispatcher!, "--scheduler"), "wlc");
  assert.equal(arg(dispatcher!, "--admin"), "198.18.0.1:9100");
  assert.equal(arg(dispatcher!, "--source"), "198.18.0.1", "the address the nodes take GUE from");
  assert.deepEqual(all(dispatcher!, "--node"), [
    "node1=198.18.0.11:6080,admin=http://198.18.0.11:9080",
    "node2=198.18.0.12:6080,admin=http://198.18.0.12:9080",
    "node3=198.18.0.13:6080,admin=http://198.18.0.13:9080",
  ]);
  assert.equal(dispatcher!.admin, "http://198.18.0.1:9100");

  assert.equal(plan.vipUrl, "http://198.18.100.1/");
  assert.equal(plan.originUrl, "http://198.18.0.2:8000");
  assert.equal(plan.dir, "/tmp/st/sc-");
  assert.equal(plan.logDir, "/tmp/st/sc-");
  assert.equal(plan.demoSite, true);
  assert.equal(plan.testbed.nodes, 3);
  assert.equal(plan.testbed.vipHost, "dispatcher");
});

test("options reach the processes: nodes, mode, cache, scheduler, weights, site, logs, testbed", () => {
  const plan = planCluster(
    {
      prefix: "t1-",
      nodes: 2,
      mode: "sc",
      cacheBytes: "64M",
      scheduler: "wrr",
      weights: [3, 0],
      site: "rel/site",
      logDir: "/tmp/logs",
      rate: "100mbit",
      loss: 1,
      expose: true,
      clients: 2,
      stateDir: "/tmp/st",
    },
    CAPS,
  );
  const nodes = plan.processes.filter((p) => p.role === "node");
  assert.equal(nodes.length, 2);
  for (const n of nodes) {
    assert.equal(arg(n, "--mode"), "sc");
    assert.equal(arg(n, "--cache-bytes"), String(64 * 1024 * 1024));
  }
  const d = plan.processes.at(-1)!;
  assert.equal(arg(d, "--scheduler"), "wrr");
  assert.deepEqual(all(d, "--node"), [
    "node1=198.18.0.11:6080,weight=3,admin=http://198.18.0.11:9080",
    "node2=198.18.0.12:6080,weight=0,admin=http://198.18.0.12:9080",
  ]);
  assert.equal(arg(plan.processes[0]!, "--root"), resolve("rel/site"));
  assert.equal(plan.demoSite, false);
  assert.equal(plan.logDir, "/tmp/logs");
  assert.equal(plan.processes[1]!.log, "/tmp/logs/node1.log");
  assert.equal(plan.dir, "/tmp/st/t1-");
  assert.deepEqual(
    [plan.testbed.rate, plan.testbed.loss, plan.testbed.expose, plan.testbed.clients],
    ["100mbit", 1, true, 2],
  );
});

test("--access-log: every node logs to <log-dir>/<host>.access.log; none without it", () => {
  const plan = planCluster({ nodes: 2, logDir: "/tmp/logs", accessLog: true }, CAPS);
  const nodes = plan.processes.filter((p) => p.args.includes("node"));
  assert.equal(nodes.length, 2);
  for (const [k, p] of nodes.entries()) {
    const i = p.args.indexOf("--access-log");
    assert.equal(p.args[i + 1], `/tmp/logs/node${k + 1}.access.log`);
  }
  const plain = planCluster({ nodes: 2 }, CAPS);
  assert.ok(plain.processes.every((p) => !p.args.includes("--access-log")));
});

test("extra arguments go after the launcher's, the role's before the host's", () => {
  const plan = planCluster(
    {
      nodes: 2,
      extraArgs: { node: ["--log-level", "debug"], node2: ["--tun", "x"], dispatcher: ["--max-conns", "99"] },
    },
    CAPS,
  );
  const [, n1, n2, d] = plan.processes;
  assert.deepEqual(n1!.args.slice(-2), ["--log-level", "debug"]);
  assert.deepEqual(n2!.args.slice(-4), ["--log-level", "debug", "--tun", "x"]);
  assert.deepEqual(d!.args.slice(-2), ["--max-conns", "99"]);
  assert.throws(() => planCluster({ nodes: 2, extraArgs: { node3: [] } }, CAPS), ClusterOptionError);
  assert.throws(() => planCluster({ extraArgs: { client: [] } }, CAPS), ClusterOptionError);
});

test("bad options are refused with a clear message", () => {
  const bad: [Parameters<typeof planCluster>[0], RegExp][] = [
    [{ nodes: 0 }, /nodes must be a whole number from 1 to 60/],
    [{ nodes: 61 }, /from 1 to 60/],
    [{ nodes: 2.5 }, /whole number/],
    [{ mode: "cf-lru" }, /mode must be one the node supports \(local, sc\), got 'cf-lru'/],
    [{ scheduler: "random" }, /scheduler must be one of rr, wrr, lc, wlc, sh, mh/],
    [{ cacheBytes: "0" }, /cache size must be positive/],
    [{ cacheBytes: "12 parsecs" }, /byte size like/],
    [{ cacheBytes: -5 }, /positive/],
    [{ nodes: 2, weights: [1] }, /one weight per node: 2 nodes, 1 weights/],
    [{ nodes: 2, weights: [0, 0] }, /at least one node/],
    [{ nodes: 1, weights: [70000] }, /0 to 65535/],
    [{ site: " " }, /site must name a directory/],
    [{ startTimeoutMs: 0 }, /startTimeoutMs/],
  ];
  for (const [opts, re] of bad) assert.throws(() => planCluster(opts, CAPS), re, JSON.stringify(opts));
  // The testbed's own checks apply too (prefix, rate).
  assert.throws(() => planCluster({ prefix: "way-too-long-prefix" }, CAPS), /prefix/);
  assert.throws(() => planCluster({ rate: "fast" }, CAPS), /rate must look like/);
});

test("a node without GUE input is refused before anything starts", () => {
  const caps = { ...CAPS, nodeOptions: CAPS.nodeOptions.filter((o) => o !== "gue-port") };
  assert.throws(() => planCluster({}, caps), /no GUE input \(--gue-port\)/);
  const noAllow = { ...CAPS, nodeOptions: CAPS.nodeOptions.filter((o) => o !== "gue-allow") };
  assert.throws(() => planCluster({}, noAllow), /no GUE allow-list \(--gue-allow\)/);
});

test("peers are passed only to a node that takes them", () => {
  const caps = { ...CAPS, nodeOptions: CAPS.nodeOptions.filter((o) => o !== "peer") };
  const plan = planCluster({ nodes: 2 }, caps);
  assert.equal(plan.processes[1]!.args.includes("--peer"), false);
});

test("byte sizes", () => {
  assert.equal(parseByteSize("65536"), 65536);
  assert.equal(parseByteSize("64K"), 65536);
  assert.equal(parseByteSize("256m"), 256 * 1024 ** 2);
  assert.equal(parseByteSize("1GiB"), 1024 ** 3);
  assert.equal(parseByteSize(1000), 1000);
  assert.throws(() => parseByteSize("1.5M"), ClusterOptionError);
  assert.throws(() => parseByteSize(0.5), ClusterOptionError);
});

test("the cluster directory sits beside the testbed's state file", () => {
  assert.equal(clusterDir("sc-", "/run/sc-cluster"), "/run/sc-cluster/sc-");
  const saved = process.env.SC_CLUSTER_STATE_DIR;
  process.env.SC_CLUSTER_STATE_DIR = "/tmp/elsewhere";
  try {
    assert.equal(clusterDir("p-"), "/tmp/elsewhere/p-");
  } finally {
    if (saved === undefined) delete process.env.SC_CLUSTER_STATE_DIR;
    else process.env.SC_CLUSTER_STATE_DIR = saved;
  }
});

test("HTTPS: nodes get the demo certificate and port 443, the dispatcher balances 80 and 443; lard and old nodes stay HTTP", () => {
  const caps = { ...CAPS, modes: [...CAPS.modes, "lard"], nodeOptions: [...CAPS.nodeOptions, "tls-cert"] };
  const plan = planCluster({ nodes: 2, stateDir: "/tmp/st" }, caps);
  assert.deepEqual(plan.tls, {
    dir: "/tmp/st/sc-/tls",
    caCert: "/tmp/st/sc-/tls/ca.crt",
    cert: "/tmp/st/sc-/tls/server.crt",
    key: "/tmp/st/sc-/tls/server.key",
    url: "https://198.18.100.1/",
  });
  const node1 = plan.processes.find((p) => p.host === "node1")!;
  assert.equal(arg(node1, "--tls-cert"), "/tmp/st/sc-/tls/server.crt");
  assert.equal(arg(node1, "--tls-key"), "/tmp/st/sc-/tls/server.key");
  assert.equal(arg(node1, "--tls-port"), "443");
  assert.equal(arg(node1, "--port"), "80");
  const dispatcher = plan.processes.find((p) => p.host === "dispatcher")!;
  assert.equal(arg(dispatcher, "--port"), "80,443");

  const off = planCluster({ nodes: 2, stateDir: "/tmp/st", tls: false }, caps);
  assert.equal(off.tls, null);
  assert.equal(
    arg(
      off.processes.find((p) => p.host === "dispatcher")!,
      "--port",
    ),
    "80",
  );
  assert.ok(!off.processes.some((p) => p.args.includes("--tls-cert")));
  assert.equal(planCluster({ nodes: 2, stateDir: "/tmp/st", mode: "lard" }, caps).tls, null);
  assert.throws(
    () => planCluster({ nodes: 2, mode: "lard", tls: true }, caps),
    /not supported with mode lard/,
  );
  // A node without --tls-cert: HTTP only by default, an error when HTTPS is asked for.
  assert.equal(planCluster({ nodes: 2 }, CAPS).tls, null);
  assert.throws(() => planCluster({ nodes: 2, tls: true }, CAPS), /no --tls-cert/);
});

test("checkClusterOptions: defaults resolved; the first mistake in the options' order is the one reported", () => {
  const s = checkClusterOptions({}, CAPS);
  assert.deepEqual(
    [s.prefix, s.nodes, s.mode, s.scheduler, s.cacheBytes, s.weights, s.extraArgs],
    ["sc-", 3, "local", "wlc", DEFAULT_CACHE_BYTES, [1, 1, 1], {}],
  );
  assert.equal(s.testbed.nodes, 3);
  // Several mistakes at once: nodes before mode, mode before scheduler, scheduler before weights.
  assert.throws(() => checkClusterOptions({ nodes: 0, mode: "x" }, CAPS), /nodes must be/);
  assert.throws(() => checkClusterOptions({ mode: "x", scheduler: "y" }, CAPS), /mode must be/);
  assert.throws(() => checkClusterOptions({ scheduler: "y", weights: [1] }, CAPS), /scheduler must be/);
  assert.throws(
    () => checkClusterOptions({ weights: [1], site: "", extraArgs: { client: [] } }, CAPS),
    /one weight per node/,
  );
  assert.throws(() => checkClusterOptions({ site: "", extraArgs: { client: [] } }, CAPS), /site must name/);
});

test("checkNodeCount: whole numbers from 1 to 60", () => {
  assert.equal(checkNodeCount(1), 1);
  assert.equal(checkNodeCount(60), 60);
  for (const bad of [0, 61, 2.5, NaN])
    assert.throws(() => checkNodeCount(bad), ClusterOptionError, String(bad));
});

test("checkGueSupport: both GUE options are needed", () => {
  assert.doesNotThrow(() => checkGueSupport(CAPS));
  assert.throws(() => checkGueSupport({ ...CAPS, nodeOptions: ["gue-allow"] }), /--gue-port/);
  assert.throws(() => checkGueSupport({ ...CAPS, nodeOptions: ["gue-port"] }), /--gue-allow/);
});

test("checkWeights: one per node, 0..65535, at least one above 0; the count is checked first", () => {
  assert.deepEqual(checkWeights([0, 65535], 2), [0, 65535]);
  assert.throws(() => checkWeights([70000], 2), /2 nodes, 1 weights/);
  assert.throws(() => checkWeights([1, -1], 2), /got -1/);
  assert.throws(() => checkWeights([1, 1.5], 2), /got 1.5/);
  assert.throws(() => checkWeights([0, 0], 2), /at least one node/);
});

test("checkExtraArgs: roles and server hosts of this testbed only", () => {
  const tb = planTestbed({ nodes: 2, clients: 2 });
  const ok = { node: ["a"], origin: [], dispatcher: [], node2: ["b"] };
  assert.equal(checkExtraArgs(ok, tb), ok);
  for (const key of ["node3", "client", "client2", "switch"])
    assert.throws(() => checkExtraArgs({ [key]: [] }, tb), new RegExp(`'${key}' is neither`));
});

test("planLayout: the cluster directory holds the secret and the demo site; logs and site resolved", () => {
  assert.deepEqual(planLayout("p-", { stateDir: "/st" }), {
    dir: "/st/p-",
    secretFile: "/st/p-/cluster.secret",
    logDir: "/st/p-",
    site: "/st/p-/demo-site/root",
    demoDir: "/st/p-/demo-site",
    originUrl: "http://198.18.0.2:8000",
  });
  const given = planLayout("p-", { stateDir: "/st", logDir: "logs", site: "/srv/www" });
  assert.equal(given.logDir, resolve("logs"));
  assert.equal(given.site, "/srv/www");
  assert.equal(given.demoDir, "/st/p-/demo-site");
});

test("planTls: on by default where it can be, off when asked or impossible, an error when asked for and impossible", () => {
  const tlsCaps = { ...CAPS, nodeOptions: [...CAPS.nodeOptions, "tls-cert"] };
  const on = planTls(undefined, "sc", tlsCaps, "/d");
  assert.deepEqual(on, {
    dir: "/d/tls",
    caCert: "/d/tls/ca.crt",
    cert: "/d/tls/server.crt",
    key: "/d/tls/server.key",
    url: "https://198.18.100.1/",
  });
  assert.deepEqual(planTls(true, "sc", tlsCaps, "/d"), on);
  assert.equal(planTls(false, "sc", tlsCaps, "/d"), null);
  assert.equal(planTls(undefined, "lard", tlsCaps, "/d"), null);
  assert.equal(planTls(undefined, "sc", CAPS, "/d"), null);
  assert.throws(() => planTls(true, "lard", tlsCaps, "/d"), /mode lard/);
  assert.throws(() => planTls(true, "sc", CAPS, "/d"), /no --tls-cert/);
});

test("withExtraArgs: the role's after the launcher's, the host's last, a role's own host not twice", () => {
  const extra = { node: ["-r"], node2: ["-h"], origin: ["-o"] };
  assert.deepEqual(withExtraArgs(extra, "node", "node2", ["node"]), ["node", "-r", "-h"]);
  assert.deepEqual(withExtraArgs(extra, "node", "node1", ["node"]), ["node", "-r"]);
  assert.deepEqual(withExtraArgs(extra, "origin", "origin", ["origin"]), ["origin", "-o"]);
  assert.deepEqual(withExtraArgs({}, "dispatcher", "dispatcher", ["d"]), ["d"]);
});

test("the dispatcher's node specs name the weight only when it is not 1; peers name every node", () => {
  assert.equal(dispatcherNodeSpec(2, 1), "node2=198.18.0.12:6080,admin=http://198.18.0.12:9080");
  assert.equal(dispatcherNodeSpec(1, 0), "node1=198.18.0.11:6080,weight=0,admin=http://198.18.0.11:9080");
  assert.deepEqual(peerArgs(2), ["--peer", "node1=198.18.0.11", "--peer", "node2=198.18.0.12"]);
});

const WORKER_CAPS: Capabilities = {
  ...CAPS,
  modes: [...CAPS.modes, "cf-lru", "lard"],
  nodeOptions: [...CAPS.nodeOptions, "workers"],
  maxNodeWorkers: 64,
};

/** The TUN line of a host's testbed script (what `up` runs to make its device). */
function tunScript(plan: ReturnType<typeof planCluster>, host: string): string | undefined {
  const h = plan.testbed.hosts.find((x) => x.name === host);
  assert.ok(h, host);
  return hostScript(plan.testbed, h)
    .split("\n")
    .find((l) => l.startsWith("ip tuntap"));
}

function byHost(plan: ReturnType<typeof planCluster>, host: string): ProcessPlan {
  const p = plan.processes.find((x) => x.host === host);
  assert.ok(p, host);
  return p;
}

test("workers 1 (the default): single-queue TUNs, no --workers, the dispatcher keeps its UDP GSO default", () => {
  for (const plan of [
    planCluster({ nodes: 2, stateDir: "/tmp/st" }, WORKER_CAPS),
    planCluster({ nodes: 2, stateDir: "/tmp/st", workers: 1 }, WORKER_CAPS),
  ]) {
    assert.equal(plan.workers, 1);
    assert.equal(plan.testbed.multiQueueTun, false);
    for (const host of ["node1", "node2", "dispatcher"])
      assert.equal(tunScript(plan, host), "ip tuntap add dev sctun mode tun", host);
    for (const p of plan.processes) {
      assert.ok(!p.args.includes("--workers"), `${p.host}: ${p.args.join(" ")}`);
      assert.ok(!p.args.includes("--no-udp-gso"), `${p.host}: ${p.args.join(" ")}`);
    }
    assert.equal(all(byHost(plan, "node1"), "--peer").length, 2);
  }
});

test("workers 2: multi-queue node TUNs made by the testbed, every node --workers 2, the dispatcher --no-udp-gso", () => {
  for (const mode of ["local", "sc", "cf-lru"]) {
    const plan = planCluster({ nodes: 2, stateDir: "/tmp/st", workers: 2, mode }, WORKER_CAPS);
    assert.equal(plan.workers, 2);
    assert.equal(plan.testbed.multiQueueTun, true);
    assert.equal(tunScript(plan, "node1"), "ip tuntap add dev sctun mode tun multi_queue");
    assert.equal(tunScript(plan, "node2"), "ip tuntap add dev sctun mode tun multi_queue");
    // The dispatcher's own TUN stays single-queue (it runs one data path here).
    assert.equal(tunScript(plan, "dispatcher"), "ip tuntap add dev sctun mode tun");
    for (const host of ["node1", "node2"]) {
      const node = byHost(plan, host);
      assert.equal(arg(node, "--workers"), "2", `${mode} ${host}`);
      assert.equal(arg(node, "--stack"), "user");
      assert.equal(arg(node, "--mode"), mode);
      // Every node knows the members (purges reach all of them; the cluster modes map to them).
      assert.equal(all(node, "--peer").length, 2, `${mode} ${host} --peer`);
    }
    const dispatcher = byHost(plan, "dispatcher");
    assert.ok(dispatcher.args.includes("--no-udp-gso"), dispatcher.args.join(" "));
    assert.ok(!dispatcher.args.includes("--workers"));
    assert.ok(!dispatcher.args.includes("--mode"), "l4, the dispatcher's default");
  }
  // The role's extra arguments still come after the launcher's (a benchmark's --output udp).
  const udp = planCluster(
    { nodes: 1, stateDir: "/tmp/st", workers: 3, extraArgs: { dispatcher: ["--output", "udp"] } },
    WORKER_CAPS,
  );
  const udpArgs = byHost(udp, "dispatcher").args;
  assert.deepEqual(udpArgs.slice(-2), ["--output", "udp"]);
  assert.ok(udpArgs.includes("--no-udp-gso"));
  assert.equal(arg(byHost(udp, "node1"), "--workers"), "3");
});

test("workers: a bad count, more than the node takes, a node without --workers and mode lard are clear errors", () => {
  for (const bad of [0, -1, 1.5, 65, Number.NaN])
    assert.throws(
      () => planCluster({ workers: bad }, WORKER_CAPS),
      (e: unknown) =>
        e instanceof ClusterOptionError && /workers must be a whole number from 1 to 64/.test(e.message),
      String(bad),
    );
  assert.equal(checkWorkerCount(64, WORKER_CAPS), 64);
  assert.throws(() => checkWorkerCount(2, CAPS), /has no data-path workers: workers must be 1, got 2/);
  assert.equal(checkWorkerCount(1, CAPS), 1);
  assert.throws(
    () => planCluster({ mode: "lard", workers: 2 }, WORKER_CAPS),
    /mode lard does not support node data-path workers/,
  );
  assert.doesNotThrow(() => checkModeWorkers("lard", 1));
  assert.equal(checkClusterOptions({ workers: 4 }, WORKER_CAPS).workers, 4);
});
