// The replay engine against small, misbehaving servers on loopback.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { runReplay } from "./run.js";
import { rawHttpServer, withTempDir } from "../test-support.js";
import { readFileSync } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { makeDemoCertificates } from "../../server/transport/tls-certs.js";

function urlTrace(dir: string, paths: string[]): string {
  const p = join(dir, "urls.txt");
  writeFileSync(p, paths.join("\n") + "\n");
  return p;
}

const requestPath = (head: string) => head.split(" ")[1]!;

test("entries are dealt round-robin to connections and replayed in order on each", async () => {
  await withTempDir(async (dir) => {
    const byConnection = new Map<object, string[]>();
    const server = await rawHttpServer((socket, head) => {
      if (!byConnection.has(socket)) byConnection.set(socket, []);
      byConnection.get(socket)!.push(requestPath(head));
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    try {
      const paths = Array.from({ length: 40 }, (_, i) => `/p${i}`);
      const r = await runReplay({
        trace: urlTrace(dir, paths),
        target: server.url,
        clients: 2,
        conns: 2,
        keepalive: true,
      });
      assert.equal(r.requests, 40);
      assert.equal(r.ok, 40);
      assert.equal(r.errors + r.verify_failures, 0);
      assert.equal(server.connections, 4);
      const expected = [0, 1, 2, 3].map((s) => paths.filter((_, i) => i % 4 === s));
      const seen = [...byConnection.values()].sort((a, b) => Number(a[0]!.slice(2)) - Number(b[0]!.slice(2)));
      assert.deepEqual(seen, expected);
      assert.equal(r.stopped_by, "requests");
      assert.match(r.notes[0]!, /one pass over the trace \(40 requests\)/);
    } finally {
      await server.close();
    }
  });
});

test("without keep-alive every request gets its own connection; --requests wraps the trace", async () => {
  await withTempDir(async (dir) => {
    const heads: string[] = [];
    const server = await rawHttpServer((socket, head) => {
      heads.push(head);
      socket.end("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    });
    try {
      const r = await runReplay({
        trace: urlTrace(dir, ["/a", "/b", "/c"]),
        target: server.url,
        conns: 3,
        requests: 10,
      });
      assert.equal(r.requests, 10);
      assert.equal(r.ok, 10);
      assert.equal(server.connections, 10);
      assert.ok(heads.every((h) => /\r\nconnection: close(\r\n|$)/i.test(h)));
      assert.deepEqual(
        heads.map(requestPath).sort(),
        ["/a", "/b", "/c", "/a", "/b", "/c", "/a", "/b", "/c", "/a"].sort(),
      );
      assert.deepEqual(r.notes, []);
    } finally {
      await server.close();
    }
  });
});

test("a server that closes mid-response is an error, reported at once, not a hang", async () => {
  await withTempDir(async (dir) => {
    const server = await rawHttpServer((socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + "x".repeat(1000));
      socket.destroy();
    });
    try {
      const timeoutMs = 20_000;
      const r = await runReplay({
        trace: urlTrace(dir, ["/a", "/b", "/c", "/d"]),
        target: server.url,
        conns: 2,
        keepalive: true,
        requests: 8,
        timeoutMs,
      });
      assert.equal(r.requests, 8);
      assert.equal(r.ok, 0);
      assert.equal(r.errors, 8);
      assert.deepEqual(r.errors_by_kind, { socket_closed: 8 });
      assert.equal(r.verify_failures, 0);
      // Detected from the connection closing, long before the timeout could fire.
      assert.ok(r.latency_ms.max === 0 && r.elapsed_s * 1000 < timeoutMs, `elapsed ${r.elapsed_s}`);
    } finally {
      await server.close();
    }
  });
});

test("a server that stalls (before or during the body) times out per --timeout", async () => {
  await withTempDir(async (dir) => {
    let n = 0;
    const clientPorts: number[] = [];
    const server = await rawHttpServer((socket) => {
      clientPorts.push(socket.remotePort!);
      // First request: headers and part of the body, then silence; others: nothing at all.
      if (n++ === 0) socket.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial");
    });
    try {
      const r = await runReplay({
        trace: urlTrace(dir, ["/a", "/b", "/c"]),
        target: server.url,
        conns: 3,
        keepalive: true,
        timeoutMs: 300,
      });
      assert.equal(r.requests, 3);
      assert.equal(r.errors, 3);
      assert.deepEqual(r.errors_by_kind, { timeout: 3 });
      // Each error with what it takes to find its connection: when it was sent, the client's port.
      const samples = [...r.error_samples].sort((a, b) => b.bodyBytes - a.bodyBytes);
      assert.deepEqual(
        samples.map((e) => [e.kind, e.code, e.bodyBytes, e.responseStarted]),
        [
          ["timeout", "UND_ERR_BODY_TIMEOUT", 7, true],
          ["timeout", "UND_ERR_HEADERS_TIMEOUT", 0, false],
          ["timeout", "UND_ERR_HEADERS_TIMEOUT", 0, false],
        ],
      );
      assert.deepEqual(samples.map((e) => e.localPort).sort(), [...clientPorts].sort());
      for (const e of samples) assert.ok(e.failedS - e.sentS >= 0.29 && e.sentS >= 0, JSON.stringify(e));
    } finally {
      await server.close();
    }
  });
});

test("a refused connection is counted as an error of kind refused", async () => {
  await withTempDir(async (dir) => {
    // A port that was just free: listen, note it, close.
    const probe = createServer();
    await new Promise<void>((res) => probe.listen(0, "127.0.0.1", res));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((res) => probe.close(() => res()));
    const r = await runReplay({
      trace: urlTrace(dir, ["/a", "/b"]),
      target: `http://127.0.0.1:${port}`,
      requests: 4,
    });
    assert.equal(r.requests, 4);
    assert.deepEqual(r.errors_by_kind, { refused: 4 });
    assert.equal(r.rps, 0);
  });
});

test("--duration bounds the run: the trace wraps until time is up, then it stops", async () => {
  await withTempDir(async (dir) => {
    const server = await rawHttpServer((socket) =>
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    );
    try {
      const r = await runReplay({
        trace: urlTrace(dir, ["/a", "/b", "/c"]),
        target: server.url,
        conns: 2,
        keepalive: true,
        durationS: 0.3,
      });
      assert.equal(r.stopped_by, "duration");
      assert.ok(r.requests > 3, `only ${r.requests} requests`);
      assert.equal(r.ok, r.requests);
      assert.equal(r.params.duration_s, 0.3);
    } finally {
      await server.close();
    }
  });
});

test("an abort signal stops issuing; a wrong status fails verification against the trace", async () => {
  await withTempDir(async (dir) => {
    const ac = new AbortController();
    let seen = 0;
    const server = await rawHttpServer((socket) => {
      if (++seen === 50) ac.abort();
      socket.write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    });
    try {
      const r = await runReplay({
        trace: urlTrace(dir, ["/a"]),
        target: server.url,
        keepalive: true,
        durationS: 60,
        signal: ac.signal,
      });
      assert.equal(r.stopped_by, "interrupted");
      assert.ok(r.requests >= 50 && r.requests < 1000, String(r.requests));
      // URL lists expect any success: every 404 is a verification failure.
      assert.equal(r.verify_failures, r.requests);
      assert.deepEqual(r.verify_failures_by_kind, { status: r.requests });
      assert.equal(r.verify_failure_samples[0]!.got, "status 404");
    } finally {
      await server.close();
    }
  });
});

test("an https:// target: every request over TLS, keep-alive, trusting the CA given; an untrusted one is an error, not a response", async () => {
  await withTempDir(async (dir) => {
    const certs = await makeDemoCertificates(join(dir, "tls"), { ips: ["127.0.0.1"], names: [] });
    let connections = 0;
    const server = https.createServer(
      { cert: readFileSync(certs.cert), key: readFileSync(certs.key), minVersion: "TLSv1.3" },
      (req, res) => {
        res.setHeader("content-length", "2");
        res.end("ok");
      },
    );
    server.on("secureConnection", () => connections++);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const target = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const trace = urlTrace(dir, ["/a", "/b", "/c", "/d"]);
      const ca = readFileSync(certs.caCert, "utf8");
      const r = await runReplay({ trace, target, ca, conns: 2, keepalive: true, requests: 40 });
      assert.deepEqual([r.requests, r.ok, r.errors], [40, 40, 0]);
      assert.equal(connections, 2, "two keep-alive TLS connections");
      const untrusted = await runReplay({ trace, target, requests: 2, timeoutMs: 5000 });
      assert.equal(untrusted.ok, 0);
      assert.equal(untrusted.errors, 2);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

test("bad options are refused before anything runs", async () => {
  await withTempDir(async (dir) => {
    const trace = urlTrace(dir, ["/a"]);
    await assert.rejects(runReplay({ trace, target: "http://127.0.0.1:1", pipeline: 4 }), /needs keep-alive/);
    await assert.rejects(runReplay({ trace, target: "ftp://127.0.0.1:1" }), /only http/);
    await assert.rejects(runReplay({ trace, target: "nonsense" }), /not a URL/);
    await assert.rejects(runReplay({ trace, target: "http://127.0.0.1:1", conns: 0 }), /conns must be/);
    const cgiOnly = join(dir, "cgi.log");
    writeFileSync(cgiOnly, 'h - - [01/Aug/1995:00:00:01 -0400] "GET /cgi-bin/x HTTP/1.0" 200 1\n');
    await assert.rejects(
      runReplay({ trace: cgiOnly, target: "http://127.0.0.1:1" }),
      /nothing to replay.*cgi/,
    );
  });
});

test("a keep-alive connection idle for 4 s is closed by the client, not reused into the server's idle close (issue 22)", async () => {
  await withTempDir(async (dir) => {
    const server = await rawHttpServer((socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    try {
      // Two requests 5 s apart on one keep-alive connection slot: the second finds the first
      // connection closed by the client (idle 4 s) and opens a new one. A client that kept it
      // would race a server closing idle connections after 5 s (Node's http default).
      const r = await runReplay({
        trace: urlTrace(dir, ["/a", "/b"]),
        target: server.url,
        clients: 1,
        conns: 1,
        keepalive: true,
        rate: 0.2,
        requests: 2,
      });
      assert.equal(r.ok, 2);
      assert.equal(server.connections, 2);
    } finally {
      await server.close();
    }
  });
});
