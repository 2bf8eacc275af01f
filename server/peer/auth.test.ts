// The peer requests' authenticator without a network: what verify() accepts and why it refuses.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ClusterSecret } from "../../sc/auth/secret.js";
import { PeerAuth } from "./auth.js";

const key = (ClusterSecret.parse("p".repeat(40)) as ClusterSecret).key("peer-cache");
const members = [
  { id: "n1", addr: "198.18.0.11", weight: 1 },
  { id: "n2", addr: "198.18.0.12", weight: 1 },
];
const auth = new PeerAuth(key, members, 10_000);
const T = 1_700_000_000_000;

test("a signed request verifies from the member's address, within the window either way", () => {
  const h = auth.sign("n2", "GET", "/a%20b.txt", T);
  assert.deepEqual(Object.keys(h).sort(), ["x-sc-auth", "x-sc-node", "x-sc-time"]);
  assert.equal(h["x-sc-time"], String(T));
  for (const now of [T, T + 10_000, T - 10_000])
    assert.equal(auth.verify(h, "GET", "/a%20b.txt", "198.18.0.12", now), null, String(now - T));
  assert.equal(auth.verify(h, "GET", "/a%20b.txt", "198.18.0.12", T + 10_001), "stale");
  assert.equal(auth.verify(h, "GET", "/a%20b.txt", "198.18.0.12", T - 10_001), "stale");
});

test("verify() refuses each changed field, with the reason", () => {
  const h = auth.sign("n2", "GET", "/x", T);
  assert.equal(auth.verify(h, "HEAD", "/x", "198.18.0.12", T), "bad_mac");
  assert.equal(auth.verify(h, "GET", "/y", "198.18.0.12", T), "bad_mac");
  assert.equal(auth.verify({ ...h, "x-sc-time": String(T + 1) }, "GET", "/x", "198.18.0.12", T), "bad_mac");
  assert.equal(auth.verify(h, "GET", "/x", "198.18.0.11", T), "wrong_address");
  assert.equal(auth.verify(h, "GET", "/x", undefined, T), "wrong_address");
  assert.equal(auth.verify({ ...h, "x-sc-node": "n1" }, "GET", "/x", "198.18.0.11", T), "bad_mac");
  assert.equal(auth.verify({ ...h, "x-sc-node": "n3" }, "GET", "/x", "198.18.0.12", T), "unknown_node");
  assert.equal(
    auth.verify({ ...h, "x-sc-node": "__proto__" }, "GET", "/x", "198.18.0.12", T),
    "unknown_node",
  );
  const other = new PeerAuth(Buffer.alloc(32, 1), members);
  assert.equal(auth.verify(other.sign("n2", "GET", "/x", T), "GET", "/x", "198.18.0.12", T), "bad_mac");
});

test("malformed or missing headers are 'missing', checked in linear time", () => {
  const h = auth.sign("n2", "GET", "/x", T);
  const bad: Record<string, string | string[] | undefined>[] = [
    {},
    { ...h, "x-sc-auth": undefined },
    { ...h, "x-sc-auth": h["x-sc-auth"]!.toUpperCase() },
    { ...h, "x-sc-auth": h["x-sc-auth"]!.slice(2) },
    { ...h, "x-sc-auth": "0".repeat(100_000) },
    { ...h, "x-sc-time": "-1" },
    { ...h, "x-sc-time": "1e12" },
    { ...h, "x-sc-time": "9".repeat(100_000) },
    { ...h, "x-sc-node": ["n2", "n2"] },
  ];
  for (const x of bad) assert.equal(auth.verify(x, "GET", "/x", "198.18.0.12", T), "missing");
});
