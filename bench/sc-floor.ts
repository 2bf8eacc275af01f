// The floor under Socket Cloning's one-way latency in this runtime (issue 15; not a test): one
// Node.js process sends a small stamped message over a kernel TCP connection on loopback to
// another Node.js process, which notes when its 'data' callback sees it. That is the part of
// a clone no SC code can remove: a write(2) on the original, the kernel's TCP path, an
// epoll wake-up and a read on the clone's node. Both processes read CLOCK_MONOTONIC
// (process.hrtime), which is one clock for every process of the machine.
//
// Each message waits for the previous one's echo (an idle link, as the paper's 46 us was
// measured), so the figure is a latency, not a throughput. It also prints both processes' CPU
// per message (user + system).
//
// --gap-ms G waits G ms after each echo, so both processes (and, on a VM, their vCPUs) are
// idle when the next message comes, as on a lightly loaded cluster; --spin N runs N busy
// loops at the lowest priority meanwhile, which keep the CPUs awake without taking time from
// the two processes: the difference between the two is the cost of waking an idle CPU.
//
//   npm run build && node dist/bench/sc-floor.js [--messages N] [--size BYTES] [--gap-ms G] [--spin N]
import { fork, type ChildProcess } from "node:child_process";
import { setPriority } from "node:os";
import { createServer, connect, type Socket } from "node:net";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

const MESSAGES = arg("--messages", 5000);
const SIZE = arg("--size", 160);
const GAP_MS = arg("--gap-ms", 0);
const SPIN = arg("--spin", 0);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The receiving process: records (now - stamp) per message, echoes 1 byte, reports at the end. */
async function receiver(): Promise<void> {
  const samples: number[] = [];
  const cpu0 = process.cpuUsage();
  const server = createServer({ noDelay: true }, (sock) => {
    let pending = 0;
    sock.on("data", (chunk: Buffer) => {
      const now = process.hrtime.bigint();
      pending += chunk.length;
      // A message's stamp is its first 8 bytes; with one message in flight a chunk is one message.
      if (chunk.length >= 8) samples.push(Number(now - chunk.readBigUInt64BE(0)) / 1000);
      while (pending >= SIZE) {
        pending -= SIZE;
        sock.write("k");
      }
    });
    sock.on("end", () => {
      const cpu = process.cpuUsage(cpu0);
      process.send!({ samples, cpuUs: cpu.user + cpu.system });
      sock.end();
      server.close();
    });
  });
  server.listen(0, "127.0.0.1", () => process.send!({ port: (server.address() as { port: number }).port }));
}

/** A busy loop at nice 19 until its parent goes away (the IPC channel closes) or 60 s pass. */
function spinner(): void {
  setPriority(19);
  const end = Date.now() + 60_000;
  const spin = () => {
    const until = Date.now() + 20;
    while (Date.now() < until) {
      /* keep this CPU awake */
    }
    if (process.connected && Date.now() < end) setImmediate(spin);
    else process.exit(0);
  };
  spin();
}

async function sender(): Promise<void> {
  const spinners: ChildProcess[] = [];
  for (let i = 0; i < SPIN; i++) spinners.push(fork(fileURLToPath(import.meta.url), ["--spinner"]));
  try {
    await measure();
  } finally {
    for (const s of spinners) s.kill();
  }
}

async function measure(): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ["--receiver", "--size", String(SIZE)]);
  const [hello] = (await once(child, "message")) as [{ port: number }];
  const sock: Socket = connect({ port: hello.port, host: "127.0.0.1", noDelay: true });
  await once(sock, "connect");
  const msg = Buffer.alloc(SIZE, 0x61);
  const cpu0 = process.cpuUsage();
  let sent = 0;
  const done = new Promise<void>((resolve) => {
    const next = () => {
      if (sent === MESSAGES) return resolve();
      sent++;
      msg.writeBigUInt64BE(process.hrtime.bigint(), 0);
      sock.write(msg);
    };
    sock.on("data", (d: Buffer) => {
      for (let i = 0; i < d.length; i++) {
        if (GAP_MS > 0) setTimeout(next, GAP_MS);
        else next();
      }
    });
    next();
  });
  await done;
  const cpu = process.cpuUsage(cpu0);
  const report = once(child, "message");
  sock.end();
  const [r] = (await report) as [{ samples: number[]; cpuUs: number }];
  await once(child, "exit");
  const s = r.samples.sort((a, b) => a - b);
  console.log(
    `one-way, Node process -> Node process over loopback TCP, ${SIZE}-byte messages` +
      (GAP_MS > 0 ? `, ${GAP_MS} ms idle before each` : ", back to back") +
      (SPIN > 0 ? `, ${SPIN} busy loops at nice 19 keeping the CPUs awake` : "") +
      `, ${s.length} samples: ` +
      `p50 ${percentile(s, 50).toFixed(0)} us, p90 ${percentile(s, 90).toFixed(0)} us, p99 ${percentile(s, 99).toFixed(0)} us`,
  );
  console.log(
    `CPU per message (user + system): sender ${((cpu.user + cpu.system) / MESSAGES).toFixed(1)} us ` +
      `(write + echo read), receiver ${(r.cpuUs / MESSAGES).toFixed(1)} us (read + echo write)`,
  );
  console.log("(paper: a whole clone one-way in 46 us on a Pentium III 733, in-kernel)");
}

if (process.argv.includes("--receiver")) await receiver();
else if (process.argv.includes("--spinner")) spinner();
else await sender();
