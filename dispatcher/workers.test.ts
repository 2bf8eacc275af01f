// The main thread's view of --workers N (workers.ts), without threads or devices: the sums of
// the workers' snapshots equal what one forwarder reports for the same traffic, and the
// control-plane model keeps the node set and counts like a Forwarder does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GUE_PORT, TCP_ACK, TCP_SYN } from "../sc/wire/index.js";
import { CONN_STATE_NAMES, type ConnState } from "./conn-table.js";
import { DROP_REASONS, Forwarder } from "./forwarder.js";
import { DISPATCHER, Recorder, VIP, clientPacket, nodeAddr, type ClientPacket } from "./testing.js";
import { Aggregate, ForwarderWorkers, perWorkerShare, snapshotOf, sumCounters } from "./workers.js";

function forwarder(): Forwarder {
  const f = new Forwarder(
    { vip: VIP, port: 80, scheduler: "mh", encap: "ipv4", localAddr: DISPATCHER, maxConnections: 4096 },
    new Recorder(),
  );
  for (let k = 1; k <= 3; k++) f.upsertNode({ id: `node${k}`, addr: nodeAddr(k), port: GUE_PORT, weight: 1 });
  return f;
}

const IO = { tun: {} as never };

test("the workers' snapshots add up to what one forwarder counts for the same packets", () => {
  const one = forwarder();
  const two = [forwarder(), forwarder()];
  const feed = (f: Forwarder, p: ClientPacket) => {
    const pkt = clientPacket(p);
    f.input(pkt, 0, pkt.length, 0);
  };
  for (let port = 2000; port < 2100; port++) {
    // A flow always goes to the same worker (as the TUN queue does); here by port parity.
    const w = two[port & 1]!;
    const packets: ClientPacket[] = [
      { sport: port, flags: TCP_SYN },
      { sport: port, flags: TCP_ACK, ...(port % 3 === 0 ? { payload: new Uint8Array(10) } : {}) },
      // Some traffic that is dropped: a wrong port.
      ...(port % 10 === 0 ? [{ sport: port, dport: 81, flags: TCP_ACK }] : []),
    ];
    for (const p of packets) {
      feed(one, p);
      feed(w, p);
    }
  }
  const sum = Aggregate.of(two.map((f) => snapshotOf(f, IO)));
  const ref = snapshotOf(one, IO);
  assert.equal(sum.packetsIn, ref.packetsIn);
  assert.equal(sum.packetsOut, ref.packetsOut);
  assert.equal(sum.bytesIn, ref.bytesIn);
  assert.equal(sum.connectionsScheduled, 100);
  assert.deepEqual(sum.drops, ref.drops);
  assert.ok(sum.drops[DROP_REASONS.indexOf("wrong_port")]! > 0);
  assert.equal(sum.table.size, ref.table.size);
  assert.equal(sum.table.confirmed, ref.table.confirmed);
  assert.equal(sum.table.capacity, 2 * 4096);
  assert.deepEqual(
    sum.table.byState,
    CONN_STATE_NAMES.map((_, s) => one.table.countInState(s as ConnState)),
  );
  // Per node, by id: mh picks the same node in every worker, so the sums match exactly.
  for (const n of ref.nodes) {
    const s = sum.nodes.get(n.id)!;
    assert.deepEqual(
      [s.packets, s.bytes, s.scheduled, s.active + s.inactive],
      [n.packets, n.bytes, n.scheduled, n.active + n.inactive],
      n.id,
    );
  }
});

test("the control-plane model keeps the node set; with no snapshot yet its counts are 0", () => {
  const pool = new ForwarderWorkers({
    config: { vip: VIP, port: 80, scheduler: "rr", output: "udp", source: 0, bind: 0, localAddrs: [] },
    workers: 2,
    tun: "sctun",
    onFatal: () => assert.fail("no worker runs here"),
  });
  assert.equal(pool.size, 2);
  assert.equal(pool.encap, "inner");
  const { created } = pool.upsertNode({ id: "a", addr: nodeAddr(1), port: GUE_PORT, weight: 1 });
  assert.ok(created);
  assert.equal(pool.setHealth("a", "down", 5), true);
  assert.equal(pool.nodes.get("a")!.healthy, false);
  pool.setScheduler("wlc");
  assert.equal(pool.schedulerName, "wlc");
  assert.equal(pool.packetsIn, 0);
  assert.equal(pool.table.active(pool.nodes.get("a")!.slot), 0);
  // No worker reports a connection to it: deleting forgets it at once.
  assert.equal(pool.removeNode("a"), true);
  assert.equal(pool.nodes.get("a"), undefined);
});

test("per-worker table shares and summed I/O counters", () => {
  assert.equal(perWorkerShare(1 << 20, 2), 1 << 19);
  assert.equal(perWorkerShare(5, 2), 3);
  assert.equal(perWorkerShare(undefined, 2), undefined);
  assert.deepEqual(
    sumCounters([
      { packetsIn: 3, ioUring: false },
      { packetsIn: 4, ioUring: true },
    ]),
    { packetsIn: 7, ioUring: true },
  );
});
