import { test } from "node:test";
import assert from "node:assert/strict";
import { NodePool, NodeSpecError, checkAdminUrl, formatNodeSpec, parseNodeSpec } from "./nodes.js";
import { assertLinearTime } from "../sc/testing/linear-time.js";
import { cpuClockMs } from "../sc/testing/cpu-clock.js";

test("--node specs: ID=ADDR[:PORT][,weight=W][,admin=URL]", () => {
  assert.deepEqual(parseNodeSpec("node1=198.18.0.11"), {
    id: "node1",
    addr: 0xc612000b,
    port: 6080,
    weight: 1,
  });
  assert.deepEqual(parseNodeSpec("n-2.a_b=198.18.0.12:7000,weight=3,admin=http://198.18.0.12:9000/"), {
    id: "n-2.a_b",
    addr: 0xc612000c,
    port: 7000,
    weight: 3,
    admin: "http://198.18.0.12:9000",
  });
  assert.equal(parseNodeSpec("x=10.0.0.1,weight=0").weight, 0);
  assert.equal(parseNodeSpec("x=10.0.0.1", 5555).port, 5555);
  const bad = [
    "node1",
    "=10.0.0.1",
    "-x=10.0.0.1",
    "x=10.0.0",
    "x=10.0.0.256",
    "x=10.0.0.1:0",
    "x=10.0.0.1:70000",
    "x=host.example",
    "x=10.0.0.1,weight=-1",
    "x=10.0.0.1,weight=65536",
    "x=10.0.0.1,weight=1.5",
    "x=10.0.0.1,admin=ftp://a",
    "x=10.0.0.1,admin=not a url",
    "x=10.0.0.1,colour=red",
    // Health checks go to the node's own address only (not a port scanner for other hosts).
    "x=10.0.0.1,admin=http://10.0.0.2:9000",
    "x=10.0.0.1,admin=http://localhost:9000",
    "x=10.0.0.1,admin=http://127.0.0.1:9000",
    "x=10.0.0.1,admin=http://u:p@10.0.0.1:9000",
    "x=10.0.0.1,admin=http://10.0.0.1:9000/?next=http://evil",
    "x=10.0.0.1,admin=http://[::1]:9000",
    `${"a".repeat(64)}=10.0.0.1`,
  ];
  for (const s of bad) assert.throws(() => parseNodeSpec(s), NodeSpecError, s);
  for (const s of ["node1=198.18.0.11", "n=10.0.0.1:7000,weight=3,admin=http://10.0.0.1:1"]) {
    assert.equal(formatNodeSpec(parseNodeSpec(s)), s);
  }
});

test("the pool: slots stay fixed, removed nodes drain and are reaped, eligibility", () => {
  const pool = new NodePool(3);
  const a = pool.upsert({ id: "a", addr: 1, port: 6080, weight: 1 }).node;
  const b = pool.upsert({ id: "b", addr: 2, port: 6080, weight: 2, admin: "http://0.0.0.2" }).node;
  assert.deepEqual([a.slot, b.slot], [0, 1]);
  assert.equal(a.healthy, true, "no admin URL: healthy at once");
  assert.equal(b.healthy, false, "checked nodes start down until a check passes");
  assert.deepEqual(pool.eligible(), [{ slot: 0, id: "a", weight: 1 }]);
  assert.ok(pool.setHealth("b", "up", 0));
  assert.ok(!pool.setHealth("b", "up", 0), "no change, no version bump");
  const v = pool.version;
  assert.equal(pool.upsert({ id: "b", addr: 3, port: 7, weight: 0, admin: "http://0.0.0.3" }).created, false);
  assert.ok(pool.version > v);
  assert.equal(pool.get("b")!.addrText, "0.0.0.3");
  assert.equal(pool.get("b")!.healthy, true, "a new admin URL keeps the health state until it is checked");
  // The admin URL must follow the address.
  assert.throws(
    () => pool.upsert({ id: "b", addr: 4, port: 7, weight: 0, admin: "http://0.0.0.3" }),
    NodeSpecError,
  );
  assert.deepEqual(
    pool.eligible().map((n) => n.id),
    ["a"],
  );
  assert.ok(pool.remove("a"));
  assert.ok(!pool.remove("a"));
  assert.deepEqual(pool.eligible(), []);
  // a still has connections: it stays; once none are left it is reaped and its slot reused.
  assert.deepEqual(
    pool.reap((slot) => (slot === 0 ? 5 : 0)),
    [],
  );
  assert.ok(pool.get("a"));
  // Re-adding a draining node brings it back in its slot.
  assert.equal(pool.upsert({ id: "a", addr: 1, port: 6080, weight: 1 }).node.slot, 0);
  assert.ok(!pool.get("a")!.removed);
  pool.remove("a");
  assert.deepEqual(
    pool.reap(() => 0),
    ["a"],
  );
  assert.equal(pool.get("a"), undefined);
  assert.equal(pool.upsert({ id: "c", addr: 4, port: 6080, weight: 1 }).node.slot, 0);
  pool.upsert({ id: "d", addr: 5, port: 6080, weight: 1 });
  assert.throws(() => pool.upsert({ id: "e", addr: 6, port: 6080, weight: 1 }), NodeSpecError);
  assert.throws(() => pool.upsert({ id: "c", addr: 6, port: 6080, weight: 70_000 }), NodeSpecError);
});

test("admin URLs: only on the node's own address, http(s), no user, query or fragment", () => {
  const addr = 0xc612000b; // 198.18.0.11
  assert.equal(checkAdminUrl("http://198.18.0.11:9080/", addr), "http://198.18.0.11:9080");
  assert.equal(checkAdminUrl("https://198.18.0.11/api//", addr), "https://198.18.0.11/api");
  for (const bad of [
    "http://198.18.0.12:9080",
    "http://198.18.0.1:9100", // the dispatcher itself
    "http://node1:9080",
    "http://198.18.0.11.nip.io:9080",
    "ftp://198.18.0.11",
    "http://a@198.18.0.11:9080",
    "http://198.18.0.11:9080/#x",
    "http://198.18.0.11:9080/?a=b",
    "not a url",
  ]) {
    assert.throws(() => checkAdminUrl(bad, addr), NodeSpecError, bad);
  }
  // The message names the address it must be on, and does not echo a long input whole.
  assert.throws(
    () => checkAdminUrl("http://10.0.0.1:1", addr),
    /must be on the node's own address 198\.18\.0\.11/,
  );
  const long = "http://10.0.0.1/" + "a".repeat(5000);
  assert.throws(
    () => checkAdminUrl(long, addr),
    (e: Error) => e.message.length < 400,
  );
});

test("health states: down keeps a timestamp, gone stays until up, only up <-> not up reschedules", () => {
  const pool = new NodePool(4);
  pool.upsert({ id: "a", addr: 1, port: 6080, weight: 1, admin: "http://0.0.0.1" });
  const a = pool.get("a")!;
  assert.equal(a.healthy, false, "checked nodes start down");
  assert.ok(pool.setHealth("a", "up", 100));
  assert.deepEqual([a.healthy, a.gone], [true, false]);
  let v = pool.version;
  assert.ok(pool.setHealth("a", "down", 2_000));
  assert.deepEqual([a.healthy, a.gone, a.downSince], [false, false, 2_000]);
  assert.equal(pool.version, v + 1);
  v = pool.version;
  assert.ok(!pool.setHealth("a", "down", 3_000), "still down: the clock is not restarted");
  assert.equal(a.downSince, 2_000);
  assert.ok(pool.setHealth("a", "gone", 4_000));
  assert.deepEqual([a.healthy, a.gone, a.downSince], [false, true, 2_000]);
  assert.ok(!pool.setHealth("a", "down", 5_000), "a gone node stays gone until it is up");
  assert.equal(a.gone, true);
  assert.equal(pool.version, v, "down -> gone changes no scheduling");
  assert.ok(pool.setHealth("a", "up", 6_000));
  assert.deepEqual([a.healthy, a.gone], [true, false]);
  // Straight from up to gone (the check that took it down was refused).
  assert.ok(pool.setHealth("a", "gone", 7_000));
  assert.deepEqual([a.healthy, a.gone, a.downSince], [false, true, 7_000]);
  // Dropping the admin URL: no more checks, up.
  pool.upsert({ id: "a", addr: 1, port: 6080, weight: 1 });
  assert.deepEqual([a.healthy, a.gone], [true, false]);
  assert.equal(pool.setHealth("nobody", "down", 0), false);
});

test("admin URLs: a long run of slashes is trimmed in linear time (a PUT body is network input)", () => {
  const addr = 0xc612000b; // 198.18.0.11
  // Up to fastify's default body limit: a quadratic trim took minutes there.
  assertLinearTime(
    {
      name: '"http://198.18.0.11/" + slashes + "x" + slashes',
      make: (n) => `http://198.18.0.11/${"/".repeat(n / 2)}x${"/".repeat(n / 2)}`,
      run: (t) => checkAdminUrl(t, addr),
    },
    { limit: 1 << 20, clock: cpuClockMs },
  );
  assert.equal(checkAdminUrl(`http://198.18.0.11/a${"/".repeat(1000)}`, addr), "http://198.18.0.11/a");
});

test("nodeListChanges: a reload puts added and changed nodes and removes the ones taken out", async () => {
  const { nodeListChanges, parseNodeSpec } = await import("./nodes.js");
  const before = ["a=198.18.0.11", "b=198.18.0.12", "c=198.18.0.13,weight=2"].map((t) => parseNodeSpec(t));
  const after = ["a=198.18.0.11", "c=198.18.0.13,weight=3", "d=198.18.0.14"].map((t) => parseNodeSpec(t));
  const r = nodeListChanges(before, after);
  assert.deepEqual(
    r.put.map((n) => [n.id, n.weight]),
    [
      ["c", 3],
      ["d", 1],
    ],
  );
  assert.deepEqual(r.remove, ["b"]);
  assert.deepEqual(nodeListChanges(after, after), { put: [], remove: [] });
});
