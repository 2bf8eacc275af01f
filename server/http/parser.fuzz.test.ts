// Property test: >= 100k generated, mutated and adversarial requests through the parser, with a
// fixed seed so a failure reproduces. Properties: it never throws; a failure is a 4xx/505
// ParseError and the last thing out; every request that comes out is well-formed; the result
// does not depend on how the input was split; valid requests round-trip exactly; known smuggling
// vectors are always rejected.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ParseError, RequestParser, type HttpRequest } from "./parser.js";

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rnd = mulberry32(0x5eed1234);
const int = (n: number) => Math.floor(rnd() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

const METHODS = ["GET", "HEAD", "POST", "PUT", "OPTIONS", "DELETE", "PATCH", "BREW"];
const SEGMENTS = [
  "a",
  "index.html",
  "%20",
  "..",
  ".",
  "%2e%2e",
  "%2F",
  "x.css",
  "caf%C3%A9",
  "~u",
  "a+b",
  "q=1",
];
const NAMES = ["Accept", "User-Agent", "X-Custom", "Cache-Control", "Cookie", "Referer", "Accept-Encoding"];
const VALUES = ["*/*", "curl/8.0", "a b  c", "", "no-cache", "k=v; k2=v2", "gzip, br", "\xe9t\xe9"];

interface Gen {
  method: string;
  path: string;
  query: string;
  minor: 0 | 1;
  headers: [string, string][];
  body: string;
  chunked: boolean;
}

function genRequest(): Gen {
  const segs = Array.from({ length: 1 + int(4) }, () => pick(SEGMENTS));
  const minor = rnd() < 0.2 ? 0 : 1;
  const headers: [string, string][] = [];
  if (minor === 1 || rnd() < 0.5)
    headers.push(["Host", pick(["h.test", "h.test:8080", "10.0.0.1", "[::1]:80"])]);
  for (let i = int(5); i > 0; i--) headers.push([pick(NAMES), pick(VALUES)]);
  if (rnd() < 0.2) headers.push(["Connection", pick(["close", "keep-alive", "Keep-Alive, foo"])]);
  if (rnd() < 0.2) headers.push(["Range", pick(["bytes=0-9", "bytes=-5", "bytes=3-"])]);
  if (rnd() < 0.2) headers.push(["If-None-Match", pick(['"abc"', 'W/"x", "y"', "*"])]);
  const body = rnd() < 0.15 ? "b".repeat(int(40)) : "";
  const chunked = body !== "" && minor === 1 && rnd() < 0.5;
  if (body !== "" && !chunked) headers.push(["Content-Length", String(body.length)]);
  if (chunked) headers.push(["Transfer-Encoding", "chunked"]);
  return {
    method: pick(METHODS),
    path: "/" + segs.join("/"),
    query: rnd() < 0.3 ? "?x=" + int(100) : "",
    minor,
    headers,
    body,
    chunked,
  };
}

function encode(g: Gen): string {
  let s = `${g.method} ${g.path}${g.query} HTTP/1.${g.minor}\r\n`;
  for (const [n, v] of g.headers) s += `${n}: ${v}\r\n`;
  s += "\r\n";
  if (g.chunked) {
    let rest = g.body;
    while (rest.length > 0) {
      const n = 1 + int(rest.length);
      s += `${n.toString(16)}${rnd() < 0.2 ? ";ext=v" : ""}\r\n${rest.slice(0, n)}\r\n`;
      rest = rest.slice(n);
    }
    s += "0\r\n\r\n";
  } else s += g.body;
  return s;
}

const NASTY = [
  "\r\n",
  "\n",
  "\r",
  " ",
  "\t",
  "\x00",
  ":",
  "HTTP/1.1",
  "Transfer-Encoding: chunked\r\n",
  "Content-Length: 5\r\n",
  "Content-Length: 0\r\n",
  "Host: x\r\n",
  "\r\n\r\n",
  "%",
  "%2e",
  "0\r\n\r\n",
  "ffffffff\r\n",
  "\x7f",
  "\xff",
  "#",
  "?",
];

function mutate(s: string): string {
  let out = s;
  for (let k = 1 + int(3); k > 0; k--) {
    const i = int(out.length + 1);
    switch (int(5)) {
      case 0: // flip a byte
        out = out.slice(0, i) + String.fromCharCode(int(256)) + out.slice(i + 1);
        break;
      case 1: // delete a span
        out = out.slice(0, i) + out.slice(i + 1 + int(8));
        break;
      case 2: // insert a nasty token
        out = out.slice(0, i) + pick(NASTY) + out.slice(i);
        break;
      case 3: // duplicate a span
        out = out.slice(0, i) + out.slice(i, i + int(30)) + out.slice(i);
        break;
      default: // truncate
        out = out.slice(0, i);
    }
  }
  return out;
}

/** Transformations of a valid request that must always be rejected. */
const SMUGGLING: ((head: string) => string)[] = [
  (h) => h.replace("\r\n\r\n", "\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
  (h) => h.replace("\r\n\r\n", "\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"),
  (h) => h.replace("\r\n\r\n", "\r\nX-A: 1\r\n folded\r\n\r\n"),
  (h) => h.replace("\r\n\r\n", "\r\nX-A : 1\r\n\r\n"),
  (h) => h.replace("\r\n\r\n", "\r\nTransfer-Encoding: chunked, identity\r\n\r\n"),
  (h) => h.replace("\r\n\r\n", "\r\nX-A: 1\n\r\n"),
  (h) => h.replace("\r\n\r\n", "\r\nX-\x01: 1\r\n\r\n"),
  (h) => h.replace("\r\n\r\n", "\r\nTransfer-Encoding: chunked\r\n\r\n-0\r\n\r\n"),
  (h) => h.replace(" HTTP/1.1\r\n", "\r\n"),
];

type Out = HttpRequest | ParseError;

function run(input: Buffer, cuts: number[]): Out[] {
  const p = new RequestParser();
  const out: Out[] = [];
  let prev = 0;
  for (const c of [...cuts, input.length]) {
    p.feed(Buffer.from(input.subarray(prev, c)));
    prev = c;
    for (let m = p.next(); m !== null; m = p.next()) out.push(m);
  }
  return out;
}

function summary(out: Out[]): string {
  return JSON.stringify(
    out.map((m) =>
      m instanceof ParseError ? [m.status] : [m.method, m.target, m.headers, m.raw.toString("latin1")],
    ),
  );
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function checkWellFormed(out: Out[]): void {
  out.forEach((m, i) => {
    if (m instanceof ParseError) {
      assert.ok([400, 413, 414, 431, 505].includes(m.status), `status ${m.status}`);
      assert.equal(i, out.length - 1, "an error is the last output");
      return;
    }
    assert.match(m.method, TOKEN);
    assert.match(m.target, /^[\x21-\x7e]+$/);
    assert.ok(m.raw.toString("latin1").startsWith(`${m.method} `));
    assert.ok(m.raw.toString("latin1").endsWith("\r\n\r\n"));
    assert.equal(m.headers.length % 2, 0);
    for (let k = 0; k < m.headers.length; k += 2) {
      assert.match(m.headers[k]!, /^[!#$%&'*+\-.^_`|~0-9a-z]+$/);
      for (const ch of m.headers[k + 1]!) {
        const c = ch.charCodeAt(0);
        assert.ok(c === 9 || (c >= 32 && c !== 127), `control character ${c} in a header value`);
      }
    }
    assert.ok(m.versionMinor === 0 || m.versionMinor === 1);
    if (m.versionMinor === 1) assert.notEqual(m.host, undefined);
    if (m.targetForm === "origin" || m.targetForm === "absolute") assert.ok(m.path.startsWith("/"));
  });
}

function randomCuts(len: number): number[] {
  const cuts = Array.from({ length: int(4) }, () => int(len + 1));
  return cuts.sort((a, b) => a - b);
}

test("fuzz: 100k+ generated, mutated and smuggling requests", () => {
  let cases = 0;
  let requests = 0;
  let errors = 0;
  for (let n = 0; n < 60_000; n++) {
    // Valid pipelines round-trip exactly.
    const gens = Array.from({ length: 1 + int(3) }, genRequest);
    const text = gens.map(encode).join("");
    const input = Buffer.from(text, "latin1");
    const out = run(input, randomCuts(input.length));
    cases++;
    checkWellFormed(out);
    assert.equal(out.length, gens.length, text);
    out.forEach((m, i) => {
      const g = gens[i]!;
      assert.ok(!(m instanceof ParseError), `${(m as ParseError).reason}: ${JSON.stringify(text)}`);
      assert.equal(m.method, g.method);
      assert.equal(m.path, g.path);
      assert.equal(m.query, g.query);
      assert.equal(m.bodyBytes, g.body.length);
      assert.deepEqual(
        m.headers,
        g.headers.flatMap(([k, v]) => [k.toLowerCase(), v.trim()]),
      );
      requests++;
    });

    // Mutations: never throw, well-formed output, split-independent.
    const bad = Buffer.from(mutate(text), "latin1");
    const whole = run(bad, []);
    checkWellFormed(whole);
    assert.equal(summary(run(bad, randomCuts(bad.length))), summary(whole));
    if (whole.at(-1) instanceof ParseError) errors++;
    cases++;
  }
  for (let n = 0; n < 10_000; n++) {
    // Random bytes, biased toward HTTP-looking input.
    const len = int(200);
    let s = rnd() < 0.5 ? "GET / HTTP/1.1\r\n" : "";
    for (let i = 0; i < len; i++) s += rnd() < 0.3 ? pick(NASTY) : String.fromCharCode(int(256));
    const input = Buffer.from(s, "latin1");
    const out = run(input, randomCuts(input.length));
    checkWellFormed(out);
    cases++;
  }
  for (let n = 0; n < 40_000; n++) {
    const g = genRequest();
    g.minor = 1;
    g.body = "";
    g.chunked = false;
    g.headers = g.headers.filter(([k]) => k !== "Content-Length" && k !== "Transfer-Encoding");
    if (!g.headers.some(([k]) => k === "Host")) g.headers.unshift(["Host", "h.test"]);
    const text = pick(SMUGGLING)(encode(g));
    const out = run(Buffer.from(text, "latin1"), randomCuts(text.length));
    const last = out.at(-1);
    assert.ok(last instanceof ParseError && last.status === 400, `not rejected: ${JSON.stringify(text)}`);
    assert.equal(out.length, 1);
    cases++;
  }
  console.log(
    `parser fuzz: ${cases} cases, ${requests} valid requests round-tripped, ${errors} mutants rejected`,
  );
  assert.ok(cases >= 100_000);
});
