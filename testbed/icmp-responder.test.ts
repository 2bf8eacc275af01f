// echoReply: the reply to a well-formed echo request for our address, a counted reason
// for anything else.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  checksumAdd,
  encodeIpv4Icmp,
  ipv4FromString,
  isWireError,
  parseIcmp,
  parseIpv4,
  type IcmpRepr,
} from "../sc/wire/index.js";
import { echoReply } from "./icmp-responder.js";

const VIP = ipv4FromString("198.18.100.1") as number;
const CLIENT = ipv4FromString("198.18.0.101") as number;

function packet(dst: number, icmp: IcmpRepr): Uint8Array {
  const p = encodeIpv4Icmp({ src: CLIENT, dst, ttl: 63, tos: 0x10, id: 77, dontFrag: true }, icmp);
  assert.ok(!isWireError(p));
  return p;
}

const request = (): Uint8Array =>
  packet(VIP, {
    kind: "echo-request",
    id: 0x1234,
    seq: 7,
    data: new TextEncoder().encode("abcdefgh12345678"),
  });

test("an echo request for the VIP gets a checksummed reply from the VIP with the same id, seq and data", () => {
  const out = new Uint8Array(65535);
  const n = echoReply(request(), VIP, out, 9);
  assert.equal(typeof n, "number");
  const reply = out.subarray(0, n as number);
  const ip = parseIpv4(reply);
  assert.ok(!isWireError(ip), String(ip));
  assert.equal(ip.src, VIP);
  assert.equal(ip.dst, CLIENT);
  assert.equal(ip.ttl, 64);
  assert.equal(ip.tos, 0x10);
  assert.equal(ip.id, 9);
  const icmp = parseIcmp(ip.payload);
  assert.ok(!isWireError(icmp), String(icmp));
  assert.equal(checksumAdd(ip.payload, 0, ip.payload.length), 0xffff);
  assert.deepEqual(
    { ...icmp, data: Buffer.from(icmp.kind === "dest-unreachable" ? [] : icmp.data).toString() },
    { kind: "echo-reply", id: 0x1234, seq: 7, data: "abcdefgh12345678" },
  );
});

test("everything else is dropped with a reason", () => {
  const out = new Uint8Array(65535);
  const other = ipv4FromString("198.18.0.11") as number;
  assert.equal(
    echoReply(packet(other, { kind: "echo-request", id: 1, seq: 1, data: new Uint8Array(0) }), VIP, out, 1),
    "not-for-us",
  );
  assert.equal(
    echoReply(packet(VIP, { kind: "echo-reply", id: 1, seq: 1, data: new Uint8Array(0) }), VIP, out, 1),
    "not-echo-request",
  );
  const unreachable = packet(VIP, {
    kind: "dest-unreachable",
    code: 3,
    nextHopMtu: 0,
    quoted: request().subarray(0, 28),
  });
  assert.equal(echoReply(unreachable, VIP, out, 1), "not-echo-request");

  const badIcmpChecksum = request();
  badIcmpChecksum[22] ^= 0xff;
  assert.equal(echoReply(badIcmpChecksum, VIP, out, 1), "bad-checksum");
  const udp = request();
  udp[9] = 17;
  udp[10] = 0;
  udp[11] = 0;
  const c = 0xffff - checksumAdd(udp, 0, 20);
  udp[10] = c >>> 8;
  udp[11] = c & 0xff;
  assert.equal(echoReply(udp, VIP, out, 1), "not-icmp");
  assert.equal(echoReply(request().subarray(0, 10), VIP, out, 1), "truncated");
  const ipv6 = request();
  ipv6[0] = 0x60;
  assert.equal(echoReply(ipv6, VIP, out, 1), "bad-version");
  const small = new Uint8Array(20);
  assert.equal(echoReply(request(), VIP, small, 1), "no-space");
});
