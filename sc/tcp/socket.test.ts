// The node:net-style socket API over two stacks on a virtual network (virtual time).

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { TcpServer, TcpSocket, connectTcp } from "./socket.js";
import { VirtualNet } from "./sim.js";
import type { TcpConfig } from "./config.js";

const SERVER = "198.18.100.1";
const CLIENT = "198.18.0.2";

function setup(cfg: Partial<TcpConfig> = {}, seed = 1) {
  const net = new VirtualNet(seed);
  const server = net.addStack([SERVER], { config: cfg });
  const client = net.addStack([CLIENT], { config: cfg });
  return { net, server, client };
}

function collect(sock: TcpSocket): { data: Buffer[]; text: () => string; ended: boolean; closed: boolean } {
  const state = {
    data: [] as Buffer[],
    text: () => Buffer.concat(state.data).toString(),
    ended: false,
    closed: false,
  };
  sock.on("data", (d: Buffer) => state.data.push(d));
  sock.on("end", () => (state.ended = true));
  sock.on("close", () => (state.closed = true));
  return state;
}

function sha(bufs: Buffer[]): string {
  const h = createHash("sha256");
  for (const b of bufs) h.update(b);
  return h.digest("hex");
}

test("echo: connect, data both ways, client-initiated close, close events without error", async () => {
  const { net, server, client } = setup();
  const srv = new TcpServer(server);
  let accepted: TcpSocket | undefined;
  srv.on("connection", (s: TcpSocket) => {
    accepted = s;
    s.on("data", (d: Buffer) => s.write(d));
  });
  srv.listen(7, SERVER);
  const c = connectTcp(client, { host: SERVER, port: 7 });
  assert.equal(c.readyState, "opening");
  let connected = false;
  c.on("connect", () => (connected = true));
  const got = collect(c);
  c.write("hello ");
  c.write("world");
  assert.ok(await net.run(() => got.text() === "hello world"));
  assert.ok(connected);
  assert.equal(c.readyState, "open");
  assert.ok(accepted);
  assert.equal(accepted.remoteAddress, CLIENT);
  assert.equal(accepted.remotePort, c.localPort);
  assert.equal(accepted.localAddress, SERVER);
  assert.equal(accepted.localPort, 7);
  assert.deepEqual(accepted.address(), { address: SERVER, family: "IPv4", port: 7 });
  const serverClose: boolean[] = [];
  accepted.on("close", (hadError: boolean) => serverClose.push(hadError));
  c.end();
  assert.equal(c.readyState, "readOnly");
  assert.ok(await net.run(() => got.closed && serverClose.length === 1));
  assert.equal(got.ended, true);
  assert.deepEqual(serverClose, [false]);
  assert.equal(c.closeReason, "closed");
  assert.equal(accepted.closeReason, "closed");
  assert.equal(c.bytesWritten, 11);
  assert.equal(c.bytesRead, 11);
  assert.equal(accepted.bytesRead, 11);
  // The client closed first: it sits in TIME-WAIT, then every connection is gone.
  assert.equal(server.connections, 0);
  assert.equal(client.connections, 1);
  await net.advance(2000);
  assert.equal(client.connections, 0);
});

test("1 MB each way with backpressure (write() false, 'drain') arrives byte-exact", async () => {
  const { net, server, client } = setup({ sndBufSize: 64 * 1024 });
  const size = 1 << 20;
  const payload = net.rng.bytes(size);
  const srv = new TcpServer(server);
  const serverGot: Buffer[] = [];
  let sawFalse = false;
  let drains = 0;
  srv.on("connection", (s: TcpSocket) => {
    s.on("data", (d: Buffer) => serverGot.push(d));
    let off = 0;
    const pump = (): void => {
      while (off < size) {
        const n = Math.min(10_000, size - off);
        const ok = s.write(payload.subarray(off, off + n));
        off += n;
        if (!ok) {
          sawFalse = true;
          s.once("drain", () => {
            drains++;
            pump();
          });
          return;
        }
      }
      s.end();
    };
    pump();
  });
  srv.listen(9, SERVER);
  const c = connectTcp(client, { host: SERVER, port: 9 });
  const got = collect(c);
  c.write(payload);
  c.end();
  assert.ok(await net.run(() => got.closed, 120_000));
  assert.equal(sha(got.data), sha([payload]));
  assert.equal(sha(serverGot), sha([payload]));
  assert.ok(sawFalse, "write() returned false above the high-water mark");
  assert.ok(drains > 0);
});

test("server closes first after its response; the client sees data then 'end'", async () => {
  const { net, server, client } = setup();
  new TcpServer(server, {}, (s) => {
    s.on("data", () => s.end("HTTP/1.0 200 OK\r\n\r\nbody"));
  }).listen(80);
  const c = connectTcp(client, { host: SERVER, port: 80 });
  const got = collect(c);
  c.write("GET / HTTP/1.0\r\n\r\n");
  assert.ok(await net.run(() => got.closed));
  assert.equal(got.text(), "HTTP/1.0 200 OK\r\n\r\nbody");
  assert.equal(got.ended, true);
  assert.equal(server.connections, 1, "server in TIME-WAIT");
  await net.advance(1500);
  assert.equal(server.connections, 0);
});

test("destroy() sends RST: the peer gets ECONNRESET and close(hadError = true)", async () => {
  const { net, server, client } = setup();
  let serverSock: TcpSocket | undefined;
  new TcpServer(server, {}, (s) => (serverSock = s)).listen(80);
  const c = connectTcp(client, { host: SERVER, port: 80 });
  assert.ok(await net.run(() => serverSock !== undefined));
  const errors: string[] = [];
  let hadError: boolean | undefined;
  serverSock!.on("error", (e: NodeJS.ErrnoException) => errors.push(e.code ?? ""));
  serverSock!.on("close", (h: boolean) => (hadError = h));
  let clientClosed = false;
  c.on("close", () => (clientClosed = true));
  c.destroy();
  assert.equal(c.destroyed, true);
  assert.ok(await net.run(() => hadError !== undefined && clientClosed));
  assert.deepEqual(errors, ["ECONNRESET"]);
  assert.equal(hadError, true);
  assert.equal(serverSock!.closeReason, "reset");
  assert.equal(server.connections, 0);
  assert.equal(client.connections, 0);
});

test("connecting to a port nobody listens on fails with ECONNREFUSED", async () => {
  const { net, client } = setup();
  const c = connectTcp(client, { host: SERVER, port: 81 });
  let code: string | undefined;
  c.on("error", (e: NodeJS.ErrnoException) => (code = e.code));
  let closed = false;
  c.on("close", () => (closed = true));
  assert.ok(await net.run(() => closed));
  assert.equal(code, "ECONNREFUSED");
});

test("pause() closes the receive window; resume() drains it and the transfer completes", async () => {
  const { net, server, client } = setup({ rcvBufSize: 32 * 1024 });
  const size = 300_000;
  const payload = net.rng.bytes(size);
  let serverSock: TcpSocket | undefined;
  new TcpServer(server, {}, (s) => {
    serverSock = s;
    s.end(payload);
  }).listen(80);
  const c = connectTcp(client, { host: SERVER, port: 80 });
  const got = collect(c);
  c.pause();
  assert.ok(await net.run(() => serverSock !== undefined && serverSock.conn.snd.wnd === 0, 10_000));
  assert.equal(got.data.length, 0, "nothing delivered while paused");
  assert.ok(c.readableLength >= 32 * 1024 - 1460, `buffered ${c.readableLength}`);
  assert.ok(serverSock!.writableLength > 0);
  c.resume();
  assert.ok(await net.run(() => got.ended, 60_000));
  assert.equal(sha(got.data), sha([payload]));
});

test("setTimeout emits 'timeout' after idleness (and calls the callback once)", async () => {
  const { net, server, client } = setup();
  new TcpServer(server).listen(80);
  const c = connectTcp(client, { host: SERVER, port: 80 });
  let calls = 0;
  let events = 0;
  c.on("timeout", () => events++);
  c.setTimeout(300, () => calls++);
  const start = net.now;
  assert.ok(await net.run(() => events > 0));
  assert.ok(net.now - start >= 300 && net.now - start < 400, `fired at +${net.now - start}`);
  await net.advance(2000);
  assert.equal(events, 1);
  assert.equal(calls, 1);
});

test("async iteration yields the data and ends at the peer's FIN", async () => {
  const { net, server, client } = setup();
  new TcpServer(server, {}, (s) => {
    s.write("a");
    s.write("b");
    s.end("c");
  }).listen(80);
  const c = connectTcp(client, { host: SERVER, port: 80 });
  const parts: string[] = [];
  const done = (async () => {
    for await (const chunk of c) parts.push(chunk.toString());
  })();
  let finished = false;
  void done.then(() => (finished = true));
  assert.ok(await net.run(() => finished));
  assert.equal(parts.join(""), "abc");
});

test("write callbacks run once the peer acknowledged the bytes", async () => {
  const { net, server, client } = setup();
  new TcpServer(server, {}, (s) => s.resume()).listen(80);
  const c = connectTcp(client, { host: SERVER, port: 80 });
  const order: string[] = [];
  c.write("one", () => order.push(`one@${c.conn.snd.una - c.conn.snd.iss - 1}`));
  c.write("three", () => order.push(`three@${c.conn.snd.una - c.conn.snd.iss - 1}`));
  assert.ok(await net.run(() => order.length === 2));
  assert.deepEqual(order, ["one@8", "three@8"]);
});

test("write after end is an error (callback and 'error')", async () => {
  const { net, server, client } = setup();
  new TcpServer(server).listen(80);
  const c = connectTcp(client, { host: SERVER, port: 80 });
  c.end();
  let cbErr: NodeJS.ErrnoException | undefined;
  let evErr: NodeJS.ErrnoException | undefined;
  c.on("error", (e) => (evErr = e));
  assert.equal(
    c.write("x", (e) => (cbErr = e ?? undefined)),
    false,
  );
  await net.settle();
  assert.equal(cbErr?.code, "ERR_STREAM_WRITE_AFTER_END");
  assert.equal(evErr?.code, "ERR_STREAM_WRITE_AFTER_END");
});

test("allowHalfOpen: the server keeps writing after the client's FIN", async () => {
  const { net, server, client } = setup();
  new TcpServer(server, { allowHalfOpen: true }, (s) => {
    s.resume();
    s.on("end", () => {
      s.write("late reply");
      s.end();
    });
  }).listen(80);
  const c = connectTcp(client, { host: SERVER, port: 80, allowHalfOpen: true });
  const got = collect(c);
  c.end("request");
  assert.ok(await net.run(() => got.closed));
  assert.equal(got.text(), "late reply");
});

test("server.close(): stops accepting, 'close' once its connections are gone", async () => {
  const { net, server, client } = setup();
  let accepted = 0;
  const srv = new TcpServer(server, {}, (s) => {
    accepted++;
    s.on("data", () => s.end());
  });
  srv.listen(80);
  assert.equal(srv.listening, true);
  const c = connectTcp(client, { host: SERVER, port: 80 });
  c.resume(); // read, so the server's FIN is seen and answered
  assert.ok(await net.run(() => accepted === 1));
  let closed = false;
  srv.close(() => (closed = true));
  assert.equal(srv.listening, false);
  await net.advance(10);
  assert.equal(closed, false, "a connection is still open");
  c.write("bye");
  assert.ok(await net.run(() => closed));
  const c2 = connectTcp(client, { host: SERVER, port: 80 });
  let code: string | undefined;
  c2.on("error", (e: NodeJS.ErrnoException) => (code = e.code));
  assert.ok(await net.run(() => code !== undefined));
  assert.equal(code, "ECONNREFUSED");
});

test("500 concurrent connections each get their own echo", async () => {
  const { net, server, client } = setup();
  new TcpServer(server, {}, (s) => s.on("data", (d: Buffer) => s.end(d))).listen(7);
  const results = new Map<number, string>();
  for (let i = 0; i < 500; i++) {
    const c = connectTcp(client, { host: SERVER, port: 7 });
    const got = collect(c);
    c.on("close", () => results.set(i, got.text()));
    c.end(`message ${i}`);
  }
  assert.ok(await net.run(() => results.size === 500, 30_000));
  for (let i = 0; i < 500; i++) assert.equal(results.get(i), `message ${i}`);
  await net.advance(2000);
  assert.equal(server.connections, 0);
  assert.equal(client.connections, 0);
});

test("readyState follows node:net through a half close", async () => {
  const { net, server, client } = setup();
  let serverSock: TcpSocket | undefined;
  new TcpServer(server, { allowHalfOpen: true }, (s) => {
    serverSock = s;
    s.resume();
  }).listen(80);
  const c = connectTcp(client, { host: SERVER, port: 80, allowHalfOpen: true });
  c.resume();
  assert.ok(await net.run(() => serverSock !== undefined && !c.connecting));
  c.end();
  assert.ok(await net.run(() => serverSock!.readyState === "writeOnly"));
  serverSock!.end();
  assert.ok(await net.run(() => serverSock!.readyState === "closed" && c.readyState === "closed"));
});

test("pauseOnConnect and noDelay server options apply to accepted sockets", async () => {
  const { net, server, client } = setup();
  let serverSock: TcpSocket | undefined;
  new TcpServer(server, { pauseOnConnect: true, noDelay: false }, (s) => (serverSock = s)).listen(80);
  const c = connectTcp(client, { host: SERVER, port: 80 });
  c.write("x");
  assert.ok(await net.run(() => serverSock !== undefined && serverSock.conn.rxQueued === 1));
  assert.equal(serverSock!.isPaused(), true);
  assert.equal(serverSock!.conn.opts.noDelay, false);
});

test("setEncoding delivers strings, split multi-byte characters included", async () => {
  const { net, server, client } = setup();
  new TcpServer(server, {}, (s) => {
    const euro = Buffer.from("€uro", "utf8");
    s.write(euro.subarray(0, 2));
    setImmediate(() => s.end(euro.subarray(2)));
  }).listen(80);
  const c = connectTcp(client, { host: SERVER, port: 80 });
  c.setEncoding("utf8");
  const parts: unknown[] = [];
  c.on("data", (d: unknown) => parts.push(d));
  let ended = false;
  c.on("end", () => (ended = true));
  assert.ok(await net.run(() => ended));
  assert.ok(parts.every((p) => typeof p === "string"));
  assert.equal(parts.join(""), "€uro");
});

test("destroy() in LAST-ACK sends no RST; the peer's last ACK finds the connection", async () => {
  const { net, server, client } = setup();
  const srv = new TcpServer(server, { allowHalfOpen: true });
  srv.on("connection", (s: TcpSocket) => {
    s.resume();
    s.on("end", () => {
      s.end();
      s.destroy(); // now in LAST-ACK: our FIN is out, the client's ACK of it is still to come
    });
  });
  srv.listen(7, SERVER);
  const c = connectTcp(client, { host: SERVER, port: 7 });
  const got = collect(c);
  c.on("connect", () => c.end());
  assert.ok(await net.run(() => got.closed));
  await net.advance(5000);
  assert.equal(c.closeReason, "closed");
  assert.equal(server.counters.resetsSent, 0);
  assert.equal(server.connections, 0);
});
