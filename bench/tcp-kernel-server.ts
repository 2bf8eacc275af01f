// The kernel-TCP counterpart of sc/tcp/interop-service.ts for bench/tcp-bulk.ts: the same
// fixed-size service (port 19: "<bytes>\n" -> that many pattern bytes, then close) and the
// same stats port (8: JSON with this process's CPU time), on node:net.
//   ip netns exec <ns> node dist/bench/tcp-kernel-server.js [--host 0.0.0.0]
import { createServer, type Socket } from "node:net";
import { parseArgs } from "node:util";
import { interopPattern, PATTERN_BLOCK } from "../sc/tcp/interop-pattern.js";

const { values } = parseArgs({ options: { host: { type: "string", default: "0.0.0.0" } } });
const pattern = interopPattern();
const cpuStart = process.cpuUsage();

function sendPattern(s: Socket, total: number): void {
  let off = 0;
  const pump = (): void => {
    while (off < total) {
      const start = off % PATTERN_BLOCK;
      const n = Math.min(PATTERN_BLOCK - start, total - off, 256 * 1024);
      off += n;
      if (!s.write(pattern.subarray(start, start + n))) return void s.once("drain", pump);
    }
    s.end();
  };
  pump();
}

const fixed = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
  s.on("error", () => undefined);
  let line = "";
  const onData = (d: Buffer): void => {
    line += d.toString("latin1");
    const nl = line.indexOf("\n");
    if (nl < 0) return;
    s.off("data", onData);
    s.resume();
    sendPattern(s, Number(line.slice(0, nl)));
  };
  s.on("data", onData);
});

const stats = createServer((s) => {
  const cpu = process.cpuUsage(cpuStart);
  s.end(JSON.stringify({ cpuUserUs: cpu.user, cpuSystemUs: cpu.system }) + "\n");
});

let listening = 0;
const ready = (): void => {
  if (++listening === 2) process.stdout.write(JSON.stringify({ ready: true }) + "\n");
};
fixed.listen(19, values.host, ready);
stats.listen(8, values.host, ready);
process.on("SIGTERM", () => process.exit(0));
