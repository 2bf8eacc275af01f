// What a dispatcher-forward run is, apart from the script so it can be tested (pure): its options,
// the dispatcher's and the generators' command lines, and the figures of a measured window.

export type Ingress = "local" | "client";
export type Output = "tun" | "udp" | "udp-nogso" | "raw";
export type Sink = "drop" | "nodes";

export interface Options {
  mode: "all" | "pure" | Output;
  ingress: Ingress;
  sink: Sink;
  seconds: number;
  packets: number;
  size: number;
  conns: number;
  scheduler: string;
  workers: number[];
  generators: number;
  /** Client packets per generator write (a GSO packet the kernel cuts up; 1: plain writes). */
  genSegments: number;
  /** Generator role: which share of the connections this process sends. */
  genIndex: number;
  json: boolean;
}

export function parseOptions(argv: string[]): Options {
  const o: Options = {
    mode: "all",
    ingress: "local",
    sink: "drop",
    seconds: 5,
    packets: 20_000_000,
    size: 100,
    conns: 4096,
    scheduler: "mh",
    workers: [1],
    generators: 1,
    genSegments: 1,
    genIndex: 0,
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} needs a positive number`);
      return v;
    };
    if (a === "--mode") {
      const m = argv[++i];
      if (m !== "all" && m !== "pure" && m !== "tun" && m !== "udp" && m !== "udp-nogso" && m !== "raw")
        throw new Error("--mode all|pure|tun|udp|udp-nogso|raw");
      o.mode = m;
    } else if (a === "--ingress") {
      const v = argv[++i];
      if (v !== "local" && v !== "client") throw new Error("--ingress local|client");
      o.ingress = v;
    } else if (a === "--sink") {
      const v = argv[++i];
      if (v !== "drop" && v !== "nodes") throw new Error("--sink drop|nodes");
      o.sink = v;
    } else if (a === "--seconds") o.seconds = Math.min(num(), 60);
    else if (a === "--packets") o.packets = Math.min(num(), 100_000_000);
    else if (a === "--size") o.size = num();
    else if (a === "--conns") o.conns = Math.min(num(), 60_000);
    else if (a === "--scheduler") o.scheduler = argv[++i]!;
    else if (a === "--workers") {
      const list = (argv[++i] ?? "").split(",").map(Number);
      if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1 || n > 16))
        throw new Error("--workers needs a list of worker counts 1..16, e.g. 1,2");
      o.workers = list;
    } else if (a === "--generators") o.generators = Math.min(Math.round(num()), 8);
    else if (a === "--gen-segments") o.genSegments = Math.min(Math.round(num()), 64);
    else if (a === "--gen-index") o.genIndex = Math.round(Number(argv[++i]));
    else if (a === "--json") o.json = true;
    else if (a === "--role") i++;
    else throw new Error(`unknown option ${a}`);
  }
  if (o.size < 40 || o.size > 1500) throw new Error("--size must be 40..1500 (IPv4 + TCP headers at least)");
  return o;
}

/** How many nodes the dispatcher forwards to (198.18.0.11 and up). */
export const NODES = 3;

/** The `sc-cluster dispatcher` arguments: the output, its admin address, the nodes, the workers. */
export function dispatcherArgs(o: Pick<Options, "scheduler">, output: Output, workers: number): string[] {
  const args = [
    "dispatcher",
    "--scheduler",
    o.scheduler,
    "--output",
    output === "udp-nogso" ? "udp" : output,
    ...(output === "udp-nogso" ? ["--no-udp-gso"] : []),
    "--admin",
    "198.18.0.1:9100",
  ];
  for (let k = 1; k <= NODES; k++) args.push("--node", `node${k}=198.18.0.${10 + k}`);
  args.push("--max-conns", "262144", "--source", "198.18.0.1", "--workers", String(workers));
  return args;
}

/** The k-th generator's arguments (after the script's path): its share of the run. */
export function generatorArgs(o: Options, k: number): string[] {
  const args = ["--role", "gen", "--seconds", String(o.seconds), "--packets", String(o.packets)];
  args.push("--size", String(o.size), "--conns", String(o.conns));
  args.push("--generators", String(o.generators), "--gen-index", String(k));
  args.push("--gen-segments", String(o.genSegments));
  return args;
}

export interface Stats {
  packets: { forwarded: number; received: number };
  drops: Record<string, number>;
  io: {
    tun: { packetsIn: number; batchesIn: number };
    udp?: { packetsOut: number; sendCalls: number };
    perWorker?: { packetsIn: number }[];
  };
}

/** Per thread of the dispatcher (by id): its name and CPU ticks so far. */
export type ThreadTicks = Map<string, { name: string; ticks: number }>;

/** The dispatcher's counters, CPU ticks ([user, system]) and threads, and the sink's packets, at one moment. */
export interface WindowSample {
  stats: Stats;
  cpu: [number, number];
  threads: ThreadTicks;
  sinkPackets: number;
}

/** The end-to-end set-up a run measured. */
export interface E2ESetup {
  output: string;
  workers: number;
  ingress: Ingress;
  sink: Sink;
}

export interface E2E extends E2ESetup {
  forwardedPps: number;
  cpuPercent: number;
  /** Share of the CPU time spent in the kernel (read/write/send calls, routing). */
  systemShare: number;
  ppsPerCore: number;
  meanBatch: number;
  /** --output udp: datagrams per send system call. */
  datagramsPerSend?: number;
  offeredPps: number;
  sinkPps: number;
  drops: Record<string, number>;
  /** The dispatcher's busiest threads in the window and their share of its CPU. */
  threads: string[];
  /** Packets each worker read in the window (its TUN queue's share). */
  perWorkerPackets?: number[];
  windowSeconds: number;
}

/** Linux's USER_HZ: /proc's CPU ticks per second. */
export const CLK_TCK = 100;

/** The figures of a window of `secs` seconds between two samples. */
export function e2eFigures(
  setup: E2ESetup,
  s: WindowSample,
  e: WindowSample,
  secs: number,
  offeredPps: number,
): E2E {
  const [s0, s1] = [s.stats, e.stats];
  const user = (e.cpu[0] - s.cpu[0]) / CLK_TCK;
  const sys = (e.cpu[1] - s.cpu[1]) / CLK_TCK;
  const cpu = user + sys;
  const fwd = s1.packets.forwarded - s0.packets.forwarded;
  return {
    output: setup.output,
    workers: setup.workers,
    ingress: setup.ingress,
    sink: setup.sink,
    forwardedPps: fwd / secs,
    cpuPercent: (100 * cpu) / secs,
    systemShare: sys / cpu,
    ppsPerCore: fwd / cpu,
    meanBatch: (s1.io.tun.packetsIn - s0.io.tun.packetsIn) / (s1.io.tun.batchesIn - s0.io.tun.batchesIn),
    ...(s1.io.udp && s0.io.udp
      ? {
          datagramsPerSend:
            (s1.io.udp.packetsOut - s0.io.udp.packetsOut) / (s1.io.udp.sendCalls - s0.io.udp.sendCalls),
        }
      : {}),
    offeredPps,
    sinkPps: (e.sinkPackets - s.sinkPackets) / secs,
    drops: Object.fromEntries(Object.entries(s1.drops).filter(([, v]) => v > 0)),
    ...(s1.io.perWorker && s0.io.perWorker
      ? {
          perWorkerPackets: s1.io.perWorker.map(
            (w, i) => w.packetsIn - (s0.io.perWorker?.[i]?.packetsIn ?? 0),
          ),
        }
      : {}),
    threads: threadShares(s.threads, e.threads),
    windowSeconds: secs,
  };
}

/** The threads that used CPU in the window, busiest first: "name tid: share of all". */
export function threadShares(before: ThreadTicks, after: ThreadTicks): string[] {
  const used = [...after].map(([tid, t]) => ({
    tid,
    name: t.name,
    ticks: t.ticks - (before.get(tid)?.ticks ?? 0),
  }));
  const total = used.reduce((s, t) => s + t.ticks, 0) || 1;
  return used
    .filter((t) => t.ticks > 0)
    .sort((a, b) => b.ticks - a.ticks)
    .slice(0, 6)
    .map((t) => `${t.name} ${t.tid}: ${((100 * t.ticks) / total).toFixed(0)}%`);
}
