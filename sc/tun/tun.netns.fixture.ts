// Scenarios for tun.netns.test.ts. Each runs in its own process inside the test's private
// network namespace (a TUN device is created in the namespace of the process that opens
// it, and node cannot switch namespaces), asserts with node:assert and exits 0 on success.
//
// The namespace holds the persistent TUN device `sctun0` with 198.18.7.1/24, IPv6 off.
// Usage: node tun.netns.fixture.js <scenario>
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { parentPort, Worker } from "node:worker_threads";
import { once } from "node:events";
import { TunDevice, TunError } from "./index.js";
import { UserError } from "../../common/errors.js";

const DEVICE = "sctun0";
const LOCAL = "198.18.7.1";
const PEER = "198.18.7.2";

// ---- minimal IPv4/UDP/ICMP, built by hand (independent of sc/wire) ----

function checksum(buf: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  for (let i = start; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if ((end - start) % 2 === 1) sum += buf[end - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function addr(s: string): number[] {
  return s.split(".").map(Number);
}

function ipv4Header(pkt: Uint8Array, total: number, proto: number, src: string, dst: string): void {
  pkt.set([0x45, 0, total >> 8, total & 0xff, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0]);
  pkt.set(addr(src), 12);
  pkt.set(addr(dst), 16);
  const c = checksum(pkt, 0, 20);
  pkt[10] = c >> 8;
  pkt[11] = c & 0xff;
}

function udpPacket(src: string, sport: number, dst: string, dport: number, payload: Uint8Array): Uint8Array {
  const total = 28 + payload.length;
  const pkt = new Uint8Array(total);
  ipv4Header(pkt, total, 17, src, dst);
  const udpLen = 8 + payload.length;
  pkt.set([sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, udpLen >> 8, udpLen & 0xff, 0, 0], 20);
  pkt.set(payload, 28);
  // Pseudo-header sum: addresses, protocol, UDP length.
  let pseudo = 17 + udpLen;
  for (let i = 12; i < 20; i += 2) pseudo += (pkt[i]! << 8) | pkt[i + 1]!;
  const c = checksum(pkt, 20, total, pseudo) || 0xffff;
  pkt[26] = c >> 8;
  pkt[27] = c & 0xff;
  return pkt;
}

function pseudoSum(pkt: Uint8Array, proto: number, l4len: number): number {
  let sum = proto + l4len;
  for (let i = 12; i < 20; i += 2) sum += (pkt[i]! << 8) | pkt[i + 1]!;
  return sum;
}

/**
 * One IPv4/TCP packet carrying `payload` (larger than the MTU) for a GSO write: the TCP
 * checksum field holds the pseudo-header sum, not complemented (CHECKSUM_PARTIAL).
 */
function tcpGsoPacket(src: string, dst: string, seq: number, payload: Uint8Array): Uint8Array {
  const total = 40 + payload.length;
  const pkt = new Uint8Array(total);
  ipv4Header(pkt, total, 6, src, dst);
  pkt.set([0x27, 0x10, 0x1f, 0x90, seq >>> 24, (seq >>> 16) & 0xff, (seq >>> 8) & 0xff, seq & 0xff], 20);
  pkt.set([0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff], 28); // ack 1, 20-byte header, ACK|PSH, window
  pkt.set(payload, 40);
  const partial = ~checksum(pkt, 0, 0, pseudoSum(pkt, 6, total - 20)) & 0xffff;
  pkt[36] = partial >> 8;
  pkt[37] = partial & 0xff;
  return pkt;
}

function ipString(pkt: Uint8Array, at: number): string {
  return Array.from(pkt.subarray(at, at + 4)).join(".");
}

/** An echo reply for an IPv4 ICMP echo request, or undefined if `req` is not one. */
function echoReply(req: Uint8Array): Uint8Array | undefined {
  if (req.length < 28 || req[0] !== 0x45 || req[9] !== 1 || req[20] !== 8) return undefined;
  const total = (req[2]! << 8) | req[3]!;
  const reply = new Uint8Array(total);
  ipv4Header(reply, total, 1, ipString(req, 16), ipString(req, 12));
  reply.set(req.subarray(20, total), 20);
  reply[20] = 0; // echo reply
  reply[22] = 0;
  reply[23] = 0;
  const c = checksum(reply, 20, total);
  reply[22] = c >> 8;
  reply[23] = c & 0xff;
  return reply;
}

function payloadOf(i: number, size: number): Uint8Array {
  const p = new Uint8Array(size);
  p.fill(0x61 + (i % 26));
  p.set(Buffer.from(`pkt-${i}`));
  return p;
}

async function bound(port: number): Promise<Socket> {
  const sock = createSocket("udp4");
  sock.bind(port, LOCAL);
  await once(sock, "listening");
  return sock;
}

function expectTunError(fn: () => unknown, code: string, text: RegExp): TunError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TunError, `expected a TunError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.ok(err instanceof UserError);
    assert.match(err.message, text);
    return err;
  }
  assert.fail(`expected ${code}`);
}

function linkJson(name: string): { mtu: number; flags: string[] } | undefined {
  try {
    const out = execFileSync("ip", ["-j", "link", "show", "dev", name], { encoding: "utf8", stdio: "pipe" });
    return (JSON.parse(out) as Array<{ mtu: number; flags: string[] }>)[0];
  } catch {
    return undefined;
  }
}

/** 100 datagrams read as batches of 64 + 36, byte for byte, in order (io_uring or read(2)). */
async function readBatches(ioUring: boolean): Promise<void> {
  const tun = TunDevice.open({ name: DEVICE, maxBatch: 64, ioUring });
  const sock = createSocket("udp4");
  const batches: number[] = [];
  const got: Uint8Array[] = [];
  const all = new Promise<void>((resolve) => {
    tun.pause().onPackets((batch) => {
      batches.push(batch.count);
      for (let i = 0; i < batch.count; i++) {
        assert.equal(batch.buffer.subarray(batch.offset(i), batch.offset(i) + batch.length(i)).length, 100);
        got.push(batch.packet(i).slice()); // copy: the buffer is reused by the next batch
      }
      if (got.length >= 100) resolve();
    });
  });
  // 100 datagrams of 100 IP bytes while paused: they wait in the device queue, so the
  // first wake-up must deliver a full batch of 64 and the next one the other 36.
  await tun.whenRunning(); // until then the kernel drops what it routes to the device
  for (let i = 0; i < 100; i++) {
    await new Promise<void>((res, rej) =>
      sock.send(payloadOf(i, 72), 7000, PEER, (e) => (e ? rej(e) : res())),
    );
  }
  tun.resume();
  await all;
  assert.deepEqual(batches, [64, 36]);
  got.forEach((p, i) => {
    assert.equal(p.length, 100);
    assert.equal(p[0], 0x45);
    assert.equal(p[9], 17);
    assert.equal(ipString(p, 12), LOCAL);
    assert.equal(ipString(p, 16), PEER);
    assert.equal((p[22]! << 8) | p[23]!, 7000);
    assert.deepEqual(p.subarray(28), payloadOf(i, 72));
  });
  assert.deepEqual(
    { packetsIn: tun.stats.packetsIn, bytesIn: tun.stats.bytesIn, batchesIn: tun.stats.batchesIn },
    { packetsIn: 100, bytesIn: 10000, batchesIn: 2 },
  );
  assert.equal(tun.stats.ioUring, ioUring);
  sock.close();
  tun.close();
}

// ---- scenarios ----

const scenarios: Record<string, () => Promise<void> | void> = {
  async attach() {
    const tun = TunDevice.open({ name: DEVICE });
    assert.equal(tun.name, DEVICE);
    assert.equal(tun.mtu, 1500);
    assert.equal(tun.isUp(), true);
    assert.ok(tun.ifindex > 1);
    await tun.whenRunning();
    assert.equal(tun.isRunning(), true);
    assert.ok(tun.fd > 2);
    tun.close();
    assert.equal(tun.closed, true);
    tun.close(); // twice: harmless
    assert.equal(tun.write(new Uint8Array(40)), false);
    assert.equal(tun.stats.writeDropsOther, 1);
    // The persistent device survives, and can be attached to again.
    assert.ok(linkJson(DEVICE));
    TunDevice.open({ name: DEVICE }).close();
  },

  async create() {
    const tun = TunDevice.open({ name: "sct%d", mtu: 1400, up: true });
    assert.match(tun.name, /^sct\d+$/);
    const link = linkJson(tun.name);
    assert.ok(link, `${tun.name} not found by ip link`);
    assert.equal(link.mtu, 1400);
    assert.ok(link.flags.includes("UP"), `flags: ${link.flags.join(",")}`);
    assert.equal(tun.mtu, 1400);
    tun.setMtu(1280);
    assert.equal(linkJson(tun.name)?.mtu, 1280);
    tun.setUp(false);
    assert.equal(tun.isUp(), false);
    assert.equal(tun.isRunning(), false);
    await assert.rejects(tun.whenRunning(), /is down/);
    expectTunError(() => TunDevice.open({ name: tun.name, exclusive: true }), "EBUSY", /busy/);
    const name = tun.name;
    tun.close();
    assert.equal(linkJson(name), undefined, "a device this process created must disappear on close");
  },

  async multiQueue() {
    // Two queues (fds) on one device; the kernel spreads flows over them by hash.
    const q1 = TunDevice.open({ name: "sctmq0", multiQueue: true, up: true });
    const q2 = TunDevice.open({ name: "sctmq0", multiQueue: true });
    assert.equal(q2.name, q1.name);
    assert.notEqual(q2.fd, q1.fd);
    execFileSync("ip", ["addr", "add", "198.18.6.1/24", "dev", q1.name]);
    await q1.whenRunning();
    const ports: number[][] = [[], []];
    const all = new Promise<void>((resolve) => {
      [q1, q2].forEach((q, i) =>
        q.onPackets((batch) => {
          for (const p of batch) ports[i]!.push((p[22]! << 8) | p[23]!);
          if (ports[0]!.length + ports[1]!.length >= 64) resolve();
        }),
      );
    });
    const sock = createSocket("udp4");
    for (let port = 7000; port < 7064; port++) {
      await new Promise<void>((res, rej) => sock.send("x", port, "198.18.6.2", (e) => (e ? rej(e) : res())));
    }
    await all;
    const seen = [...ports[0]!, ...ports[1]!].sort((a, b) => a - b);
    assert.deepEqual(
      seen,
      Array.from({ length: 64 }, (_, i) => 7000 + i),
    );
    assert.ok(
      ports[0]!.length > 0 && ports[1]!.length > 0,
      `one queue got nothing: ${ports[0]!.length}/${ports[1]!.length}`,
    );
    sock.close();
    q1.close();
    q2.close();
    assert.equal(linkJson("sctmq0"), undefined);
  },

  async read() {
    await readBatches(true);
  },

  async readPlain() {
    await readBatches(false);
  },

  async readMtuGrows() {
    // io_uring reads have MTU-sized slots: a packet that outgrew its slot (the MTU was raised
    // under a running reader) is dropped and counted, and the next one is read whole.
    const tun = TunDevice.open({ name: DEVICE, mtu: 1500 });
    const sock = createSocket("udp4");
    const got: number[] = [];
    const arrived = new Promise<void>((resolve) =>
      tun.onPackets((batch) => {
        for (let i = 0; i < batch.count; i++) got.push(batch.length(i));
        if (got.length > 0) resolve();
      }),
    );
    await tun.whenRunning();
    assert.equal(tun.stats.ioUring, true);
    tun.setMtu(3000);
    const send = (i: number) =>
      new Promise<void>((res, rej) => sock.send(payloadOf(i, 2472), 7000, PEER, (e) => (e ? rej(e) : res())));
    await send(0);
    // The first is read (and dropped) before the second is sent: wait for its count.
    for (let turns = 0; tun.stats.readsTruncated === 0; turns++) {
      assert.ok(turns < 100_000, "the cut-short read was never counted");
      await new Promise((r) => setImmediate(r));
    }
    await send(1);
    await arrived;
    assert.deepEqual(got, [2500]);
    assert.equal(tun.stats.readsTruncated, 1);
    tun.setMtu(1500);
    sock.close();
    tun.close();
  },

  async write() {
    const tun = TunDevice.open({ name: DEVICE });
    const sock = await bound(7001);
    const received: Array<{ msg: string; from: string; port: number }> = [];
    const all = new Promise<void>((resolve) =>
      sock.on("message", (msg, rinfo) => {
        received.push({ msg: msg.toString(), from: rinfo.address, port: rinfo.port });
        if (received.length === 6) resolve();
      }),
    );
    const pkt = (i: number) => udpPacket(PEER, 5555, LOCAL, 7001, Buffer.from(`w-${i}`));
    // Queued: written at the end of this tick with no explicit flush.
    assert.equal(tun.write(pkt(0)), true);
    assert.equal(
      tun.write(new Uint8Array([0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19])),
      true,
    );
    assert.equal(tun.write(pkt(1)), true);
    assert.equal(tun.write(pkt(2)), true);
    assert.equal(tun.write(new Uint8Array(0)), false);
    assert.equal(tun.stats.packetsOut, 0, "nothing is written before the end of the tick");
    // writeBatch writes the queue first, then its own packets, in order.
    assert.equal(tun.writeBatch([pkt(3), pkt(4), pkt(5)]), 3);
    await all;
    assert.deepEqual(
      received.map((r) => r.msg),
      ["w-0", "w-1", "w-2", "w-3", "w-4", "w-5"],
    );
    for (const r of received) assert.deepEqual([r.from, r.port], [PEER, 5555]);
    const s = tun.stats;
    assert.equal(s.packetsOut, 6);
    assert.equal(s.bytesOut, 6 * 31);
    assert.equal(s.writeDropsInvalid, 2, "the non-IP packet (kernel EINVAL) and the empty one");
    assert.equal(s.writeDrops, 2);
    sock.close();
    tun.close();
  },

  async ping() {
    // Answer echo requests for PEER; the real ping tool must get every reply.
    const tun = TunDevice.open({ name: DEVICE });
    tun.onPackets((batch) => {
      for (const p of batch) {
        const reply = echoReply(p);
        if (reply) tun.write(reply);
      }
    });
    await tun.whenRunning();
    const ping = spawn("ping", ["-n", "-c", "20", "-i", "0.01", "-W", "2", PEER], { stdio: "pipe" });
    let out = "";
    ping.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const [code] = (await once(ping, "exit")) as [number | null];
    assert.equal(code, 0, out);
    assert.match(out, /20 packets transmitted, 20 received/);
    assert.ok(tun.stats.packetsOut >= 20);
    tun.close();
  },

  async gso() {
    // One 10.07-segment TCP write into A (vnetHdr); the kernel forwards it to B, cutting it
    // into MSS-sized segments and completing every TCP checksum on the way.
    const a = TunDevice.open({ name: "sctga0", vnetHdr: true, up: true });
    const b = TunDevice.open({ name: "sctgb0", up: true });
    execFileSync("ip", ["addr", "add", "198.18.8.254/24", "dev", a.name]);
    execFileSync("ip", ["addr", "add", "198.18.9.254/24", "dev", b.name]);
    await b.whenRunning();
    const mss = 1460;
    const payload = new Uint8Array(10 * mss + 100).map((_, i) => (i * 7) & 0xff);
    const seq0 = 0xfffff000; // the segments' sequence numbers wrap around 2^32
    const segs: Uint8Array[] = [];
    const all = new Promise<void>((resolve) =>
      b.onPackets((batch) => {
        for (const p of batch) segs.push(p.slice());
        if (segs.length >= 11) resolve();
      }),
    );
    assert.equal(a.write(tcpGsoPacket("198.18.8.1", "198.18.9.1", seq0, payload), mss), true);
    await all;
    assert.deepEqual(
      segs.map((p) => p.length),
      [...Array<number>(10).fill(1500), 140],
    );
    segs.forEach((p, i) => {
      assert.equal(checksum(p, 0, 20), 0, `IP checksum of segment ${i}`);
      assert.equal(
        checksum(p, 20, p.length, pseudoSum(p, 6, p.length - 20)),
        0,
        `TCP checksum of segment ${i}`,
      );
      const seq = ((p[24]! << 24) | (p[25]! << 16) | (p[26]! << 8) | p[27]!) >>> 0;
      assert.equal(seq, (seq0 + i * mss) >>> 0);
      assert.deepEqual(p.subarray(40), payload.subarray(i * mss, (i + 1) * mss));
    });
    assert.deepEqual(a.stats.packetsOut, 1);
    // A plain device cannot take a GSO write: counted as invalid, not thrown.
    assert.equal(b.write(tcpGsoPacket("198.18.9.1", "198.18.8.1", 1, payload), mss), true);
    b.flush();
    assert.equal(b.stats.writeDropsInvalid, 1);
    a.close();
    b.close();
  },

  errors() {
    expectTunError(() => TunDevice.open({ name: "a-very-long-interface-name" }), "ERR_TUN_BAD_NAME", /15/);
    expectTunError(() => TunDevice.open({ name: "a/b" }), "ERR_TUN_BAD_NAME", /'\/'/);
    expectTunError(() => TunDevice.open({ name: "" }), "ERR_TUN_BAD_NAME", /empty/);
    expectTunError(() => TunDevice.open({ name: "lo" }), "EINVAL", /not a compatible TUN device/);
    expectTunError(() => TunDevice.open({ name: DEVICE, maxBatch: 0 }), "ERR_TUN_BAD_OPTION", /maxBatch/);
    const first = TunDevice.open({ name: DEVICE });
    expectTunError(() => TunDevice.open({ name: DEVICE }), "EBUSY", /another process has it open/);
    expectTunError(() => first.setMtu(10), "ERR_TUN_BAD_OPTION", /68\.\.65535/);
    expectTunError(() => TunDevice.open({ name: DEVICE, multiQueue: true }), "EINVAL", /multi_queue/);
    first.close();
    first.close();
    expectTunError(() => first.mtu, "EBADF", /sctun0/);
  },

  noPermission() {
    // Run by the test as an unprivileged user: /dev/net/tun is root-only here.
    expectTunError(() => TunDevice.open({ name: DEVICE }), "EACCES", /root or with CAP_NET_ADMIN/);
  },

  async deleted() {
    // The device disappears under an open reader: one 'error', reading stops, no spin.
    const tun = TunDevice.open({ name: "sctdel0", up: true });
    tun.onPackets(() => undefined);
    const errored = once(tun, "error") as Promise<[TunError]>;
    execFileSync("ip", ["link", "del", "sctdel0"]);
    const [err] = await errored;
    assert.ok(err instanceof TunError);
    assert.match(err.message, /deleted/);
    tun.close();
  },

  async workerTeardown() {
    // Workers that end while reading, without close(): the environment cleanup closes the
    // device (a later exclusive open of the name succeeds) and nothing crashes, although
    // node unloads the addon before the worker's loop finishes closing handles.
    for (let i = 0; i < 3; i++) {
      const worker = new Worker(new URL(import.meta.url), { argv: ["workerChild"] });
      const [name] = (await once(worker, "message")) as [string];
      assert.equal(name, "sctw0");
      await worker.terminate();
    }
    TunDevice.open({ name: "sctw0", exclusive: true }).close();
  },

  workerChild() {
    const tun = TunDevice.open({ name: "sctw0", up: true });
    tun.onPackets(() => undefined);
    parentPort?.postMessage(tun.name);
  },

  // ---- process lifetime: the test checks how these processes end ----

  exitAfterClose() {
    const tun = TunDevice.open({ name: DEVICE });
    tun.onPackets(() => undefined);
    setImmediate(() => tun.close()); // then nothing is left: the process must end by itself
  },

  exitWithReadPending() {
    const tun = TunDevice.open({ name: DEVICE });
    tun.onPackets(() => undefined);
    setImmediate(() => process.exit(0));
  },

  waitForSignal() {
    const tun = TunDevice.open({ name: DEVICE });
    tun.onPackets(() => undefined);
    process.stdout.write("ready\n");
  },

  unrefIdle() {
    const tun = TunDevice.open({ name: DEVICE });
    tun.onPackets(() => undefined).unref();
    process.on("exit", () => process.stdout.write(`exited while reading, closed=${tun.closed}\n`));
  },
};

const name = process.argv[2] ?? "";
const scenario = scenarios[name];
if (!scenario) {
  console.error(`unknown scenario '${name}'; one of: ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}
try {
  await scenario();
} catch (err) {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
}
