// Test support, run inside the client host by cluster.netns.test.ts: opens COUNT TCP connections
// to the VIP and holds them idle; prints {"connected":[local ports]} once all are established;
// on a line on stdin sends one GET on each and prints {"results":[...]} with what each got:
// a response (its status), a reset, a close without an answer, or nothing within --timeout
// (a hang); a connection reset or closed while it was held idle reports that at once. Bounded: every connection ends within the timeout, then the process exits.
//
//   node held-conns-main.js --host 198.18.100.1 --port 80 --count 30 --path / --timeout 5000
import { connect, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "198.18.100.1" },
    port: { type: "string", default: "80" },
    count: { type: "string", default: "30" },
    path: { type: "string", default: "/" },
    timeout: { type: "string", default: "5000" },
  },
});
const count = Number(values.count);
const timeoutMs = Number(values.timeout);

type Outcome =
  | { port: number; outcome: "response"; status: number; ms: number }
  | { port: number; outcome: "reset" | "closed" | "timeout" | "error"; detail?: string; ms: number };

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: values.host!, port: Number(values.port) });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error("connect timeout"));
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

/** How a held connection ended before it was asked (a RST or FIN while idle), by socket. */
const endedIdle = new Map<Socket, Outcome>();

function ask(s: Socket): Promise<Outcome> {
  const port = s.localPort!;
  const start = Date.now();
  const early = endedIdle.get(s);
  if (early !== undefined) return Promise.resolve(early);
  return new Promise((resolve) => {
    let done = false;
    let head = "";
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve(o);
    };
    const t = setTimeout(() => finish({ port, outcome: "timeout", ms: Date.now() - start }), timeoutMs);
    s.on("data", (b: Buffer) => {
      head += b.toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3}) /.exec(head);
      if (m) finish({ port, outcome: "response", status: Number(m[1]), ms: Date.now() - start });
    });
    s.on("error", (e: NodeJS.ErrnoException) =>
      finish({
        port,
        outcome: e.code === "ECONNRESET" ? "reset" : "error",
        detail: e.code ?? e.message,
        ms: Date.now() - start,
      }),
    );
    s.on("close", () => finish({ port, outcome: "closed", ms: Date.now() - start }));
    s.write(`GET ${values.path} HTTP/1.1\r\nHost: ${values.host}\r\nConnection: close\r\n\r\n`);
  });
}

const sockets: Socket[] = [];
for (let i = 0; i < count; i++) sockets.push(await open());
// Until asked: a connection reset or closed while idle is reported as such (its node died and
// the dispatcher reset it, say), not asked and left to time out.
for (const s of sockets) {
  const port = s.localPort!;
  s.on("error", (e: NodeJS.ErrnoException) => {
    if (!endedIdle.has(s))
      endedIdle.set(s, {
        port,
        outcome: e.code === "ECONNRESET" ? "reset" : "error",
        detail: `while idle: ${e.code ?? e.message}`,
        ms: 0,
      });
  });
  s.on("close", () => {
    if (!endedIdle.has(s)) endedIdle.set(s, { port, outcome: "closed", detail: "while idle", ms: 0 });
  });
}
process.stdout.write(JSON.stringify({ connected: sockets.map((s) => s.localPort) }) + "\n");
const rl = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => rl.once("line", () => resolve()));
rl.close();
const results = await Promise.all(sockets.map(ask));
process.stdout.write(JSON.stringify({ results }) + "\n");
process.exit(0);
