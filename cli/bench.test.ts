import { test } from "node:test";
import assert from "node:assert/strict";
import { ratioList } from "./bench.js";
import { UsageError } from "../common/args.js";

test("bench sweep --ratios: multiples of the node rate and 'unshaped', in order, without repeats", () => {
  assert.deepEqual(ratioList("1,2,4,10,unshaped"), [1, 2, 4, 10, "unshaped"]);
  assert.deepEqual(ratioList(" 1.5 , none,1.5"), [1.5, "unshaped"]);
  for (const bad of ["0", "-1", "x", "1e3", "2000", ""]) assert.throws(() => ratioList(bad), UsageError, bad);
});
