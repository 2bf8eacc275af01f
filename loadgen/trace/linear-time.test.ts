// Trace files come from the internet: every line reader must cost linear time on a pathological
// line up to the line limit (64 KiB), however the file is chunked. Each case also checks what the
// line parses to, so the time measured is the parser's real work (after the linearity check, which
// fails fast where a single line at the limit would take seconds).
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertLinearTime, type LinearCase } from "../../sc/testing/linear-time.js";
import { cpuClockMs } from "../../sc/testing/cpu-clock.js";
import {
  MAX_LINE_LENGTH,
  lineParser,
  parseRequestLine,
  type LineResult,
  type TraceFormat,
} from "./formats.js";
import { LineSplitter } from "./lines.js";
import { canonicalizeTarget } from "../url.js";

function linear<T>(c: LinearCase<T>, limit = MAX_LINE_LENGTH): void {
  assertLinearTime(c, { limit, clock: cpuClockMs });
}

/** `text` cut into pieces of `size` characters. */
function chunks(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

/** `unit` repeated to about n characters (at least once). */
function fill(unit: string, n: number): string {
  return unit.repeat(Math.max(1, Math.floor(n / unit.length)));
}

const outcome = (r: LineResult) => (r.kind === "bad" ? r.reason : r.kind);
const DATE = "[01/Aug/1995:00:00:01 -0400]";

/** What the stateful parsers are given first: the W3C header the w3c cases are data for. */
const PRIME: Partial<Record<TraceFormat, string>> = {
  w3c: "#Fields: cs-method cs-uri-stem sc-status sc-bytes",
};

/** Worst-case lines per format, with what each parses to. */
const LINES: Record<TraceFormat, { name: string; make: (n: number) => string; want: string }[]> = {
  clf: [
    {
      name: "a long bytes field then a stray CR (quadratic under the old regex)",
      make: (n) => `h - - ${DATE} "GET / HTTP/1.0" 200 ${"1".repeat(n - 60)}\rx`,
      want: "syntax",
    },
    {
      name: "a long bytes field then a line separator",
      make: (n) => `h - - ${DATE} "GET / HTTP/1.0" 200 ${"1".repeat(n - 60)}\u2028`,
      want: "syntax",
    },
    {
      name: "a request of escaped quotes, never closed",
      make: (n) => `h - - ${DATE} "GET /${fill('\\"', n - 50)}`,
      want: "syntax",
    },
    {
      name: "a request of words and spaces",
      make: (n) => `h - - ${DATE} "GET /${fill(" a", n - 70)} HTTP/1.0" 200 1`,
      want: "record",
    },
    { name: "one long host field", make: (n) => "h".repeat(n), want: "syntax" },
    { name: "fields of single characters", make: (n) => fill("h ", n), want: "syntax" },
    { name: "an unclosed date", make: (n) => `h - - [${"0".repeat(n - 10)}`, want: "syntax" },
    { name: "a long date", make: (n) => `h - - [${"0".repeat(n - 40)}] "GET /" 200 1`, want: "bad_date" },
    {
      name: "a combined tail of long quoted fields then a line separator",
      make: (n) => `h - - ${DATE} "GET /" 200 1 "${fill("r", n / 2 - 40)}" "${fill("u", n / 2 - 40)}"\u2028`,
      want: "syntax",
    },
    {
      name: "a combined tail of spaces",
      make: (n) => `h - - ${DATE} "GET /" 200 1 "-" "-"${" ".repeat(n - 60)}x`,
      want: "record",
    },
  ],
  combined: [],
  json: [
    {
      name: "deep nesting",
      make: (n) => `{"a":${"[".repeat(n / 2 - 4)}${"]".repeat(n / 2 - 4)}}`,
      want: "bad_request",
    },
    {
      name: "a request of escaped quotes",
      make: (n) => `{"request":"GET /${fill('\\"', n - 50)} HTTP/1.1","status":200}`,
      want: "record",
    },
    { name: "an unclosed string", make: (n) => `{"request":"GET /${"a".repeat(n - 20)}`, want: "syntax" },
    { name: "many keys", make: (n) => `{${fill('"k":0,', n - 20)}"z":0}`, want: "bad_request" },
    {
      name: "many __proto__ keys",
      make: (n) => `{${fill('"__proto__":{},', n - 20)}"z":0}`,
      want: "bad_request",
    },
    {
      name: "a long number as the status",
      make: (n) => `{"method":"GET","url":"/","status":${"9".repeat(n - 40)}}`,
      want: "bad_status",
    },
    {
      name: "a long time string",
      make: (n) => `{"method":"GET","url":"/","ts":"1995-08-01T${"1".repeat(n - 50)}"}`,
      want: "bad_date",
    },
    {
      name: "a long target, Caddy-style",
      make: (n) =>
        `{"ts":1.5e9,"request":{"method":"GET","uri":"/${"a".repeat(n - 80)}"},"status":200,"size":1}`,
      want: "record",
    },
    { name: "spaces, then not an object", make: (n) => " ".repeat(n - 2) + "[]", want: "syntax" },
  ],
  w3c: [
    { name: "many fields", make: (n) => fill("a ", n), want: "syntax" },
    { name: "many tabs between fields", make: (n) => `GET${"\t".repeat(n - 20)}/ 200`, want: "syntax" },
    {
      name: "a quoted field of doubled quotes",
      make: (n) => `GET "/${fill('""', n - 20)}" 200 1`,
      want: "record",
    },
    { name: "an unclosed quote", make: (n) => `GET "${"a".repeat(n - 10)}`, want: "syntax" },
    { name: "a quoted field run into the next", make: (n) => `GET "/"${"a".repeat(n - 10)}`, want: "syntax" },
    { name: "a long target", make: (n) => `GET /${"a".repeat(n - 20)} 200 1`, want: "record" },
    { name: "a header of many names", make: (n) => `#Fields: ${fill("cs-method ", n - 10)}`, want: "ignore" },
    { name: "a long directive", make: (n) => `#Date: ${"2".repeat(n - 10)}`, want: "ignore" },
  ],
  epa: [
    {
      name: "a long bytes field then spaces and junk",
      make: (n) => `h [29:23:53:25] "GET / HTTP/1.0" 200 ${"1".repeat(n / 2 - 40)}${" ".repeat(n / 2)}x`,
      want: "syntax",
    },
    {
      name: "a request of escaped quotes, never closed",
      make: (n) => `h [29:23:53:25] "GET /${fill('\\"', n - 30)}`,
      want: "syntax",
    },
    { name: "an unclosed date", make: (n) => `h [${"0".repeat(n - 5)}`, want: "syntax" },
  ],
  "nasa-tsv": [
    { name: "tabs", make: (n) => "\t".repeat(n), want: "ignore" },
    { name: "tabs and one character", make: (n) => "\t".repeat(n - 1) + "x", want: "bad_time" },
    { name: "a header row of many names", make: (n) => fill("url\tmethod\t", n), want: "bad_time" },
    { name: "one long name", make: (n) => "a".repeat(n), want: "syntax" },
    {
      name: "many trailing columns",
      make: (n) => `h\t-\t804571201\tGET\t/\t200\t1${fill("\tx", n - 40)}`,
      want: "record",
    },
    {
      name: "a long url with spaces",
      make: (n) => `h\t-\t804571201\tGET\t/${fill("a ", n - 40)}\t200\t1`,
      want: "bad_request",
    },
    {
      name: "a long url",
      make: (n) => `h\t-\t804571201\tGET\t/${"a".repeat(n - 40)}\t200\t1`,
      want: "record",
    },
  ],
  urls: [
    { name: "a long host", make: (n) => "http://" + "a".repeat(n - 10), want: "record" },
    {
      name: "a long host, then a path",
      make: (n) => `http://${"a".repeat(n / 2)}/${"b".repeat(n / 2 - 10)}`,
      want: "record",
    },
    { name: "a long host, then a space", make: (n) => `http://${"a".repeat(n - 10)} x`, want: "bad_url" },
    { name: "spaces", make: (n) => " ".repeat(n - 2) + "/x", want: "record" },
    { name: "slashes", make: (n) => "/".repeat(n), want: "record" },
  ],
};

for (const format of ["clf", "epa", "nasa-tsv", "urls", "json", "w3c"] as const) {
  test(`${format} line parser: pathological lines up to the 64 KiB limit are linear`, () => {
    // A fresh parser per line: a header case must not change the layout the next line sees.
    const parse = (l: string) => {
      const p = lineParser(format);
      const prime = PRIME[format];
      if (prime !== undefined) p(prime, 1);
      return p(l, 2);
    };
    for (const c of LINES[format]) {
      const lc: LinearCase<string, LineResult> = {
        name: `${format}: ${c.name}`,
        make: c.make,
        run: parse,
      };
      const line = c.make(MAX_LINE_LENGTH);
      assert.ok(line.length <= MAX_LINE_LENGTH, `${lc.name}: ${line.length} characters`);
      linear(lc);
      assert.equal(outcome(lc.run(line)), c.want, lc.name);
    }
  });
}

test("request strings and logged targets: long ones are linear", () => {
  const requests: LinearCase<string>[] = [
    {
      name: "a request of spaces",
      make: (n) => "GET " + " ".repeat(n) + "/ HTTP/1.0",
      run: parseRequestLine,
    },
    { name: "a request of words", make: (n) => "GET " + fill("/a ", n) + "HTTP/1.0", run: parseRequestLine },
    { name: "a long method", make: (n) => "G".repeat(n) + " /", run: parseRequestLine },
  ];
  for (const c of requests) linear(c);
  const targets: { name: string; make: (n: number) => string; want: string }[] = [
    { name: "many %XX", make: (n) => "/" + fill("%41", n), want: "name_too_long" },
    { name: "short segments of %XX", make: (n) => fill("/%41", n), want: "path_too_long" },
    { name: "a/b/.. repeated", make: (n) => "/a" + fill("/b/..", n), want: "ok" },
    { name: "empty segments", make: (n) => "/".repeat(n) + "x", want: "ok" },
    { name: "a long scheme", make: (n) => "a".repeat(n) + "://h/x", want: "ok" },
  ];
  for (const t of targets) {
    const c: LinearCase<string> = {
      name: `canonicalizeTarget: ${t.name}`,
      make: t.make,
      run: (s) => {
        const r = canonicalizeTarget(s);
        return r.ok ? "ok" : r.reason;
      },
    };
    linear(c);
    assert.equal(c.run(c.make(MAX_LINE_LENGTH)), t.want, c.name);
  }
});

test("line splitting: a 64 KiB line in 1-character chunks, many empty lines, an endless line", () => {
  const splitAll = (chunks: string[]) => {
    const s = new LineSplitter(MAX_LINE_LENGTH + 1, "<too long>");
    let lines = 0;
    for (const c of chunks) lines += s.push(c).length;
    return lines + s.end().length;
  };
  const cases: (LinearCase<string[], number> & { want: number; limit?: number })[] = [
    {
      name: "one line, 1 character a chunk",
      make: (n) => chunks("a".repeat(n - 1) + "\n", 1),
      run: splitAll,
      want: 1,
    },
    {
      name: "one line, CR at each chunk end",
      make: (n) => chunks(fill("a\r", n - 1) + "\n", 2),
      run: splitAll,
      want: 1,
    },
    { name: "empty lines in one chunk", make: (n) => ["\n".repeat(n)], run: splitAll, want: MAX_LINE_LENGTH },
    {
      name: "an endless line in 16-character chunks, 4x the limit",
      make: (n) => chunks("x".repeat(n), 16),
      run: splitAll,
      want: 1,
      limit: 4 * MAX_LINE_LENGTH,
    },
  ];
  for (const c of cases) {
    const limit = c.limit ?? MAX_LINE_LENGTH;
    linear(c, limit);
    assert.equal(c.run(c.make(limit)), c.want, c.name);
  }
});
