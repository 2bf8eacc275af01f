// What the foreground `sc-cluster up` says about a process that ended while the cluster ran.
import { test } from "node:test";
import assert from "node:assert/strict";
import { processEnded } from "./up.js";

const exit = {
  host: "node2",
  role: "node" as const,
  pid: 42,
  code: 1,
  signal: null,
  log: "/run/sc/node2.log",
};

test("processEnded: a node that died, with the last lines of its log quoted", () => {
  assert.equal(
    processEnded(exit, "boom\nat x"),
    "node2 (pid 42) ended (code 1) while running; the dispatcher takes it out of scheduling. " +
      "Last lines of /run/sc/node2.log:\n  | boom\n  | at x",
  );
});

test("processEnded: a killed origin without log lines; a clean exit was a stop from outside", () => {
  assert.equal(
    processEnded({ ...exit, host: "origin", role: "origin", code: null, signal: "SIGKILL" }, ""),
    "origin (pid 42) ended (SIGKILL) while running",
  );
  assert.equal(
    processEnded({ ...exit, code: 0 }, "ignored"),
    "node2 (pid 42) was stopped from outside (code 0)",
  );
});
