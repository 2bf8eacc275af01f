// Imported connection state crosses a trust boundary (the SC link): validateImport refuses
// what cannot be a connection of this node and clamps what is merely out of range; the
// refusals are values, and importState applies the same checks before any state exists.

import { test } from "node:test";
import assert from "node:assert/strict";
import type { ConnectionSnapshot } from "./connection.js";
import { makeConfig } from "./config.js";
import { TcpStack } from "./stack.js";
import { TcpServer } from "./socket.js";
import {
  decodeState,
  encodeState,
  exportState,
  importState,
  validateImport,
  type ImportPolicy,
} from "./state.js";
import { Harness, L1, LOCAL_ADDR, R1, REMOTE_ADDR, TCP_ACK, TCP_PSH, pattern } from "./testing.js";
import { ipv4FromString } from "../wire/addr.js";
import { isWireError } from "../wire/error.js";
import { parseIpv4 } from "../wire/ipv4.js";
import { encodeIpv4Tcp, parseTcp } from "../wire/tcp.js";

type Importable = ConnectionSnapshot & { seed?: Uint8Array };

/** An exported connection (window scaling on, an RTT sample, data exchanged). */
function exported(): Importable {
  const h = new Harness({ cfg: { rcvBufSize: 1 << 20 } }).established({
    syn: { options: { mss: 1460, wscale: 7 } },
  });
  h.now = 5;
  h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_PSH, payload: "GET / HTTP/1.1\r\n\r\n" });
  h.read();
  h.now = 10;
  h.write(pattern(3000));
  h.now = 20;
  h.input({ seq: R1 + 18, ack: L1 + 3000, flags: TCP_ACK, window: 500 });
  const { seed: _seed, ...numeric } = exportState(h.conn, h.now);
  return numeric;
}

const policy: ImportPolicy = {
  cfg: makeConfig({ rcvBufSize: 1 << 20 }),
  localEndpoints: [{ addr: LOCAL_ADDR, port: 80 }],
};

function addr(s: string): number {
  return ipv4FromString(s) as number;
}

/** The client's last header as the seed (IPv4 + TCP, 20 + 20 bytes). */
function seedFor(s: Importable, extra = 0): Uint8Array {
  const p = encodeIpv4Tcp(
    { src: s.tuple.remoteAddr, dst: s.tuple.localAddr, ttl: 64, tos: 0, id: 1, dontFrag: true },
    {
      srcPort: s.tuple.remotePort,
      dstPort: s.tuple.localPort,
      seq: s.rcvNxt,
      ack: s.sndNxt,
      flags: TCP_ACK,
      window: 500,
      urgent: 0,
      options: {},
      payload: new Uint8Array(extra),
    },
  );
  assert.ok(!isWireError(p));
  return p;
}

test("import: a genuine exported state passes unchanged", () => {
  const s = { ...exported() };
  s.seed = seedFor(s);
  const v = validateImport(s, policy);
  assert.ok(!isWireError(v), String(v));
  assert.deepEqual(v.clamped, []);
  assert.deepEqual(v.state, s);
  // Also after the binary round trip.
  const back = decodeState(encodeState(s));
  assert.ok(!isWireError(back));
  const w = validateImport(back, policy);
  assert.ok(!isWireError(w));
  assert.deepEqual(w.clamped, []);
});

test("import: each out-of-range value is clamped to what this node would use", () => {
  const cfg = policy.cfg;
  const cases: Array<[string, Partial<Importable>, Partial<Importable>]> = [
    ["peer scale above 14 (RFC 7323 2.3)", { sndWscale: 15 }, { sndWscale: 14 }],
    ["peer window beyond its scaled field", { sndWnd: 2 ** 30 }, { sndWnd: 0xffff * 2 ** 7 }],
    ["largest peer window beyond its field", { maxSndWnd: 0xffffffff }, { maxSndWnd: 0xffff * 2 ** 7 }],
    [
      "peer window at scale 14 stays <= 2^30",
      { sndWscale: 14, sndWnd: 0xffffffff },
      { sndWnd: 0xffff * 2 ** 14 },
    ],
    ["our window beyond our receive buffer", { rcvWnd: 8 << 20 }, { rcvWnd: 1 << 20 }],
    [
      "our window beyond our scaled field",
      { rcvWscale: 0, sndWscale: 0, rcvWnd: 100_000 },
      { rcvWnd: 0xffff },
    ],
    ["send MSS beyond our MTU", { sndMss: 8960 }, { sndMss: cfg.mtu - 40 }],
    ["advertised MSS beyond our MTU", { advMss: 8960, rcvMss: 8960 }, { advMss: 1460, rcvMss: 1460 }],
    ["receive MSS beyond what we advertised", { rcvMss: 1461 }, { rcvMss: 1460 }],
    ["cwnd 2^32 - 1", { cwnd: 0xffffffff }, { cwnd: 64 * 14_600 }],
    ["cwnd over 64 IW of a clamped MSS", { sndMss: 8960, cwnd: 10_000_000 }, { cwnd: 64 * 14_600 }],
    ["ssthresh 2^32 - 1", { ssthresh: 0xffffffff }, { ssthresh: 0x7fffffff }],
    ["ssthresh below 2 MSS", { ssthresh: 100 }, { ssthresh: 2920 }],
    ["srtt and rttvar beyond rtoMax", { srtt: 1e9, rttvar: 1e9 }, { srtt: cfg.rtoMax, rttvar: cfg.rtoMax }],
    ["RTT values without a sample", { hasRttSample: false, srtt: 500, rttvar: 250 }, { srtt: 0, rttvar: 0 }],
    ["rto below rtoMin", { rto: 0 }, { rto: cfg.rtoMin }],
    ["rto above rtoMax", { rto: 1e7 }, { rto: cfg.rtoMax }],
  ];
  for (const [name, edit, want] of cases) {
    const v = validateImport({ ...exported(), ...edit }, policy);
    assert.ok(!isWireError(v), `${name}: ${String(v)}`);
    for (const [k, x] of Object.entries(want)) {
      assert.equal(v.state[k as keyof Importable], x, `${name}: ${k}`);
      assert.ok(v.clamped.includes(k), `${name}: ${k} listed as clamped (${v.clamped.join()})`);
    }
  }
  // The cwnd cap is a policy parameter.
  const v = validateImport({ ...exported(), cwnd: 1e6 }, { ...policy, maxCwndIw: 2 });
  assert.ok(!isWireError(v));
  assert.equal(v.state.cwnd, 2 * 14_600);
});

test("import: what cannot be clamped is refused as a value", () => {
  const s = exported();
  const cases: Array<[string, Partial<Importable> | ((s: Importable) => Importable), string]> = [
    ["not synchronized", { state: "SYN-RECEIVED" }, "bad-field"],
    [
      "local address not ours",
      (x) => ({ ...x, tuple: { ...x.tuple, localAddr: addr("198.18.100.9") } }),
      "bad-address",
    ],
    ["local port not listening", (x) => ({ ...x, tuple: { ...x.tuple, localPort: 8080 } }), "bad-address"],
    ["remote port 0", (x) => ({ ...x, tuple: { ...x.tuple, remotePort: 0 } }), "bad-field"],
    ["our scale above 14", { rcvWscale: 15 }, "bad-field"],
    ["scales without the peer's offer", { wscaleSeen: false }, "bad-field"],
    ["MSS below 64", { sndMss: 10, cwnd: 14600 }, "bad-field"],
    ["snd_nxt before snd_una", { sndUna: s.sndNxt + 1 }, "bad-field"],
    ["more in flight than any window", { sndUna: (s.sndNxt - 2 ** 30 - 1) >>> 0 }, "bad-field"],
    ["cwnd below one MSS", { cwnd: 100 }, "bad-field"],
    ["a sequence number that is no uint32", { rcvNxt: -1 }, "bad-field"],
    ["a fractional window", { sndWnd: 0.5 }, "bad-field"],
    ["a NaN cwnd", { cwnd: Number.NaN }, "bad-field"],
    ["a NaN srtt", { srtt: Number.NaN }, "bad-field"],
    ["a negative rto", { rto: -1 }, "bad-field"],
    [
      "a seed for another 4-tuple",
      (x) => ({ ...x, seed: seedFor({ ...x, tuple: { ...x.tuple, remotePort: 1 } }) }),
      "bad-field",
    ],
    ["a seed longer than any header", (x) => ({ ...x, seed: seedFor(x, 200) }), "bad-field"],
  ];
  for (const remote of [
    "0.0.0.0",
    "0.9.9.9",
    "127.0.0.1",
    "224.0.0.1",
    "239.1.2.3",
    "240.0.0.1",
    "255.255.255.255",
    "198.18.100.1",
  ]) {
    cases.push([
      `remote ${remote}`,
      (x) => ({ ...x, tuple: { ...x.tuple, remoteAddr: addr(remote) } }),
      "bad-address",
    ]);
  }
  for (const [name, edit, kind] of cases) {
    const input = typeof edit === "function" ? edit(exported()) : { ...exported(), ...edit };
    const v = validateImport(input, policy);
    assert.ok(isWireError(v), `${name}: accepted`);
    assert.equal(v.kind, kind, `${name}: ${v.detail}`);
  }
  // The same remote address is fine for a client elsewhere.
  assert.ok(!isWireError(validateImport({ ...s, tuple: { ...s.tuple, remoteAddr: REMOTE_ADDR } }, policy)));
});

test("decodeState refuses timestamp/reserved bytes: version 1 negotiates no timestamps", () => {
  const good = encodeState(exported());
  assert.ok(!isWireError(decodeState(good)));
  for (const i of [5, 84, 90, 95]) {
    const b = good.slice();
    b[i] = 1;
    const r = decodeState(b);
    assert.ok(isWireError(r), `byte ${i}`);
    assert.equal(r.kind, "bad-field");
  }
});

function stackWithListener() {
  const out: Uint8Array[] = [];
  const stack = new TcpStack({
    addresses: [LOCAL_ADDR],
    clock: () => 100,
    output: (p) => out.push(p.slice()),
    scheduleFlush: () => undefined,
    config: { rcvBufSize: 1 << 20 },
  });
  new TcpServer(stack).listen(80);
  return { stack, out };
}

test("importState refuses with ERR_TCP_IMPORT before creating anything; the caller can ask first", () => {
  const { stack, out } = stackWithListener();
  const s = exported();
  const martian = { ...s, tuple: { ...s.tuple, remoteAddr: addr("127.0.0.1") } };
  assert.throws(
    () => importState(stack, martian),
    (e: NodeJS.ErrnoException) => e.code === "ERR_TCP_IMPORT" && /127\.0\.0\.1/.test(e.message),
  );
  const otherPort = { ...s, tuple: { ...s.tuple, localPort: 81 } };
  assert.throws(() => importState(stack, otherPort, undefined, { clone: {} }), /not a listening endpoint/);
  assert.equal(stack.connections, 0);
  assert.equal(out.length, 0);
  // An explicit endpoint list replaces the listeners.
  const sock = importState(stack, otherPort, undefined, { localEndpoints: [{ addr: LOCAL_ADDR, port: 81 }] });
  assert.equal(sock.localPort, 81);
});

test("importState clamps: an inflated cwnd and a jumbo MSS do not reach the wire", () => {
  const { stack, out } = stackWithListener();
  const s = exported();
  const sock = importState(stack, { ...s, cwnd: 0xffffffff, sndMss: 8960, sndWnd: 0xffff * 128 });
  assert.equal(sock.conn.cc.cwnd, 64 * 14_600);
  assert.equal(sock.conn.snd.mss, 1460);
  sock.write(Buffer.alloc(4 << 20));
  stack.flush();
  let bytes = 0;
  for (const p of out) {
    const ip = parseIpv4(p);
    assert.ok(!isWireError(ip));
    const seg = parseTcp(ip.payload, ip.src, ip.dst);
    assert.ok(!isWireError(seg));
    assert.ok(seg.payload.length <= 1460, `segment of ${seg.payload.length}`);
    bytes += seg.payload.length;
  }
  assert.equal(bytes, 64 * 14_600, "one clamped cwnd in flight, not the peer's whole window");
});
