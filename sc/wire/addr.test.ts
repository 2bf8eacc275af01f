import { test } from "node:test";
import assert from "node:assert/strict";
import { Ipv4CidrSet, ipv4CidrFromString, ipv4CidrToString, ipv4FromString, prefixMask } from "./addr.js";
import { isWireError } from "./error.js";

const ip = (s: string): number => {
  const a = ipv4FromString(s);
  assert.ok(!isWireError(a), s);
  return a;
};

test("CIDR texts: a bare address is a /32, host bits and bad lengths are refused", () => {
  assert.deepEqual(ipv4CidrFromString("198.18.0.1"), { addr: ip("198.18.0.1"), prefix: 32 });
  assert.deepEqual(ipv4CidrFromString("198.18.0.0/24"), { addr: ip("198.18.0.0"), prefix: 24 });
  assert.deepEqual(ipv4CidrFromString("0.0.0.0/0"), { addr: 0, prefix: 0 });
  assert.deepEqual(ipv4CidrFromString("10.0.0.7/32"), { addr: ip("10.0.0.7"), prefix: 32 });
  assert.equal(prefixMask(0), 0);
  assert.equal(prefixMask(1), 0x80000000);
  assert.equal(prefixMask(24), 0xffffff00);
  assert.equal(prefixMask(32), 0xffffffff);
  for (const bad of [
    "198.18.0.1/24", // host bits
    "1.2.3.4/33",
    "1.2.3.4/",
    "1.2.3.4/08",
    "1.2.3.4/-1",
    "1.2.3.4/ 8",
    "1.2.3/8",
    "/8",
    "",
    "0.0.0.0/0/0",
    "any",
  ]) {
    const r = ipv4CidrFromString(bad);
    assert.ok(isWireError(r), bad);
    assert.equal(r.kind, "bad-address");
  }
  const hostBits = ipv4CidrFromString("198.18.0.1/24");
  assert.ok(isWireError(hostBits));
  assert.match(hostBits.detail, /198\.18\.0\.0\/24/, "says what was probably meant");
  for (const s of ["198.18.0.1", "198.18.0.0/15", "0.0.0.0/0"]) {
    const c = ipv4CidrFromString(s);
    assert.ok(!isWireError(c));
    assert.equal(ipv4CidrToString(c), s);
  }
});

test("a CIDR set matches hosts exactly and prefixes by their leading bits", () => {
  const set = Ipv4CidrSet.parse(["198.18.0.1", "10.1.0.0/16", "192.0.2.128/25", "203.0.113.0/31"]);
  assert.ok(!isWireError(set));
  const yes = ["198.18.0.1", "10.1.0.0", "10.1.255.255", "192.0.2.128", "192.0.2.255", "203.0.113.1"];
  const no = [
    "198.18.0.2",
    "198.18.0.0",
    "10.0.255.255",
    "10.2.0.0",
    "192.0.2.127",
    "203.0.113.2",
    "0.0.0.0",
  ];
  for (const a of yes) assert.ok(set.has(ip(a)), a);
  for (const a of no) assert.ok(!set.has(ip(a)), a);
  assert.equal(set.matchesAll, false);
  assert.deepEqual(set.toStrings(), ["198.18.0.1", "10.1.0.0/16", "192.0.2.128/25", "203.0.113.0/31"]);

  const all = Ipv4CidrSet.parse(["0.0.0.0/0"]);
  assert.ok(!isWireError(all));
  assert.ok(all.matchesAll);
  for (const a of ["0.0.0.0", "255.255.255.255", "198.18.0.9"]) assert.ok(all.has(ip(a)));

  const empty = new Ipv4CidrSet([]);
  assert.equal(empty.has(ip("198.18.0.1")), false);
  const bad = Ipv4CidrSet.parse(["198.18.0.1", "nope"]);
  assert.ok(isWireError(bad));
});
