// Seeded simulation: two stacks over a virtual link with 0-20% loss, reordering and
// duplication; many concurrent transfers of random sizes in both directions with every
// close order must end byte-exact, within bounded virtual time. A failure names its seed:
// rerun one with SIM_SEED=<seed>.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { TcpServer, connectTcp, type TcpSocket } from "./socket.js";
import { Rng, VirtualNet } from "./sim.js";

const SERVER = "198.18.100.1";
const CLIENT = "198.18.0.2";

type CloseOrder = "client-first" | "server-first" | "together";

interface Transfer {
  id: number;
  up: Buffer;
  down: Buffer;
  order: CloseOrder;
  serverGot: Buffer[];
  clientGot: Buffer[];
  serverClosed?: string;
  clientClosed?: string;
}

function sha(parts: Buffer[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

async function runSeed(seed: number): Promise<string> {
  const rng = new Rng(seed);
  const net = new VirtualNet(seed);
  const loss = rng.next() * 0.2;
  const impairment = {
    loss,
    duplicate: rng.next() * 0.05,
    reorder: rng.next() * 0.1,
    reorderDelay: rng.int(1, 20),
    delay: rng.int(1, 10) / 2,
    jitter: rng.next() * 2,
  };
  net.setImpairment(impairment);
  const config = {
    mtu: [576, 1280, 1500, 9000][rng.int(0, 3)],
    rcvBufSize: [4096, 16_384, 65_535, 262_144][rng.int(0, 3)],
    sndBufSize: 64 * 1024,
    maxRetransmits: 40,
    rtoMax: 4000,
    timeWait: 2000,
    noDelay: rng.next() < 0.5,
    gsoMaxBytes: rng.next() < 0.5 ? 65_000 : 0,
  };
  const server = net.addStack([SERVER], { config });
  const client = net.addStack([CLIENT], { config });
  const transfers: Transfer[] = [];
  const count = rng.int(3, 8);
  for (let id = 0; id < count; id++) {
    const big = rng.next() < 0.3;
    transfers.push({
      id,
      up: rng.bytes(rng.int(0, big ? 150_000 : 5000)),
      down: rng.bytes(rng.int(0, big ? 150_000 : 5000)),
      order: (["client-first", "server-first", "together"] as const)[rng.int(0, 2)],
      serverGot: [],
      clientGot: [],
    });
  }
  const byPort = new Map<number, Transfer>();
  new TcpServer(server, { allowHalfOpen: true }, (s: TcpSocket) => {
    const t = byPort.get(s.remotePort)!;
    let peerEnded = false;
    s.on("data", (d: Buffer) => t.serverGot.push(d));
    s.on("end", () => (peerEnded = true));
    s.on("close", () => (t.serverClosed = s.closeReason));
    writeAll(s, t.down, () => {
      if (t.order === "client-first" && !peerEnded) s.once("end", () => s.end());
      else s.end();
    });
  }).listen(5001);

  for (const t of transfers) {
    const c = connectTcp(client, { host: SERVER, port: 5001, allowHalfOpen: true });
    byPort.set(c.localPort, t);
    let peerEnded = false;
    c.on("data", (d: Buffer) => t.clientGot.push(d));
    c.on("end", () => (peerEnded = true));
    c.on("close", () => (t.clientClosed = c.closeReason));
    writeAll(c, t.up, () => {
      if (t.order === "server-first" && !peerEnded) c.once("end", () => c.end());
      else c.end();
    });
  }

  const done = await net.run(
    () => transfers.every((t) => t.serverClosed !== undefined && t.clientClosed !== undefined),
    3_600_000,
  );
  const desc = `seed ${seed} (loss ${(loss * 100).toFixed(1)}%, mtu ${config.mtu}, rcvBuf ${config.rcvBufSize}, gso ${config.gsoMaxBytes})`;
  assert.ok(done, `${desc}: transfers did not finish in bounded virtual time`);
  for (const t of transfers) {
    assert.equal(
      sha(t.serverGot),
      sha([t.up]),
      `${desc}: transfer ${t.id} upload (${t.up.length} B) corrupt`,
    );
    assert.equal(
      sha(t.clientGot),
      sha([t.down]),
      `${desc}: transfer ${t.id} download (${t.down.length} B) corrupt`,
    );
    // Both sides close cleanly, except one legitimate case: every final ACK of the closing
    // handshake was lost for longer than the (short) TIME-WAIT, so the side still
    // retransmitting its FIN gets an RST from the side that already finished.
    const reasons = [t.serverClosed, t.clientClosed].sort().join(",");
    assert.ok(
      reasons === "closed,closed" || reasons === "closed,reset",
      `${desc}: transfer ${t.id} close reasons server=${t.serverClosed} client=${t.clientClosed}`,
    );
  }
  await net.advance(5000);
  assert.equal(server.connections + client.connections, 0, `${desc}: connections left over`);
  return `${desc}: ${count} transfers, ${net.stats.sent} packets, ${net.stats.lost} lost, ${net.stats.duplicated} dup`;
}

function writeAll(s: TcpSocket, data: Buffer, then: () => void): void {
  let off = 0;
  const step = (): void => {
    while (off < data.length) {
      const n = Math.min(16_384, data.length - off);
      const ok = s.write(data.subarray(off, off + n));
      off += n;
      if (!ok) {
        s.once("drain", step);
        return;
      }
    }
    then();
  };
  step();
}

const only = process.env.SIM_SEED;
const seeds = only !== undefined ? [Number(only)] : Array.from({ length: 48 }, (_, i) => 1000 + i * 7919);

test("simulation: random transfers over a lossy, reordering, duplicating link end byte-exact", async (t) => {
  for (const seed of seeds) {
    const summary = await runSeed(seed);
    t.diagnostic(summary);
  }
});

test("simulation: zero loss at 20% duplication and heavy reordering", async () => {
  const net = new VirtualNet(77);
  net.setImpairment({ duplicate: 0.2, reorder: 0.3, reorderDelay: 10, delay: 1 });
  const server = net.addStack([SERVER]);
  const client = net.addStack([CLIENT]);
  const body = net.rng.bytes(500_000);
  new TcpServer(server, {}, (s) => s.end(body)).listen(80);
  const c = connectTcp(client, { host: SERVER, port: 80 });
  const got: Buffer[] = [];
  c.on("data", (d: Buffer) => got.push(d));
  let ended = false;
  c.on("end", () => (ended = true));
  assert.ok(await net.run(() => ended, 600_000));
  assert.equal(sha(got), sha([body]));
});
