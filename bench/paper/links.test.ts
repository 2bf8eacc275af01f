import { test } from "node:test";
import assert from "node:assert/strict";
import { equalHosts, hostLinks, linkRates, linkSentence, rateLabel, rateMbps, scaleRate } from "./links.js";

test("linkRates: equal hosts by default (front-end and origin at the nodes' rate), the client unshaped", () => {
  assert.deepEqual(linkRates({ rate: "10mbit" }), {
    node: "10mbit",
    frontend: "10mbit",
    origin: "10mbit",
    client: null,
  });
  // Given ones win, 'none' (null) included.
  assert.deepEqual(
    linkRates({ rate: "10mbit", frontendRate: null, originRate: "100mbit", clientRate: "1gbit" }),
    {
      node: "10mbit",
      frontend: null,
      origin: "100mbit",
      client: "1gbit",
    },
  );
});

test("hostLinks: every node, the dispatcher's host and the origin with their rate and queue, the client without", () => {
  const links = hostLinks(2, linkRates({ rate: "10mbit", originRate: "100mbit" }), 1514);
  assert.deepEqual(links, [
    { host: "node1", rate: "10mbit", queueBytes: 1514 },
    { host: "node2", rate: "10mbit", queueBytes: 1514 },
    { host: "dispatcher", rate: "10mbit", queueBytes: 1514 },
    { host: "origin", rate: "100mbit", queueBytes: 1514 },
    { host: "client", rate: null },
  ]);
  assert.deepEqual(hostLinks(1, linkRates({ rate: null }))[0], { host: "node1", rate: null });
});

test("scaleRate and rateLabel: the sweep's front-end rates in tc syntax, and readable labels", () => {
  assert.equal(scaleRate("10mbit", 4), "40mbit");
  assert.equal(scaleRate("10mbit", 2.5), "25mbit");
  assert.equal(scaleRate("100kbit", 1.5), "150kbit");
  assert.equal(scaleRate("1.5mbit", 1), "1500kbit");
  assert.equal(rateLabel("10mbit"), "10 Mbit/s");
  assert.equal(rateLabel("1500kbit"), "1.5 Mbit/s");
  assert.equal(rateLabel("1gbit"), "1 Gbit/s");
  assert.equal(rateLabel("512kbit"), "512 kbit/s");
  assert.equal(rateLabel(null), "unshaped");
});

test("linkSentence: says equal hosts only when nodes, front-end and origin share one rate", () => {
  const eq = linkRates({ rate: "10mbit" });
  assert.equal(equalHosts(eq), true);
  assert.equal(
    linkSentence(eq, "the nodes"),
    "Links: equal hosts as in the paper's testbed: every server-side host (the nodes, the dispatcher/proxy host, " +
      "the origin) at 10 Mbit/s, the client unshaped.",
  );
  // 10mbit and 10000kbit are the same rate.
  assert.equal(equalHosts(linkRates({ rate: "10mbit", originRate: "10000kbit" })), true);
  const fe = linkRates({ rate: "10mbit", frontendRate: null, originRate: "100mbit" });
  assert.equal(equalHosts(fe), false);
  assert.equal(
    linkSentence(fe, "the nodes"),
    "Links: not equal hosts: each of the nodes at 10 Mbit/s, the dispatcher/proxy host unshaped, " +
      "the origin at 100 Mbit/s (10x a node's), the client unshaped.",
  );
  assert.match(
    linkSentence(eq, "the nodes", "per row"),
    /dispatcher\/proxy host at the row's multiple of a node's rate/,
  );
});

test("linkSentence: unshaped links read as such", () => {
  assert.equal(
    linkSentence(linkRates({ rate: null }), "both nodes"),
    "Links: equal hosts as in the paper's testbed: every server-side host (both nodes, the dispatcher/proxy host, " +
      "the origin) unshaped, the client unshaped.",
  );
});

test("rateMbps: a tc rate in Mbit/s, null for unshaped", () => {
  assert.equal(rateMbps("10mbit"), 10);
  assert.equal(rateMbps("1gbit"), 1000);
  assert.equal(rateMbps("512kbit"), 0.512);
  assert.equal(rateMbps(null), null);
});
