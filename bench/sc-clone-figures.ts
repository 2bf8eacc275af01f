// The pure parts of the Socket Cloning micro-measurements (sc-clone.ts): the load generator's
// arguments and the report, apart from the script so they can be tested.

/** A latency summary as the nodes' /stats gives it; null: none measured. */
export type Percentiles = { samples: number; p50: number; p90: number; p99: number; max: number } | null;

/** The clone latencies: the round trip on the original and, where the build has it, the one-way figure and its parts. */
export interface CloneLatencies {
  roundTrip: Percentiles;
  /** Builds with the one-way measurement (issue 15): on the clone's node. */
  oneWay?: Percentiles | undefined;
  /** Its parts: CLONE sent -> handed to onClone, and onClone -> first segment. */
  transit?: Percentiles | undefined;
  serve?: Percentiles | undefined;
}

/** One size of the local-serving policy: every request cloned against served where it arrives. */
export interface PolicyRow {
  size: number;
  clone: number;
  local: number;
  cloneCpuUs: number;
  localCpuUs: number;
}

/** The latency run: the documents of `trace` over 4 keep-alive connections, `requests` verified requests. */
export function latencyArgs(trace: string, target: string, requests: number, manifest: string): string[] {
  return [
    ...["--trace", trace, "--format", "urls", "--target", target, "--conns", "4", "--keepalive"],
    ...["--requests", String(requests), "--verify", manifest],
  ];
}

/** One policy point: `url` over `connections` connections for `durationS` seconds, every body `size` bytes. */
export function pointArgs(url: string, size: number, connections: number, durationS: number): string[] {
  return [
    ...["--url", url, "--connections", String(connections)],
    ...["--duration", String(durationS), "--expect-length", String(size)],
  ];
}

function latencyLine(what: string, l: Percentiles | undefined): string {
  return (
    `${what}, ${l?.samples ?? 0} samples: ` +
    (l ? `p50 ${l.p50} us, p90 ${l.p90} us, p99 ${l.p99} us, max ${l.max} us` : "not measured by this build")
  );
}

/** The report's lines: the clone latencies beside the paper's, then the policy table and how it was measured. */
export function cloneReport(
  latency: CloneLatencies,
  policy: PolicyRow[],
  run: { connections: number; durationS: number; rate: string | undefined },
): string[] {
  return [
    "",
    latencyLine("clone latency one-way (CLONE sent -> the clone's first segment to its TUN)", latency.oneWay),
    latencyLine(
      "  of which transit (CLONE sent -> read, verified, decoded on the clone's node)",
      latency.transit,
    ),
    latencyLine("  of which serving (import, response, first segment)", latency.serve),
    latencyLine("clone latency round trip (CLONE sent -> SC-ACK received)", latency.roundTrip),
    "(paper: 46 us one-way on a Pentium III 733, in-kernel)",
    "",
    `| size | cloned req/s | served locally req/s | local / cloned | CPU us/resp cloned | CPU us/resp local | CPU cloned / local |`,
    `| ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
    ...policy.map(
      (p) =>
        `| ${p.size} | ${Math.round(p.clone)} | ${Math.round(p.local)} | ${(p.local / p.clone).toFixed(2)} | ` +
        `${Math.round(p.cloneCpuUs)} | ${Math.round(p.localCpuUs)} | ${(p.cloneCpuUs / p.localCpuUs).toFixed(2)} |`,
    ),
    `\n${run.connections} connections, ${run.durationS} s per point, 2 nodes, links ${run.rate ?? "unshaped"}; ` +
      "every connection lands on one node and every document's home is the other; CPU is both nodes' " +
      "user + system time over the run, less their idle rate, divided by the responses.",
  ];
}
