// Bulk throughput of our user-space TCP stack (sc/tcp) against a kernel client, per core of
// our process, next to the same transfer served by the kernel's TCP (node:net) in the same
// run. Needs root (it builds a private testbed, unshaped).
//
//   node dist/bench/tcp-bulk.js [--bytes N] [--runs R] [--streams S] [--gso BYTES] [--json]
//
// Our stack: sc/tcp/interop-service.js on node1's TUN, owning the VIP (--vip-host node1).
// Kernel: bench/tcp-kernel-server.js (node:net) on node1's own address 198.18.0.11. The
// client (node:net, interop-client.js "fixed") downloads N bytes on S connections from each
// in turn, R times. Per-core rate = bytes * 8 / (user + system CPU seconds of the server
// process during the transfer); for our stack that CPU includes the kernel's forwarding of
// every packet we write into the TUN (done inside write(2)). Wall rate: first byte request
// to last byte, as the client saw it.

import { type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { destroyTestbed, withTestbed, type Testbed } from "../testbed/index.js";

const { values } = parseArgs({
  options: {
    bytes: { type: "string", default: "200000000" },
    runs: { type: "string", default: "3" },
    streams: { type: "string", default: "1" },
    // Largest GSO packet our stack writes to the TUN (0: one segment per write).
    gso: { type: "string", default: "65000" },
    prefix: { type: "string", default: `scb${process.pid.toString(36)}-` },
    json: { type: "boolean", default: false },
  },
});
const BYTES = Number(values.bytes);
const RUNS = Number(values.runs);
const STREAMS = Number(values.streams);
const PREFIX = values.prefix!;
const VIP = "198.18.100.1";
const NODE1 = "198.18.0.11";

const SERVICE = fileURLToPath(new URL("../sc/tcp/interop-service.js", import.meta.url));
const KERNEL = fileURLToPath(new URL("./tcp-kernel-server.js", import.meta.url));
const CLIENT = fileURLToPath(new URL("../sc/tcp/interop-client.js", import.meta.url));

interface Cpu {
  cpuUserUs: number;
  cpuSystemUs: number;
}

interface RunResult {
  server: "sc/tcp" | "kernel";
  bytes: number;
  wallMs: number;
  cpuMs: number;
  wallMbps: number;
  perCoreMbps: number;
}

function startProcess(tb: Testbed, args: string[]): Promise<ChildProcess> {
  const p = tb.spawn("node1", process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    p.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes("\n")) resolve(p);
    });
    p.on("close", (code) => reject(new Error(`${args[0]} exited (${code})`)));
  });
}

async function cpu(tb: Testbed, addr: string): Promise<Cpu> {
  const r = await tb.exec("client", "sh", ["-c", `nc -N -w 5 ${addr} 8 </dev/null`]);
  return JSON.parse(r.stdout) as Cpu;
}

async function transfer(tb: Testbed, server: RunResult["server"], addr: string): Promise<RunResult> {
  const before = await cpu(tb, addr);
  const r = await tb.exec(
    "client",
    process.execPath,
    [CLIENT, "fixed", addr, String(STREAMS), String(Math.floor(BYTES / STREAMS))],
    { timeoutMs: 600_000 },
  );
  const after = await cpu(tb, addr);
  const res = JSON.parse(r.stdout) as { ok: number; failed: number; ms: number };
  if (res.failed !== 0) throw new Error(`${server}: ${r.stdout}`);
  const cpuMs = (after.cpuUserUs - before.cpuUserUs + after.cpuSystemUs - before.cpuSystemUs) / 1000;
  const bytes = Math.floor(BYTES / STREAMS) * STREAMS;
  return {
    server,
    bytes,
    wallMs: res.ms,
    cpuMs,
    wallMbps: (bytes * 8) / (res.ms * 1000),
    perCoreMbps: (bytes * 8) / (cpuMs * 1000),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const results: RunResult[] = [];
  await withTestbed({ prefix: PREFIX, nodes: 1, vipHost: "node1" }, async (tb) => {
    const ours = await startProcess(tb, [SERVICE, "--tun", "sctun", "--vip", VIP, "--gso", values.gso!]);
    const kernel = await startProcess(tb, [KERNEL, "--host", NODE1]);
    try {
      // Warm-up (JIT, caches), not counted.
      await transfer(tb, "sc/tcp", VIP);
      await transfer(tb, "kernel", NODE1);
      for (let i = 0; i < RUNS; i++) {
        for (const [name, addr] of [
          ["sc/tcp", VIP],
          ["kernel", NODE1],
        ] as const) {
          const r = await transfer(tb, name, addr);
          results.push(r);
          if (!values.json) {
            console.log(
              `${name.padEnd(7)} ${(r.bytes / 1e6).toFixed(0)} MB  wall ${r.wallMbps.toFixed(0).padStart(5)} Mbit/s  ` +
                `server CPU ${r.cpuMs.toFixed(0).padStart(5)} ms  per core ${r.perCoreMbps.toFixed(0).padStart(5)} Mbit/s`,
            );
          }
        }
      }
    } finally {
      ours.kill("SIGTERM");
      kernel.kill("SIGTERM");
    }
  });
  const oursPerCore = median(results.filter((r) => r.server === "sc/tcp").map((r) => r.perCoreMbps));
  const kernelPerCore = median(results.filter((r) => r.server === "kernel").map((r) => r.perCoreMbps));
  const oursWall = median(results.filter((r) => r.server === "sc/tcp").map((r) => r.wallMbps));
  const kernelWall = median(results.filter((r) => r.server === "kernel").map((r) => r.wallMbps));
  const summary = {
    gso: Number(values.gso),
    bytes: BYTES,
    streams: STREAMS,
    runs: RUNS,
    oursPerCoreMbps: Math.round(oursPerCore),
    kernelPerCoreMbps: Math.round(kernelPerCore),
    perCoreRatio: Number((oursPerCore / kernelPerCore).toFixed(3)),
    oursWallMbps: Math.round(oursWall),
    kernelWallMbps: Math.round(kernelWall),
    wallRatio: Number((oursWall / kernelWall).toFixed(3)),
  };
  if (values.json) console.log(JSON.stringify({ summary, results }));
  else {
    console.log(
      `median per core: sc/tcp ${summary.oursPerCoreMbps} Mbit/s, kernel ${summary.kernelPerCoreMbps} Mbit/s, ` +
        `ratio ${summary.perCoreRatio}; wall: ${summary.oursWallMbps} vs ${summary.kernelWallMbps} Mbit/s (${summary.wallRatio})`,
    );
  }
}

process.on("SIGINT", () => {
  void destroyTestbed(PREFIX).finally(() => process.exit(130));
});
await main();
