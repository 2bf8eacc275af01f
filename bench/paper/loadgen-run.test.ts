import { test } from "node:test";
import assert from "node:assert/strict";
import { loadgenArgs } from "./loadgen-run.js";

const BASE = { trace: "t.log", manifest: "m.jsonl", target: "http://198.18.100.1", clients: 1, conns: 8 };

test("loadgenArgs: a verified replay bounded in time or count; --ca for an https target", () => {
  assert.deepEqual(loadgenArgs({ ...BASE, keepalive: true, durationS: 10 }), [
    ...["loadgen", "--trace", "t.log", "--target", "http://198.18.100.1", "--clients", "1", "--conns", "8"],
    ...["--verify", "m.jsonl", "--json", "-", "--timeout", "10000", "--keepalive", "--duration", "10"],
  ]);
  const https = loadgenArgs({
    ...BASE,
    target: "https://198.18.100.1/",
    ca: "/run/x/ca.crt",
    keepalive: false,
    requests: 5,
  });
  assert.deepEqual(https.slice(-4), ["--ca", "/run/x/ca.crt", "--requests", "5"]);
  assert.throws(() => loadgenArgs({ ...BASE, keepalive: false }), /needs a bound/);
});
