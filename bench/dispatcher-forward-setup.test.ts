import { test } from "node:test";
import assert from "node:assert/strict";
import {
  dispatcherArgs,
  e2eFigures,
  generatorArgs,
  parseOptions,
  type Stats,
  type WindowSample,
} from "./dispatcher-forward-setup.js";

test("dispatcher-forward options: the defaults, the caps, the generator role's flags skipped", () => {
  const d = parseOptions([]);
  assert.deepEqual(
    [d.mode, d.ingress, d.sink, d.seconds, d.packets, d.size, d.conns, d.workers, d.generators, d.json],
    ["all", "local", "drop", 5, 20_000_000, 100, 4096, [1], 1, false],
  );
  const o = parseOptions([
    "--seconds",
    "600",
    "--conns",
    "99999",
    "--workers",
    "1,2",
    "--role",
    "gen",
    "--json",
  ]);
  assert.deepEqual([o.seconds, o.conns, o.workers, o.json], [60, 60_000, [1, 2], true]);
  assert.equal(parseOptions(["--generators", "20", "--gen-segments", "2.6"]).generators, 8);
  assert.equal(parseOptions(["--gen-segments", "2.6"]).genSegments, 3);
});

test("dispatcher-forward options: what is refused, with the message that says why", () => {
  assert.throws(() => parseOptions(["--mode", "tcp"]), /--mode all\|pure\|tun\|udp\|udp-nogso\|raw/);
  assert.throws(() => parseOptions(["--sink", "x"]), /--sink drop\|nodes/);
  assert.throws(() => parseOptions(["--seconds", "0"]), /--seconds needs a positive number/);
  assert.throws(() => parseOptions(["--workers", "1,17"]), /worker counts 1\.\.16/);
  assert.throws(() => parseOptions(["--size", "20"]), /--size must be 40\.\.1500/);
  assert.throws(() => parseOptions(["--fast"]), /unknown option --fast/);
});

test("dispatcherArgs: udp-nogso is udp without GSO; every node, the connection table, the workers", () => {
  const args = dispatcherArgs({ scheduler: "mh" }, "udp-nogso", 2);
  assert.deepEqual(args.slice(0, 8), [
    "dispatcher",
    "--scheduler",
    "mh",
    "--output",
    "udp",
    "--no-udp-gso",
    "--admin",
    "198.18.0.1:9100",
  ]);
  assert.deepEqual(args.slice(8, 14), [
    "--node",
    "node1=198.18.0.11",
    "--node",
    "node2=198.18.0.12",
    "--node",
    "node3=198.18.0.13",
  ]);
  assert.deepEqual(args.slice(-2), ["--workers", "2"]);
  assert.ok(!dispatcherArgs({ scheduler: "mh" }, "tun", 1).includes("--no-udp-gso"));
});

test("generatorArgs: the run's bounds and packets, and this generator's index among them", () => {
  const o = parseOptions(["--seconds", "3", "--generators", "2", "--gen-segments", "4", "--size", "200"]);
  const args = generatorArgs(o, 1);
  const flag = (name: string) => args[args.indexOf(name) + 1];
  assert.equal(args[0], "--role");
  assert.deepEqual(
    ["--seconds", "--packets", "--size", "--conns", "--generators", "--gen-index", "--gen-segments"].map(
      flag,
    ),
    ["3", "20000000", "200", "4096", "2", "1", "4"],
  );
  // The generator reads its own arguments back.
  assert.equal(parseOptions(args).genIndex, 1);
});

function sample(
  forwarded: number,
  ticks: [number, number],
  sink: number,
  udp?: [number, number],
): WindowSample {
  const stats: Stats = {
    packets: { forwarded, received: forwarded },
    drops: { full: forwarded / 1000, bad: 0 },
    io: {
      tun: { packetsIn: forwarded, batchesIn: forwarded / 50 },
      ...(udp ? { udp: { packetsOut: udp[0], sendCalls: udp[1] } } : {}),
    },
  };
  const threads = new Map([["101", { name: "node", ticks: ticks[0] + ticks[1] }]]);
  return { stats, cpu: ticks, threads, sinkPackets: sink };
}

test("e2eFigures: packets per second and per core from the window's counters and CPU ticks", () => {
  const setup = { output: "udp", workers: 1, ingress: "local" as const, sink: "drop" as const };
  const r = e2eFigures(
    setup,
    sample(100_000, [1000, 500], 0, [100, 10]),
    sample(1_100_000, [1150, 550], 900_000, [1100, 60]),
    2,
    600_000,
  );
  assert.equal(r.forwardedPps, 500_000);
  assert.equal(r.cpuPercent, 100); // 2 s of CPU (200 ticks) in 2 s
  assert.equal(r.systemShare, 0.25);
  assert.equal(r.ppsPerCore, 500_000);
  assert.equal(r.meanBatch, 50);
  assert.equal(r.datagramsPerSend, 20);
  assert.deepEqual([r.offeredPps, r.sinkPps, r.windowSeconds], [600_000, 450_000, 2]);
  assert.deepEqual(r.drops, { full: 1100 });
  assert.deepEqual(r.threads, ["node 101: 100%"]);
  assert.ok(!("perWorkerPackets" in r));
  const tun = e2eFigures({ ...setup, output: "tun" }, sample(0, [0, 0], 0), sample(10, [1, 1], 10), 1, 10);
  assert.ok(!("datagramsPerSend" in tun));
});
