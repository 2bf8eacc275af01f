// TUN addon throughput: packets/s (and bytes/s) read and written per core, CPU time measured
// with process.cpuUsage.
//
//   node dist/bench/tun-bench.js [--packets N] [--seconds S] [--size BYTES] [--batch B]
//                                [--gso BYTES] [--json]
//
// Setup (as root): a private namespace scb<pid>-tun with ip_forward=1 and two persistent TUN
// devices. A writer process writes IPv4 packets into sctA (198.18.8.1 -> 198.18.9.1); the
// kernel forwards them into sctB, where a reader process reads them. Writer and reader are
// separate processes, so each figure is the work of one process divided by its own CPU time
// (the writer's includes the kernel's forwarding, done inside write(2)).
//   --size B   plain IPv4/UDP packets of B bytes (default 100)
//   --gso B    instead, IPv4/TCP writes of B bytes through IFF_VNET_HDR with gsoSize 1460: the
//              kernel cuts them into 1500-byte segments and computes their checksums
// Two phases: saturated (the writer fills sctB's queue, then the reader drains it: each
// process alone, the reader always finding full batches) and concurrent (both at once).
// Bounded by --packets and --seconds; the namespace is deleted at the end, also on failure.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { TunDevice } from "../sc/tun/index.js";
import { checksumFold, internetChecksum, pseudoHeaderSum } from "../sc/wire/checksum.js";
import {
  DEV_IN,
  DEV_OUT,
  MSS,
  MTU,
  parseOptions,
  total,
  tunReport,
  tunRounds,
  wrongSize,
  type Options,
  type Reply,
  type TunFigures,
  type TunRounds,
} from "./tun-bench-plan.js";

const SRC = 0xc6120801; // 198.18.8.1
const DST = 0xc6120901; // 198.18.9.1

function cpuTimes(since: NodeJS.CpuUsage): { cpuSeconds: number; sysSeconds: number } {
  const d = process.cpuUsage(since);
  return { cpuSeconds: (d.user + d.system) / 1e6, sysSeconds: d.system / 1e6 };
}

function ipv4Header(p: Uint8Array, proto: number): void {
  const size = p.length;
  p.set([0x45, 0, size >> 8, size & 0xff, 0, 0, 0x40, 0, 64, proto, 0, 0]);
  new DataView(p.buffer, p.byteOffset).setUint32(12, SRC);
  new DataView(p.buffer, p.byteOffset).setUint32(16, DST);
  const sum = internetChecksum(p, 0, 20);
  p[10] = sum >> 8;
  p[11] = sum & 0xff;
}

/** An IPv4/UDP packet of `size` bytes with valid checksums; `n` varies the source port. */
function udpPacket(size: number, n: number): Uint8Array {
  const p = new Uint8Array(size);
  ipv4Header(p, 17);
  const sport = 10000 + n;
  const udpLen = size - 20;
  p.set([sport >> 8, sport & 0xff, 0x1f, 0x90, udpLen >> 8, udpLen & 0xff, 0, 0], 20);
  for (let i = 28; i < size; i++) p[i] = i & 0xff;
  const sum = internetChecksum(p, 20, udpLen, pseudoHeaderSum(SRC, DST, 17, udpLen)) || 0xffff;
  p[26] = sum >> 8;
  p[27] = sum & 0xff;
  return p;
}

/** An IPv4/TCP packet of `size` bytes for a GSO write (checksum field: pseudo-header sum). */
function tcpGsoPacket(size: number, n: number): Uint8Array {
  const p = new Uint8Array(size);
  ipv4Header(p, 6);
  const sport = 10000 + n;
  p.set([sport >> 8, sport & 0xff, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff], 20);
  for (let i = 40; i < size; i++) p[i] = i & 0xff;
  const partial = checksumFold(pseudoHeaderSum(SRC, DST, 6, size - 20));
  p[36] = partial >> 8;
  p[37] = partial & 0xff;
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
  // Plain packets arrive as written; GSO writes arrive as segments of at most the MTU.
  const sizeOk = opts.gso ? (n: number) => n > 40 && n <= MTU : (n: number) => n === opts.size;
  let wrongSize = 0;
  let got = 0;
  let onProgress = (): void => undefined;
  tun.pause().onPackets((batch) => {
    for (let i = 0; i < batch.count; i++) if (!sizeOk(batch.length(i))) wrongSize++;
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
      return { idleCpuMs: cpuTimes(cpu0).cpuSeconds * 1000 };
    }
    // "read N": read until N more packets are in, or until nothing has come for 300 ms (the
    // kernel dropped the rest). CPU and wall time count from the command to the last packet.
    const s0 = tun.stats;
    got = 0;
    wrongSize = 0;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let cpu = { cpuSeconds: 0, sysSeconds: 0 };
    let wall = 0;
    await new Promise<void>((resolve) => {
      const stall = setTimeout(() => finish(), 300);
      const finish = () => {
        cpu = cpuTimes(cpu0); // a stall adds no CPU: the process sleeps in epoll_wait
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
      bytes: s.bytesIn - s0.bytesIn,
      batches: s.batchesIn - s0.batchesIn,
      wrongSize,
      ...cpu,
      wallSeconds: wall,
    };
  });
}

function writer(opts: Options): void {
  const tun = TunDevice.open({ name: DEV_IN, vnetHdr: opts.gso > 0 });
  const gsoSize = opts.gso ? MSS : 0;
  const pkts = Array.from({ length: opts.batch }, (_, i) =>
    opts.gso ? tcpGsoPacket(opts.gso, i) : udpPacket(opts.size, i),
  );
  serve(async (_cmd, count) => {
    const s0 = tun.stats;
    const deadline = Date.now() + opts.seconds * 1000;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let batches = 0;
    let done = 0;
    while (done < count && Date.now() < deadline) {
      const n = Math.min(pkts.length, count - done);
      for (let j = 0; j < n; j++) tun.write(pkts[j]!, gsoSize);
      tun.flush();
      done += n;
      // Give the event loop a turn now and then, as a real server must.
      if (++batches % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    const cpu = cpuTimes(cpu0);
    const s = tun.stats;
    return {
      packets: s.packetsOut - s0.packetsOut,
      bytes: s.bytesOut - s0.bytesOut,
      drops: s.writeDrops - s0.writeDrops,
      dropsAgain: s.writeDropsAgain - s0.writeDropsAgain,
      ...cpu,
      wallSeconds: Number(process.hrtime.bigint() - t0) / 1e9,
    };
  });
}

// ---- orchestration (root namespace) ----

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** A role process inside the namespace, driven one command (stdin line) at a time. */
class Role {
  private readonly child: ChildProcess;
  private readonly pending: Array<{ resolve: (r: Reply) => void; reject: (e: Error) => void }> = [];
  private exited: Error | undefined;

  constructor(ns: string, role: string, argv: string[]) {
    const self = fileURLToPath(import.meta.url);
    this.child = spawn("ip", ["netns", "exec", ns, process.execPath, self, "--role", role, ...argv], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    createInterface({ input: this.child.stdout! }).on("line", (line) =>
      this.pending.shift()?.resolve(JSON.parse(line) as Reply),
    );
    this.child.once("exit", (code, signal) => {
      this.exited = new Error(`${role} process exited (${code ?? signal})`);
      for (const p of this.pending.splice(0)) p.reject(this.exited);
    });
  }

  ask(cmd: string): Promise<Reply> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
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

async function orchestrate(argv: string[], opts: Options): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("tun-bench needs root (network namespace, TUN devices)");
  const ns = `scb${process.pid}-tun`;
  const plan = tunRounds(opts);
  const roles: Role[] = [];
  try {
    createNamespace(ns, plan.round);
    const rd = new Role(ns, "reader", argv);
    const wr = new Role(ns, "writer", argv);
    roles.push(rd, wr);
    const idle = await rd.ask("idle");
    // Warm-up (JIT, first touch of the buffers), not counted.
    await rd.ask(
      `read ${(await wr.ask(`write ${Math.ceil(plan.writesPerRound / 2)}`)).packets! * plan.segs}`,
    );
    const drops0 = kernelDrops(ns, DEV_OUT);
    const sat = await saturated(rd, wr, plan, opts.seconds);
    const dropsSat = kernelDrops(ns, DEV_OUT) - drops0;

    // 2. Concurrent: both at once, the reader woken as packets arrive.
    const [conR, conW] = await Promise.all([
      rd.ask(`read ${plan.writes * plan.segs}`),
      wr.ask(`write ${plan.writes}`),
    ]);
    const dropsCon = kernelDrops(ns, DEV_OUT) - drops0 - dropsSat;

    const figures: TunFigures = {
      idle,
      saturated: { ...sat, kernelDrops: dropsSat },
      concurrent: { write: conW, read: conR, kernelDrops: dropsCon },
    };
    for (const line of tunReport(opts, plan.segs, figures)) console.log(line);
    if (wrongSize(figures) > 0) process.exitCode = 1;
    if (opts.json) say({ opts, idle, saturated: sat, concurrent: { write: conW, read: conR } });
  } finally {
    for (const r of roles) r.stop();
    try {
      sh("ip", ["netns", "del", ns]);
    } catch {
      // already gone
    }
  }
}

/** The namespace with forwarding on and the two TUN devices, sctB's queue long enough for a round. */
function createNamespace(ns: string, round: number): void {
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
  sh("ip", ["-n", ns, "link", "set", DEV_OUT, "txqueuelen", String(round + 1000)]);
}

/**
 * 1. Saturated: round by round, the writer fills sctB's queue, then the reader drains it (each
 * process alone), until half the packets or half the time; the rounds' totals.
 */
async function saturated(
  rd: Role,
  wr: Role,
  plan: TunRounds,
  seconds: number,
): Promise<{ write: Reply; read: Reply }> {
  const satW: Reply[] = [];
  const satR: Reply[] = [];
  const t0 = Date.now();
  for (
    let done = 0;
    done < plan.writes && Date.now() - t0 < (seconds * 1000) / 2;
    done += plan.writesPerRound
  ) {
    const w = await wr.ask(`write ${Math.min(plan.writesPerRound, plan.writes - done)}`);
    satW.push(w);
    satR.push(await rd.ask(`read ${w.packets! * plan.segs}`));
  }
  return { write: total(satW), read: total(satR) };
}

const argv = process.argv.slice(2);
const roleAt = argv.indexOf("--role");
const role = roleAt >= 0 ? argv[roleAt + 1] : undefined;
const opts = parseOptions(argv);
if (role === "reader") reader(opts);
else if (role === "writer") writer(opts);
else await orchestrate(argv, opts);
