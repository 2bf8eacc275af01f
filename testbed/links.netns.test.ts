// Link emulation works: --rate shapes both directions of a host link, --loss drops a
// share of packets. Functional checks with wide bands; speed figures live in docs/testbed.md.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { destroyTestbed, testPrefix, withTestbed } from "./testbed.js";
import { measureThroughput, ping } from "./measure.js";
import { run } from "./run.js";
import { LOSS_TABLE } from "./scripts.js";

const P = testPrefix("r");
const L = testPrefix("l");

after(async () => {
  await destroyTestbed(P);
  await destroyTestbed(L);
});

test("--rate 10mbit: TCP goodput is within 50%..110% of the rate in both directions", async () => {
  await withTestbed({ prefix: P, nodes: 1, rate: "10mbit" }, async (tb) => {
    // 1 MB is ~0.8 s at 10 Mbit/s; unshaped this machine moves it in milliseconds.
    for (const [from, to] of [
      ["node1", "client"],
      ["client", "node1"],
    ] as const) {
      const t = await measureThroughput(tb, { from, to, bytes: 1_000_000, timeoutMs: 20_000 });
      assert.equal(t.bytes, 1_000_000);
      const mbit = t.bitsPerSecond / 1e6;
      assert.ok(mbit > 5 && mbit < 11, `${from} -> ${to}: ${mbit.toFixed(2)} Mbit/s`);
    }
  });
});

test("--loss 10: 200 pings lose some but not all", async () => {
  await withTestbed({ prefix: L, nodes: 1, loss: 10 }, async (tb) => {
    // Each echo crosses the switch twice: ~19% round-trip loss expected. Neither bound
    // can fail by chance in practice (P(no loss) = 0.81^200 ~ 5e-19).
    const s = await ping(tb, "client", "node1", { count: 200, intervalS: 0.01, waitS: 1 });
    assert.equal(s.transmitted, 200);
    assert.ok(s.received > 100 && s.received < 200, `received ${s.received} of 200`);
    const rules = await run([
      "ip",
      "netns",
      "exec",
      tb.plan.switchNetns,
      "nft",
      "list",
      "table",
      "bridge",
      LOSS_TABLE,
    ]);
    assert.match(rules.stdout, /numgen random mod 10000 < 1000 drop/);
  });
});
