// Shaped links send marked traffic first: with a host's link full of bulk TCP data, UDP probes
// marked as the SC traffic is (sc/net/priority.ts) see a short queue while unmarked probes sent
// at the same moments see the whole bulk queue. Both directions of a link: a node's upload
// full of forwarded packets (as its TUN's responses are) and a node's download, the switch
// port, full of bridged packets (there only the DSCP in the IP header can classify them).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { destroyTestbed, testPrefix, withTestbed, type Testbed } from "./testbed.js";
import { run } from "./run.js";
import { SC_MARKING } from "../sc/net/priority.js";

const P = testPrefix("q");
const PROBE = fileURLToPath(new URL("./udp-probe.js", import.meta.url));
const PEER = fileURLToPath(new URL("./tcp-peer.js", import.meta.url));
const ECHO_PORT = 7007;
const BULK_PORT = 5202;
// 25,000 B per band at 10 Mbit/s (testbed/scripts.ts): a full bulk band is 20 ms of queue.
const RATE = "10mbit";
// Parallel bulk flows: one TCP flow halves its window on each tail drop and lets the queue
// drain for a while (the probes then see a short queue too); of four, the others keep it full.
const BULK_FLOWS = 4;

after(async () => {
  await destroyTestbed(P);
});

interface ProbeResult {
  marked: number[];
  unmarked: number[];
  lost: { marked: number; unmarked: number };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;

/** Waits for a child's first stdout line (its "ready"). */
function ready(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
    child.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes("\n")) resolve();
    });
    child.once("exit", (code) =>
      reject(new Error(`${what} exited (${code}) before it was ready: ${err.trim()}`)),
    );
  });
}

/** Bytes queued in a qdisc (by handle) of `dev` in `netns`, from `tc -s qdisc show`. */
async function backlog(netns: string, dev: string, handle: string): Promise<number> {
  const r = await run(["ip", "netns", "exec", netns, "tc", "-s", "qdisc", "show", "dev", dev]);
  const block = r.stdout.split(/\n(?=qdisc )/).find((b) => b.includes(` ${handle} `));
  const m = block ? /backlog (\d+)b/.exec(block) : null;
  return m ? Number(m[1]) : 0;
}

/**
 * Runs a bulk TCP transfer `from` -> `to` until the probe is done, and the probe from
 * `prober` to `echoHost` once `queue` holds at least half its limit.
 */
async function probeUnderBulk(
  tb: Testbed,
  o: {
    bulk: { from: string; to: string };
    queue: { netns: string; dev: string };
    prober: string;
    echoHost: string;
    marking: { dscp: number; priority: number };
  },
): Promise<ProbeResult> {
  const children: ChildProcess[] = [];
  const spawn = (host: string, args: string[]) => {
    const c = tb.spawn(host, process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    children.push(c);
    return c;
  };
  try {
    const sink = spawn(o.bulk.to, [PEER, "sink", String(BULK_PORT), String(BULK_FLOWS)]);
    const echo = spawn(o.echoHost, [PROBE, "echo", String(ECHO_PORT)]);
    await Promise.all([ready(sink, "bulk sink"), ready(echo, "echo")]);
    // 4 x 5 MB: ~16 s at 10 Mbit/s, far longer than the probe; killed once the probe is done.
    for (let i = 0; i < BULK_FLOWS; i++)
      spawn(o.bulk.from, [PEER, "source", tb.host(o.bulk.to).ip, String(BULK_PORT), "5000000"]);
    // The bulk band fills within a few round trips; bounded wait (10 s) for it.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const b = await backlog(o.queue.netns, o.queue.dev, "12:");
      if (b >= 12_500) break;
      assert.ok(Date.now() < deadline, `the bulk queue on ${o.queue.dev} never filled (backlog ${b} B)`);
    }
    const r = await tb.exec(
      o.prober,
      process.execPath,
      [
        PROBE,
        "probe",
        tb.host(o.echoHost).ip,
        String(ECHO_PORT),
        "50",
        "20",
        String(o.marking.dscp),
        String(o.marking.priority),
      ],
      { timeoutMs: 20_000 },
    );
    return JSON.parse(r.stdout) as ProbeResult;
  } finally {
    const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
    for (const c of running) c.kill("SIGKILL");
    // Gone before the next scenario binds the same ports.
    await Promise.all(running.map((c) => once(c, "exit")));
  }
}

function assertMarkedFirst(r: ProbeResult, where: string): void {
  const m = median(r.marked);
  const u = median(r.unmarked);
  const detail = `${where}: marked p50 ${m.toFixed(2)} ms (${r.marked.length} answered, ${r.lost.marked} lost), unmarked p50 ${u.toFixed(2)} ms (${r.unmarked.length} answered, ${r.lost.unmarked} lost)`;
  console.log(detail);
  assert.equal(r.lost.marked, 0, detail);
  assert.ok(r.unmarked.length >= 10, `too few unmarked answers to compare: ${detail}`);
  // The bulk band holds 20 ms; a marked probe waits for tokens for itself only.
  assert.ok(u > 5, `the unmarked probes should wait behind the bulk: ${detail}`);
  assert.ok(m * 4 < u, `marked probes should see a far shorter queue: ${detail}`);
}

test("shaped links send CS5-marked packets ahead of a full queue of bulk data, both directions", async () => {
  await withTestbed({ prefix: P, nodes: 2, clients: 2, rate: RATE }, async (tb) => {
    const sw = tb.plan.switchNetns;
    const node1 = tb.host("node1");
    const qdiscs = (await tb.exec("node1", "tc", ["qdisc", "show", "dev", "eth0"])).stdout;
    assert.match(qdiscs, /qdisc tbf 1: root .*rate 10Mbit/);
    assert.match(qdiscs, /qdisc htb 10: parent 1:1 .*default 0x2/);
    assert.match(qdiscs, /qdisc bfifo 11: parent 10:1 limit 25000b/);
    assert.match(qdiscs, /qdisc bfifo 12: parent 10:2 limit 25000b/);
    const portQdiscs = (await run(["ip", "netns", "exec", sw, "tc", "qdisc", "show", "dev", "node2"])).stdout;
    assert.match(portQdiscs, /qdisc htb 10: parent 1:1/);
    const filters = (await tb.exec("node1", "tc", ["filter", "show", "dev", "eth0", "parent", "10:"])).stdout;
    assert.match(filters, /match 00a00000\/00e00000 at 0/);

    // 1. node1's upload full of forwarded packets (no socket, so no TCP small-queue limit:
    // what a node's TUN responses are). client -> client2 is routed through node1, and only
    // node1's eth0 is left shaped on that path, so its queue is the bottleneck.
    await tb.exec("client", "tc", ["qdisc", "del", "dev", "eth0", "root"]);
    await run(["ip", "netns", "exec", sw, "tc", "qdisc", "del", "dev", "node1", "root"]);
    await tb.exec("client", "ip", ["route", "add", `${tb.host("client2").ip}/32`, "via", node1.ip]);
    // Hairpin forwarding (in and out of eth0) would otherwise redirect the client past node1.
    await tb.exec("node1", "sysctl", ["-q", "-w", "net.ipv4.conf.eth0.send_redirects=0"]);
    const upload = await probeUnderBulk(tb, {
      bulk: { from: "client", to: "client2" },
      queue: { netns: node1.netns, dev: "eth0" },
      prober: "node1",
      echoHost: "node2",
      marking: SC_MARKING,
    });
    assertMarkedFirst(upload, "node1 upload, forwarded bulk, DSCP CS5 + SO_PRIORITY 6");

    // 2. node2's download (its switch port) full of bridged bulk from the (now unshaped)
    // client. The probe carries the DSCP only (priority 0): the classification is the IP header's.
    const download = await probeUnderBulk(tb, {
      bulk: { from: "client", to: "node2" },
      queue: { netns: sw, dev: "node2" },
      prober: "node1",
      echoHost: "node2",
      marking: { dscp: SC_MARKING.dscp, priority: 0 },
    });
    assertMarkedFirst(download, "node2 download (switch port), bridged bulk, DSCP CS5 only");
  });
});
