// Bounded measurements between testbed hosts: TCP goodput (to check shaping) and ping
// loss (to check reachability and loss injection).
import { fileURLToPath } from "node:url";
import type { Testbed } from "./testbed.js";

const PEER = fileURLToPath(new URL("./tcp-peer.js", import.meta.url));

export interface Throughput {
  bytes: number;
  seconds: number;
  bitsPerSecond: number;
}

/**
 * Sends `bytes` over one TCP connection from host `from` to host `to` and returns the
 * goodput the receiver saw (first byte to end). Bounded by `timeoutMs`.
 */
export async function measureThroughput(
  tb: Testbed,
  opts: { from: string; to: string; bytes: number; port?: number; timeoutMs?: number },
): Promise<Throughput> {
  const port = opts.port ?? 5201;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const sink = tb.spawn(opts.to, process.execPath, [PEER, "sink", String(port)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    let out = "";
    let err = "";
    sink.stderr!.on("data", (b: Buffer) => (err += b.toString()));
    const result = new Promise<string>((resolve, reject) => {
      sink.on("error", reject);
      sink.on("close", (code) =>
        code === 0
          ? resolve(out)
          : reject(new Error(`sink in ${opts.to} exited with ${code}: ${err.trim()}`)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      sink.stdout!.on("data", (b: Buffer) => {
        out += b.toString();
        if (out.startsWith("ready\n")) resolve();
      });
      result.catch(reject);
    });
    await tb.exec(
      opts.from,
      process.execPath,
      [PEER, "source", tb.host(opts.to).ip, String(port), String(opts.bytes)],
      {
        timeoutMs,
      },
    );
    const timer = setTimeout(() => sink.kill("SIGKILL"), timeoutMs);
    const text = await result.finally(() => clearTimeout(timer));
    const { bytes, seconds } = JSON.parse(text.slice("ready\n".length)) as { bytes: number; seconds: number };
    return { bytes, seconds, bitsPerSecond: (bytes * 8) / seconds };
  } finally {
    if (sink.exitCode === null && sink.signalCode === null) sink.kill("SIGKILL");
  }
}

export interface PingSummary {
  transmitted: number;
  received: number;
  lossPercent: number;
}

/** Reads iputils ping's summary line ("N packets transmitted, M received, ..."). */
export function parsePingSummary(output: string): PingSummary | undefined {
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(output);
  if (!m) return undefined;
  const transmitted = Number(m[1]);
  const received = Number(m[2]);
  return {
    transmitted,
    received,
    lossPercent: transmitted ? (100 * (transmitted - received)) / transmitted : 0,
  };
}

/**
 * Pings `target` (an address or a host name of the testbed) from host `from`: `count`
 * echoes `intervalS` apart, each waiting at most `waitS`; bounded by count and a timeout.
 */
export async function ping(
  tb: Testbed,
  from: string,
  target: string,
  opts: { count?: number; intervalS?: number; waitS?: number } = {},
): Promise<PingSummary> {
  const count = opts.count ?? 3;
  const interval = opts.intervalS ?? 0.2;
  const wait = opts.waitS ?? 1;
  const addr = /^\d+\.\d+\.\d+\.\d+$/.test(target) ? target : tb.host(target).ip;
  // No -w: with a deadline iputils keeps sending until `count` replies arrive. The
  // process timeout bounds the run instead.
  const args = ["-n", "-q", "-c", String(count), "-i", String(interval), "-W", String(wait), addr];
  const timeoutMs = Math.ceil((count * interval + wait) * 1000) + 10_000;
  const r = await tb.exec(from, "ping", args, { check: false, timeoutMs });
  const s = parsePingSummary(r.stdout);
  if (!s)
    throw new Error(`ping ${addr} from ${from} printed no summary (exit ${r.code}): ${r.stderr.trim()}`);
  return s;
}
