// The node's import of a HANDOFF: every refusal is a status, nothing reaches the client.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtualNet } from "../../sc/tcp/sim.js";
import { TcpServer, connectTcp, type TcpSocket } from "../../sc/tcp/socket.js";
import { encodeState, exportState } from "../../sc/tcp/state.js";
import { CloneStatus } from "../../sc/clone/message.js";
import { ipv4FromString } from "../../sc/wire/addr.js";
import { HandoffType, type HandoffMessage } from "../../sc/handoff/message.js";
import { importHandoff } from "./lard.js";

const VIP = "198.18.100.1";
const vip = ipv4FromString(VIP) as number;

/** A real connection accepted on a front-end stack, exported as a HANDOFF would carry it. */
async function exported(): Promise<{ net: VirtualNet; msg: HandoffMessage }> {
  const net = new VirtualNet(3);
  const client = net.addStack(["198.18.0.2"]);
  const fe = net.addStack([VIP]);
  let accepted: TcpSocket | undefined;
  new TcpServer(fe, {}, (s) => (accepted = s)).listen(80, VIP);
  const c = connectTcp(client, { host: VIP, port: 80 });
  c.on("connect", () => c.write("GET / HTTP/1.1\r\n\r\n"));
  let got = 0;
  assert.ok(
    await net.run(() => {
      if (accepted !== undefined && got === 0) accepted.on("data", (d: Buffer) => (got += d.length));
      return got > 0;
    }, 5000),
  );
  const st = exportState(accepted!);
  const msg: HandoffMessage = {
    type: HandoffType.Handoff,
    handoffId: 1,
    startDeadline: net.now + 2000,
    sentAtUs: 0,
    state: encodeState(st),
    seed: st.seed!,
    data: Buffer.from("GET / HTTP/1.1\r\n\r\n"),
  };
  return { net, msg };
}

test("a node imports a valid HANDOFF and refuses every other with its status", async () => {
  const { net, msg } = await exported();
  const node = net.addStack([VIP]);
  const policy = { stack: node, vip, port: 80, maxConnections: 10, open: 0 };
  const now = net.now;
  assert.deepEqual(importHandoff(msg, policy, now + 1960), { refused: CloneStatus.Expired });
  assert.deepEqual(importHandoff(msg, { ...policy, open: 10 }, now), { refused: CloneStatus.Busy });
  assert.deepEqual(importHandoff(msg, { ...policy, port: 8080 }, now), { refused: CloneStatus.NoListener });
  const bad = { ...msg, state: msg.state.slice(0, 50) };
  assert.deepEqual(importHandoff(bad, policy, now), { refused: CloneStatus.BadState });
  const wrongSeed = { ...msg, seed: new Uint8Array(40) };
  assert.deepEqual(importHandoff(wrongSeed, policy, now), { refused: CloneStatus.BadState });
  const ok = importHandoff(msg, policy, now);
  assert.ok("sock" in ok);
  const data: Buffer[] = [];
  ok.sock.on("data", (d: Buffer) => data.push(d));
  await net.settle();
  assert.equal(Buffer.concat(data).toString(), "GET / HTTP/1.1\r\n\r\n", "the request is the first data");
  // The same connection again while it lives here: exists.
  assert.deepEqual(importHandoff(msg, policy, now), { refused: CloneStatus.Exists });
});
