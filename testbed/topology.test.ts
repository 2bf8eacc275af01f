// Unit tests of the testbed's pure parts: the plan, the generated commands, the status
// document and the small parsers. No namespaces needed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ownsNetns, parseRate, planStatus, planTestbed, TestbedOptionError } from "./topology.js";
import {
  hostScript,
  linkShaping,
  lossRules,
  shapingBatch,
  switchBatch,
  switchScript,
  tbfArgs,
  exposeAddrBatch,
} from "./scripts.js";
import { formatStatus } from "./status.js";
import { parsePingSummary } from "./measure.js";
import { overlapsTestbed } from "./testbed.js";
import { UserError } from "../common/errors.js";

test("default plan: client, dispatcher, origin, three nodes on the fixed addresses", () => {
  const plan = planTestbed();
  assert.equal(plan.prefix, "sc-");
  assert.equal(plan.switchNetns, "sc-sw");
  assert.deepEqual(
    plan.hosts.map((h) => [h.name, h.role, h.netns, h.ip, h.tun ?? null]),
    [
      ["client", "client", "sc-client", "198.18.0.101", null],
      ["dispatcher", "dispatcher", "sc-dispatcher", "198.18.0.1", "sctun"],
      ["origin", "origin", "sc-origin", "198.18.0.2", null],
      ["node1", "node", "sc-node1", "198.18.0.11", "sctun"],
      ["node2", "node", "sc-node2", "198.18.0.12", "sctun"],
      ["node3", "node", "sc-node3", "198.18.0.13", "sctun"],
    ],
  );
  assert.equal(plan.vipHost, "dispatcher");
  assert.equal(plan.rate, null);
  assert.equal(plan.loss, 0);
  assert.equal(plan.expose, false);
});

test("clients and nodes are numbered from their base addresses", () => {
  const plan = planTestbed({ prefix: "t-", nodes: 60, clients: 3 });
  const byName = new Map(plan.hosts.map((h) => [h.name, h.ip]));
  assert.equal(byName.get("client"), "198.18.0.101");
  assert.equal(byName.get("client2"), "198.18.0.102");
  assert.equal(byName.get("client3"), "198.18.0.103");
  assert.equal(byName.get("node60"), "198.18.0.70");
  assert.equal(new Set(plan.hosts.map((h) => h.ip)).size, plan.hosts.length);
});

test("status document has the shape tools read", () => {
  const s = planStatus(planTestbed({ prefix: "p-", nodes: 1, rate: "10MBIT", loss: 1.5, vipHost: "node1" }));
  assert.deepEqual(Object.keys(s).sort(), [
    "expose",
    "hosts",
    "loss",
    "prefix",
    "rate",
    "subnet",
    "vip",
    "vipHost",
  ]);
  assert.equal(s.vip, "198.18.100.1");
  assert.equal(s.subnet, "198.18.0.0/24");
  assert.equal(s.rate, "10mbit");
  assert.equal(s.loss, 1.5);
  assert.equal(s.vipHost, "node1");
  assert.deepEqual(s.hosts[3], {
    name: "node1",
    role: "node",
    netns: "p-node1",
    ip: "198.18.0.11",
    tun: "sctun",
  });
  assert.deepEqual(s.hosts[0], { name: "client", role: "client", netns: "p-client", ip: "198.18.0.101" });
});

test("bad options are refused with a user-facing error", () => {
  const bad = [
    { nodes: 0 },
    { nodes: 61 },
    { nodes: 2.5 },
    { clients: 0 },
    { prefix: "" },
    { prefix: "much-too-long-" },
    { prefix: "a/b" },
    { prefix: "-x" },
    { rate: "fast" },
    { rate: "10kbit" },
    { rate: "100mbps" },
    { loss: -1 },
    { loss: 101 },
    { loss: 0.001 },
    { vipHost: "origin" },
    { vipHost: "client" },
    { vipHost: "node4" },
  ];
  for (const options of bad) {
    assert.throws(
      () => planTestbed(options),
      (e: unknown) => e instanceof TestbedOptionError && e instanceof UserError,
      JSON.stringify(options),
    );
  }
});

test("parseRate reads tc rates in bits", () => {
  assert.equal(parseRate("100mbit"), 100e6);
  assert.equal(parseRate("10Mbit"), 10e6);
  assert.equal(parseRate("1.5mbit"), 1.5e6);
  assert.equal(parseRate("512kbit"), 512e3);
  assert.equal(parseRate("1gbit"), 1e9);
});

test("a prefix owns only its own host namespaces", () => {
  for (const n of ["sc-sw", "sc-client", "sc-client7", "sc-dispatcher", "sc-origin", "sc-node1", "sc-node60"])
    assert.ok(ownsNetns("sc-", n), n);
  for (const n of ["sc-x-node1", "sct1a-node1", "sc-nodeX", "sc-node", "xsc-node1", "sc-sw2", "sc-"])
    assert.ok(!ownsNetns("sc-", n), n);
  assert.ok(!ownsNetns("a.b-", "axb-node1"), "prefix characters are literal");
});

test("interface names fit IFNAMSIZ for the largest testbed", () => {
  const plan = planTestbed({ prefix: "abcdefghijk-", nodes: 60, clients: 100, expose: true });
  const names = [plan.exposeDev, ...plan.hosts.map((h) => h.name)];
  for (const batch of [switchBatch(plan), exposeAddrBatch(plan)])
    for (const m of batch.matchAll(/(?:name|dev) (\S+)/g)) names.push(m[1]!);
  for (const n of names) assert.ok(n.length <= 15, `${n} is longer than 15 characters`);
});

test("multiQueueTun: node hosts' TUN devices are made multi_queue, the dispatcher's stays single-queue", () => {
  const scriptOf = (plan: ReturnType<typeof planTestbed>, host: string) => {
    const h = plan.hosts.find((x) => x.name === host);
    assert.ok(h, host);
    return hostScript(plan, h);
  };
  const tunLine = (plan: ReturnType<typeof planTestbed>, host: string) =>
    scriptOf(plan, host)
      .split("\n")
      .find((l) => l.startsWith("ip tuntap"));
  const plain = planTestbed({ prefix: "t-", nodes: 2 });
  assert.equal(plain.multiQueueTun, false);
  assert.equal(tunLine(plain, "node1"), "ip tuntap add dev sctun mode tun");
  assert.ok(plain.hosts.every((h) => h.tunMultiQueue === undefined));

  const mq = planTestbed({ prefix: "t-", nodes: 2, multiQueueTun: true });
  assert.equal(mq.multiQueueTun, true);
  for (const node of ["node1", "node2"]) {
    assert.equal(tunLine(mq, node), "ip tuntap add dev sctun mode tun multi_queue");
    const script = scriptOf(mq, node);
    // Configured like the single-queue device: MTU, up, no reverse-path filter.
    assert.match(script, /ip link set dev sctun mtu 1500 up/);
    assert.match(script, /echo 0 > \/proc\/sys\/net\/ipv4\/conf\/sctun\/rp_filter/);
  }
  assert.equal(tunLine(mq, "dispatcher"), "ip tuntap add dev sctun mode tun");
  assert.equal(tunLine(mq, "client"), undefined);
  const status = planStatus(mq);
  assert.deepEqual(
    status.hosts.filter((h) => h.tunMultiQueue).map((h) => h.name),
    ["node1", "node2"],
  );
  assert.match(formatStatus(status), /node1 .* sctun multi_queue/);
});

test("host scripts: addresses, TUN, VIP routes, never a default route", () => {
  const plan = planTestbed({ prefix: "t-", nodes: 2 });
  const scripts = new Map(plan.hosts.map((h) => [h.name, hostScript(plan, h)]));
  for (const [name, s] of scripts) {
    assert.ok(!/route add default|route add 0\.0\.0\.0/.test(s), `${name} gets a default route`);
    assert.ok(s.includes("ip link set dev lo up"), `${name} loopback`);
  }
  assert.match(scripts.get("client")!, /ip route add 198\.18\.100\.1\/32 via 198\.18\.0\.1 dev eth0/);
  assert.match(scripts.get("dispatcher")!, /ip route add 198\.18\.100\.1\/32 dev sctun/);
  assert.match(scripts.get("dispatcher")!, /ip tuntap add dev sctun mode tun/);
  assert.match(scripts.get("node1")!, /net\/ipv4\/conf\/sctun\/rp_filter/);
  assert.match(scripts.get("node1")!, /echo 1 > \/proc\/sys\/net\/ipv4\/ip_forward/);
  assert.doesNotMatch(scripts.get("node1")!, /198\.18\.100\.1/);
  assert.doesNotMatch(scripts.get("origin")!, /tuntap|198\.18\.100\.1/);
  assert.match(scripts.get("origin")!, /echo 0 > \/proc\/sys\/net\/ipv4\/ip_forward/);

  const single = planTestbed({ prefix: "t-", nodes: 2, vipHost: "node1" });
  const client = hostScript(single, single.hosts[0]!);
  assert.match(client, /ip route add 198\.18\.100\.1\/32 via 198\.18\.0\.11 dev eth0/);
  assert.match(
    hostScript(
      single,
      single.hosts.find((h) => h.name === "node1")!,
    ),
    /198\.18\.100\.1\/32 dev sctun/,
  );
  assert.doesNotMatch(
    hostScript(
      single,
      single.hosts.find((h) => h.name === "dispatcher")!,
    ),
    /198\.18\.100\.1/,
  );
});

test("shaping applies to both ends of every host link; loss goes to the switch", () => {
  const plan = planTestbed({ prefix: "t-", nodes: 2, rate: "10mbit", loss: 2.5 });
  const sw = switchScript(plan);
  for (const h of plan.hosts) {
    assert.ok(sw.includes(`tc qdisc add dev ${h.name} root handle 1: tbf rate 10000000bit`), h.name);
    assert.ok(
      hostScript(plan, h).includes("tc qdisc add dev eth0 root handle 1: tbf rate 10000000bit"),
      h.name,
    );
    // The priority stage under the rate limit, on both ends.
    for (const script of [sw, hostScript(plan, h)])
      assert.ok(script.includes(`dsfield 0xa0 0xe0 flowid 10:1`), h.name);
  }
  assert.match(sw, /numgen random mod 10000 < 250 drop/);
  const plain = planTestbed({ prefix: "t-" });
  assert.doesNotMatch(switchScript(plain), /tc qdisc|nft/);
  assert.doesNotMatch(hostScript(plain, plain.hosts[0]!), /tc qdisc/);
});

test("token bucket holds at least a few frames and ~2 ms of traffic", () => {
  const burst = (bps: number): number => Number(tbfArgs(bps)[4]!.replace(/b$/, ""));
  assert.equal(burst(1e6), 4 * 1514);
  assert.equal(burst(1e9), 250_000);
  assert.deepEqual(tbfArgs(10e6).slice(0, 3), ["tbf", "rate", "10000000bit"]);
});

test("link shaping: tbf at the rate, under it htb classes in strict priority, marked DSCP classes first", () => {
  const cmds = linkShaping("eth0", 100e6, 400_000);
  const line = (i: number) => cmds[i]!.join(" ");
  assert.equal(line(0), "qdisc add dev eth0 root handle 1: tbf rate 100000000bit burst 25000b limit 400000b");
  assert.equal(line(1), "qdisc add dev eth0 parent 1:1 handle 10: htb default 2");
  // Twice the rate and a bucket above the tbf's bursts: htb orders, the tbf limits.
  assert.match(line(2), /classid 10:1 htb rate 200000000bit burst 50000b cburst 50000b .*prio 0$/);
  assert.match(line(3), /classid 10:2 htb rate 200000000bit .*prio 1$/);
  // Both bands keep the link's queue (here the caller's larger one).
  assert.equal(line(4), "qdisc add dev eth0 parent 10:1 handle 11: bfifo limit 400000b");
  assert.equal(line(5), "qdisc add dev eth0 parent 10:2 handle 12: bfifo limit 400000b");
  // CS5/EF (101xxx) and CS6/CS7 (11xxxx) go to the first class.
  assert.match(line(6), /protocol ip prio 1 u32 match ip dsfield 0xa0 0xe0 flowid 10:1$/);
  assert.match(line(7), /protocol ip prio 2 u32 match ip dsfield 0xc0 0xc0 flowid 10:1$/);
  assert.equal(cmds.length, 8);
  assert.equal(shapingBatch("eth0", 100e6, 400_000), cmds.map((c) => c.join(" ") + "\n").join(""));
  // CS5 matches, AF41 (100010) and best effort do not: the mask arithmetic the filter does.
  const first = (dscp: number) => ((dscp << 2) & 0xe0) === 0xa0 || ((dscp << 2) & 0xc0) === 0xc0;
  assert.deepEqual([40, 46, 48, 56, 34, 0, 10].map(first), [true, true, true, true, false, false, false]);
});

test("lossRules drops IPv4 only, in 0.01% steps", () => {
  assert.match(lossRules(1), /ether type ip numgen random mod 10000 < 100 drop/);
  assert.match(lossRules(0.05), /< 5 drop/);
});

test("parsePingSummary reads iputils output", () => {
  const out =
    "--- 198.18.0.11 ping statistics ---\n200 packets transmitted, 181 received, 9.5% packet loss, time 2010ms\n";
  assert.deepEqual(parsePingSummary(out), { transmitted: 200, received: 181, lossPercent: 9.5 });
  assert.equal(parsePingSummary("ping: connect: Network is unreachable"), undefined);
});

test("overlapsTestbed recognises routes that would clash with an exposed LAN", () => {
  assert.ok(overlapsTestbed("198.18.0.0/24"));
  assert.ok(overlapsTestbed("198.18.0.7"));
  assert.ok(overlapsTestbed("198.18.0.0/15"));
  assert.ok(overlapsTestbed("198.18.100.1"));
  assert.ok(!overlapsTestbed("198.18.1.0/24"));
  assert.ok(!overlapsTestbed("10.0.0.0/8"));
  assert.ok(!overlapsTestbed("fe80::/64"));
});

test("formatStatus lists every host and only the filled columns", () => {
  const s = planStatus(planTestbed({ prefix: "p-", nodes: 1 }));
  const text = formatStatus(s);
  assert.match(text, /^testbed 'p-': subnet 198\.18\.0\.0\/24, VIP 198\.18\.100\.1 -> dispatcher/);
  for (const h of s.hosts) assert.match(text, new RegExp(`${h.name}\\s+${h.role}\\s+${h.netns}\\s+${h.ip}`));
  assert.doesNotMatch(text, /ADMIN|PID/);
  s.hosts[3]!.pid = 4242;
  assert.match(formatStatus(s), /PID[\s\S]*4242/);
});
