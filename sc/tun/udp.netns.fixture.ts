// Child-process side of udp.netns.test.ts: runs inside a namespace (ip netns exec).
//   recv ADDR PORT COUNT: a GRO + decapsulating UdpBatchSocket; prints {"ready"} once bound,
//     then {"done", sha256 of the inner packets in arrival order, counts} after COUNT.
//   send SRC DST PORT COUNT SIZE GSOMAX: COUNT GUE datagrams (inner packets of SIZE bytes) in
//     bursts of 64 with encapsulation and GSO; prints {"sent", sha256 of the inner packets}.
//   sendraw SRC DST PORT COUNT SIZE: the same as whole outer IPv4/UDP/GUE packets built by
//     sc/wire (emitGueEncap, a source port per packet) from a raw socket.
import { createHash } from "node:crypto";
import { TCP_ACK, emitGueEncap, encodeIpv4Tcp, ipv4FromString, isWireError } from "../wire/index.js";
import { UdpBatchSocket } from "./udp.js";

const [role, ...args] = process.argv.slice(2);
const say = (o: object) => process.stdout.write(JSON.stringify(o) + "\n");
const addr = (s: string) => ipv4FromString(s) as number;

function inner(i: number, size: number): Uint8Array {
  const p = encodeIpv4Tcp(
    { src: 0xc6120065, dst: 0xc6126401, ttl: 64, tos: 0, id: i & 0xffff, dontFrag: true },
    {
      srcPort: 10_000 + (i % 1000),
      dstPort: 80,
      seq: i,
      ack: 1,
      flags: TCP_ACK,
      window: 65535,
      urgent: 0,
      options: {},
      payload: new Uint8Array(size - 40).fill(i & 0xff),
    },
  );
  if (isWireError(p)) throw new Error(p.detail);
  return p;
}

if (role === "recv") {
  const [a, port, count] = args;
  const want = Number(count);
  const rx = UdpBatchSocket.open({ address: addr(a!), port: Number(port), decapsulate: true, gro: true });
  const hash = createHash("sha256");
  let got = 0;
  let bad = 0;
  rx.onDatagrams((b) => {
    for (let i = 0; i < b.count; i++) {
      if (b.code(i) !== 0) bad++;
      else hash.update(b.view(i));
      got++;
    }
    if (got >= want) {
      say({ done: true, sha: hash.digest("hex"), got, bad, ...rx.stats });
      rx.close();
    }
  });
  say({ ready: true });
} else if (role === "send") {
  const [src, dst, port, count, size, gsoMax] = args;
  const tx = UdpBatchSocket.open({
    address: addr(src!),
    encapsulate: true,
    gso: true,
    gsoMaxSegment: Number(gsoMax),
  });
  const hash = createHash("sha256");
  const n = Number(count);
  for (let i = 0; i < n; i++) {
    const p = inner(i, Number(size));
    hash.update(p);
    tx.send(addr(dst!), Number(port), p);
    if (i % 64 === 63) {
      tx.flush();
      // Let the receiver drain between bursts (its buffer is bounded too).
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  tx.flush();
  say({ sent: true, sha: hash.digest("hex"), ...tx.stats });
  tx.close();
} else if (role === "sendraw") {
  const [src, dst, port, count, size] = args;
  const tx = UdpBatchSocket.open({ raw: true });
  const hash = createHash("sha256");
  const out = new Uint8Array(65535);
  const n = Number(count);
  for (let i = 0; i < n; i++) {
    const p = inner(i, Number(size));
    hash.update(p);
    const len = emitGueEncap(
      {
        src: addr(src!),
        dst: addr(dst!),
        ttl: 64,
        tos: 0,
        id: i & 0xffff,
        dontFrag: false,
        srcPort: 0xc000 | (i & 0x3fff),
        dstPort: Number(port),
      },
      p,
      out,
    );
    if (typeof len !== "number") throw new Error(len.detail);
    tx.sendIpv4(out, 0, len);
    if (i % 64 === 63) {
      tx.flush();
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  tx.flush();
  say({ sent: true, sha: hash.digest("hex"), ...tx.stats });
  tx.close();
}
