import { test } from "node:test";
import assert from "node:assert/strict";
import { displayName } from "./report.js";
import { MECHANISMS, TRACE_MODES } from "./analysis.js";

test("every bench micro mechanism and bench trace mode has a plot style (a missing one crashed the report)", () => {
  for (const m of [...MECHANISMS, ...TRACE_MODES]) assert.notEqual(displayName(m), m, m);
  assert.equal(displayName("lard"), "LARD (TCP handoff)");
});
