// The SC relay socket on loopback, without privileges: packets forwarded in one tick reach a
// GUE receiver byte-exact, in order, with one send call for the batch; bad peer addresses are
// refused and counted, never thrown.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TCP_ACK, encodeIpv4Tcp, ipv4FromString, isWireError } from "../wire/index.js";
import { UdpBatchSocket } from "../tun/udp.js";
import { GueSender } from "./sender.js";

function packet(id: number, payload: number): Uint8Array {
  const p = encodeIpv4Tcp(
    { src: 0xc6120065, dst: 0xc6126401, ttl: 64, tos: 0, id, dontFrag: true },
    {
      srcPort: 40_000,
      dstPort: 80,
      seq: id,
      ack: 1,
      flags: TCP_ACK,
      window: 65535,
      urgent: 0,
      options: {},
      payload: new Uint8Array(payload).fill(id & 0xff),
    },
  );
  if (isWireError(p)) throw new Error(p.detail);
  return p;
}

test("packets relayed in one tick arrive as GUE, byte-exact and in order, from one send call", async (t) => {
  const rx = UdpBatchSocket.open({
    address: ipv4FromString("127.0.0.1") as number,
    decapsulate: true,
    gro: false,
  });
  const tx = new GueSender("127.0.0.1");
  t.after(() => {
    rx.close();
    tx.close();
  });
  const sent = [packet(1, 0), packet(2, 1200), packet(3, 40)];
  const got: Uint8Array[] = [];
  const all = new Promise<void>((resolve) => {
    rx.onDatagrams((b) => {
      for (let i = 0; i < b.count; i++) {
        assert.equal(b.code(i), 0, "decapsulated as valid GUE variant 0");
        got.push(b.view(i).slice());
      }
      if (got.length >= sent.length) resolve();
    });
  });
  for (const p of sent) assert.equal(tx.forward(p, "127.0.0.1", rx.port), true);
  await all;
  assert.deepEqual(got, sent);
  const s = tx.stats;
  assert.equal(s.queued, 3);
  assert.equal(s.refused, 0);
  assert.equal(s.socket.sendCalls, 1, "one sendmmsg for the tick's packets");
  assert.equal(s.socket.sendDrops, 0);
});

test("a peer address that is not dotted IPv4 is refused and counted", (t) => {
  const tx = new GueSender("127.0.0.1");
  t.after(() => tx.close());
  assert.equal(tx.forward(packet(1, 0), "node2.example", 6080), false);
  assert.equal(tx.forward(packet(1, 0), "127.0.0.1", 6080), true);
  assert.equal(tx.stats.refused, 1);
  assert.equal(tx.stats.queued, 1);
});

test("a bad local address is a clear error", () => {
  assert.throws(() => new GueSender("localhost"), /bad local address localhost/);
});
