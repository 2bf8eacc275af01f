// The forwarder's GUE output checked byte for byte against scapy (testdata/gue_reference.py),
// an independent encoder: the same client packets, encapsulated by both. This kernel has no
// IPVS module to compare with, so scapy stands in for `ipvsadm ... --tun-type gue`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { GUE_PORT, ipv4ToString, isWireError, parseIpv4 } from "../sc/wire/index.js";
import { fromHex, toHex } from "../sc/wire/testing.js";
import { Forwarder } from "./forwarder.js";
import { DISPATCHER, Recorder, VIP, nodeAddr } from "./testing.js";

const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("../../dispatcher/testdata/gue_reference.py", import.meta.url));

function scapy<T>(mode: string, input?: unknown): T {
  const r = spawnSync(PYTHON, [SCRIPT, mode], {
    input: input === undefined ? "" : JSON.stringify(input),
    encoding: "utf8",
    timeout: 120_000,
    maxBuffer: 16 << 20,
  });
  if (r.error !== undefined || r.status !== 0) {
    assert.fail(
      `cannot run ${PYTHON} ${SCRIPT} ${mode}: ${r.error?.message ?? ""} status ${r.status} ${r.stderr}\n` +
        "Install Debian's python3-scapy (scripts/setup-host.sh).",
    );
  }
  return JSON.parse(r.stdout) as T;
}

test("GUE packets the forwarder emits are byte-identical to scapy's for the same fields", () => {
  const { clients } = scapy<{ clients: string[] }>("clients");
  assert.ok(clients.length >= 5);
  const cases: object[] = [];
  const ours: string[] = [];
  for (const variant of [0, 1] as const) {
    for (const udpChecksum of [false, true]) {
      const out = new Recorder();
      const f = new Forwarder(
        {
          vip: VIP,
          port: 80,
          scheduler: "mh",
          encap: "ipv4",
          localAddr: DISPATCHER,
          variant,
          udpChecksum,
          ttl: 64,
        },
        out,
      );
      f.upsertNode({ id: "node1", addr: nodeAddr(1), port: GUE_PORT, weight: 1 });
      f.upsertNode({ id: "node2", addr: nodeAddr(2), port: 7777, weight: 1 });
      for (const hex of clients) {
        const inner = fromHex(hex);
        f.input(inner, 0, inner.length, 0);
        const sent = out.toNodes.at(-1)!.bytes;
        const ip = parseIpv4(sent);
        assert.ok(!isWireError(ip));
        const innerIp = parseIpv4(inner, { allowFragments: true });
        assert.ok(!isWireError(innerIp));
        // The fields that vary per packet (id, ports, destination) are read back from our
        // packet; scapy must then produce exactly our bytes.
        cases.push({
          inner: hex,
          src: ipv4ToString(ip.src),
          dst: ipv4ToString(ip.dst),
          id: ip.id,
          ttl: 64,
          tos: innerIp.tos,
          sport: (ip.payload[0]! << 8) | ip.payload[1]!,
          dport: (ip.payload[2]! << 8) | ip.payload[3]!,
          variant,
          csum: udpChecksum,
        });
        ours.push(toHex(sent));
      }
      assert.equal(f.packetsOut, clients.length);
    }
  }
  const { outer } = scapy<{ outer: string[] }>("encap", cases);
  assert.equal(outer.length, ours.length);
  for (let i = 0; i < ours.length; i++)
    assert.equal(ours[i], outer[i], `case ${i}: ${JSON.stringify(cases[i])}`);
  // Both destinations and both ports were exercised.
  const dsts = new Set(cases.map((c) => `${(c as { dst: string }).dst}:${(c as { dport: number }).dport}`));
  assert.deepEqual([...dsts].sort(), [
    `${ipv4ToString(nodeAddr(1))}:${GUE_PORT}`,
    `${ipv4ToString(nodeAddr(2))}:7777`,
  ]);
});
