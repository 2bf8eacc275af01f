// Dispatcher forwarding rate: client->node packets per second per core, with its CPU use.
//
//   node dist/bench/dispatcher-forward.js [--mode all|pure|tun|udp|udp-nogso|raw] [--ingress local|client]
//       [--sink drop|nodes] [--seconds S] [--packets N] [--size BYTES] [--conns C]
//       [--scheduler NAME] [--workers 1,2] [--generators G] [--gen-segments K] [--json]
//
// pure: the Forwarder alone in this process (validate, look up, GUE-encapsulate into a
//       scratch buffer, hand to a no-op output): the JavaScript cost per packet.
// tun / udp: the real `sc-cluster dispatcher` (as root, in a testbed with prefix scb<pid>f-,
//       removed at the end, also on failure), forwarding in GUE to 3 node addresses either by
//       writing outer packets back into its TUN (--output tun) or from the addon's batched UDP
//       socket (udp: sendmmsg with UDP GSO per node; udp-nogso: sendmmsg, --no-udp-gso), or
//       the tun mode's outer packets from a raw IP socket with sendmmsg (raw).
//       A generator writes client TCP packets (one SYN per connection, then ACKs carrying a
//       small payload) into a TUN device of its own:
//         --ingress local (default): that TUN is in the dispatcher's namespace, whose kernel
//           routes the packets to the VIP, i.e. into the dispatcher's TUN;
//         --ingress client: it is in the client's namespace, and packets cross the testbed
//           LAN (client kernel, veth, bridge, veth) like a real client's.
//       Where the GUE packets go:
//         --sink drop (default): routes send the node addresses to a veth device whose peer
//           (parked in the unused origin namespace) drops every frame at its nftables
//           ingress hook: about what a NIC's transmit costs, and nothing more (gso_max_segs 1:
//           UDP GSO messages are segmented in software first, as for a NIC without USO);
//         --sink nodes: across the testbed LAN to the nodes' namespaces (nothing listens).
//       Everything the kernel does inside the dispatcher's read/write/send calls is charged
//       to the dispatcher; with --sink nodes that includes the simulated LAN and the nodes'
//       receive path (veth and bridge run in the sender's context), so that figure is a lower
//       bound. Figures: packets forwarded in a steady window / the dispatcher's CPU seconds
//       (user + system, /proc/PID/stat) in it. `all` runs pure, tun, udp, udp-nogso and raw
//       (local, drop), and tun across the whole testbed (client, nodes).
// --workers LIST: run each end-to-end setup once per worker count (the dispatcher's
//       --workers; for N > 1 its TUN device is recreated multi_queue), side by side in one run,
//       with packets/s per core and the ratio to the first count.
// --generators G: G generator processes, each on its own queue of a multi-queue generator TUN
//       and its own share of the connections (one generator may not offer enough for 2 workers).
// --gen-segments K: each generator write is one GSO packet of K client packets of one
//       connection (the kernel cuts it up before the dispatcher's TUN), so the generator
//       makes one system call per K packets and can offer more than one dispatcher core takes.
// Bounded by --seconds (max 60) and --packets; the generator stops at either.
import { type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { TunDevice } from "../sc/tun/index.js";
import {
  IP_PROTO_TCP,
  TCP_ACK,
  TCP_SYN,
  checksumFold,
  encodeIpv4Tcp,
  ipv4FromString,
  isWireError,
  pseudoHeaderSum,
} from "../sc/wire/index.js";
import { Forwarder } from "../dispatcher/forwarder.js";
import { createTestbed, destroyTestbed, run, type Testbed } from "../testbed/index.js";
import {
  dispatcherArgs,
  e2eFigures,
  generatorArgs,
  NODES,
  parseOptions,
  type E2E,
  type E2ESetup,
  type Ingress,
  type Options,
  type Output,
  type Sink,
  type Stats,
  type ThreadTicks,
  type WindowSample,
} from "./dispatcher-forward-setup.js";

const VIP = "198.18.100.1";
const CLIENT = "198.18.0.101";
const GEN_DEV = "scgen";
const SINK_DEV = "scsink";
const CLI = fileURLToPath(new URL("../../bin/sc-cluster.js", import.meta.url));
const SELF = fileURLToPath(import.meta.url);

/** Client packets: SYNs for every connection, and ACKs of `size` bytes in total. */
function clientPackets(o: Options, segments = 1): { syns: Uint8Array[]; acks: Uint8Array[] } {
  const src = ipv4FromString(CLIENT) as number;
  const dst = ipv4FromString(VIP) as number;
  const mk = (port: number, flags: number, payload: number) => {
    const p = encodeIpv4Tcp(
      { src, dst, ttl: 64, tos: 0, id: port, dontFrag: true },
      {
        srcPort: port,
        dstPort: 80,
        seq: 1000,
        ack: flags & TCP_ACK ? 5000 : 0,
        flags,
        window: 65535,
        urgent: 0,
        options: {},
        payload: new Uint8Array(payload).fill(0x61),
      },
    );
    if (isWireError(p)) throw new Error(String(p));
    return p;
  };
  const syns: Uint8Array[] = [];
  const acks: Uint8Array[] = [];
  // Generator k of G sends every G-th connection (the pure benchmark: all of them).
  for (let c = o.genIndex; c < o.conns; c += o.generators) {
    syns.push(mk(10_000 + c, TCP_SYN, 0));
    const ack = mk(10_000 + c, TCP_ACK, (o.size - 40) * segments);
    if (segments > 1) {
      // A GSO write (CHECKSUM_PARTIAL): the TCP checksum field holds the pseudo-header sum.
      const partial = checksumFold(pseudoHeaderSum(src, dst, IP_PROTO_TCP, ack.length - 20));
      ack[36] = partial >>> 8;
      ack[37] = partial & 0xff;
    }
    acks.push(ack);
  }
  return { syns, acks };
}

function say(obj: object): void {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// ---- pure: the Forwarder in this process ----

function benchPure(o: Options): { pps: number; packets: number; cpuSeconds: number } {
  let sink = 0;
  const f = new Forwarder(
    {
      vip: ipv4FromString(VIP) as number,
      port: 80,
      scheduler: o.scheduler as "mh",
      encap: "ipv4",
      localAddr: ipv4FromString("198.18.0.1") as number,
      maxConnections: 1 << 18,
    },
    { toNode: (_n, pkt) => (sink += pkt.length), toClient: () => {} },
  );
  for (let k = 1; k <= NODES; k++) {
    f.upsertNode({
      id: `node${k}`,
      addr: ipv4FromString(`198.18.0.${10 + k}`) as number,
      port: 6080,
      weight: 1,
    });
  }
  const { syns, acks } = clientPackets(o);
  // One contiguous buffer, as packets arrive from the TUN reader.
  const all = [...syns, ...acks];
  const buf = new Uint8Array(all.length * 2048);
  const offs: number[] = [];
  all.forEach((p, i) => {
    buf.set(p, i * 2048);
    offs.push(i * 2048);
  });
  let now = 0;
  for (let i = 0; i < syns.length; i++) f.input(buf, offs[i]!, syns[i]!.length, now);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  const deadline = t0 + o.seconds * 1000;
  const ackLen = acks[0]!.length;
  while (n < o.packets) {
    for (let i = syns.length; i < all.length; i++) f.input(buf, offs[i]!, ackLen, now);
    n += acks.length;
    now = performance.now();
    if (now >= deadline) break;
  }
  const c = process.cpuUsage(cpu0);
  const cpuSeconds = (c.user + c.system) / 1e6;
  if (sink === 0 || f.packetsOut < n) throw new Error("pure benchmark forwarded nothing");
  return { pps: n / cpuSeconds, packets: n, cpuSeconds };
}

// ---- generator role (client namespace) ----

async function generator(o: Options): Promise<void> {
  const k = o.genSegments;
  const tun = TunDevice.open({ name: GEN_DEV, up: true, multiQueue: o.generators > 1, vnetHdr: k > 1 });
  const { syns, acks } = clientPackets(o, k);
  const gso = k > 1 ? o.size - 40 : 0;
  for (const s of syns) tun.write(s);
  tun.flush();
  say({ ready: true });
  // Wait for "go" so the dispatcher has seen the SYNs.
  for await (const line of createInterface({ input: process.stdin })) if (line.trim() === "go") break;
  const t0 = performance.now();
  const deadline = t0 + o.seconds * 1000;
  let n = 0;
  outer: while (n < o.packets) {
    for (let i = 0; i < acks.length; i++) {
      tun.write(acks[i]!, gso);
      n += k;
      if ((n & 1023) < k) {
        tun.flush();
        if (performance.now() >= deadline || n >= o.packets) break outer;
      }
    }
  }
  tun.flush();
  const s = tun.stats;
  say({
    done: true,
    written: s.packetsOut * k,
    writeDrops: s.writeDrops,
    seconds: (performance.now() - t0) / 1000,
  });
  tun.close();
}

// ---- orchestration (root namespace) ----

function lines(child: ChildProcess, onLine: (o: Record<string, unknown>) => void): void {
  createInterface({ input: child.stdout! }).on("line", (l) => {
    try {
      onLine(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // not JSON
    }
  });
}

function waitLine(
  child: ChildProcess,
  pred: (o: Record<string, unknown>) => boolean,
  what: string,
): Promise<Record<string, unknown>> {
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within 30 s: ${stderr}`)), 30_000);
    child.once("close", (code) => reject(new Error(`${what}: process exited (${code}): ${stderr}`)));
    lines(child, (o) => {
      if (pred(o)) {
        clearTimeout(timer);
        resolve(o);
      }
    });
  });
}

/** [user, system] CPU ticks of a process (fields 14 and 15 of /proc/PID/stat). */
function cpuTicks(pid: number): [number, number] {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return [Number(f[11]), Number(f[12])];
}

/** CPU ticks (user + system) per thread of a process, with the thread's name. */
function threadTicks(pid: number): ThreadTicks {
  const out: ThreadTicks = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = s.slice(s.indexOf("(") + 1, s.lastIndexOf(")"));
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      out.set(tid, { name, ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // the thread ended
    }
  }
  return out;
}

async function adminStats(tb: Testbed): Promise<Stats> {
  const r = await tb.exec("dispatcher", "curl", ["-s", "http://198.18.0.1:9100/stats"]);
  return JSON.parse(r.stdout) as Stats;
}

/** Packets that left toward the nodes: the sink veth's transmit or the nodes' receive counter. */
async function sinkPackets(tb: Testbed, sink: Sink): Promise<number> {
  const counter = async (host: string, dev: string, dir: "rx" | "tx") => {
    const r = await tb.exec(host, "ip", ["-s", "-j", "link", "show", dev]);
    return (JSON.parse(r.stdout) as { stats64: Record<string, { packets: number }> }[])[0]!.stats64[dir]!
      .packets;
  };
  if (sink === "drop") return counter("dispatcher", SINK_DEV, "tx");
  let total = 0;
  for (let k = 1; k <= NODES; k++) total += await counter(`node${k}`, "eth0", "rx");
  return total;
}

/** Generator TUN device (and its sysctls), and the drop sink, per the run's options. */
async function plumb(
  tb: Testbed,
  ingress: Ingress,
  sink: Sink,
  workers: number,
  generators: number,
): Promise<void> {
  const genHost = ingress === "local" ? "dispatcher" : "client";
  const genNs = tb.host(genHost).netns;
  if (workers > 1) {
    // The testbed's sctun is single-queue; --workers N needs one queue per worker.
    const batch = [
      "link del sctun",
      "tuntap add dev sctun mode tun multi_queue",
      "link set dev sctun mtu 1500 up",
      `route add ${VIP}/32 dev sctun`,
    ];
    await run(["ip", "-n", tb.host("dispatcher").netns, "-batch", "-"], { input: batch.join("\n") + "\n" });
    await tb.exec("dispatcher", "sh", ["-c", "echo 0 > /proc/sys/net/ipv4/conf/sctun/rp_filter"]);
  }
  await run([
    ...["ip", "-n", genNs, "tuntap", "add", "dev", GEN_DEV, "mode", "tun"],
    ...(generators > 1 ? ["multi_queue"] : []),
  ]);
  await run(["ip", "-n", genNs, "link", "set", "dev", GEN_DEV, "up"]);
  // Packets written into it are forwarded (ip_forward); in the client namespace their
  // source is a local address (accept_local).
  await tb.exec(genHost, "sh", [
    "-c",
    `echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv4/conf/${GEN_DEV}/accept_local; ` +
      `echo 0 > /proc/sys/net/ipv4/conf/${GEN_DEV}/rp_filter`,
  ]);
  // A queue long enough to ride out the dispatcher being descheduled for a few ms.
  await run(["ip", "-n", tb.host("dispatcher").netns, "link", "set", "dev", "sctun", "txqueuelen", "4096"]);
  if (sink === "drop") {
    const ns = tb.host("dispatcher").netns;
    const peerNs = tb.host("origin").netns;
    const batch = [
      `link add ${SINK_DEV} type veth peer name ${SINK_DEV}p netns ${peerNs}`,
      // gso_max_segs 1: a UDP GSO message is cut into datagrams in software before the sink
      // (charged to the dispatcher), as before a NIC without UDP segmentation offload.
      `link set dev ${SINK_DEV} gso_max_segs 1 up`,
    ];
    for (let k = 1; k <= NODES; k++) {
      batch.push(`route add 198.18.0.${10 + k}/32 dev ${SINK_DEV}`);
      batch.push(`neigh add 198.18.0.${10 + k} lladdr 02:00:00:00:00:0${k} dev ${SINK_DEV} nud permanent`);
    }
    await run(["ip", "-n", ns, "-batch", "-"], { input: batch.join("\n") + "\n" });
    await run(["ip", "-n", peerNs, "link", "set", "dev", `${SINK_DEV}p`, "up"]);
    await tb.exec("origin", "nft", [
      `add table netdev scsink; add chain netdev scsink in { type filter hook ingress device "${SINK_DEV}p" priority 0; policy drop; }`,
    ]);
  }
}

async function benchE2E(
  o: Options,
  output: Output,
  ingress: Ingress,
  sink: Sink,
  workers: number,
): Promise<E2E> {
  const prefix = `scb${process.pid.toString(36)}f-`;
  const tb = createTestbed({ prefix, nodes: NODES });
  try {
    await tb.up();
    await plumb(tb, ingress, sink, workers, o.generators);
    const d = tb.spawn("dispatcher", process.execPath, [CLI, ...dispatcherArgs(o, output, workers)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const gens: ChildProcess[] = [];
    for (let k = 0; k < o.generators; k++)
      gens.push(
        tb.spawn(
          ingress === "local" ? "dispatcher" : "client",
          process.execPath,
          [SELF, ...generatorArgs(o, k)],
          {
            stdio: ["pipe", "pipe", "pipe"],
          },
        ),
      );
    try {
      return await measureWindow(tb, o, d, gens, { output, workers, ingress, sink });
    } finally {
      for (const gen of gens) gen.kill("SIGKILL");
      d.kill("SIGTERM");
      await new Promise((r) => (d.exitCode !== null ? r(null) : d.once("close", r)));
    }
  } finally {
    await destroyTestbed(prefix);
  }
}

/** Once the dispatcher and the generators are ready: go, a warm-up, then the measured window. */
async function measureWindow(
  tb: Testbed,
  o: Options,
  d: ChildProcess,
  gens: ChildProcess[],
  setup: E2ESetup,
): Promise<E2E> {
  await waitLine(d, (x) => x.ready === true, "dispatcher ready");
  for (const gen of gens) await waitLine(gen, (x) => x.ready === true, "generator ready");
  const gensDone = Promise.all(gens.map((gen) => waitLine(gen, (x) => x.done === true, "generator done")));
  for (const gen of gens) gen.stdin!.write("go\n");
  // Warm-up, then a steady window well inside the generator's run.
  const warm = Math.min(1, o.seconds * 0.2);
  const window = Math.max(0.5, o.seconds - 2 * warm);
  await new Promise((r) => setTimeout(r, warm * 1000));
  const before = await windowSample(tb, d.pid!, setup.sink);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, window * 1000));
  const after = await windowSample(tb, d.pid!, setup.sink);
  const secs = (performance.now() - t0) / 1000;
  const done = await gensDone;
  const offeredPps = done.reduce((sum, g) => sum + (g.written as number) / (g.seconds as number), 0);
  return e2eFigures(setup, before, after, secs, offeredPps);
}

/** The dispatcher's counters and CPU, and the packets that left toward the nodes, at one moment. */
async function windowSample(tb: Testbed, pid: number, sink: Sink): Promise<WindowSample> {
  const stats = await adminStats(tb);
  const cpu = cpuTicks(pid);
  const threads = threadTicks(pid);
  return { stats, cpu, threads, sinkPackets: await sinkPackets(tb, sink) };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const o = parseOptions(argv);
  if (argv[argv.indexOf("--role") + 1] === "gen" && argv.includes("--role")) return generator(o);

  const results: Record<string, unknown> = {
    setup: {
      packetBytes: o.size,
      connections: o.conns,
      scheduler: o.scheduler,
      nodes: NODES,
      seconds: o.seconds,
      cpus: (await import("node:os")).cpus().length,
      node: process.version,
    },
  };
  if (o.mode === "all" || o.mode === "pure") {
    const p = benchPure(o);
    results.pure = p;
    if (!o.json)
      console.log(
        `pure Forwarder (no I/O): ${Math.round(p.pps).toLocaleString("en")} packets/s on one core ` +
          `(${p.packets.toLocaleString("en")} packets, ${p.cpuSeconds.toFixed(2)} s CPU)`,
      );
  }
  const runs: [Output, Ingress, Sink][] =
    o.mode === "all"
      ? [
          ["tun", "local", "drop"],
          ["udp", "local", "drop"],
          ["udp-nogso", "local", "drop"],
          ["raw", "local", "drop"],
          ["tun", "client", "nodes"],
        ]
      : o.mode === "pure"
        ? []
        : [[o.mode, o.ingress, o.sink]];
  for (const [output, ingress, sink] of runs) {
    const byWorkers: E2E[] = [];
    for (const workers of o.workers) {
      const r = await benchE2E(o, output, ingress, sink, workers);
      byWorkers.push(r);
      results[`${output}-${ingress}-${sink}${o.workers.length > 1 ? `-w${workers}` : ""}`] = r;
      if (!o.json)
        console.log(
          `dispatcher --output ${output} --workers ${workers} (ingress ${ingress}, sink ${sink}): ` +
            `${Math.round(r.forwardedPps).toLocaleString("en")} packets/s forwarded at ` +
            `${r.cpuPercent.toFixed(0)}% CPU (${(100 * r.systemShare).toFixed(0)}% of it in the kernel) = ` +
            `${Math.round(r.ppsPerCore).toLocaleString("en")} packets/s per core ` +
            `(${(1e6 / r.ppsPerCore).toFixed(2)} us CPU per packet); ${r.meanBatch.toFixed(1)} packets/read, ` +
            (r.datagramsPerSend !== undefined
              ? `${r.datagramsPerSend.toFixed(1)} datagrams/send call, `
              : "") +
            `offered ${Math.round(r.offeredPps).toLocaleString("en")}/s, out ${Math.round(r.sinkPps).toLocaleString("en")}/s, ` +
            (r.perWorkerPackets
              ? `per worker ${r.perWorkerPackets.map((n) => Math.round(n / r.windowSeconds).toLocaleString("en")).join(" / ")}/s, `
              : "") +
            `drops ${JSON.stringify(r.drops)}; threads ${r.threads.join(", ")}`,
        );
    }
    const first = byWorkers[0]!;
    for (const r of byWorkers.slice(1)) {
      const ratio = {
        forwarded: r.forwardedPps / first.forwardedPps,
        perCore: r.ppsPerCore / first.ppsPerCore,
      };
      results[`${output}-${ingress}-${sink}-ratio-w${r.workers}-w${first.workers}`] = ratio;
      if (!o.json)
        console.log(
          `  --workers ${r.workers} vs ${first.workers}: ${ratio.forwarded.toFixed(2)}x packets/s forwarded, ` +
            `${ratio.perCore.toFixed(2)}x packets/s per core`,
        );
    }
  }
  if (o.json) say(results);
}

await main();
