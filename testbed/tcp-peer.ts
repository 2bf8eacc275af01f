// A bounded one-connection TCP sink/source, run inside a testbed host by measure.ts to
// check link shaping (no iperf on these machines).
//   node tcp-peer.js sink <port>                  prints "ready", then {"bytes":N,"seconds":S}
//   node tcp-peer.js source <addr> <port> <bytes>
import { createServer, connect } from "node:net";

function sink(port: number): void {
  const server = createServer((sock) => {
    server.close();
    let bytes = 0;
    let first = 0n;
    sock.on("data", (b: Buffer) => {
      if (bytes === 0) first = process.hrtime.bigint();
      bytes += b.length;
    });
    sock.on("end", () => {
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
if (mode === "sink" && args.length === 1) sink(Number(args[0]));
else if (mode === "source" && args.length === 3) source(args[0]!, Number(args[1]), Number(args[2]));
else {
  console.error("usage: tcp-peer.js sink <port> | source <addr> <port> <bytes>");
  process.exit(2);
}
