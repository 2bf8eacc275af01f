import { test } from "node:test";
import assert from "node:assert/strict";
import { failedTraceRun, planTracePoints, traceExtraArgs, traceRunLine } from "./trace.js";

const RATES = { rate: "10mbit", originRate: "20mbit", clientRate: null };

test("planTracePoints: every mode at every node count, the first mode rotating so none always runs first", () => {
  const plan = planTracePoints({ ...RATES, nodes: [2, 4], modes: ["rr", "sc", "nginx"] }, [
    { frontendRate: "10mbit" },
  ]);
  assert.deepEqual(
    plan.map((p) => p.name),
    ["rr-2", "sc-2", "nginx-2", "sc-4", "nginx-4", "rr-4"],
  );
  assert.ok(plan.every((p) => p.tag === "" && !("ratio" in p)));
  // Every host's link, the node and origin ones with a switch port's queue, the client's without.
  assert.deepEqual(plan[3]!.links, [
    { host: "node1", rate: "10mbit", queueBytes: 64 * 1514 },
    { host: "node2", rate: "10mbit", queueBytes: 64 * 1514 },
    { host: "node3", rate: "10mbit", queueBytes: 64 * 1514 },
    { host: "node4", rate: "10mbit", queueBytes: 64 * 1514 },
    { host: "dispatcher", rate: "10mbit", queueBytes: 64 * 1514 },
    { host: "origin", rate: "20mbit", queueBytes: 64 * 1514 },
    { host: "client", rate: null },
  ]);
});

test("planTracePoints: a sweep's points carry their front-end ratio in name, tag and links", () => {
  const plan = planTracePoints({ ...RATES, nodes: [3], modes: ["sc", "haproxy"] }, [
    { ratio: 2, frontendRate: "20mbit" },
    { ratio: "unshaped", frontendRate: null },
  ]);
  assert.deepEqual(
    plan.map((p) => [p.name, p.tag, p.ratio]),
    [
      ["sc-3-fe2x", " front-end 2x", 2],
      ["haproxy-3-fe2x", " front-end 2x", 2],
      ["haproxy-3-feunshaped", " front-end unshaped", "unshaped"],
      ["sc-3-feunshaped", " front-end unshaped", "unshaped"],
    ],
  );
  const frontend = (i: number) => plan[i]!.links.find((l) => l.host === "dispatcher")!.rate;
  assert.deepEqual([frontend(0), frontend(2)], ["20mbit", null]);
});

test("traceExtraArgs: the nodes' timeouts at the load generator's, the health check capped at 5 s, SC's local limit", () => {
  const a = traceExtraArgs({ timeoutMs: 30000, scLocalMaxBytes: 0 }, "cf-lru");
  assert.deepEqual(a.node, [
    "--origin-timeout",
    "30000",
    "--send-timeout",
    "30000",
    "--linger-timeout",
    "30000",
    "--clone-timeout",
    "30000",
    "--peer-timeout",
    "30000",
  ]);
  assert.deepEqual(a.dispatcher, ["--health-timeout", "5000", "--health-fall", "3"]);
  assert.deepEqual(traceExtraArgs({ timeoutMs: 2000 }, "sc").dispatcher.slice(0, 2), [
    "--health-timeout",
    "2000",
  ]);
  assert.deepEqual(traceExtraArgs({ timeoutMs: 2000, scLocalMaxBytes: 4096 }, "sc").node.slice(-2), [
    "--clone-local-max-bytes",
    "4096",
  ]);
  assert.equal(traceExtraArgs({ timeoutMs: 2000 }, "sc").node.length, 10);
});

test("traceRunLine: throughput, CPU per role, the origin's and front-end's traffic; the warm-up on run 1 only", () => {
  const processes = [
    { label: "node1", role: "node", cpu: 20 },
    { label: "nginx", role: "proxy", cpu: 15 },
  ];
  const links = [{ label: "origin", txMbps: 8.04, rxMbps: 0.1 }];
  const tr = {
    ...failedTraceRun("nginx", 4, 1, "x"),
    failure: null,
    rps: 52.34,
    mbps: 7.06,
    warmup: { requests: 400, seconds: 12.4, stopped_by: "requests" },
    usage: { seconds: 5, cpus: 2, machineBusy: 60, processes, links },
  };
  assert.equal(
    traceRunLine(tr, " front-end 2x"),
    " 4 nodes run 1 nginx   front-end 2x   52.3 req/s   7.1 Mbit/s  machine 60%  nodes 20% disp 0% " +
      "loadgen 0% proxy 15% other 85%  origin 8.0 Mbit/s  front-end ? Mbit/s  (warm-up 400 requests in 12 s)",
  );
  assert.match(
    traceRunLine({ ...tr, run: 2, failure: "no responses" }, ""),
    /\? Mbit\/s {2}FAILED: no responses$/,
  );
});
