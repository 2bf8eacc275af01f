// `sc-cluster dispatcher`'s option values as the L4 configuration or the LARD options, what a
// SIGHUP changes, and the "ready" line (dispatcher-config.ts, no I/O).
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCommand } from "../common/args.js";
import { throwsUsage } from "./testing.js";
import { ipv4FromString, isWireError } from "../sc/wire/index.js";
import { MAX_WORKERS } from "../dispatcher/service.js";
import { command } from "./dispatcher.js";
import {
  dispatcherOptionsFrom,
  readyRecord,
  reloadFrom,
  type DispatcherOptions,
} from "./dispatcher-config.js";

const options = (...args: string[]) => dispatcherOptionsFrom(parseCommand(command.spec, args).values);
const N1 = ["--node", "n1=198.18.0.11"];

function ip(text: string): number {
  const a = ipv4FromString(text);
  if (isWireError(a)) throw new Error(text);
  return a;
}

function l4(o: DispatcherOptions) {
  assert.equal(o.mode, "l4");
  if (o.mode !== "l4") throw new Error("not l4");
  return o.config;
}

function lard(o: DispatcherOptions) {
  assert.equal(o.mode, "lard");
  if (o.mode !== "lard") throw new Error("not lard");
  return o.lard;
}

const usage = (message: string | RegExp, ...args: string[]) => throwsUsage(() => options(...args), message);

test("defaults: L4 forwarding on port 80 of the VIP, wlc, the table and timeouts of the option table", () => {
  assert.deepEqual(options(...N1), {
    adminListen: { host: "127.0.0.1", port: 9100 },
    mode: "l4",
    config: {
      vip: ip("198.18.100.1"),
      scheduler: "wlc",
      output: "tun",
      guePort: 6080,
      variant: 0,
      nodes: [{ id: "n1", addr: ip("198.18.0.11"), port: 6080, weight: 1 }],
      port: 80,
      tun: "sctun",
      source: undefined,
      udpChecksum: false,
      udpGso: true,
      maxConnections: 1_048_576,
      maxHalfOpen: undefined,
      timeouts: {
        established: 900_000,
        synRecv: 60_000,
        synRecvUnderLoad: 5_000,
        finWait: 120_000,
        timeWait: 120_000,
        close: 10_000,
      },
      deadGraceMs: 60_000,
      stateFile: undefined,
      health: { intervalMs: 1000, timeoutMs: 500, fall: 2, rise: 2 },
    },
  });
});

test("L4: each option converted (ports, addresses, seconds to ms, GUE, workers, table)", () => {
  const c = l4(
    options(
      ...["--node", "a=198.18.1.1:7000,weight=3", "--node", "b=198.18.1.2", "--gue-port", "6999"],
      ...["--port", "80,443", "--vip", "198.18.9.9", "--source", "198.18.0.254", "--scheduler", "mh"],
      ...["--output", "udp", "--gue-variant", "1", "--udp-checksum", "--no-udp-gso", "--workers", "4"],
      ...["--max-conns", "1000", "--max-half-open", "100", "--timeout-established", "30"],
      ...["--timeout-syn", "2", "--timeout-syn-flood", "1", "--timeout-fin", "3", "--timeout-close", "4"],
      ...["--dead-grace", "0", "--state-file", "/run/d.state", "--health-interval", "250"],
      ...["--health-timeout", "100", "--health-fall", "3", "--health-rise", "5", "--tun", "dtun"],
    ),
  );
  assert.deepEqual(c.nodes, [
    { id: "a", addr: ip("198.18.1.1"), port: 7000, weight: 3 },
    { id: "b", addr: ip("198.18.1.2"), port: 6999, weight: 1 },
  ]);
  assert.deepEqual(
    [c.port, c.extraPorts, c.vip, c.source],
    [80, [443], ip("198.18.9.9"), ip("198.18.0.254")],
  );
  assert.deepEqual(
    [c.scheduler, c.output, c.variant, c.udpChecksum, c.udpGso],
    ["mh", "udp", 1, true, false],
  );
  assert.deepEqual([c.workers, c.maxConnections, c.maxHalfOpen, c.tun], [4, 1000, 100, "dtun"]);
  assert.deepEqual(c.timeouts, {
    established: 30_000,
    synRecv: 2_000,
    synRecvUnderLoad: 1_000,
    finWait: 3_000,
    timeWait: 3_000,
    close: 4_000,
  });
  assert.deepEqual([c.deadGraceMs, c.stateFile], [0, "/run/d.state"]);
  assert.deepEqual(c.health, { intervalMs: 250, timeoutMs: 100, fall: 3, rise: 5 });
  assert.equal("workers" in l4(options(...N1)), false);
  assert.equal("extraPorts" in l4(options(...N1)), false);
});

test("bad values name their option", () => {
  usage(/^--scheduler must be one of rr, wrr, lc, wlc, sh, mh, got 'fifo'$/, ...N1, "--scheduler", "fifo");
  usage("--output must be tun, udp or raw, got 'pcap'", ...N1, "--output", "pcap");
  usage("--gue-variant must be 0 or 1, got '2'", ...N1, "--gue-variant", "2");
  usage("--gue-port must be between 1 and 65535, got 0", ...N1, "--gue-port", "0");
  usage(/^--node 'n1'/, "--node", "n1");
  usage("--node: id 'n1' given twice", ...N1, "--node", "n1=198.18.0.12");
  usage("--admin must be ADDR:PORT, got '9100'", ...N1, "--admin", "9100");
  usage("--mode must be l4 or lard, got 'l7'", ...N1, "--mode", "l7");
  usage("--port: 80 given twice", ...N1, "--port", "80,80");
  usage("--vip must be an IPv4 address, got 'vip.example'", ...N1, "--vip", "vip.example");
  usage("--source must be an IPv4 address, got '10.0.0'", ...N1, "--source", "10.0.0");
  usage(`--workers must be between 1 and ${MAX_WORKERS}, got 0`, ...N1, "--workers", "0");
  usage(
    "--max-half-open must be between 1 and 10, got 11",
    ...N1,
    "--max-conns",
    "10",
    "--max-half-open",
    "11",
  );
  usage("--timeout-fin must be between 1 and 31536000, got 0", ...N1, "--timeout-fin", "0");
  usage("--health-timeout must be between 10 and 60000, got 5", ...N1, "--health-timeout", "5");
});

test("the first bad option in the order they were always checked is the one reported", () => {
  usage(/^--scheduler/, "--scheduler", "x", "--output", "x", "--mode", "x");
  usage(/^--output/, "--output", "x", "--mode", "x");
  usage(/^--mode/, "--mode", "x", "--max-conns", "0");
});

test("--mode lard: one port, no --workers, T_low below T_high, the node list kept whole", () => {
  assert.deepEqual(
    lard(
      options(
        "--mode",
        "lard",
        "--node",
        "a=198.18.1.1,weight=0",
        "--source",
        "198.18.1.9",
        "--lard-t-low",
        "5",
      ),
    ),
    {
      health: { intervalMs: 1000, timeoutMs: 500, fall: 2, rise: 2 },
      vip: "198.18.100.1",
      port: 80,
      tun: "sctun",
      nodes: [{ id: "a", addr: ip("198.18.1.1"), port: 6080, weight: 0 }],
      source: "198.18.1.9",
      tLow: 5,
      tHigh: 65,
    },
  );
  assert.equal(lard(options("--mode", "lard")).source, undefined);
  usage(
    "--mode lard serves one port (its front-end parses HTTP; HTTPS is not supported)",
    ...["--mode", "lard", "--port", "80,443"],
  );
  usage("--workers is for --mode l4 only", "--mode", "lard", "--workers", "2");
  usage("--lard-t-high must be above --lard-t-low", "--mode", "lard", "--lard-t-low", "65");
  // L4's options are not read in lard mode.
  assert.equal(lard(options("--mode", "lard", "--max-conns", "0")).port, 80);
});

test("reloadFrom: the scheduler and the nodes to put and delete against the list in force", () => {
  const values = (...args: string[]) => parseCommand(command.spec, args).values;
  const before = [
    { id: "a", addr: ip("198.18.1.1"), port: 6080, weight: 1 },
    { id: "b", addr: ip("198.18.1.2"), port: 6080, weight: 1 },
  ];
  const r = reloadFrom(
    values(
      "--scheduler",
      "rr",
      "--node",
      "a=198.18.1.1",
      "--node",
      "b=198.18.1.2,weight=2",
      "--node",
      "c=198.18.1.3",
    ),
    before,
  );
  assert.equal(r.scheduler, "rr");
  assert.deepEqual(
    r.put.map((n) => [n.id, n.weight]),
    [
      ["b", 2],
      ["c", 1],
    ],
  );
  assert.deepEqual(r.remove, []);
  assert.deepEqual(
    r.nodes.map((n) => n.id),
    ["a", "b", "c"],
  );
  const gone = reloadFrom(values("--node", "b=198.18.1.2"), before);
  assert.deepEqual([gone.scheduler, gone.put, gone.remove], ["wlc", [], ["a"]]);
  assert.throws(() => reloadFrom(values("--scheduler", "x"), before), /--scheduler must be one of/);
  assert.throws(() => reloadFrom(values("--node", "a"), before), /--node 'a'/);
  throwsUsage(
    () => reloadFrom(values("--node", "a=198.18.1.1", "--node", "a=198.18.1.9"), before),
    /id 'a' given twice/,
  );
});

test("readyRecord: where the dispatcher forwards, and each node's address, port, weight and admin URL", () => {
  const node = { id: "n1", addr: "198.18.0.11", port: 6080, weight: 2, admin: null, healthy: true };
  const line = readyRecord(
    {
      vip: "198.18.100.1",
      port: 80,
      scheduler: "mh",
      nodes: [node],
      io: { source: "198.18.0.1", packets: 3 },
    },
    { output: "udp", workers: 2, tun: "sctun", admin: "http://127.0.0.1:9100", pid: 42 },
  );
  assert.deepEqual(line, {
    ready: true,
    pid: 42,
    vip: "198.18.100.1",
    port: 80,
    scheduler: "mh",
    output: "udp",
    workers: 2,
    tun: "sctun",
    source: "198.18.0.1",
    admin: "http://127.0.0.1:9100",
    nodes: [{ id: "n1", addr: "198.18.0.11", port: 6080, weight: 2, admin: null }],
  });
});
