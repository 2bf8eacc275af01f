// Packets a clone costs, counted (issue 15; not a test): the Socket Cloning engine with real
// TCP stacks on the virtual network under virtual time (sc/clone/sim-testing.ts), so the
// figures are exact and the same on every machine, unlike CPU time. For each response size:
// client packets the original relayed to the clone's node per clone, and the ones it kept
// (the client's completing ACK, told by DONE instead), keep-alive and Connection: close.
//   npm run build && node dist/bench/sc-packets.js [--sizes 100,1000,10000,16384,100000]
import { parseArgs } from "node:util";
import { ScSim } from "../sc/clone/sim-testing.js";

const { values } = parseArgs({
  options: { sizes: { type: "string", default: "100,1000,10000,16384,100000" }, help: { type: "boolean" } },
});
if (values.help) {
  console.log("Usage: node dist/bench/sc-packets.js [--sizes a,b,...]");
  process.exit(0);
}
const SIZES = values.sizes.split(",").map(Number);
const REQUESTS = 5;

function response(n: number): { head: Uint8Array; body: Uint8Array } {
  return { head: Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${n}\r\n\r\n`), body: Buffer.alloc(n, 7) };
}

/** Relayed and kept client packets per clone for one size. */
async function count(size: number, close: boolean): Promise<{ relayed: number; kept: number }> {
  const resp = response(size);
  const sim = new ScSim({ respond: () => resp });
  const cl = sim.connect();
  await sim.run(() => cl.sock.readyState === "open", 5000);
  const clones = close ? 1 : REQUESTS;
  let want = 0;
  for (let i = 0; i < clones; i++) {
    cl.sock.write(`GET /x HTTP/1.1\r\nHost: sc\r\n${close ? "Connection: close\r\n" : ""}\r\n`);
    want += resp.head.length + size;
    if (!(await sim.run(() => cl.received().length >= want && sim.original.size === 0, 60_000)))
      throw new Error(`size ${size}: the clone did not complete`);
  }
  return { relayed: sim.original.router.forwarded / clones, kept: sim.original.router.notRelayed / clones };
}

console.log("| response bytes | keep-alive: relayed / kept per clone | Connection: close: relayed / kept |");
console.log("| ---: | ---: | ---: |");
for (const size of SIZES) {
  const ka = await count(size, false);
  const cl = await count(size, true);
  console.log(
    `| ${size} | ${ka.relayed.toFixed(1)} / ${ka.kept.toFixed(1)} | ${cl.relayed.toFixed(1)} / ${cl.kept.toFixed(1)} |`,
  );
}
console.log("\nrelayed: client packets the original forwarded to the clone's node (one GUE datagram and one");
console.log("wake-up of that node each); kept: client packets of cloned connections the clone did not need.");
