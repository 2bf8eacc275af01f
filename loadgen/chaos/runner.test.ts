import { test } from "node:test";
import assert from "node:assert/strict";
import { CHAOS_NFT_TABLE, lossBurstRules } from "./runner.js";

test("a loss burst drops the given share of IPv4 frames both ways through one bridge port, in its own table", () => {
  assert.equal(
    lossBurstRules("node2", 12.5),
    [
      `add table bridge ${CHAOS_NFT_TABLE}`,
      `add chain bridge ${CHAOS_NFT_TABLE} forward { type filter hook forward priority -10; policy accept; }`,
      `add rule bridge ${CHAOS_NFT_TABLE} forward iifname "node2" ether type ip numgen random mod 10000 < 1250 drop`,
      `add rule bridge ${CHAOS_NFT_TABLE} forward oifname "node2" ether type ip numgen random mod 10000 < 1250 drop`,
    ].join("; "),
  );
  // Not the testbed's own loss table: removing the burst leaves `--loss` alone.
  assert.notEqual(CHAOS_NFT_TABLE, "sc_testbed");
});
