// A process running our TCP stack on a TUN device, serving simple services for interop
// tests and benchmarks against the Linux kernel (run inside a testbed host):
//   ip netns exec <ns> node dist/sc/tcp/interop-service.js --tun sctun --vip 198.18.100.1 [--gso 65000]
// Ports:
//   7   echo: everything back; FIN after the peer's FIN
//   9   discard: read and drop
//   10  hash sink: read until FIN, then answer "<bytes> <sha256 hex>\n" and close
//   19  fixed size: read a line "<bytes>\n", answer that many bytes of interopPattern(), close
//   80  HTTP/1.x: "GET /<bytes>" -> 200 with that many pattern bytes, then close
//   8   stats: JSON (stack counters, connections, CPU) and close
// Prints {"ready":true,...} once attached; on SIGTERM prints its final stats and exits 0.

import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { TunDevice } from "../tun/index.js";
import { TcpTunRuntime } from "./runtime.js";
import { TcpServer, type TcpSocket } from "./socket.js";
import { interopPattern, PATTERN_BLOCK } from "./interop-pattern.js";

const { values } = parseArgs({
  options: {
    tun: { type: "string", default: "sctun" },
    vip: { type: "string", default: "198.18.100.1" },
    config: { type: "string", default: "{}" },
    // Largest GSO packet written to the TUN (vnet header); 0 = one segment per write.
    gso: { type: "string", default: "65000" },
  },
});

const gso = Number(values.gso);
const tun = TunDevice.open({ name: values.tun!, up: true, maxBatch: 256, vnetHdr: gso > 0 });
const runtime = new TcpTunRuntime(tun, {
  addresses: [values.vip!],
  config: { ...(JSON.parse(values.config!) as Record<string, unknown>), gsoMaxBytes: gso },
});
const stack = runtime.stack;
const pattern = interopPattern();
const cpuStart = process.cpuUsage();

/** Sends `total` pattern bytes with backpressure, then ends the socket. */
function sendPattern(s: TcpSocket, total: number, prefix?: Buffer): void {
  let off = 0;
  if (prefix !== undefined) s.write(prefix);
  const pump = (): void => {
    while (off < total) {
      const start = off % PATTERN_BLOCK;
      const n = Math.min(PATTERN_BLOCK - start, total - off, 256 * 1024);
      off += n;
      if (!s.write(pattern.subarray(start, start + n))) {
        s.once("drain", pump);
        return;
      }
    }
    s.end();
  };
  pump();
}

function readLine(s: TcpSocket, max: number, onLine: (line: string) => void): void {
  let buf = "";
  const onData = (d: Buffer): void => {
    buf += d.toString("latin1");
    const nl = buf.indexOf("\n");
    if (nl >= 0) {
      s.off("data", onData);
      onLine(buf.slice(0, nl).replace(/\r$/, ""));
    } else if (buf.length > max) {
      s.destroy();
    }
  };
  s.on("data", onData);
}

function stats(): Record<string, unknown> {
  const cpu = process.cpuUsage(cpuStart);
  return {
    connections: stack.connections,
    counters: stack.counters,
    timerWakeups: runtime.timerWakeups,
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    tun: tun.stats,
  };
}

const quiet = (s: TcpSocket): void => {
  s.on("error", () => undefined);
};

new TcpServer(stack, {}, (s) => {
  quiet(s);
  s.on("data", (d: Buffer) => s.write(d));
}).listen(7);

new TcpServer(stack, {}, (s) => {
  quiet(s);
  s.resume();
}).listen(9);

new TcpServer(stack, { allowHalfOpen: true }, (s) => {
  quiet(s);
  const h = createHash("sha256");
  let bytes = 0;
  s.on("data", (d: Buffer) => {
    h.update(d);
    bytes += d.length;
  });
  s.on("end", () => s.end(`${bytes} ${h.digest("hex")}\n`));
}).listen(10);

new TcpServer(stack, { allowHalfOpen: true }, (s) => {
  quiet(s);
  readLine(s, 64, (line) => {
    const n = Number(line.trim());
    if (!Number.isSafeInteger(n) || n < 0) return void s.destroy();
    s.resume();
    sendPattern(s, n);
  });
}).listen(19);

new TcpServer(stack, { allowHalfOpen: true }, (s) => {
  quiet(s);
  readLine(s, 8192, (line) => {
    const m = /^(GET|HEAD) \/(\d+) HTTP\/1\.[01]$/.exec(line);
    if (m === null)
      return void s.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    const n = Number(m[2]);
    const head = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${n}\r\nConnection: close\r\n\r\n`);
    s.resume();
    if (m[1] === "HEAD") return void s.end(head);
    sendPattern(s, n, head);
  });
}).listen(80);

new TcpServer(stack, {}, (s) => {
  quiet(s);
  s.end(JSON.stringify(stats()) + "\n");
}).listen(8);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  const final = stats();
  runtime.close();
  tun.close();
  process.stdout.write(JSON.stringify(final) + "\n", () => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

await tun.whenRunning();
process.stdout.write(JSON.stringify({ ready: true, tun: tun.name, vip: values.vip }) + "\n");
