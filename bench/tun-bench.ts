// TUN addon throughput: packets/s read and written per core (CPU time, process.cpuUsage).
//
//   node dist/bench/tun-bench.js [--packets N] [--seconds S] [--size BYTES] [--batch B] [--json]
//
// Setup (as root): a private namespace scb<pid>-tun with ip_forward=1 and two persistent TUN
// devices. A writer process writes IPv4/UDP packets into sctA (198.18.8.1 -> 198.18.9.1); the
// kernel forwards them into sctB, where a reader process reads them. Writer and reader are
// separate processes, so each figure is the work of one process divided by its own CPU time
// (the writer's includes the kernel's forwarding, done inside write(2)). Bounded by --packets
// and --seconds; the namespace is deleted at the end, also on failure.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { TunDevice } from "../sc/tun/index.js";
import { internetChecksum, pseudoHeaderSum } from "../sc/wire/checksum.js";

interface Options {
  packets: number;
  seconds: number;
  size: number;
  batch: number;
  json: boolean;
}

const DEV_IN = "sctA"; // written by the writer
const DEV_OUT = "sctB"; // read by the reader
const SRC = [198, 18, 8, 1];
const DST = [198, 18, 9, 1];

function parseOptions(argv: string[]): Options {
  const opts: Options = { packets: 5_000_000, seconds: 10, size: 100, batch: 64, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} needs a positive number`);
      return v;
    };
    if (a === "--packets") opts.packets = Math.min(num(), 50_000_000);
    else if (a === "--seconds") opts.seconds = Math.min(num(), 60);
    else if (a === "--size") opts.size = num();
    else if (a === "--batch") opts.batch = num();
    else if (a === "--json") opts.json = true;
    else if (a === "--role") i++;
    else throw new Error(`unknown option ${a}`);
  }
  if (opts.size < 28 || opts.size > 1500)
    throw new Error("--size must be 28..1500 (IPv4 + UDP header at least)");
  return opts;
}

function sysSeconds(since: NodeJS.CpuUsage): number {
  return process.cpuUsage(since).system / 1e6;
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
}

/** An IPv4/UDP packet of `size` bytes with valid checksums; `n` varies the source port. */
function udpPacket(size: number, n: number): Uint8Array {
  const p = new Uint8Array(size);
  p.set([0x45, 0, size >> 8, size & 0xff, 0, 0, 0x40, 0, 64, 17, 0, 0, ...SRC, ...DST]);
  const ipSum = internetChecksum(p, 0, 20);
  p[10] = ipSum >> 8;
  p[11] = ipSum & 0xff;
  const sport = 10000 + n;
  const udpLen = size - 20;
  p.set([sport >> 8, sport & 0xff, 0x1f, 0x90, udpLen >> 8, udpLen & 0xff, 0, 0], 20);
  for (let i = 28; i < size; i++) p[i] = i & 0xff;
  const src = ((SRC[0]! << 24) | (SRC[1]! << 16) | (SRC[2]! << 8) | SRC[3]!) >>> 0;
  const dst = ((DST[0]! << 24) | (DST[1]! << 16) | (DST[2]! << 8) | DST[3]!) >>> 0;
  const udpSum = internetChecksum(p, 20, udpLen, pseudoHeaderSum(src, dst, 17, udpLen)) || 0xffff;
  p[26] = udpSum >> 8;
  p[27] = udpSum & 0xff;
  return p;
}

function say(obj: object): void {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// ---- roles (run inside the namespace), driven by one command per stdin line ----

/** Runs `handle` for each stdin line and prints its JSON reply. */
function serve(handle: (cmd: string, arg: number) => Promise<object>): void {
  let chain = Promise.resolve();
  createInterface({ input: process.stdin }).on("line", (line) => {
    const [cmd = "", arg = "0"] = line.split(" ");
    chain = chain.then(async () => say(await handle(cmd, Number(arg))));
  });
}

function reader(opts: Options): void {
  const tun = TunDevice.open({ name: DEV_OUT });
  let wrongSize = 0;
  let got = 0;
  let onProgress = (): void => undefined;
  tun.pause().onPackets((batch) => {
    for (let i = 0; i < batch.count; i++) if (batch.length(i) !== opts.size) wrongSize++;
    got += batch.count;
    onProgress();
  });
  serve(async (cmd, arg) => {
    if (cmd === "idle") {
      // Reading with nothing arriving, for one second.
      tun.resume();
      const cpu0 = process.cpuUsage();
      await new Promise((r) => setTimeout(r, 1000));
      tun.pause();
      return { idleCpuMs: cpuSeconds(cpu0) * 1000 };
    }
    // "read N": read until N more packets are in, or until nothing has come for 300 ms (the
    // kernel dropped the rest). CPU and wall time count from the command to the last packet.
    const s0 = tun.stats;
    got = 0;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let cpu = 0;
    let sys = 0;
    let wall = 0;
    await new Promise<void>((resolve) => {
      const stall = setTimeout(() => finish(), 300);
      const finish = () => {
        cpu = cpuSeconds(cpu0); // a stall adds no CPU: the process sleeps in epoll_wait
        sys = sysSeconds(cpu0);
        clearTimeout(stall);
        onProgress = () => undefined;
        resolve();
      };
      onProgress = () => {
        wall = Number(process.hrtime.bigint() - t0) / 1e9;
        if (got >= arg) finish();
        else stall.refresh();
      };
      tun.resume();
    });
    tun.pause();
    const s = tun.stats;
    return {
      packets: s.packetsIn - s0.packetsIn,
      batches: s.batchesIn - s0.batchesIn,
      wrongSize,
      cpuSeconds: cpu,
      sysSeconds: sys,
      wallSeconds: wall,
    };
  });
}

function writer(opts: Options): void {
  const tun = TunDevice.open({ name: DEV_IN });
  const pkts = Array.from({ length: opts.batch }, (_, i) => udpPacket(opts.size, i));
  serve(async (_cmd, count) => {
    const s0 = tun.stats;
    const deadline = Date.now() + opts.seconds * 1000;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let batches = 0;
    let done = 0;
    while (done < count && Date.now() < deadline) {
      const n = Math.min(pkts.length, count - done);
      for (let j = 0; j < n; j++) tun.write(pkts[j]!);
      tun.flush();
      done += n;
      // Give the event loop a turn now and then, as a real server must.
      if (++batches % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    const cpu = cpuSeconds(cpu0);
    const sys = sysSeconds(cpu0);
    const s = tun.stats;
    return {
      packets: s.packetsOut - s0.packetsOut,
      drops: s.writeDrops - s0.writeDrops,
      dropsAgain: s.writeDropsAgain - s0.writeDropsAgain,
      cpuSeconds: cpu,
      sysSeconds: sys,
      wallSeconds: Number(process.hrtime.bigint() - t0) / 1e9,
    };
  });
}

// ---- orchestration (root namespace) ----

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

type Reply = Record<string, number>;

/** A role process inside the namespace, driven one command (stdin line) at a time. */
class Role {
  private readonly child: ChildProcess;
  private readonly replies: Array<(r: Reply) => void> = [];
  private exited: Error | undefined;

  constructor(ns: string, role: string, argv: string[]) {
    const self = fileURLToPath(import.meta.url);
    this.child = spawn("ip", ["netns", "exec", ns, process.execPath, self, "--role", role, ...argv], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    createInterface({ input: this.child.stdout! }).on("line", (line) =>
      this.replies.shift()?.(JSON.parse(line) as Reply),
    );
    this.child.once("exit", (code, signal) => {
      this.exited = new Error(`${role} process exited (${code ?? signal})`);
    });
  }

  ask(cmd: string): Promise<Reply> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      this.replies.push(resolve);
      this.child.once("exit", () => reject(this.exited));
      this.child.stdin!.write(cmd + "\n");
    });
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}

function kernelDrops(ns: string, dev: string): number {
  const out = sh("ip", ["-n", ns, "-s", "-j", "link", "show", "dev", dev]);
  const link = (JSON.parse(out) as Array<{ stats64?: { tx?: { dropped?: number } } }>)[0];
  return link?.stats64?.tx?.dropped ?? 0;
}

function sum(replies: Reply[], key: string): number {
  return replies.reduce((a, r) => a + (r[key] ?? 0), 0);
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

// Packets per saturated round: they all wait in sctB's queue (txqueuelen) until read.
const ROUND = 100_000;

async function orchestrate(argv: string[], opts: Options): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("tun-bench needs root (network namespace, TUN devices)");
  const ns = `scb${process.pid}-tun`;
  const roles: Role[] = [];
  try {
    sh("ip", ["netns", "add", ns]);
    sh("ip", [
      "netns",
      "exec",
      ns,
      "sysctl",
      "-qw",
      "net.ipv4.ip_forward=1",
      "net.ipv4.conf.all.rp_filter=0",
      "net.ipv4.conf.default.rp_filter=0",
      "net.ipv6.conf.all.disable_ipv6=1",
      "net.ipv6.conf.default.disable_ipv6=1",
    ]);
    sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
    for (const [dev, addr] of [
      [DEV_IN, "198.18.8.254/24"],
      [DEV_OUT, "198.18.9.254/24"],
    ] as const) {
      sh("ip", ["-n", ns, "tuntap", "add", "mode", "tun", "name", dev]);
      sh("ip", ["-n", ns, "addr", "add", addr, "dev", dev]);
      sh("ip", ["-n", ns, "link", "set", dev, "up"]);
    }
    sh("ip", ["-n", ns, "link", "set", DEV_OUT, "txqueuelen", String(ROUND + 1000)]);

    const rd = new Role(ns, "reader", argv);
    const wr = new Role(ns, "writer", argv);
    roles.push(rd, wr);
    const idle = await rd.ask("idle");
    // Warm-up (JIT, first-touch of buffers), not counted.
    await rd.ask(`read ${(await wr.ask("write 50000")).packets}`);

    // 1. Saturated: the writer fills sctB's queue while the reader waits, then the reader
    //    drains it: each process alone on a core, the reader always finding full batches.
    const half = Math.max(1, Math.floor(opts.packets / 2));
    const satW: Reply[] = [];
    const satR: Reply[] = [];
    const t0 = Date.now();
    for (let done = 0; done < half && Date.now() - t0 < (opts.seconds * 1000) / 2; done += ROUND) {
      const w = await wr.ask(`write ${Math.min(ROUND, half - done)}`);
      satW.push(w);
      satR.push(await rd.ask(`read ${w.packets}`));
    }
    const dropsSat = kernelDrops(ns, DEV_OUT);

    // 2. Concurrent: both at once, the reader woken as packets arrive (batches as they come).
    const [conR, conW] = await Promise.all([rd.ask(`read ${half}`), wr.ask(`write ${half}`)]);
    const dropsCon = kernelDrops(ns, DEV_OUT) - dropsSat;

    const line = (what: string, packets: number, cpu: number, sys: number, wall: number, extra: string) =>
      console.log(
        `  ${what.padEnd(19)} ${fmt(packets / cpu).padStart(9)} packets/s per core  ` +
          `(${fmt(packets)} in ${cpu.toFixed(2)} s CPU, ${Math.round((100 * sys) / cpu)}% in the kernel, ` +
          `${fmt(packets / wall)}/s wall${extra})`,
      );
    console.log(
      `tun-bench: ${opts.size}-byte IPv4/UDP packets written into ${DEV_IN} in batches of ${opts.batch}, ` +
        `forwarded by the kernel into ${DEV_OUT}, read there with maxBatch 64`,
    );
    const sw = sum(satW, "packets");
    const sr = sum(satR, "packets");
    line(
      "write (saturated)",
      sw,
      sum(satW, "cpuSeconds"),
      sum(satW, "sysSeconds"),
      sum(satW, "wallSeconds"),
      `, ${sum(satW, "drops")} drops`,
    );
    line(
      "read (saturated)",
      sr,
      sum(satR, "cpuSeconds"),
      sum(satR, "sysSeconds"),
      sum(satR, "wallSeconds"),
      `, mean batch ${(sr / Math.max(1, sum(satR, "batches"))).toFixed(1)}, ${fmt(sw - sr)} lost, ${fmt(dropsSat)} kernel drops`,
    );
    line(
      "write (concurrent)",
      conW.packets!,
      conW.cpuSeconds!,
      conW.sysSeconds!,
      conW.wallSeconds!,
      `, ${conW.drops} drops`,
    );
    line(
      "read (concurrent)",
      conR.packets!,
      conR.cpuSeconds!,
      conR.sysSeconds!,
      conR.wallSeconds!,
      `, mean batch ${(conR.packets! / Math.max(1, conR.batches!)).toFixed(1)}, ` +
        `${fmt(conW.packets! - conR.packets!)} lost, ${fmt(dropsCon)} kernel drops`,
    );
    console.log(
      `  idle: ${idle.idleCpuMs!.toFixed(1)} ms CPU used by a reading process in 1 s without traffic`,
    );
    const wrong = Math.max(...satR.map((r) => r.wrongSize!), conR.wrongSize!);
    if (wrong > 0) {
      console.log(`  ERROR: ${wrong} packets read with a size other than ${opts.size}`);
      process.exitCode = 1;
    }
    if (opts.json)
      say({ size: opts.size, batch: opts.batch, idle, satW, satR, conW, conR, dropsSat, dropsCon });
  } finally {
    for (const r of roles) r.stop();
    try {
      sh("ip", ["netns", "del", ns]);
    } catch {
      // already gone
    }
  }
}

const argv = process.argv.slice(2);
const roleAt = argv.indexOf("--role");
const role = roleAt >= 0 ? argv[roleAt + 1] : undefined;
const opts = parseOptions(argv);
if (role === "reader") reader(opts);
else if (role === "writer") writer(opts);
else await orchestrate(argv, opts);
