// The batched UDP socket across two network namespaces joined by a veth pair (made here,
// 198.18.9.0/24, MTU 1500, always deleted afterwards): GUE encapsulation + UDP GSO on one
// side, GRO + decapsulation on the other, byte-exact and in order; a GSO segment above the
// MTU is refused by the kernel and sent one datagram at a time instead; a raw socket sends
// whole outer packets built by sc/wire.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const A = `sct${process.pid}-ua`;
const B = `sct${process.pid}-ub`;
const FIXTURE = fileURLToPath(new URL("./udp.netns.fixture.js", import.meta.url));
const GUARD_MS = 20_000;

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: "pipe" });

function cleanup(): void {
  for (const ns of [A, B]) {
    try {
      ip("netns", "del", ns);
    } catch {
      // not there
    }
  }
}

before(() => {
  cleanup();
  ip("netns", "add", A);
  ip("netns", "add", B);
  ip("-n", A, "link", "add", "ua0", "type", "veth", "peer", "name", "ub0", "netns", B);
  ip("-n", A, "addr", "add", "198.18.9.1/24", "dev", "ua0");
  ip("-n", B, "addr", "add", "198.18.9.2/24", "dev", "ub0");
  ip("-n", A, "link", "set", "ua0", "mtu", "1500", "up");
  ip("-n", B, "link", "set", "ub0", "mtu", "1500", "up");
});
after(cleanup);

/** Runs a fixture role in a namespace; resolves with its JSON lines once it exits. */
function role(ns: string, args: string[], onLine?: (o: Record<string, unknown>) => void) {
  const child = spawn("ip", ["netns", "exec", ns, process.execPath, FIXTURE, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout }).on("line", (l) => {
    const o = JSON.parse(l) as Record<string, unknown>;
    lines.push(o);
    onLine?.(o);
  });
  const guard = setTimeout(() => child.kill("SIGKILL"), GUARD_MS);
  return new Promise<Record<string, unknown>[]>((resolve, reject) =>
    child.on("close", (code) => {
      clearTimeout(guard);
      if (code === 0) resolve(lines);
      else reject(new Error(`${args[0]} exited ${code}: ${stderr}`));
    }),
  );
}

async function transfer(count: number, size: number, gsoMax: number, raw = false) {
  let ready: () => void = () => {};
  const isReady = new Promise<void>((r) => (ready = r));
  const recv = role(B, ["recv", "198.18.9.2", "6080", String(count)], (o) => o.ready === true && ready());
  await isReady;
  const sent = await role(A, [
    raw ? "sendraw" : "send",
    "198.18.9.1",
    "198.18.9.2",
    "6080",
    String(count),
    String(size),
    String(gsoMax),
  ]);
  const got = await recv;
  return { tx: sent.find((o) => o.sent === true)!, rx: got.find((o) => o.done === true)! };
}

test("GSO trains cross the veth whole, are split by GRO in C, and arrive byte-exact and in order", async () => {
  const { tx, rx } = await transfer(1000, 200, 1472);
  assert.equal(rx.sha, tx.sha);
  assert.equal(rx.got, 1000);
  assert.equal(rx.bad, 0);
  assert.equal(tx.packetsOut, 1000);
  assert.equal(tx.sendDrops, 0);
  assert.ok((tx.gsoMessages as number) > 0, "sent as GSO messages");
  assert.ok((rx.groTrains as number) > 0, "received as GRO trains");
  assert.ok((rx.batchesIn as number) < 200, `${String(rx.batchesIn)} callbacks for 1000 datagrams`);
});

test("a GSO segment above the MTU is refused by the kernel and the run goes one datagram at a time", async () => {
  // 2000-byte inner packets: 2004-byte datagrams, fragmented by IP; as GSO segments the
  // kernel refuses them (EINVAL), and the socket falls back.
  const { tx, rx } = await transfer(200, 2000, 4000);
  assert.equal(rx.sha, tx.sha);
  assert.equal(rx.got, 200);
  assert.equal(tx.packetsOut, 200);
  assert.equal(tx.sendDrops, 0);
  assert.equal(tx.gsoMessages, 0);
  assert.equal(rx.groTrains, 0);
});

test("a raw socket sends whole outer IPv4/UDP/GUE packets in batches; they arrive byte-exact", async () => {
  const { tx, rx } = await transfer(500, 300, 0, true);
  assert.equal(rx.sha, tx.sha);
  assert.equal(rx.got, 500);
  assert.equal(rx.bad, 0);
  assert.equal(tx.packetsOut, 500);
  assert.equal(tx.sendDrops, 0);
  assert.ok((tx.sendCalls as number) <= 10, `${String(tx.sendCalls)} sendmmsg calls for 500 packets`);
});
