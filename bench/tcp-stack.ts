// In-process micro benchmark of the user-space TCP stack's hot path (no TUN, no root):
//   npm run build && node dist/bench/tcp-stack.js [--rounds 5]
// Two TcpStacks exchange IPv4 packets through a synchronous queue under a virtual clock,
// driving TcpConnection through the stack API (no socket layer, no event loop), so the
// figures are the stack's own cost: parse, demultiplex, process, dispatch, emit.
//  - keepalive: 100 connections, each a loop of 100-byte requests and 1 KiB responses
//    (the pattern of an HTTP keep-alive client); requests/s and microseconds per request.
//  - bulk: one connection, 64 KiB writes, one MSS per packet (GSO off); Mbit/s.
//  - state: exportState + encodeState + decodeState + validateImport + TcpConnection.restore
//    (Socket Cloning's per-clone state cost without the socket layer); microseconds each.
// Times are process CPU time (user + system), not wall time, so that a machine shared with
// other jobs skews them less; prints the best of --rounds runs per workload. Figures:
// docs/tcp.md.

import { TcpConnection } from "../sc/tcp/connection.js";
import { EV_DATA, EV_ESTABLISHED, type ConnectionEnv } from "../sc/tcp/types.js";
import { TcpStack, type ConnectionOwner } from "../sc/tcp/stack.js";
import { STATE_SIZE, decodeState, encodeState, exportState, validateImport } from "../sc/tcp/state.js";
import { isWireError } from "../sc/wire/error.js";

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const ROUNDS = arg("--rounds", 5);
const onlyAt = process.argv.indexOf("--only");
/** --only keepalive|bulk|state runs one workload. */
const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined;

const SERVER = "198.18.100.1";
const CLIENT = "198.18.0.2";

/** Two stacks wired back to back, a virtual clock and a synchronous packet pump. */
class Pair {
  now = 0;
  private readonly queue: Array<{ to: TcpStack; packet: Uint8Array }> = [];
  private readonly flushes: Array<() => void> = [];
  readonly server: TcpStack;
  readonly client: TcpStack;

  constructor() {
    const mk = (addr: string, peer: () => TcpStack): TcpStack =>
      new TcpStack({
        addresses: [addr],
        clock: () => this.now,
        output: (packet) => this.queue.push({ to: peer(), packet }),
        scheduleFlush: (f) => this.flushes.push(f),
        secret: new Uint8Array(16).fill(addr.length),
        config: { rcvBufSize: 1 << 20, sndBufSize: 1 << 22, gsoMaxBytes: 0, mtu: 1500 },
      });
    this.server = mk(SERVER, () => this.client);
    this.client = mk(CLIENT, () => this.server);
  }

  /** Delivers packets and runs flushes and due timers until nothing is left. */
  pump(): void {
    for (;;) {
      if (this.flushes.length > 0) {
        const fs = this.flushes.splice(0);
        for (const f of fs) f();
        continue;
      }
      if (this.queue.length > 0) {
        // One batch per round, as a TUN read delivers several packets before a flush.
        const batch = this.queue.splice(0);
        this.now += 0.01;
        const touched = new Set<TcpStack>();
        for (const { to, packet } of batch) {
          to.receive(packet);
          touched.add(to);
        }
        for (const s of touched) s.flush();
        continue;
      }
      const t = Math.min(this.server.pollAt() ?? Infinity, this.client.pollAt() ?? Infinity);
      if (t === Infinity || t > this.now + 1) return;
      this.now = Math.max(this.now, t);
      this.server.poll(this.now);
      this.client.poll(this.now);
    }
  }
}

function keepalive(connections: number, requestsPerConn: number): number {
  const p = new Pair();
  const request = new Uint8Array(100).fill(0x47);
  const response = new Uint8Array(1024).fill(0x48);
  let served = 0;
  p.server.listen(80, undefined, {
    accept: (conn): ConnectionOwner => {
      let pending = 0;
      return {
        onConnectionEvents(c: TcpConnection): void {
          const ev = c.events;
          c.events = 0;
          if (!(ev & EV_DATA)) return;
          for (const chunk of c.takeReceived(p.now)) pending += chunk.length;
          while (pending >= request.length) {
            pending -= request.length;
            c.send(response, p.now);
            served++;
          }
          p.server.touch(conn);
        },
      };
    },
  });
  let done = 0;
  for (let i = 0; i < connections; i++) {
    let got = 0;
    let left = requestsPerConn;
    const owner: ConnectionOwner = {
      onConnectionEvents(c: TcpConnection): void {
        const ev = c.events;
        c.events = 0;
        if (ev & EV_ESTABLISHED) {
          c.send(request, p.now);
          left--;
          p.client.touch(c);
        }
        if (!(ev & EV_DATA)) return;
        for (const chunk of c.takeReceived(p.now)) got += chunk.length;
        while (got >= response.length) {
          got -= response.length;
          if (left > 0) {
            c.send(request, p.now);
            left--;
          } else done++;
        }
        p.client.touch(c);
      },
    };
    p.client.connect(SERVER, 80, owner);
  }
  const start = process.cpuUsage();
  p.pump();
  const ns = cpuNs(start);
  if (done !== connections || served !== connections * requestsPerConn) {
    throw new Error(`keepalive: ${done}/${connections} clients done, ${served} served`);
  }
  return ns;
}

function bulk(bytes: number): number {
  const p = new Pair();
  const chunk = new Uint8Array(65536).fill(0x42);
  let received = 0;
  let serverConn: TcpConnection | undefined;
  let written = 0;
  const refill = (c: TcpConnection): void => {
    // Keep 4 MiB queued: the sender never waits for the application.
    while (written < bytes && c.txQueue.length < 1 << 22) {
      c.send(chunk, p.now);
      written += chunk.length;
    }
    p.server.touch(c);
  };
  p.server.listen(80, undefined, {
    accept: (conn): ConnectionOwner => {
      serverConn = conn;
      refill(conn);
      return {
        onConnectionEvents(c: TcpConnection): void {
          c.events = 0;
          refill(c);
        },
      };
    },
  });
  p.client.connect(SERVER, 80, {
    onConnectionEvents(c: TcpConnection): void {
      const ev = c.events;
      c.events = 0;
      if (!(ev & EV_DATA)) return;
      for (const b of c.takeReceived(p.now)) received += b.length;
      p.client.touch(c);
    },
  });
  const start = process.cpuUsage();
  p.pump();
  const ns = cpuNs(start);
  if (received !== written || serverConn === undefined) throw new Error(`bulk: ${received} of ${written}`);
  return ns;
}

function stateRoundTrips(n: number): number {
  const p = new Pair();
  let conn: TcpConnection | undefined;
  p.server.listen(80, undefined, {
    accept: (c): ConnectionOwner => {
      conn = c;
      return { onConnectionEvents: (x: TcpConnection) => void (x.events = 0) };
    },
  });
  p.client.connect(SERVER, 80, { onConnectionEvents: (x: TcpConnection) => void (x.events = 0) });
  p.pump();
  if (conn === undefined) throw new Error("state: no connection");
  const cfg = p.server.cfg;
  const env: ConnectionEnv = {
    cfg,
    takeChallengeAck: () => true,
    countDrop: () => undefined,
    countRetransmit: () => undefined,
    countZeroWindowAbort: () => undefined,
  };
  const policy = { cfg, localEndpoints: p.server.listeningEndpoints() };
  const buf = new Uint8Array(STATE_SIZE);
  let sink = 0;
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const s = exportState(conn, p.now);
    encodeState(s, buf);
    const back = decodeState(buf);
    if (isWireError(back)) throw new Error("state: decode");
    const ok = validateImport({ ...back, seed: s.seed }, policy);
    if (isWireError(ok)) throw new Error("state: validate");
    sink += TcpConnection.restore(env, ok.state, p.now).snd.nxt;
  }
  if (sink === 0.5) console.log(sink);
  return cpuNs(start);
}

/** CPU nanoseconds (user + system) of this process since `start`. */
function cpuNs(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) * 1000;
}

function best(run: () => number): number {
  let b = Infinity;
  for (let i = 0; i < ROUNDS; i++) b = Math.min(b, run());
  return b;
}

console.log(`sc/tcp stack micro benchmark (node ${process.version}, best of ${ROUNDS})`);
if (only === undefined || only === "keepalive") {
  const conns = 100;
  const per = 200;
  const ns = best(() => keepalive(conns, per));
  const reqs = conns * per;
  console.log(
    `keepalive  ${conns} conns x ${per} req (100 B / 1 KiB): ${((reqs / ns) * 1e9).toFixed(0)} req/s per core, ` +
      `${(ns / reqs / 1000).toFixed(2)} us/req`,
  );
}
if (only === undefined || only === "bulk") {
  const bytes = 64 << 20;
  const ns = best(() => bulk(bytes));
  console.log(
    `bulk       ${bytes >> 20} MiB, MSS 1460, no GSO: ${((bytes * 8000) / ns).toFixed(0)} Mbit/s per core ` +
      `(${(ns / (bytes / 1460)).toFixed(0)} ns per data packet incl. its ACK share)`,
  );
}
if (only === undefined || only === "state") {
  const n = 20_000;
  const ns = best(() => stateRoundTrips(n));
  console.log(
    `state      export+encode+decode+validate+restore: ${(ns / n / 1000).toFixed(2)} us per round trip`,
  );
}
