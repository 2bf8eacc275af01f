// Socket marking on real loopback sockets: the kernel's view of IP_TOS and SO_PRIORITY after
// TrafficMarker.mark, for a connecting TCP socket, an accepted one and a bound UDP socket; and
// failures counted, logged once, never thrown. (What the marking buys on a loaded link is the
// netns test testbed/priority.netns.test.ts.)
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import dgram from "node:dgram";
import { once } from "node:events";
import { Registry } from "prom-client";
import { GueSender } from "../gue/sender.js";
import {
  SC_MARKING,
  TrafficMarker,
  registerMarkingMetrics,
  socketFd,
  socketMarking,
  tosByte,
} from "./priority.js";

async function tcpPair(): Promise<{ server: net.Server; client: net.Socket; accepted: Promise<net.Socket> }> {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const accepted = once(server, "connection").then(([s]) => s as net.Socket);
  const client = net.connect({ port: (server.address() as net.AddressInfo).port, host: "127.0.0.1" });
  return { server, client, accepted };
}

test("CS5 is TOS byte 0xa0", () => {
  assert.equal(tosByte(SC_MARKING), 0xa0);
  assert.equal(tosByte({ dscp: 46, priority: 0 }), 0xb8);
});

test("a connecting TCP socket is marked once it connects, an accepted one at once; others stay unmarked", async () => {
  const logs: string[] = [];
  const marker = new TrafficMarker((m) => logs.push(m));
  const { server, client, accepted } = await tcpPair();
  const plain = net.connect({ port: (server.address() as net.AddressInfo).port, host: "127.0.0.1" });
  try {
    assert.equal(socketFd(client), -1, "no fd before connect");
    assert.equal(marker.mark(client), true);
    await once(client, "connect");
    const peer = await accepted;
    assert.deepEqual(socketMarking(client), { dscp: 40, priority: 6 });
    assert.equal(marker.mark(peer), true);
    assert.deepEqual(socketMarking(peer), { dscp: 40, priority: 6 });
    await once(plain, "connect");
    assert.deepEqual(socketMarking(plain), { dscp: 0, priority: 0 });
    assert.equal(marker.counters.marked, 2);
    assert.deepEqual(logs, []);
  } finally {
    client.destroy();
    plain.destroy();
    server.close();
  }
});

test("a bound UDP socket is marked without node's DEP0112 warning", async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on("warning", onWarning);
  const marker = new TrafficMarker(() => undefined, { dscp: 46, priority: 5 });
  const udp = dgram.createSocket("udp4");
  try {
    udp.bind(0, "127.0.0.1");
    await once(udp, "listening");
    assert.equal(marker.mark(udp), true);
    assert.deepEqual(socketMarking(udp), { dscp: 46, priority: 5 });
    // Warnings are emitted on the next tick.
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      warnings.map((w) => w.message),
      [],
    );
  } finally {
    process.off("warning", onWarning);
    udp.close();
  }
});

test("failures are counted by reason and logged once per reason, never thrown", async () => {
  const logs: string[] = [];
  const marker = new TrafficMarker((m) => logs.push(m));
  const udp = dgram.createSocket("udp4");
  // Not bound yet: libuv has no fd.
  assert.equal(marker.mark(udp), false);
  assert.equal(marker.mark(udp), false);
  assert.equal(marker.counters.failed["no-fd"], 2);
  assert.equal(logs.length, 1);
  assert.match(logs[0]!, /could not be marked .*no file descriptor.*logged once/);
  udp.close();

  const failing = new TrafficMarker((m) => logs.push(m), SC_MARKING, {
    setSocketPriority: () => 1, // EPERM
    getSocketPriority: () => [-1, 0],
  });
  const { server, client, accepted } = await tcpPair();
  try {
    await once(client, "connect");
    assert.equal(failing.mark(client), false);
    assert.equal(failing.mark(await accepted), false);
    assert.equal(failing.counters.failed.setsockopt, 2);
    assert.equal(failing.counters.marked, 0);
    assert.equal(logs.length, 2);
    assert.match(logs[1]!, /errno 1/);
  } finally {
    client.destroy();
    server.close();
  }

  const noAddon = new TrafficMarker((m) => logs.push(m), SC_MARKING, new Error("addon missing"));
  const udp2 = dgram.createSocket("udp4");
  udp2.bind(0, "127.0.0.1");
  await once(udp2, "listening");
  assert.equal(noAddon.mark(udp2), false);
  assert.equal(noAddon.counters.failed["no-addon"], 1);
  assert.match(logs[2]!, /addon missing/);
  udp2.close();
});

test("a socket the addon owns (the SC relay's batched UDP socket) is marked through its fd", () => {
  const marker = new TrafficMarker(() => undefined, { dscp: 40, priority: 6 });
  const relay = new GueSender("127.0.0.1");
  try {
    assert.equal(marker.mark(relay), true);
    assert.deepEqual(socketMarking(relay), { dscp: 40, priority: 6 });
  } finally {
    relay.close();
  }
});

test("the counters in Prometheus form: sockets marked, failures by reason", async () => {
  const marker = new TrafficMarker(() => undefined);
  const registry = new Registry();
  registerMarkingMetrics(marker, [registry]);
  const udp = dgram.createSocket("udp4");
  assert.equal(marker.mark(udp), false); // not bound: no fd
  udp.bind(0, "127.0.0.1");
  await once(udp, "listening");
  assert.equal(marker.mark(udp), true);
  udp.close();
  const text = await registry.metrics();
  assert.match(text, /^sc_traffic_marked_sockets_total 1$/m);
  assert.match(text, /^sc_traffic_marking_failures_total\{reason="no-fd"\} 1$/m);
  assert.match(text, /^sc_traffic_marking_failures_total\{reason="setsockopt"\} 0$/m);
});
