import { test } from "node:test";
import assert from "node:assert/strict";
import { ParseError, RequestParser, type HttpRequest, type ParserLimits } from "./parser.js";

type Out = HttpRequest | ParseError;

function parseAll(input: string | Buffer, limits: Partial<ParserLimits> = {}): Out[] {
  const p = new RequestParser(limits);
  p.feed(typeof input === "string" ? Buffer.from(input, "latin1") : input);
  const out: Out[] = [];
  for (let m = p.next(); m !== null; m = p.next()) out.push(m);
  return out;
}

function one(input: string, limits: Partial<ParserLimits> = {}): HttpRequest {
  const out = parseAll(input, limits);
  assert.equal(out.length, 1, `expected one request from ${JSON.stringify(input)}`);
  const r = out[0]!;
  assert.ok(!(r instanceof ParseError), `unexpected error ${(r as ParseError).reason}`);
  return r;
}

function rejects(
  input: string | Buffer,
  status: number,
  reason?: RegExp,
  limits: Partial<ParserLimits> = {},
) {
  const out = parseAll(input, limits);
  const last = out[out.length - 1];
  assert.ok(last instanceof ParseError, `expected ${status} for ${JSON.stringify(input.toString())}`);
  assert.equal(last.status, status, `status for ${JSON.stringify(input.toString())}: ${last.reason}`);
  if (reason) assert.match(last.reason, reason);
}

const H = "Host: example.test\r\n";

test("a simple GET: fields, raw head and keep-alive default for HTTP/1.1", () => {
  const head = `GET /a/b.html?x=1&y HTTP/1.1\r\n${H}Accept: */*\r\nX-Empty:\r\n\r\n`;
  const r = one(head);
  assert.equal(r.method, "GET");
  assert.equal(r.target, "/a/b.html?x=1&y");
  assert.equal(r.targetForm, "origin");
  assert.equal(r.path, "/a/b.html");
  assert.equal(r.query, "?x=1&y");
  assert.equal(r.versionMinor, 1);
  assert.equal(r.host, "example.test");
  assert.equal(r.keepAlive, true);
  assert.deepEqual(r.headers, ["host", "example.test", "accept", "*/*", "x-empty", ""]);
  assert.equal(r.raw.toString("latin1"), head);
  assert.equal(r.bodyBytes, 0);
});

test("header values lose surrounding whitespace, keep inner whitespace and obs-text", () => {
  const r = one(`GET / HTTP/1.1\r\n${H}X-A: \t a  b \t\r\nX-B: caf\xe9\r\n\r\n`);
  assert.deepEqual(r.headers.slice(2), ["x-a", "a  b", "x-b", "caf\xe9"]);
});

test("keep-alive rules for HTTP/1.0 and HTTP/1.1", () => {
  assert.equal(one("GET / HTTP/1.0\r\n\r\n").keepAlive, false);
  assert.equal(one("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keepAlive, true);
  assert.equal(one("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keepAlive, false);
  assert.equal(one(`GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`).keepAlive, false);
  assert.equal(one(`GET / HTTP/1.1\r\n${H}Connection: Upgrade,  CLOSE\r\n\r\n`).keepAlive, false);
  assert.equal(one(`GET / HTTP/1.1\r\n${H}Connection: closed\r\n\r\n`).keepAlive, true);
  assert.equal(
    one(`GET / HTTP/1.1\r\n${H}Connection: keep-alive\r\nConnection: close\r\n\r\n`).keepAlive,
    false,
  );
  assert.equal(one("GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n").keepAlive, false);
});

test("HTTP/1.x minor versions above 1 are handled as 1.1; other majors get 505", () => {
  assert.equal(one(`GET / HTTP/1.9\r\n${H}\r\n`).versionMinor, 1);
  rejects("GET / HTTP/2.0\r\n\r\n", 505);
  rejects("GET / HTTP/0.9\r\n\r\n", 505);
  rejects("GET / HTTP/1.10\r\n\r\n", 400);
  rejects("GET / http/1.1\r\n\r\n", 400);
  rejects("GET / HTTP/1.1 \r\n\r\n", 400);
  rejects("GET / HTTP/1\r\n\r\n", 400);
});

test("HTTP/0.9-style request lines are rejected", () => {
  rejects("GET /\r\n\r\n", 400, /HTTP\/0\.9/);
  rejects("GET /index.html\r\n", 400, /HTTP\/0\.9/);
});

test("request line syntax: single spaces, token method, visible-ASCII target", () => {
  rejects("GET  / HTTP/1.1\r\n\r\n", 400);
  rejects(" GET / HTTP/1.1\r\n\r\n", 400);
  rejects("GET /a b HTTP/1.1\r\n\r\n", 400);
  rejects("GET /a\tb HTTP/1.1\r\n\r\n", 400);
  rejects("G(T / HTTP/1.1\r\n\r\n", 400);
  rejects("GET /a\x01 HTTP/1.1\r\n\r\n", 400);
  rejects("GET /\x7f HTTP/1.1\r\n\r\n", 400);
  rejects("GET /caf\xe9 HTTP/1.1\r\n\r\n", 400);
  rejects("GET /a#frag HTTP/1.1\r\n\r\n", 400);
  rejects("GET a/b HTTP/1.1\r\n\r\n", 400);
  rejects("GET\r\n\r\n", 400);
  // Methods are case-sensitive tokens: "get" parses (the server answers 501).
  assert.equal(one(`get / HTTP/1.1\r\n${H}\r\n`).method, "get");
});

test("request target forms: absolute-form overrides Host, asterisk only for OPTIONS, authority for CONNECT", () => {
  const a = one(`GET HTTP://Other.test:8080/x/y?q=1 HTTP/1.1\r\n${H}\r\n`);
  assert.equal(a.targetForm, "absolute");
  assert.equal(a.host, "Other.test:8080");
  assert.equal(a.path, "/x/y");
  assert.equal(a.query, "?q=1");
  const b = one("GET http://h.test HTTP/1.1\r\nHost: h.test\r\n\r\n");
  assert.equal(b.path, "/");
  const c = one("GET http://h.test?z HTTP/1.1\r\nHost: h.test\r\n\r\n");
  assert.equal(c.path, "/");
  assert.equal(c.query, "?z");
  rejects("GET http://user@h.test/ HTTP/1.1\r\nHost: h.test\r\n\r\n", 400);
  rejects("GET http:///x HTTP/1.1\r\nHost: h.test\r\n\r\n", 400);
  rejects("GET ftp://h.test/ HTTP/1.1\r\nHost: h.test\r\n\r\n", 400);
  assert.equal(one(`OPTIONS * HTTP/1.1\r\n${H}\r\n`).targetForm, "asterisk");
  rejects(`GET * HTTP/1.1\r\n${H}\r\n`, 400);
  assert.equal(one(`CONNECT h.test:443 HTTP/1.1\r\n${H}\r\n`).targetForm, "authority");
  rejects(`CONNECT h.test HTTP/1.1\r\n${H}\r\n`, 400);
});

test("Host: required once in HTTP/1.1, optional in HTTP/1.0, syntax checked", () => {
  rejects("GET / HTTP/1.1\r\n\r\n", 400, /missing Host/);
  rejects(`GET / HTTP/1.1\r\n${H}${H}\r\n`, 400, /more than one Host/);
  rejects("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
  rejects("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400);
  rejects("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400);
  assert.equal(one("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n").host, "[::1]:80");
  assert.equal(one("GET / HTTP/1.1\r\nHost:\r\n\r\n").host, "");
  assert.equal(one("GET / HTTP/1.0\r\n\r\n").host, undefined);
});

test("header syntax: obs-fold, whitespace before colon, bad names and values are 400", () => {
  rejects(`GET / HTTP/1.1\r\n${H}X-A: 1\r\n continued\r\n\r\n`, 400, /folding/);
  rejects(`GET / HTTP/1.1\r\n${H}X-A: 1\r\n\tcontinued\r\n\r\n`, 400, /folding/);
  rejects(`GET / HTTP/1.1\r\n${H}X-A : 1\r\n\r\n`, 400, /whitespace before colon/);
  rejects(`GET / HTTP/1.1\r\n${H}X-A\t: 1\r\n\r\n`, 400, /whitespace before colon/);
  rejects(`GET / HTTP/1.1\r\n${H}X A: 1\r\n\r\n`, 400);
  rejects(`GET / HTTP/1.1\r\n${H}X(A): 1\r\n\r\n`, 400);
  rejects(`GET / HTTP/1.1\r\n${H}: 1\r\n\r\n`, 400);
  rejects(`GET / HTTP/1.1\r\n${H}NoColon\r\n\r\n`, 400);
  rejects(`GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`, 400);
  rejects(`GET / HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`, 400);
  rejects(`GET / HTTP/1.1\r\n${H}X-A: a\x7fb\r\n\r\n`, 400);
  rejects(`GET / HTTP/1.1\r\n${H}X-A: a\x1bb\r\n\r\n`, 400);
});

test("line endings: CRLF only; leading empty lines are skipped", () => {
  rejects("GET / HTTP/1.1\n\n", 400, /bare LF/);
  rejects(`GET / HTTP/1.1\r\n${H}X-A: 1\n\r\n`, 400, /bare LF/);
  rejects("\nGET / HTTP/1.0\r\n\r\n", 400, /bare LF/);
  rejects("\rGET / HTTP/1.0\r\n\r\n", 400, /bare CR/);
  assert.equal(one("\r\n\r\nGET /x HTTP/1.0\r\n\r\n").path, "/x");
});

test("Content-Length: body skipped, next request parsed; duplicates, lists and signs rejected", () => {
  const out = parseAll(`GET /a HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n${H}\r\n`);
  assert.equal(out.length, 2);
  assert.equal((out[0] as HttpRequest).bodyBytes, 5);
  assert.equal((out[1] as HttpRequest).path, "/b");
  assert.equal(one(`GET / HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`).bodyBytes, 0);
  rejects(`GET / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`, 400, /duplicate/);
  rejects(`GET / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello`, 400, /duplicate/);
  rejects(`GET / HTTP/1.1\r\n${H}Content-Length: 5, 5\r\n\r\nhello`, 400);
  rejects(`GET / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, 400);
  rejects(`GET / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, 400);
  rejects(`GET / HTTP/1.1\r\n${H}Content-Length: 0x5\r\n\r\nhello`, 400);
  rejects(`GET / HTTP/1.1\r\n${H}Content-Length: 1234567890123456\r\n\r\n`, 400);
  rejects(`GET / HTTP/1.1\r\n${H}Content-Length: 11\r\n\r\nhello world`, 413, /too large/, {
    maxBodyBytes: 10,
  });
});

test("Transfer-Encoding: chunked bodies skipped with extensions and trailers", () => {
  const body = '5;ext=1\r\nhello\r\n6 ; a="b"\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n';
  const out = parseAll(
    `GET /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${body}GET /b HTTP/1.1\r\n${H}\r\n`,
  );
  assert.equal(out.length, 2);
  assert.equal((out[0] as HttpRequest).bodyBytes, 11);
  assert.equal((out[1] as HttpRequest).path, "/b");
  assert.equal(one(`GET / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`).bodyBytes, 0);
  assert.equal(
    one(`GET / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n000\r\n\r\n`)
      .bodyBytes,
    0,
  );
});

test("Transfer-Encoding smuggling vectors are rejected", () => {
  const TE = (v: string) => `GET / HTTP/1.1\r\n${H}Transfer-Encoding: ${v}\r\n\r\n0\r\n\r\n`;
  rejects(
    `GET / HTTP/1.1\r\n${H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    400,
    /both/,
  );
  rejects(
    `GET / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`,
    400,
    /both/,
  );
  rejects("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, /HTTP\/1\.0/);
  rejects(TE("gzip"), 400);
  rejects(TE("chunked, gzip"), 400);
  rejects(TE("chunked, chunked"), 400);
  rejects(TE("chunked;q=1"), 400);
  rejects(TE("x chunked"), 400);
  rejects(TE(""), 400);
});

test("bad chunk framing is rejected", () => {
  const C = (body: string) => `GET / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${body}`;
  rejects(C("-1\r\n"), 400, /chunk size/);
  rejects(C("+1\r\nx\r\n0\r\n\r\n"), 400, /chunk size/);
  rejects(C("0x1\r\nx\r\n0\r\n\r\n"), 400, /chunk size/);
  rejects(C(" 1\r\nx\r\n0\r\n\r\n"), 400, /chunk size/);
  rejects(C("1 \r\nx\r\n0\r\n\r\n"), 400, /chunk size/);
  rejects(C("\r\n"), 400, /chunk size/);
  rejects(C("zz\r\n"), 400, /chunk size/);
  rejects(C("1\nx\r\n0\r\n\r\n"), 400, /bare LF/);
  rejects(C("1\r\nxy\r\n0\r\n\r\n"), 400, /chunk data/);
  rejects(C("3\r\nabc\n0\r\n\r\n"), 400, /chunk data/);
  rejects(C("ffffffffffffffffffff\r\n"), 413);
  rejects(C("8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"), 413, /too large/, { maxBodyBytes: 10 });
  rejects(C(`1;${"e".repeat(5000)}`), 400, /too long/);
  rejects(C("0\r\nBad Trailer: x\r\n\r\n"), 400);
});

test("limits: request line 414, header bytes and field count 431", () => {
  const long = "/" + "a".repeat(8192);
  rejects(`GET ${long} HTTP/1.1\r\n${H}\r\n`, 414);
  rejects(`GET ${long}`, 414); // incomplete line already over the limit
  assert.equal(one(`GET ${"/" + "a".repeat(8192 - 14)} HTTP/1.1\r\n${H}\r\n`).path.length, 8179);
  const big = `X-Big: ${"b".repeat(17000)}\r\n`;
  rejects(`GET / HTTP/1.1\r\n${H}${big}\r\n`, 431);
  rejects(`GET / HTTP/1.1\r\n${H}${big}`, 431);
  const many = Array.from({ length: 100 }, (_, i) => `X-${i}: v\r\n`).join("");
  rejects(`GET / HTTP/1.1\r\n${H}${many}\r\n`, 431, /too many/);
  const fewer = Array.from({ length: 99 }, (_, i) => `X-${i}: v\r\n`).join("");
  assert.equal(one(`GET / HTTP/1.1\r\n${H}${fewer}\r\n`).headers.length, 200);
  rejects(`GET / HTTP/1.1\r\n${H}X-A: 1\r\n\r\n`, 414, undefined, { maxRequestLine: 10 });
});

test("conditional and range fields: lists combined, first date kept, two Range fields ignored", () => {
  const r = one(
    `GET / HTTP/1.1\r\n${H}If-None-Match: "a"\r\nIf-None-Match: W/"b"\r\nIf-Modified-Since: d1\r\n` +
      `If-Modified-Since: d2\r\nRange: bytes=0-1\r\nIf-Range: "a"\r\nIf-Match: *\r\nIf-Unmodified-Since: d3\r\n\r\n`,
  );
  assert.equal(r.ifNoneMatch, '"a", W/"b"');
  assert.equal(r.ifModifiedSince, "d1");
  assert.equal(r.range, "bytes=0-1");
  assert.equal(r.ifRange, '"a"');
  assert.equal(r.ifMatch, "*");
  assert.equal(r.ifUnmodifiedSince, "d3");
  assert.equal(one(`GET / HTTP/1.1\r\n${H}Range: bytes=0-1\r\nRange: bytes=2-3\r\n\r\n`).range, undefined);
});

test("pipelined requests come out one at a time, in order", () => {
  const p = new RequestParser();
  p.feed(Buffer.from(`GET /1 HTTP/1.1\r\n${H}\r\nHEAD /2 HTTP/1.1\r\n${H}\r\nGET /3 HTTP/1.0\r\n\r\nGET /4`));
  assert.equal((p.next() as HttpRequest).path, "/1");
  assert.equal(p.midMessage, true);
  assert.equal((p.next() as HttpRequest).method, "HEAD");
  assert.equal((p.next() as HttpRequest).keepAlive, false);
  assert.equal(p.next(), null);
  assert.equal(p.midMessage, true);
  p.feed(Buffer.from(` HTTP/1.1\r\n${H}\r\n`));
  const r4 = p.next() as HttpRequest;
  assert.equal(r4.path, "/4");
  assert.equal(r4.raw.toString(), `GET /4 HTTP/1.1\r\n${H}\r\n`);
  assert.equal(p.next(), null);
  assert.equal(p.midMessage, false);
  assert.equal(p.buffered, 0);
});

test("after an error the parser returns nothing and ignores input", () => {
  const p = new RequestParser();
  p.feed(Buffer.from(`GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n${H}\r\n`));
  const e = p.next();
  assert.ok(e instanceof ParseError);
  assert.equal(p.failed, true);
  assert.equal(p.next(), null);
  p.feed(Buffer.from(`GET / HTTP/1.1\r\n${H}\r\n`));
  assert.equal(p.next(), null);
});

/** The fields a split must not change. */
function summary(out: Out[]): unknown[] {
  return out.map((m) =>
    m instanceof ParseError
      ? { status: m.status, reason: m.reason }
      : { ...m, raw: m.raw.toString("latin1") },
  );
}

const PIPELINE =
  `\r\nGET /a%20b?x HTTP/1.1\r\n${H}If-None-Match: "x"\r\n\r\n` +
  `GET /body HTTP/1.1\r\n${H}Content-Length: 10\r\n\r\n0123456789` +
  `HEAD http://h.test/abs HTTP/1.1\r\n${H}Range: bytes=1-\r\n\r\n` +
  `GET /chunked HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\nT: 1\r\n\r\n` +
  `GET /last HTTP/1.0\r\nConnection: keep-alive\r\n\r\n` +
  `GET /bad HTTP/1.1\r\n${H}Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n`;

test("pipelined input split at every byte boundary yields the same requests", () => {
  const input = Buffer.from(PIPELINE, "latin1");
  const whole = summary(parseAll(input));
  assert.equal(whole.length, 6);
  assert.equal((whole[5] as { status: number }).status, 400);
  for (let cut = 1; cut < input.length; cut++) {
    const p = new RequestParser();
    const out: Out[] = [];
    for (const part of [input.subarray(0, cut), input.subarray(cut)]) {
      p.feed(Buffer.from(part)); // a copy, as a socket gives fresh buffers
      for (let m = p.next(); m !== null; m = p.next()) out.push(m);
    }
    assert.deepEqual(summary(out), whole, `split at ${cut}`);
  }
  // And one byte at a time, pulling after each byte.
  const p = new RequestParser();
  const out: Out[] = [];
  for (let i = 0; i < input.length; i++) {
    p.feed(Buffer.from([input[i]!]));
    for (let m = p.next(); m !== null; m = p.next()) out.push(m);
  }
  assert.deepEqual(summary(out), whole);
});

test("raw heads stay intact after the parser buffer grows and is reused", () => {
  const p = new RequestParser();
  const raws: string[] = [];
  const heads = Array.from(
    { length: 50 },
    (_, i) => `GET /${i} HTTP/1.1\r\n${H}X-Pad: ${"p".repeat(i * 37)}\r\n\r\n`,
  );
  const input = Buffer.from(heads.join(""));
  const reqs: HttpRequest[] = [];
  for (let i = 0; i < input.length; i += 7) {
    p.feed(Buffer.from(input.subarray(i, i + 7)));
    for (let m = p.next(); m !== null; m = p.next()) reqs.push(m as HttpRequest);
  }
  for (const r of reqs) raws.push(r.raw.toString());
  assert.deepEqual(raws, heads);
});
