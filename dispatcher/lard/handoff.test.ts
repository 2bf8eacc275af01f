// The handoff path under virtual time, without root: real TcpStacks on sc/tcp/sim.ts's
// network, the real front-end and node mode, the real handoff codec (sim-testing.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { connectTcp, type TcpSocket } from "../../sc/tcp/socket.js";
import { LardSim, SIM_PORT, SIM_VIP, simResponse } from "./sim-testing.js";

interface Client {
  sock: TcpSocket;
  bytes(): Buffer;
  closed(): boolean;
  error(): string | undefined;
}

function open(sim: LardSim, requests: string): Client {
  const sock = connectTcp(sim.client, { host: SIM_VIP, port: SIM_PORT, noDelay: true });
  const chunks: Buffer[] = [];
  let isClosed = false;
  let err: string | undefined;
  sock.on("data", (d: Buffer) => chunks.push(d));
  sock.on("error", (e: Error) => (err = e.message));
  sock.on("close", () => (isClosed = true));
  sock.on("end", () => sock.end());
  sock.on("connect", () => sock.write(requests));
  return { sock, bytes: () => Buffer.concat(chunks), closed: () => isClosed, error: () => err };
}

const get = (path: string, close = false) =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\n${close ? "Connection: close\r\n" : ""}\r\n`;

test("a request is handed off and answered by the node directly: byte-exact, the front-end sends no response byte", async () => {
  const sim = new LardSim({ nodes: 4 });
  const c = open(sim, get("/size/30000", true));
  assert.ok(await sim.run(() => c.closed(), 10_000));
  assert.equal(c.error(), undefined);
  assert.deepEqual(c.bytes(), simResponse(30000, false));
  assert.equal(sim.frontEndPayloadBytes, 0);
  const fe = sim.frontEnd.counters;
  assert.equal(fe.handoffsSent, 1);
  assert.equal(fe.handoffsAccepted, 1);
  assert.ok(fe.packetsForwarded > 0, "the client's ACKs went on to the node");
  assert.equal(
    sim.nodes.reduce((n, x) => n + x.served.length, 0),
    1,
  );
  // The node's connection closed and its END came back: nothing is left at the front-end.
  assert.ok(await sim.run(() => sim.frontEnd.handedOff === 0, 5_000));
  assert.equal(fe.ends, 1);
  assert.equal(sim.frontEnd.policy.totalLoad(), 0);
  assert.equal(sim.frontEnd.latencies.length, 1);
});

test("locality: requests for one document go to one node, different documents spread", async () => {
  const sim = new LardSim({ nodes: 4 });
  const paths = ["/size/100", "/size/200", "/size/300", "/size/400"];
  for (let round = 0; round < 3; round++) {
    const cs = paths.map((p) => open(sim, get(p, true)));
    assert.ok(await sim.run(() => cs.every((c) => c.closed()), 10_000));
    cs.forEach((c, i) => assert.deepEqual(c.bytes(), simResponse(Number(paths[i]!.slice(6)), false)));
  }
  for (const p of paths) {
    const at = sim.nodes.filter((n) => n.served.includes(p));
    assert.equal(at.length, 1, `${p} served by one node`);
    assert.equal(at[0]!.served.filter((x) => x === p).length, 3);
  }
  assert.ok(
    sim.nodes.every((n) => n.served.length === 3),
    "one document per node",
  );
});

test("multiple handoff: pipelined requests at 1% loss, each served by its document's node, byte-exact and in order", async () => {
  for (const seed of [1, 2, 3]) {
    const sim = new LardSim({ nodes: 4, seed });
    // Each document gets its node first (one connection each), so the pipelined ones spread.
    const sizes = [5000, 120, 70000, 1, 33333, 8000, 0, 20000];
    const warm = sizes.map((n) => open(sim, get(`/size/${n}`, true)));
    assert.ok(await sim.run(() => warm.every((c) => c.closed()), 20_000));
    sim.net.setImpairment({ loss: 0.01, delay: 0.5, jitter: 0.2 });
    const before = sim.nodes.map((n) => n.served.length);
    const reqs = sizes.map((n, i) => get(`/size/${n}`, i === sizes.length - 1)).join("");
    const c = open(sim, reqs);
    assert.ok(await sim.run(() => c.closed(), 60_000), `seed ${seed} finished`);
    const want = Buffer.concat(sizes.map((n, i) => simResponse(n, i !== sizes.length - 1)));
    assert.equal(c.bytes().length, want.length, `seed ${seed}`);
    assert.ok(c.bytes().equals(want), `seed ${seed} byte-exact`);
    assert.equal(c.error(), undefined);
    assert.equal(sim.frontEndPayloadBytes, 0);
    // Every request went to the node holding its document (none served twice anywhere).
    for (const n of sizes) {
      const holders = sim.frontEnd.policy.holders(`/size/${n}`);
      const at = sim.nodes
        .filter((x, i) => x.served.slice(before[i]).includes(`/size/${n}`))
        .map((x) => x.id);
      assert.deepEqual(at, [...holders], `/size/${n}`);
    }
    assert.ok(new Set(sizes.map((n) => sim.frontEnd.policy.holders(`/size/${n}`)[0])).size >= 3, "spread");
    assert.equal(sim.frontEnd.counters.handBacks, 7, "7 hand-backs for 8 requests");
    assert.ok(await sim.run(() => sim.frontEnd.handedOff === 0, 5_000));
    assert.deepEqual(sim.frontEnd.handoffsPerConnection.slice(-1), [8]);
    assert.equal(sim.frontEnd.policy.totalLoad(), 0);
  }
});

test("multiple handoff: sequential keep-alive requests on one connection each go to their node", async () => {
  const sim = new LardSim({ nodes: 4 });
  const paths = ["/size/100", "/size/200", "/size/300", "/size/400"];
  const warm = paths.map((p) => open(sim, get(p, true)));
  assert.ok(await sim.run(() => warm.every((c) => c.closed()), 10_000));
  const c = open(sim, get(paths[0]!));
  let expect = simResponse(100, true);
  assert.ok(await sim.run(() => c.bytes().length === expect.length, 10_000));
  for (const [i, p] of paths.slice(1).entries()) {
    const last = i === paths.length - 2;
    c.sock.write(get(p, last));
    expect = Buffer.concat([expect, simResponse(Number(p.slice(6)), !last)]);
    assert.ok(await sim.run(() => c.bytes().length === expect.length, 10_000), p);
  }
  assert.ok(await sim.run(() => c.closed(), 10_000));
  assert.ok(c.bytes().equals(expect));
  for (const n of sim.nodes) assert.equal(n.served.length, 2, `${n.id}: its document twice, nothing else`);
  assert.equal(sim.frontEnd.counters.handBacks, 3);
});

test("a node killed mid-response: another node resumes it from the client's ACK, byte-exact with the dead node's head", async () => {
  for (const [seed, loss] of [
    [1, 0],
    [2, 0],
    [3, 0.01],
  ] as const) {
    const sim = new LardSim({ nodes: 2, seed, dates: true });
    sim.net.setImpairment({ delay: 1, loss });
    const size = 2_000_000;
    const c = open(sim, get(`/size/${size}`, true));
    // Until some of the response is there, then the node dies; its link is seen down 5 ms later.
    assert.ok(await sim.run(() => c.bytes().length > 100_000, 20_000));
    const node = sim.nodes.find((n) => n.served.length > 0)!;
    const other = sim.nodes.find((n) => n !== node)!;
    sim.kill(node.id, 5);
    assert.ok(await sim.run(() => c.closed(), 60_000), `seed ${seed}: the client's connection ends`);
    // Every byte as the dead node began it: its head (its Date line), the body to the end.
    const want = simResponse(size, false, node.id);
    assert.equal(c.bytes().length, want.length, `seed ${seed}`);
    assert.ok(c.bytes().equals(want), `seed ${seed}: byte-exact`);
    assert.equal(c.error(), undefined, `seed ${seed}: no reset`);
    const fe = sim.frontEnd.counters;
    assert.deepEqual([fe.resumesSent, fe.resumesAccepted, fe.nodeLostResets], [1, 1, 0]);
    assert.deepEqual(other.served, [`/size/${size}`]);
    assert.equal(other.mode.counters.resumes, 1);
    assert.equal(sim.frontEndPayloadBytes, 0, "the front-end sent no response byte");
    assert.ok(await sim.run(() => sim.frontEnd.handedOff === 0, 5_000));
    assert.deepEqual(
      sim.frontEnd.handoffsPerConnection,
      [2],
      "the resume is the connection's second handoff",
    );
  }
});

test("a node killed before its first response byte: another node answers the request afresh", async () => {
  const sim = new LardSim({ nodes: 2, dates: true });
  const c = open(sim, get("/stuck-once/5000", true));
  assert.ok(await sim.run(() => sim.nodes.some((n) => n.served.length > 0), 10_000));
  const node = sim.nodes.find((n) => n.served.length > 0)!;
  const other = sim.nodes.find((n) => n !== node)!;
  sim.kill(node.id, 5);
  assert.ok(await sim.run(() => c.closed(), 30_000), "the client's connection ends (no hang)");
  assert.ok(c.bytes().equals(simResponse(5000, false, other.id)), "the other node's whole response");
  assert.equal(c.error(), undefined);
  assert.equal(sim.frontEnd.counters.resumesAccepted, 1);
  assert.equal(sim.frontEnd.counters.nodeLostResets, 0);
});

test("a node killed mid-response on a pipelined keep-alive connection: the rest of the pipeline is served byte-exact", async () => {
  const sim = new LardSim({ nodes: 3, seed: 4, dates: true });
  sim.net.setImpairment({ delay: 1 });
  const sizes = [1000, 1_500_000, 3000, 700];
  const c = open(sim, sizes.map((n, i) => get(`/size/${n}`, i === sizes.length - 1)).join(""));
  // Mid-way through the large one: kill the node serving it.
  assert.ok(await sim.run(() => c.bytes().length > 200_000, 20_000));
  const node = sim.nodes.find((n) => n.served.at(-1) === "/size/1500000")!;
  sim.kill(node.id, 5);
  assert.ok(await sim.run(() => c.closed(), 60_000));
  const got = c.bytes();
  assert.equal(c.error(), undefined);
  // Each response has the Date of the node that began it; the large one is the dead node's.
  let off = 0;
  for (const [i, n] of sizes.entries()) {
    const keep = i !== sizes.length - 1;
    const candidates = sim.nodes.map((x) => simResponse(n, keep, x.id));
    const match = candidates.find((w) => got.subarray(off, off + w.length).equals(w));
    assert.ok(match !== undefined, `response ${i} byte-exact`);
    if (n === 1_500_000) assert.ok(match.equals(simResponse(n, keep, node.id)), "the dead node's head");
    off += match.length;
  }
  assert.equal(off, got.length, "nothing else");
  assert.equal(sim.frontEnd.counters.resumesAccepted, 1);
});

test("a node killed while the connection waits for its next request: the next request goes to another node", async () => {
  const sim = new LardSim({ nodes: 2, dates: true });
  const c = open(sim, get("/size/100"));
  const first = () => sim.nodes.find((n) => n.served.length > 0)!;
  assert.ok(
    await sim.run(
      () => c.bytes().length > 0 && c.bytes().length === simResponse(100, true, first().id).length,
    ),
  );
  const node = first();
  const other = sim.nodes.find((n) => n !== node)!;
  sim.kill(node.id, 5);
  assert.ok(await sim.run(() => sim.frontEnd.counters.resumesAccepted === 1, 10_000));
  c.sock.write(get("/size/200", true));
  assert.ok(await sim.run(() => c.closed(), 10_000));
  assert.equal(c.error(), undefined);
  assert.ok(
    c.bytes().equals(Buffer.concat([simResponse(100, true, node.id), simResponse(200, false, other.id)])),
  );
});

test("a resume that cannot be exact (the other node's document differs) ends in a reset and a prefix of the right bytes", async () => {
  const sim = new LardSim({ nodes: 2, seed: 5 });
  sim.net.setImpairment({ delay: 1 });
  const size = 2_000_000;
  const c = open(sim, get(`/size/${size}`, true));
  assert.ok(await sim.run(() => c.bytes().length > 100_000, 20_000));
  const node = sim.nodes.find((n) => n.served.length > 0)!;
  const other = sim.nodes.find((n) => n !== node)!;
  // The other node's copy changed meanwhile (one byte longer): it must not continue the response.
  sim.changeDocuments(other.id);
  sim.kill(node.id, 5);
  assert.ok(await sim.run(() => c.closed(), 30_000));
  const want = simResponse(size, false);
  const got = c.bytes();
  assert.ok(got.length < want.length);
  assert.ok(got.equals(want.subarray(0, got.length)), "a prefix of the dead node's response");
  assert.ok(c.error() !== undefined, "reset");
  assert.equal(other.mode.counters.resumeMismatches, 1);
});

test("a node killed with no node left to resume on: the client gets a prefix and a clean reset", async () => {
  const sim = new LardSim({ nodes: 1, seed: 2 });
  sim.net.setImpairment({ delay: 1 });
  const size = 2_000_000;
  const c = open(sim, get(`/size/${size}`, true));
  assert.ok(await sim.run(() => c.bytes().length > 100_000, 20_000));
  sim.kill("node1", 5);
  assert.ok(await sim.run(() => c.closed(), 30_000), "the client's connection ends");
  const want = simResponse(size, false);
  const got = c.bytes();
  assert.ok(got.length < want.length);
  assert.ok(got.equals(want.subarray(0, got.length)), "a prefix of the response");
  assert.ok(c.error() !== undefined, "reset");
  assert.equal(sim.frontEnd.counters.nodeLostResets, 1);
  assert.equal(sim.frontEnd.counters.unresumable["no-node"], 1);
  assert.equal(sim.frontEnd.handedOff, 0);
});

test("a node killed before its first byte with no node left: the client, which sent nothing since, is reset", async () => {
  const sim = new LardSim({ nodes: 1 });
  const c = open(sim, get("/hang"));
  assert.ok(await sim.run(() => sim.nodes.some((n) => n.served.includes("/hang")), 10_000));
  sim.kill("node1", 5);
  assert.ok(await sim.run(() => c.closed(), 30_000), "the client's connection ends (no hang)");
  assert.equal(c.bytes().length, 0);
  assert.ok(c.error() !== undefined, "reset");
  assert.equal(sim.frontEnd.counters.nodeLostResets, 1);
});

test("many connections at 1% loss: every response byte-exact, loads back to zero", async () => {
  const sim = new LardSim({ nodes: 4, seed: 7 });
  sim.net.setImpairment({ loss: 0.01, delay: 0.3, jitter: 0.3, reorder: 0.01 });
  const sizes = Array.from({ length: 24 }, (_, i) => 1000 + ((i * 7919) % 40000));
  const cs = sizes.map((n) => open(sim, get(`/size/${n}`, true)));
  assert.ok(await sim.run(() => cs.every((c) => c.closed()), 120_000));
  cs.forEach((c, i) => assert.ok(c.bytes().equals(simResponse(sizes[i]!, false)), `connection ${i}`));
  assert.equal(sim.frontEndPayloadBytes, 0);
  assert.ok(await sim.run(() => sim.frontEnd.handedOff === 0, 10_000));
  assert.equal(sim.frontEnd.policy.totalLoad(), 0);
});

test("a node that refuses the handoff: the front-end takes the connection back and answers 503", async () => {
  const sim = new LardSim({ nodes: 1, nodeMaxConnections: 0 });
  const c = open(sim, get("/size/10"));
  assert.ok(await sim.run(() => c.closed(), 10_000));
  assert.match(c.bytes().toString("latin1"), /^HTTP\/1\.1 503 Service Unavailable\r\n/);
  assert.equal(sim.frontEnd.counters.failures.refused, 1);
  assert.equal(sim.frontEnd.counters.refusals.busy, 1);
  assert.equal(sim.frontEnd.handedOff, 0);
});

test("a busy node's refusal is offered to another node: the client gets its answer, not a 503", async () => {
  const sim = new LardSim({ nodes: 2 });
  const [first, second] = sim.nodes as [(typeof sim.nodes)[0], (typeof sim.nodes)[0]];
  // The first node drains (it refuses new handoffs as busy) while the front-end still picks it.
  await first.mode.drain(1_000);
  const c = open(sim, get("/size/1000", true));
  assert.ok(await sim.run(() => c.closed(), 10_000));
  assert.equal(c.error(), undefined);
  assert.ok(c.bytes().equals(simResponse(1000, false)), c.bytes().subarray(0, 80).toString("latin1"));
  assert.deepEqual(first.served, []);
  assert.deepEqual(second.served, ["/size/1000"]);
  assert.equal(sim.frontEnd.counters.refusals.busy, 1);
  assert.equal(sim.frontEnd.counters.reasons.elsewhere, 1);
  assert.equal(sim.frontEnd.counters.failures.refused, 0);
  // The target moved with it: the next request for it goes straight to the second node.
  const again = open(sim, get("/size/1000", true));
  assert.ok(await sim.run(() => again.closed(), 10_000));
  assert.deepEqual(second.served, ["/size/1000", "/size/1000"]);
  assert.equal(sim.frontEnd.counters.refusals.busy, 1);
});

test("every node busy: each is offered the handoff once, then the client gets a 503", async () => {
  const sim = new LardSim({ nodes: 3, nodeMaxConnections: 0 });
  const c = open(sim, get("/size/10"));
  assert.ok(await sim.run(() => c.closed(), 10_000));
  assert.match(c.bytes().toString("latin1"), /^HTTP\/1\.1 503 Service Unavailable\r\n/);
  assert.equal(sim.frontEnd.counters.refusals.busy, 3);
  assert.equal(sim.frontEnd.counters.reasons.elsewhere, 2);
  assert.equal(sim.frontEnd.counters.failures.refused, 1);
  assert.equal(sim.frontEnd.handedOff, 0);
  assert.equal(sim.frontEnd.policy.totalLoad(), 0, "every node's load released");
});

test("a node that never answers: after the start deadline the client's connection is reset, no bytes", async () => {
  const sim = new LardSim({ nodes: 1, frontEnd: { handoffTimeoutMs: 500 } });
  sim.nodes[0]!.answers = false;
  const c = open(sim, get("/size/10"));
  assert.ok(await sim.run(() => c.closed(), 10_000));
  assert.equal(c.bytes().length, 0);
  assert.ok(c.error() !== undefined, "reset");
  assert.equal(sim.frontEnd.counters.failures.timeout, 1);
  assert.ok(sim.net.now >= 500 + 250, "not before the deadline and its margin");
});

test("a HANDOFF that arrives after its start deadline is refused by the node (never two senders)", async () => {
  const sim = new LardSim({ nodes: 1, linkDelayMs: 600, frontEnd: { handoffTimeoutMs: 500 } });
  const c = open(sim, get("/size/10"));
  assert.ok(await sim.run(() => c.closed(), 10_000));
  assert.equal(sim.nodes[0]!.mode.counters.refused.expired, 1);
  assert.equal(sim.nodes[0]!.served.length, 0);
  assert.equal(c.bytes().length, 0);
});

test("bad first requests get a clear error from the front-end and no handoff", async () => {
  const sim = new LardSim({ nodes: 2 });
  const c = open(sim, "GARBAGE\r\n\r\n");
  assert.ok(await sim.run(() => c.closed(), 10_000));
  assert.match(c.bytes().toString("latin1"), /^HTTP\/1\.1 400 /);
  assert.equal(sim.frontEnd.counters.failures["bad-request"], 1);
  assert.equal(sim.frontEnd.counters.handoffsSent, 0);
});

test("a client that never sends its request is reset after the request timeout", async () => {
  const sim = new LardSim({ nodes: 2, frontEnd: { requestTimeoutMs: 1000 } });
  const c = open(sim, "");
  assert.ok(await sim.run(() => c.closed(), 10_000));
  assert.equal(sim.frontEnd.counters.failures["request-timeout"], 1);
});

test("health: a node found down takes no new handoffs but finishes what it serves; back up, it is chosen again", async () => {
  const sim = new LardSim({ nodes: 2, dates: true });
  sim.net.setImpairment({ delay: 1 });
  const big = open(sim, get("/size/1000000", true));
  assert.ok(await sim.run(() => big.bytes().length > 50_000, 20_000));
  const busy = sim.nodes.find((n) => n.served.length > 0)!;
  const other = sim.nodes.find((n) => n !== busy)!;
  sim.frontEnd.onHealth(busy.id, false);
  assert.equal(sim.frontEnd.eligible(busy.id), false);
  // New documents (that would spread by load) all go to the healthy node meanwhile.
  const cs = [1, 2, 3].map((i) => open(sim, get(`/size/${100 * i}`, true)));
  assert.ok(await sim.run(() => cs.every((c) => c.closed()) && big.closed(), 30_000));
  assert.deepEqual(busy.served, ["/size/1000000"]);
  assert.deepEqual(other.served, ["/size/100", "/size/200", "/size/300"]);
  assert.ok(big.bytes().equals(simResponse(1_000_000, false, busy.id)), "its response finished byte-exact");
  assert.equal(sim.frontEnd.counters.resumesSent, 0, "a failed check is not a death: no resume");
  // A connection held on the healthy node (load 1 there), then the other comes back at load 0.
  const held = open(sim, get("/hang"));
  assert.ok(await sim.run(() => other.served.includes("/hang"), 10_000));
  sim.frontEnd.onHealth(busy.id, true);
  assert.equal(sim.frontEnd.eligible(busy.id), true);
  assert.equal(sim.frontEnd.policy.load(other.id), 1, "its load was kept while the other was out");
  const again = open(sim, get("/size/400", true));
  assert.ok(await sim.run(() => again.closed(), 10_000));
  assert.deepEqual(busy.served.slice(-1), ["/size/400"], "the least loaded node again");
  held.sock.destroy();
});

test("a link cut between the front-end and a live node: the node drops its connections silently, another node resumes them (never two senders)", async () => {
  const sim = new LardSim({ nodes: 2, seed: 6, dates: true });
  sim.net.setImpairment({ delay: 1 });
  const size = 1_500_000;
  const c = open(sim, get(`/size/${size}`, true));
  assert.ok(await sim.run(() => c.bytes().length > 100_000, 20_000));
  const node = sim.nodes.find((n) => n.served.length > 0)!;
  sim.cutLink(node.id);
  const sentThen = node.packetsOut;
  assert.ok(await sim.run(() => c.closed(), 60_000));
  assert.equal(node.packetsOut, sentThen, "the cut-off node sent nothing after its link went down");
  assert.equal(node.mode.counters.linkLostDrops, 1);
  assert.equal(node.mode.open, 0);
  assert.ok(c.bytes().equals(simResponse(size, false, node.id)), "byte-exact, resumed elsewhere");
  assert.equal(c.error(), undefined);
});

test("a client that stops reading is reset by the node after its send timeout; the front-end forgets it", async () => {
  const sim = new LardSim({ nodes: 2, sendTimeoutMs: 3000 });
  const c = open(sim, get("/size/3000000", true));
  c.sock.pause();
  assert.ok(await sim.run(() => sim.nodes.some((n) => n.mode.counters.sendTimeouts === 1), 60_000));
  const node = sim.nodes.find((n) => n.mode.counters.sendTimeouts === 1)!;
  assert.equal(node.mode.open, 0);
  c.sock.resume();
  assert.ok(await sim.run(() => c.closed(), 10_000));
  assert.ok(c.error() !== undefined, "reset");
  const want = simResponse(3_000_000, false);
  assert.ok(c.bytes().length < want.length);
  assert.ok(c.bytes().equals(want.subarray(0, c.bytes().length)));
  assert.ok(await sim.run(() => sim.frontEnd.handedOff === 0, 5_000), "its END reached the front-end");
  assert.ok(sim.net.now >= 3000, "not before the timeout");
});

test("a keep-alive connection idle past the node's idle timeout is closed with a FIN, not reset", async () => {
  const sim = new LardSim({ nodes: 1, nodeIdleMs: 5_000 });
  const c = open(sim, get("/size/100"));
  assert.ok(await sim.run(() => c.bytes().length === simResponse(100, true).length, 10_000));
  const answeredAt = sim.net.now;
  assert.ok(await sim.run(() => c.closed(), 20_000));
  assert.equal(c.error(), undefined, "a FIN, not a reset");
  assert.ok(sim.net.now - answeredAt >= 5_000, `closed ${sim.net.now - answeredAt} ms after the answer`);
  assert.ok(await sim.run(() => sim.frontEnd.handedOff === 0, 5_000), "the front-end forgot it");
});

test("drain: idle keep-alive connections close with a FIN, a response under way finishes first, new handoffs are refused", async () => {
  const sim = new LardSim({ nodes: 1 });
  sim.net.setImpairment({ delay: 1 });
  const idle = open(sim, get("/size/100"));
  assert.ok(await sim.run(() => idle.bytes().length === simResponse(100, true).length, 10_000));
  const busy = open(sim, get("/size/800000"));
  assert.ok(await sim.run(() => busy.bytes().length > 50_000, 10_000));
  const node = sim.nodes[0]!;
  let drained = false;
  void node.mode.drain(60_000).then(() => (drained = true));
  const late = open(sim, get("/size/10"));
  assert.ok(await sim.run(() => idle.closed() && busy.closed() && late.closed() && drained, 30_000));
  assert.equal(idle.error(), undefined, "a FIN, not a reset");
  assert.ok(idle.bytes().equals(simResponse(100, true)));
  assert.equal(busy.error(), undefined);
  assert.ok(busy.bytes().equals(simResponse(800_000, true)), "the response under way, whole");
  assert.match(late.bytes().toString("latin1"), /^HTTP\/1\.1 503 /);
  assert.equal(node.mode.counters.refused.busy, 1);
  assert.equal(node.mode.counters.drainResets, 0);
});

test("a node killed while its HANDOFF is in flight: the handoff is resumed afresh on another node, with the client's held packets", async () => {
  const sim = new LardSim({ nodes: 2, linkDelayMs: 20, dates: true });
  const c = open(sim, get("/size/5000", true));
  assert.ok(await sim.run(() => sim.frontEnd.counters.handoffsSent === 1, 10_000));
  const chosen = sim.frontEnd.policy.holders("/size/5000")[0]!;
  const other = sim.nodes.find((n) => n.id !== chosen)!;
  sim.kill(chosen, 5);
  assert.ok(await sim.run(() => c.closed(), 30_000));
  assert.equal(c.error(), undefined);
  assert.ok(c.bytes().equals(simResponse(5000, false, other.id)));
  const fe = sim.frontEnd.counters;
  assert.deepEqual([fe.failures["link-down"], fe.resumesAccepted, fe.nodeLostResets], [1, 1, 0]);
  assert.equal(sim.node(chosen).served.length, 0);
});
