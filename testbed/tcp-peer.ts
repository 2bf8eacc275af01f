// A bounded TCP sink/source, run inside a testbed host by measure.ts to check link shaping
// (no iperf on these machines) and by the priority test to keep a queue full.
//   node tcp-peer.js sink <port> [connections]   prints "ready", then {"bytes":N,"seconds":S}
//     once <connections> (default 1) connections have ended
//   node tcp-peer.js source <addr> <port> <bytes>
import { createServer, connect } from "node:net";

function sink(port: number, connections: number): void {
  let accepted = 0;
  let ended = 0;
  let bytes = 0;
  let first = 0n;
  const server = createServer((sock) => {
    if (++accepted === connections) server.close();
    sock.on("data", (b: Buffer) => {
      if (bytes === 0) first = process.hrtime.bigint();
      bytes += b.length;
    });
    sock.on("end", () => {
      if (++ended < connections) return;
      const seconds = Number(process.hrtime.bigint() - first) / 1e9;
      process.stdout.write(JSON.stringify({ bytes, seconds }) + "\n", () => process.exit(0));
    });
    sock.on("error", (e) => {
      console.error(`sink: ${e.message}`);
      process.exit(1);
    });
  });
  server.listen(port, "0.0.0.0", () => process.stdout.write("ready\n"));
}

function source(addr: string, port: number, total: number): void {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const sock = connect(port, addr);
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      const n = Math.min(chunk.length, total - sent);
      sent += n;
      if (!sock.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        sock.once("drain", pump);
        return;
      }
    }
    sock.end();
  };
  sock.on("connect", pump);
  sock.on("close", () => process.exit(0));
  sock.on("error", (e) => {
    console.error(`source: ${e.message}`);
    process.exit(1);
  });
}

const [mode, ...args] = process.argv.slice(2);
const connections = Number(args[1] ?? 1);
if (
  mode === "sink" &&
  args.length >= 1 &&
  args.length <= 2 &&
  Number.isInteger(connections) &&
  connections >= 1
)
  sink(Number(args[0]), connections);
else if (mode === "source" && args.length === 3) source(args[0]!, Number(args[1]), Number(args[2]));
else {
  console.error("usage: tcp-peer.js sink <port> [connections] | source <addr> <port> <bytes>");
  process.exit(2);
}
