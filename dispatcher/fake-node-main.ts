// Test support, run inside a testbed node's namespace by dispatcher.netns.test.ts: a
// stand-in for a cluster node. It receives GUE on port 6080 (sc/gue), prints one JSON line
// per inner TCP packet on stdout, serves GET /healthz for the dispatcher's health checks,
// and with --answer completes handshakes statelessly through the node's TUN device with
// the VIP as source (direct return): SYN -> SYN-ACK, data -> ACK. Enough for the client's
// kernel to reach ESTABLISHED; not a TCP stack.
//
//   node fake-node-main.js --ip 198.18.0.11 --vip 198.18.100.1 [--tun sctun] [--answer]
//                          [--allow CIDR ...]   GUE senders (default: the testbed's dispatcher)
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { TunDevice } from "../sc/tun/index.js";
import {
  TCP_ACK,
  TCP_SYN,
  encodeIpv4Tcp,
  ipv4FromString,
  isWireError,
  parseIpv4,
  parseTcp,
} from "../sc/wire/index.js";
import { GueReceiver } from "../sc/gue/receiver.js";

const { values } = parseArgs({
  options: {
    ip: { type: "string" },
    vip: { type: "string", default: "198.18.100.1" },
    tun: { type: "string", default: "sctun" },
    "admin-port": { type: "string", default: "9000" },
    "gue-port": { type: "string", default: "6080" },
    answer: { type: "boolean", default: false },
    allow: { type: "string", multiple: true, default: ["198.18.0.1"] },
  },
});
const ip = values.ip!;
const vip = ipv4FromString(values.vip!);
if (isWireError(vip)) throw new Error("bad --vip");
const ISN = 0x10000000;

const tun = values.answer ? TunDevice.open({ name: values.tun!, up: true }) : undefined;

function answer(src: number, sport: number, seq: number, ack: number, flags: number, len: number): void {
  if (!tun) return;
  const isSyn = (flags & (TCP_SYN | TCP_ACK)) === TCP_SYN;
  if (!isSyn && len === 0) return; // pure ACKs need no answer
  const reply = encodeIpv4Tcp(
    { src: vip as number, dst: src, ttl: 64, tos: 0, id: 0, dontFrag: true },
    {
      srcPort: 80,
      dstPort: sport,
      seq: isSyn ? ISN : ack,
      ack: (seq + (isSyn ? 1 : len)) >>> 0,
      flags: isSyn ? TCP_SYN | TCP_ACK : TCP_ACK,
      window: 65535,
      urgent: 0,
      options: isSyn ? { mss: 1400 } : {},
      payload: new Uint8Array(0),
    },
  );
  if (!isWireError(reply)) tun.write(reply);
}

const rx = await GueReceiver.open({
  port: Number(values["gue-port"]),
  address: ip,
  allowFrom: values.allow!,
  onPacket(packet, from) {
    const p = parseIpv4(packet);
    if (isWireError(p)) return;
    const t = parseTcp(p.payload, p.src, p.dst);
    if (isWireError(t)) return;
    process.stdout.write(
      JSON.stringify({ from, sport: t.srcPort, flags: t.flags, seq: t.seq, len: t.payload.length }) + "\n",
    );
    answer(p.src, t.srcPort, t.seq, t.ack, t.flags, t.payload.length);
  },
});

const http = createServer((req, res) => {
  res.writeHead(req.url === "/healthz" ? 200 : 404, { "content-type": "application/json" });
  res.end(JSON.stringify({ status: "ok", received: rx.packets }));
});
await new Promise<void>((r) => http.listen(Number(values["admin-port"]), ip, r));
process.stdout.write(JSON.stringify({ ready: true }) + "\n");

process.once("SIGTERM", () => {
  http.close();
  void rx.close();
  tun?.close();
});
