// Test support, run inside the testbed's client namespace by dispatcher.netns.test.ts: kernel
// TCP connections to the VIP, driven by commands on stdin, reporting JSON lines on stdout.
//   open N      open N connections; each reports {"event":"open","id","port"} once the local
//               port is known and {"event":"connected","id","port"} when established
//   write ID..  send a few bytes on those connections: {"event":"written","id"}
//   close       destroy every connection (no FIN for those still in SYN_SENT)
// Errors: {"event":"error","id","code","ms"} with ms since the last write on it.
import { connect, type Socket } from "node:net";
import { createInterface } from "node:readline";

const vip = process.argv[2] ?? "198.18.100.1";
const port = Number(process.argv[3] ?? "80");
const sockets: Socket[] = [];
const lastWrite: number[] = [];

function emit(o: object): void {
  process.stdout.write(JSON.stringify(o) + "\n");
}

function open(n: number): void {
  for (let k = 0; k < n; k++) {
    const id = sockets.length;
    const s = connect({ host: vip, port });
    sockets.push(s);
    lastWrite.push(performance.now());
    // The local port exists once connect() has bound the socket (SYN sent).
    const announce = () => {
      if (s.localPort !== undefined) emit({ event: "open", id, port: s.localPort });
      else setImmediate(announce);
    };
    setImmediate(announce);
    s.on("connect", () => emit({ event: "connected", id, port: s.localPort }));
    s.on("error", (err: NodeJS.ErrnoException) =>
      emit({ event: "error", id, code: err.code, ms: Math.round(performance.now() - lastWrite[id]!) }),
    );
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, ...args] = line.trim().split(/\s+/);
  if (cmd === "open") open(Number(args[0]));
  else if (cmd === "write") {
    for (const a of args) {
      const id = Number(a);
      lastWrite[id] = performance.now();
      sockets[id]!.write("hello\n");
      emit({ event: "written", id });
    }
  } else if (cmd === "close") {
    for (const s of sockets) s.destroy();
    emit({ event: "closed" });
  }
}
for (const s of sockets) s.destroy();
