import { test } from "node:test";
import assert from "node:assert/strict";
import { NO_FIGURES, microUrls, type MicroRun } from "./analysis.js";
import { linkRates } from "./links.js";
import {
  hostRateMbps,
  microParams,
  microRunLine,
  microTraces,
  microUrlCount,
  type MicroOptions,
} from "./micro.js";

test("microUrlCount: a multiple of the connections, at least one document per connection", () => {
  assert.equal(microUrlCount(100, 16), 112);
  assert.equal(microUrlCount(96, 16), 96);
  assert.equal(microUrlCount(5, 16), 16);
  assert.equal(microUrlCount(0, 4), 4);
});

test("microTraces: per size, every document once in Common Log Format with its size", () => {
  const traces = microTraces([100, 5000], 3);
  assert.deepEqual(
    traces.map((t) => t.size),
    [100, 5000],
  );
  const lines = traces[1]!.text.split("\n");
  assert.equal(lines.length, 4); // three lines and the text after the last newline
  assert.equal(lines[3], "");
  const urls = microUrls(5000, 3);
  assert.deepEqual(
    lines.slice(0, 3),
    urls.map((u) => `bench - - [01/Jan/2001:00:00:00 +0000] "GET ${u} HTTP/1.0" 200 5000`),
  );
});

test("hostRateMbps: the front-end, origin and client links by their host's name, every node at the nodes' rate", () => {
  const rateOf = hostRateMbps(linkRates({ rate: "10mbit", frontendRate: "100mbit", originRate: null }));
  assert.equal(rateOf("node1"), 10);
  assert.equal(rateOf("node7"), 10);
  assert.equal(rateOf("dispatcher"), 100);
  assert.equal(rateOf("origin"), null);
  assert.equal(rateOf("client"), null);
});

function run(failure: string | null): MicroRun {
  return {
    ...NO_FIGURES,
    mechanism: "sc",
    size: 1000,
    run: 2,
    rps: 1234.4,
    mbps: 9.87,
    check: {},
    failure,
    usage: {
      seconds: 5,
      cpus: 2,
      machineBusy: 80,
      processes: [
        { label: "node1", role: "node", cpu: 60 },
        { label: "node2", role: "node", cpu: 30.4 },
        { label: "loadgen", role: "loadgen", cpu: 40 },
      ],
      links: [],
    },
  };
}

test("microRunLine: throughput, CPU per role (other: the machine's busy time outside the processes) and the failure", () => {
  assert.equal(
    microRunLine(run(null)),
    "size    1000 run 2 sc        1234 req/s    9.9 Mbit/s  cpu node 90%, loadgen 40%, other 30%; machine 80%",
  );
  assert.match(microRunLine(run("2 verify failures")), /machine 80% {2}FAILED: 2 verify failures$/);
});

const OPTIONS: MicroOptions = {
  sizes: [1000],
  mechanisms: ["plain", "sc"],
  rate: "10mbit",
  clientRate: "1gbit",
  hostCpu: null,
  runs: 3,
  durationS: 5,
  warmupS: 1,
  clients: 2,
  conns: 8,
  keepalive: true,
  tls: false,
  urls: 100,
  cacheBytes: "1M",
  proxyWorkers: 1,
  quietPct: 0,
  quietWaitS: 0,
  latencyProbeS: 2,
  prefix: "t",
  workDir: "/nonexistent",
  quick: false,
  log: () => undefined,
};

test("microParams: the links as given, no CPU budget without --host-cpu, the documents per size and the peers", () => {
  const p = microParams(OPTIONS, {
    rates: linkRates(OPTIONS),
    cgroup: null,
    hostCpuGroups: [],
    urlCount: 112,
    versions: { nginx: "1.2" },
  });
  assert.deepEqual(
    {
      links: [p.rate, p.frontend_rate, p.origin_rate, p.client_rate],
      host_cpu: p.host_cpu,
      documents_per_size: p.documents_per_size,
      peers: p.peers,
    },
    {
      links: ["10mbit", "10mbit", "10mbit", "1gbit"],
      host_cpu: "none (every host's processes share the machine's cores)",
      documents_per_size: 112,
      peers: { nginx: "1.2" },
    },
  );
  assert.deepEqual(
    [p.runs, p.duration_s, p.warmup_s, p.clients, p.conns, p.latency_probe_s],
    [3, 5, 1, 2, 8, 2],
  );
  // --host-cpu given but no cgroup found: recorded as none, as before.
  assert.equal(
    microParams(
      { ...OPTIONS, hostCpu: 0.5 },
      {
        rates: linkRates(OPTIONS),
        cgroup: null,
        hostCpuGroups: [],
        urlCount: 1,
        versions: {},
      },
    ).host_cpu,
    "none (every host's processes share the machine's cores)",
  );
});
