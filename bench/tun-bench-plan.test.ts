import { test } from "node:test";
import assert from "node:assert/strict";
import { parseOptions, segmentsPerWrite, total, tunReport, tunRounds, wrongSize } from "./tun-bench-plan.js";

test("tun-bench options: defaults, caps, and the sizes refused", () => {
  assert.deepEqual(parseOptions([]), {
    packets: 4_000_000,
    seconds: 10,
    size: 100,
    gso: 0,
    batch: 64,
    json: false,
  });
  const o = parseOptions([
    "--packets",
    "1e9",
    "--seconds",
    "90",
    "--batch",
    "5000",
    "--role",
    "reader",
    "--json",
  ]);
  assert.deepEqual([o.packets, o.seconds, o.batch, o.json], [50_000_000, 60, 1024, true]);
  assert.throws(() => parseOptions(["--size", "27"]), /--size must be 28\.\.1500/);
  assert.throws(() => parseOptions(["--gso", "1500"]), /--gso must be 1501\.\.65535/);
  assert.throws(() => parseOptions(["--batch", "1.5"]), /--batch needs a positive integer/);
  assert.throws(() => parseOptions(["--quick"]), /unknown option --quick/);
});

test("tunRounds: a saturated round fits sctB's queue; each phase gets half the packets, in writes", () => {
  // 100-byte packets: 64 MiB over 700 bytes each (the packet and the kernel's overhead).
  assert.deepEqual(tunRounds(parseOptions(["--packets", "1000000"])), {
    segs: 1,
    round: Math.floor((64 * 1024 * 1024) / 700),
    writesPerRound: Math.floor((64 * 1024 * 1024) / 700),
    writes: 500_000,
  });
  // 28-byte packets would fit more: a round is capped at 100,000.
  assert.equal(tunRounds(parseOptions(["--size", "28"])).round, 100_000);
  // GSO writes of 64,000 bytes: 44 segments of at most 1460 bytes each; rounds of 1500-byte reads.
  const gso = parseOptions(["--gso", "64000", "--packets", "1000"]);
  assert.equal(segmentsPerWrite(gso), 44);
  assert.deepEqual(tunRounds(gso), {
    segs: 44,
    round: Math.floor((64 * 1024 * 1024) / 2100),
    writesPerRound: Math.floor(Math.floor((64 * 1024 * 1024) / 2100) / 44),
    writes: 11,
  });
  assert.equal(tunRounds(parseOptions(["--gso", "64000", "--packets", "10"])).writes, 1);
});

test("total: the replies' counters summed key by key", () => {
  assert.deepEqual(
    total([
      { packets: 2, bytes: 10 },
      { packets: 3, drops: 1 },
    ]),
    { packets: 5, bytes: 10, drops: 1 },
  );
  assert.deepEqual(total([]), {});
});

test("tunReport: per phase the writer's and reader's rate per core, losses and drops; an error for wrong sizes", () => {
  const side = (packets: number, extra: Record<string, number>) => ({
    packets,
    bytes: packets * 100,
    cpuSeconds: 2,
    sysSeconds: 0.5,
    wallSeconds: 4,
    ...extra,
  });
  const f = {
    idle: { idleCpuMs: 0.25 },
    saturated: {
      write: side(2000, { drops: 3 }),
      read: side(1990, { batches: 40, wrongSize: 0 }),
      kernelDrops: 7,
    },
    concurrent: {
      write: side(1000, { drops: 0 }),
      read: side(1000, { batches: 0, wrongSize: 2 }),
      kernelDrops: 0,
    },
  };
  const opts = parseOptions([]);
  const lines = tunReport(opts, 1, f);
  assert.match(lines[0]!, /^tun-bench: 100-byte IPv4\/UDP packets written into sctA in batches of 64, /);
  assert.equal(
    lines[1],
    "  write (saturated)       1,000 packets/s per core, 0.00 Gbit/s per core  (2,000 in 2.00 s CPU, 25% in the kernel, 500/s wall, 3 write drops)",
  );
  assert.match(lines[2]!, /^ {2}read \(saturated\) .*, mean batch 49\.8, 10 lost, 7 kernel drops\)$/);
  assert.match(lines[4]!, /mean batch 1000\.0, 0 lost, 0 kernel drops\)$/);
  assert.equal(lines[5], "  idle: 0.3 ms CPU used by a reading process in 1 s without traffic");
  assert.equal(wrongSize(f), 2);
  assert.equal(lines[6], "  ERROR: 2 packets read with an unexpected size");
  const ok = { ...f, concurrent: { ...f.concurrent, read: { ...f.concurrent.read, wrongSize: 0 } } };
  assert.equal(tunReport(opts, 1, ok).length, 6);
  assert.match(
    tunReport(parseOptions(["--gso", "3000"]), 3, ok)[0]!,
    /3000-byte IPv4\/TCP GSO writes .* as 3 segments each/,
  );
});
