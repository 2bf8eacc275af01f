// Helpers shared by the dispatcher tests: client packets, a recording ForwarderOutput, and
// decapsulation of what the forwarder emits. Not used by production code.
import assert from "node:assert/strict";
import {
  IP_PROTO_UDP,
  encodeIpv4Tcp,
  isWireError,
  parseGue,
  parseIpv4,
  parseTcp,
  parseUdp,
  type TcpRepr,
} from "../sc/wire/index.js";
import type { ForwarderOutput } from "./forwarder.js";
import type { Node } from "./nodes.js";

export const VIP = 0xc6126401; // 198.18.100.1
export const CLIENT = 0xc6120065; // 198.18.0.101
export const DISPATCHER = 0xc6120001; // 198.18.0.1

export function nodeAddr(k: number): number {
  return (0xc6120000 + 10 + k) >>> 0; // 198.18.0.(10+k)
}

export interface ClientPacket {
  src?: number;
  dst?: number;
  sport: number;
  dport?: number;
  flags: number;
  seq?: number;
  ack?: number;
  payload?: Uint8Array;
}

export function clientPacket(p: ClientPacket): Uint8Array {
  const tcp: TcpRepr = {
    srcPort: p.sport,
    dstPort: p.dport ?? 80,
    seq: p.seq ?? 1000,
    ack: p.ack ?? 0,
    flags: p.flags,
    window: 65535,
    urgent: 0,
    options: {},
    payload: p.payload ?? new Uint8Array(0),
  };
  const r = encodeIpv4Tcp(
    { src: p.src ?? CLIENT, dst: p.dst ?? VIP, ttl: 64, tos: 0, id: 1, dontFrag: true },
    tcp,
  );
  assert.ok(!isWireError(r));
  return r;
}

export interface Sent {
  node: string;
  bytes: Uint8Array;
}

/** Records every packet the forwarder hands out (copies: its views are reused). */
export class Recorder implements ForwarderOutput {
  toNodes: Sent[] = [];
  toClients: Uint8Array[] = [];

  toNode(node: Node, packet: Uint8Array): void {
    this.toNodes.push({ node: node.id, bytes: packet.slice() });
  }

  toClient(packet: Uint8Array): void {
    this.toClients.push(packet.slice());
  }

  clear(): void {
    this.toNodes = [];
    this.toClients = [];
  }
}

/** Opens an outer IPv4/UDP/GUE packet; returns the outer fields and the inner packet. */
export function decapOuter(outer: Uint8Array): {
  src: number;
  dst: number;
  dontFrag: boolean;
  srcPort: number;
  dstPort: number;
  variant: number;
  inner: Uint8Array;
} {
  const ip = parseIpv4(outer);
  assert.ok(!isWireError(ip), String(ip));
  assert.equal(ip.protocol, IP_PROTO_UDP);
  const udp = parseUdp(ip.payload, ip.src, ip.dst);
  assert.ok(!isWireError(udp), String(udp));
  const gue = parseGue(udp.payload);
  assert.ok(!isWireError(gue), String(gue));
  return {
    src: ip.src,
    dst: ip.dst,
    dontFrag: ip.dontFrag,
    srcPort: udp.srcPort,
    dstPort: udp.dstPort,
    variant: gue.variant,
    inner: gue.inner,
  };
}

/** Parses a RST the forwarder sent to a client. */
export function parseRst(packet: Uint8Array): { src: number; dst: number; tcp: TcpRepr } {
  const ip = parseIpv4(packet);
  assert.ok(!isWireError(ip), String(ip));
  const tcp = parseTcp(ip.payload, ip.src, ip.dst);
  assert.ok(!isWireError(tcp), String(tcp));
  return { src: ip.src, dst: ip.dst, tcp };
}
