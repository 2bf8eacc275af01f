// Round-trip probes over UDP, marked and unmarked side by side, run inside testbed hosts by
// priority.netns.test.ts to see what a link's queue does to each (no sockperf/iperf here).
//   node udp-probe.js echo <port>        prints "ready", echoes every datagram to its sender
//   node udp-probe.js probe <addr> <port> <count> <interval-ms> <dscp> <priority>
//     sends <count> probes from each of two sockets, one marked (sc/net/priority.ts) and one
//     not, <interval-ms> apart, and prints {"marked":[rtt ms...],"unmarked":[...],"lost":{...}}.
//     Each probe waits at most 2 s for its echo; the whole run is bounded by count and that.
import dgram from "node:dgram";
import { once } from "node:events";
import { TrafficMarker } from "../sc/net/priority.js";

const WAIT_MS = 2000;

function echo(port: number): void {
  const sock = dgram.createSocket("udp4");
  sock.on("message", (msg, from) => sock.send(msg, from.port, from.address));
  sock.bind(port, "0.0.0.0", () => process.stdout.write("ready\n"));
}

async function probe(
  addr: string,
  port: number,
  count: number,
  intervalMs: number,
  marking: { dscp: number; priority: number },
): Promise<void> {
  const marker = new TrafficMarker((m) => console.error(m), marking);
  const kinds = ["marked", "unmarked"] as const;
  const rtts: Record<(typeof kinds)[number], number[]> = { marked: [], unmarked: [] };
  const sent = new Map<string, bigint>();
  let allSent = false;
  let settle: () => void = () => undefined;
  const answered = new Promise<void>((r) => (settle = r));
  const socks = await Promise.all(
    kinds.map(async (kind) => {
      const s = dgram.createSocket("udp4");
      s.bind(0, "0.0.0.0");
      await once(s, "listening");
      if (kind === "marked" && !marker.mark(s)) throw new Error("the probe socket could not be marked");
      s.on("message", (msg) => {
        const key = msg.toString("latin1");
        const t0 = sent.get(key);
        if (t0 === undefined) return;
        sent.delete(key);
        rtts[kind].push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (allSent && sent.size === 0) settle();
      });
      return s;
    }),
  );
  for (let i = 0; i < count; i++) {
    kinds.forEach((kind, k) => {
      const key = `${kind}:${i}`.padEnd(64, ".");
      sent.set(key, process.hrtime.bigint());
      socks[k]!.send(key, port, addr);
    });
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  // Stragglers: done when every probe is answered, or after WAIT_MS (the rest are lost).
  allSent = true;
  if (sent.size > 0) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([answered, new Promise((r) => (timer = setTimeout(r, WAIT_MS)))]);
    clearTimeout(timer);
  }
  const lost = { marked: 0, unmarked: 0 };
  for (const key of sent.keys()) lost[key.startsWith("marked") ? "marked" : "unmarked"]++;
  for (const s of socks) s.close();
  process.stdout.write(JSON.stringify({ ...rtts, lost }) + "\n");
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "echo" && args.length === 1) echo(Number(args[0]));
else if (mode === "probe" && args.length === 6) {
  const [addr, port, count, interval, dscp, priority] = args as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  probe(addr, Number(port), Number(count), Number(interval), {
    dscp: Number(dscp),
    priority: Number(priority),
  }).catch((e: Error) => {
    console.error(`probe: ${e.message}`);
    process.exit(1);
  });
} else {
  console.error(
    "usage: udp-probe.js echo <port> | probe <addr> <port> <count> <interval-ms> <dscp> <priority>",
  );
  process.exit(2);
}
