import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import { ScTransport } from "./transport.js";
import { CloneStatus, ScType, type CloneMessage } from "./message.js";

function cloneMsg(cloneId: number): CloneMessage {
  return {
    type: ScType.Clone,
    cloneId,
    startDeadline: Date.now() + 1000,
    state: new Uint8Array(8),
    seed: new Uint8Array(40),
    asf: new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"),
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

test("two nodes exchange CLONE and CLONE-ACK over persistent links", async () => {
  const [pa, pb] = [await freePort(), await freePort()];
  const peers = [
    { id: "a", host: "127.0.0.1", port: pa },
    { id: "b", host: "127.0.0.1", port: pb },
  ];
  const seen: { id: number; from: string; asf: string }[] = [];
  const a = new ScTransport({
    nodeId: "a",
    listenHost: "127.0.0.1",
    listenPort: pa,
    peers,
    onClone: () => {},
  });
  const b = new ScTransport({
    nodeId: "b",
    listenHost: "127.0.0.1",
    listenPort: pb,
    peers,
    onClone: (m, from, reply) => {
      seen.push({ id: m.cloneId, from, asf: new TextDecoder().decode(m.asf) });
      const status = m.cloneId === 2 ? CloneStatus.Busy : CloneStatus.Accepted;
      reply({
        type: ScType.CloneAck,
        cloneId: m.cloneId,
        status,
        responseLength: status ? 0 : 1234,
        head: new Uint8Array(0),
      });
    },
  });
  try {
    await Promise.all([a.start(), b.start()]);
    await Promise.all([a.waitForPeers(5000), b.waitForPeers(5000)]);
    const ok = await a.requestClone("b", cloneMsg(1), 2000);
    assert.equal(ok.kind, "accepted");
    assert.equal(ok.kind === "accepted" && ok.ack.responseLength, 1234);
    const refused = await a.requestClone("b", cloneMsg(2), 2000);
    assert.deepEqual(refused.kind === "refused" && refused.reason, "busy");
    assert.deepEqual(seen, [
      { id: 1, from: "a", asf: "GET / HTTP/1.1\r\n\r\n" },
      { id: 2, from: "a", asf: "GET / HTTP/1.1\r\n\r\n" },
    ]);
    assert.equal((await a.requestClone("nobody", cloneMsg(3), 100)).kind, "unreachable");
  } finally {
    await a.close();
    await b.close();
  }
});

test("a clone that gets no answer times out and a CANCEL reaches the peer", async () => {
  const [pa, pb] = [await freePort(), await freePort()];
  const peers = [
    { id: "a", host: "127.0.0.1", port: pa },
    { id: "b", host: "127.0.0.1", port: pb },
  ];
  let cancelled = -1;
  const a = new ScTransport({
    nodeId: "a",
    listenHost: "127.0.0.1",
    listenPort: pa,
    peers,
    onClone: () => {},
  });
  const b: ScTransport = new ScTransport({
    nodeId: "b",
    listenHost: "127.0.0.1",
    listenPort: pb,
    peers,
    onClone: () => {},
    onCancel: (id) => {
      cancelled = id;
      b.emit("cancel-seen");
    },
  });
  const gotCancel = once(b, "cancel-seen");
  try {
    await Promise.all([a.start(), b.start()]);
    await a.waitForPeers(5000);
    const out = await a.requestClone("b", cloneMsg(77), 50);
    assert.equal(out.kind, "timeout");
    await gotCancel;
    assert.equal(cancelled, 77);
  } finally {
    await a.close();
    await b.close();
  }
});

test("a lost peer fails pending clones at once and the link comes back", async () => {
  const [pa, pb] = [await freePort(), await freePort()];
  const peers = [
    { id: "a", host: "127.0.0.1", port: pa },
    { id: "b", host: "127.0.0.1", port: pb },
  ];
  const a = new ScTransport({
    nodeId: "a",
    listenHost: "127.0.0.1",
    listenPort: pa,
    peers,
    onClone: () => {},
    minBackoffMs: 10,
    maxBackoffMs: 50,
  });
  let b = new ScTransport({ nodeId: "b", listenHost: "127.0.0.1", listenPort: pb, peers, onClone: () => {} });
  try {
    await Promise.all([a.start(), b.start()]);
    await a.waitForPeers(5000);
    const pending = a.requestClone("b", cloneMsg(5), 10_000);
    const down = once(a, "peer-down");
    await b.close();
    await down;
    assert.equal((await pending).kind, "unreachable");
    b = new ScTransport({ nodeId: "b", listenHost: "127.0.0.1", listenPort: pb, peers, onClone: () => {} });
    await b.start();
    await a.waitForPeers(5000);
    assert.ok(a.isPeerUp("b"));
    assert.ok(a.counters.connects >= 2);
  } finally {
    await a.close();
    await b.close();
  }
});

test("garbage on an SC connection is counted and the connection closed", async () => {
  const pb = await freePort();
  const b = new ScTransport({
    nodeId: "b",
    listenHost: "127.0.0.1",
    listenPort: pb,
    peers: [{ id: "b", host: "127.0.0.1", port: pb }],
    onClone: () => assert.fail("no clone expected"),
  });
  try {
    await b.start();
    const s = net.connect(pb, "127.0.0.1");
    await once(s, "connect");
    s.write(Buffer.from("GET / HTTP/1.1\r\n\r\n"));
    await once(s, "close");
    assert.equal(b.counters.badMessages, 1);
  } finally {
    await b.close();
  }
});
