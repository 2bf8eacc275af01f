// Every parser of client input in server/http, fed its worst-case long inputs at growing sizes up
// to the configured limit: the cost must grow linearly and stay within the budget at the limit.
// Each case also checks what the input parses to, so the time measured is the real work (not an
// early rejection by a limit); that check comes second, so a super-linear parser fails in the
// linearity check within a second instead of spending minutes on one input at the limit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertLinearTime, type LinearCase } from "../../sc/testing/linear-time.js";
import { cpuClockMs } from "../../sc/testing/cpu-clock.js";
import { parseRange } from "./range.js";
import { etagListMatches, evaluatePreconditions, ifRangeHolds } from "./conditional.js";
import { DEFAULT_LIMITS, ParseError, RequestParser, type HttpRequest, type ParserLimits } from "./parser.js";
import { encodePath, normalizePath } from "./url-path.js";
import { contentTypeFor } from "./mime.js";
import { chooseEncoding } from "./encoding.js";
import { PathPattern } from "./cache-rules.js";

const HEADER_LIMIT = DEFAULT_LIMITS.maxHeaderBytes;
const LINE_LIMIT = DEFAULT_LIMITS.maxRequestLine;

function linear<T>(c: LinearCase<T>, limit: number): void {
  assertLinearTime(c, { limit, clock: cpuClockMs });
}

/** `unit` repeated to about n characters (at least once). */
function fill(unit: string, n: number): string {
  return unit.repeat(Math.max(1, Math.floor(n / unit.length)));
}

test("Range: runs of spaces and tabs around the dash are linear (the old regex was cubic)", () => {
  const cases: LinearCase<string>[] = [
    {
      name: '"bytes=" + spaces + "-" + spaces + "x"',
      make: (n) => "bytes=" + " ".repeat(n / 2) + "-" + " ".repeat(n / 2) + "x",
      run: (h) => parseRange(h, 1000),
    },
    {
      name: '"bytes=" + OWS + "1" + OWS + "-" + OWS + "2" + OWS + "x"',
      make: (n) => {
        const ows = fill(" \t", n / 4);
        return `bytes=${ows}1${ows}-${ows}2${ows}x`;
      },
      run: (h) => parseRange(h, 1000),
    },
    {
      name: 'OWS + "bytes" + OWS + "=" + "0-1" + ",0-1" repeated',
      make: (n) => fill(" ", n / 4) + "bytes" + fill("\t", n / 4) + "=0-1" + fill(",0-1", n / 2),
      run: (h) => parseRange(h, 1000),
    },
    {
      name: '"bytes=" + digits',
      make: (n) => "bytes=" + "1".repeat(n) + "-",
      run: (h) => parseRange(h, 1000),
    },
  ];
  for (const c of cases) {
    linear(c, HEADER_LIMIT);
    assert.deepEqual(c.run(c.make(HEADER_LIMIT)), { kind: "none" }, c.name);
  }
});

/** Parses `input` fed in `chunk`-byte pieces; the last request or error. */
function parse(
  input: Buffer,
  limits: Partial<ParserLimits> = {},
  chunk = input.length,
): HttpRequest | ParseError {
  const p = new RequestParser(limits);
  let last: HttpRequest | ParseError | null = null;
  for (let off = 0; off < input.length; off += chunk) {
    p.feed(input.subarray(off, off + chunk));
    for (let m = p.next(); m !== null; m = p.next()) last = m;
  }
  assert.ok(last !== null, "the request completes");
  return last;
}

/** A GET whose header block (after the request line) is about n bytes: `fields` fills it. */
function request(fields: (n: number) => string, target = "/"): (n: number) => Buffer {
  const fixed = "Host: h\r\n";
  return (n) =>
    Buffer.from(`GET ${target} HTTP/1.1\r\n${fixed}${fields(n - fixed.length - 2)}\r\n`, "latin1");
}

test("HTTP request parser: long fields at the header limit, many fields, runs of OWS and commas", () => {
  const ok = (r: HttpRequest | ParseError) =>
    r instanceof ParseError ? `${r.status} ${r.reason}` : "request";
  const cases: (LinearCase<Buffer, HttpRequest | ParseError> & { want: string })[] = [
    {
      name: "one header line at the limit",
      make: request((n) => `X-Long: ${"a".repeat(n - 10)}\r\n`),
      run: (b) => parse(b),
      want: "request",
    },
    {
      name: "a value of spaces and tabs with one character in the middle",
      make: request((n) => `X-Ows:${fill(" \t", (n - 10) / 2)}x${fill("\t ", (n - 10) / 2)}\r\n`),
      run: (b) => parse(b),
      want: "request",
    },
    {
      name: "Connection: a list of near-miss tokens",
      make: request((n) => `Connection: ${fill("closer, ,\t,", n - 16)}\r\n`),
      run: (b) => parse(b),
      want: "request",
    },
    {
      name: "Transfer-Encoding: a long list of codings",
      make: request((n) => `Transfer-Encoding: ${fill("gzip, ", n - 35)}chunked\r\n`),
      run: (b) => parse(Buffer.concat([b, Buffer.from("0\r\n\r\n")])),
      want: "request",
    },
    {
      name: "Transfer-Encoding: commas",
      make: request((n) => `Transfer-Encoding: ${",".repeat(n - 30)}chunked\r\n`),
      run: (b) => parse(b),
      want: "400 invalid Transfer-Encoding",
    },
    {
      name: "many short fields (field count limit raised to let them all in)",
      make: request((n) => fill("a:\r\n", n)),
      run: (b) => parse(b, { maxHeaders: 1e6 }),
      want: "request",
    },
    {
      name: "many If-None-Match fields (their values are joined)",
      make: request((n) => fill('If-None-Match: "x"\r\n', n)),
      run: (b) => parse(b, { maxHeaders: 1e6 }),
      want: "request",
    },
    {
      name: "one header line at the limit, fed one byte at a time",
      make: request((n) => `X-Long: ${"a".repeat(n - 10)}\r\n`),
      run: (b) => parse(b, {}, 1),
      want: "request",
    },
    {
      name: "many short fields, fed 3 bytes at a time",
      make: request((n) => fill("a:\r\n", n)),
      run: (b) => parse(b, { maxHeaders: 1e6 }, 3),
      want: "request",
    },
  ];
  for (const c of cases) {
    linear(c, HEADER_LIMIT);
    assert.equal(ok(c.run(c.make(HEADER_LIMIT))), c.want, c.name);
  }
});

test("HTTP request parser: long request-targets and leading empty lines up to the request-line limit", () => {
  const line = (target: (n: number) => string) => (n: number) =>
    Buffer.from(`GET ${target(n - 15)} HTTP/1.1\r\nHost: h\r\n\r\n`, "latin1");
  const cases: (LinearCase<Buffer, HttpRequest | ParseError> & { want: string })[] = [
    { name: "origin-form path", make: line((n) => "/" + "a".repeat(n)), run: (b) => parse(b), want: "/" },
    { name: "path of %XX", make: line((n) => fill("/%41", n)), run: (b) => parse(b), want: "/" },
    { name: "query of ?", make: line((n) => "/" + "?".repeat(n)), run: (b) => parse(b), want: "/" },
    {
      name: "absolute-form with a long path",
      make: line((n) => "http://h" + fill("/a", n - 8)),
      run: (b) => parse(b),
      want: "/",
    },
    {
      name: "request line fed one byte at a time",
      make: line((n) => "/" + "a".repeat(n)),
      run: (b) => parse(b, {}, 1),
      want: "/",
    },
    {
      name: "empty lines before the request line",
      make: (n) => Buffer.from(fill("\r\n", n - 40) + "GET / HTTP/1.1\r\nHost: h\r\n\r\n", "latin1"),
      run: (b) => parse(b),
      want: "/",
    },
  ];
  for (const c of cases) {
    linear(c, LINE_LIMIT);
    const r = c.run(c.make(LINE_LIMIT));
    assert.ok(!(r instanceof ParseError), `${c.name}: ${(r as ParseError).reason}`);
    assert.ok(r.path.startsWith(c.want), c.name);
  }
});

test("If-None-Match / If-Match lists: long lists, runs of OWS, unterminated tags are linear", () => {
  const ETAG = '"1f-2a"';
  const lists: { name: string; make: (n: number) => string; want: boolean }[] = [
    { name: "a long list of tags", make: (n) => fill('"a", W/"b", ', n) + ETAG, want: true },
    { name: "spaces after a tag", make: (n) => '"a"' + " ".repeat(n) + "x", want: false },
    { name: "spaces then junk", make: (n) => fill(" \t", n) + "x", want: false },
    { name: "an unterminated tag full of commas", make: (n) => '"' + fill("a,", n), want: false },
    { name: "quotes and commas", make: (n) => fill('",', n), want: false },
    { name: "W/ repeated", make: (n) => fill("W/", n) + ETAG, want: false },
    { name: "empty elements", make: (n) => fill(", ", n) + ETAG, want: true },
  ];
  const cases = lists.map((c) => ({ ...c, run: (list: string) => etagListMatches(list, ETAG, true) }));
  for (const c of cases) {
    linear(c, HEADER_LIMIT);
    assert.equal(c.run(c.make(HEADER_LIMIT)), c.want, c.name);
  }

  // The same lists through the precondition evaluation, which also trims and compares them.
  const head = (name: string) => (n: number) =>
    parse(request((m) => `${name}: ${fill('"a", ', m - 40)} ${ETAG}\r\n`)(n)) as HttpRequest;
  for (const name of ["If-None-Match", "If-Match"]) {
    const c: LinearCase<HttpRequest> = {
      name: `${name} on a parsed request`,
      make: head(name),
      run: (req) => evaluatePreconditions(req, ETAG, 0),
    };
    linear(c, HEADER_LIMIT);
    assert.equal(c.run(c.make(HEADER_LIMIT)), name === "If-Match" ? "proceed" : "not-modified", c.name);
  }
  // Dates and If-Range: long values are refused by their length or compared whole.
  const dates: LinearCase<HttpRequest> = {
    name: "a long If-Modified-Since",
    make: (n) =>
      parse(request((m) => `If-Modified-Since: ${fill("Sun, 06 Nov ", m - 30)}\r\n`)(n)) as HttpRequest,
    run: (req) => evaluatePreconditions(req, ETAG, 0),
  };
  linear(dates, HEADER_LIMIT);
  assert.equal(dates.run(dates.make(HEADER_LIMIT)), "proceed");
  const ifRange: LinearCase<string> = {
    name: "a long If-Range",
    make: (n) => fill(" ", n / 2) + '"' + "a".repeat(n / 2),
    run: (v) => ifRangeHolds(v, ETAG, 0),
  };
  linear(ifRange, HEADER_LIMIT);
  assert.equal(ifRange.run(ifRange.make(HEADER_LIMIT)), false);
});

test("URL path decoding: many %XX, many ../, empty and dot segments are linear", () => {
  const paths: { name: string; make: (n: number) => string; want: string }[] = [
    { name: "one segment of %XX", make: (n) => "/" + fill("%41", n), want: "ok" },
    { name: "segments of %XX", make: (n) => fill("/%C3%A9", n), want: "ok" },
    { name: "a/b/.. repeated", make: (n) => "/a" + fill("/b/..", n), want: "ok" },
    { name: "%2e%2e after each segment", make: (n) => "/a" + fill("/b/%2e%2e", n), want: "ok" },
    { name: "empty segments", make: (n) => "/".repeat(n) + "x", want: "ok" },
    { name: "dot segments", make: (n) => fill("/.", n) + "/x", want: "ok" },
    { name: "%XX with a bad escape at the end", make: (n) => "/" + fill("%41", n) + "%zz", want: "400" },
    { name: "climbing out at the end", make: (n) => "/a" + fill("/b/..", n) + "/../..", want: "400" },
    {
      name: "one segment of escaped backslashes and dots",
      make: (n) => "/" + fill("%5C.%5C...", n),
      want: "ok",
    },
    { name: "backslash dot-dot part at the end", make: (n) => "/" + fill("%5Ca.", n) + "%5C..", want: "400" },
    {
      name: "raw sub-delims, no escape (the fast path)",
      make: (n) => "/" + fill(":@!$&'()*+,;=", n),
      want: "ok",
    },
    { name: "raw sub-delims and one escape", make: (n) => "/%41" + fill(":@!$&'()*+,;=", n), want: "ok" },
    {
      name: "visible ASCII then a raw non-ASCII char",
      make: (n) => "/" + fill("ab", n) + "\u00e9",
      want: "400",
    },
  ];
  const cases = paths.map((c) => ({
    ...c,
    run: (p: string) => {
      const r = normalizePath(p);
      return r.ok ? "ok" : String(r.status);
    },
  }));
  for (const c of cases) {
    linear(c, LINE_LIMIT);
    assert.equal(c.run(c.make(LINE_LIMIT)), c.want, c.name);
  }
  linear({ name: "encodePath of a long path", make: (n) => fill("/é b", n), run: encodePath }, LINE_LIMIT);
  linear(
    { name: "encodePath of sub-delims and escapes", make: (n) => fill("/+:@ ;%", n), run: encodePath },
    LINE_LIMIT,
  );
  linear(
    { name: "MIME type of a path of dots", make: (n) => fill("/.a.", n), run: contentTypeFor },
    LINE_LIMIT,
  );
});

test("Accept-Encoding and the Cache-Control globs are linear in the header and the path", () => {
  const ae: LinearCase<string>[] = [
    {
      name: "many codings with q-values",
      make: (n) => fill("br;q=0.5, gzip;q=0.25, ", n),
      run: (v) => chooseEncoding([v], ["br", "gzip"]),
    },
    {
      name: "runs of OWS and semicolons",
      make: (n) => "br" + fill(" \t;", n) + "q=1",
      run: (v) => chooseEncoding([v], ["br"]),
    },
    { name: "runs of commas", make: (n) => fill(",", n) + "br", run: (v) => chooseEncoding([v], ["br"]) },
    {
      name: "one long unknown coding",
      make: (n) => fill("x", n) + ";q=1",
      run: (v) => chooseEncoding([v], ["gzip"]),
    },
  ];
  for (const c of ae) linear(c, HEADER_LIMIT);
  assert.equal(chooseEncoding([fill("br;q=0.5, gzip;q=0.25, ", HEADER_LIMIT)], ["br", "gzip"]), "br");
  const glob = new PathPattern("/" + "*a".repeat(20) + "?b");
  linear(
    {
      name: "a glob of stars against a path of a's",
      make: (n) => "/" + fill("a", n),
      run: (p) => glob.matches(p),
    },
    LINE_LIMIT,
  );
  const deep = new PathPattern("/**/x/**/y/*.js");
  linear(
    {
      name: "globstars against many segments",
      make: (n) => fill("/x", n) + "/y/a.css",
      run: (p) => deep.matches(p),
    },
    LINE_LIMIT,
  );
});
