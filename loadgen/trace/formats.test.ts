import { test } from "node:test";
import assert from "node:assert/strict";
import {
  describeGuesses,
  detectFormat,
  formatClfDate,
  guessFormats,
  lineParser,
  pickFormat,
  unescapeQuoted,
  hasCombinedFields,
  isClfTail,
  isCombinedTail,
  isSpace,
  MAX_LINE_LENGTH,
  parseClfDate,
  parseClfLine,
  parseEpaLine,
  parseNasaTsvLine,
  parseRequestLine,
  parseUrlLine,
  splitClfLine,
  splitEpaLine,
  type LineResult,
} from "./formats.js";
import { Prng } from "../../sc/wire/testing.js";

const outcome = (r: LineResult) => (r.kind === "bad" ? r.reason : r.kind);

function record(r: LineResult) {
  assert.equal(r.kind, "record", JSON.stringify(r));
  return (r as Extract<LineResult, { kind: "record" }>).record;
}

test("CLF dates convert to Unix seconds with the zone offset, and back", () => {
  assert.equal(parseClfDate("01/Aug/1995:00:00:01 -0400"), Date.UTC(1995, 7, 1, 4, 0, 1) / 1000);
  assert.equal(parseClfDate("10/Oct/2000:13:55:36 +0200"), Date.UTC(2000, 9, 10, 11, 55, 36) / 1000);
  assert.equal(parseClfDate("32/Aug/1995:00:00:01 -0400"), null);
  assert.equal(parseClfDate("01/Foo/1995:00:00:01 -0400"), null);
  assert.equal(parseClfDate("01/Aug/1995 00:00:01"), null);
  const t = Date.UTC(2001, 0, 31, 23, 59, 58) / 1000;
  assert.equal(parseClfDate(formatClfDate(t)), t);
});

test("request strings: with protocol, HTTP/0.9 style, odd protocols, garbage", () => {
  assert.deepEqual(parseRequestLine("GET /ksc.html HTTP/1.0"), {
    method: "GET",
    url: "/ksc.html",
    protocol: "HTTP/1.0",
  });
  assert.deepEqual(parseRequestLine("GET /ksc.html"), { method: "GET", url: "/ksc.html", protocol: null });
  assert.deepEqual(parseRequestLine("GET / HTTP/V1.0"), { method: "GET", url: "/", protocol: "HTTP/V1.0" });
  assert.deepEqual(parseRequestLine("get /a b.html HTTP/1.0"), {
    method: "GET",
    url: "/a b.html",
    protocol: "HTTP/1.0",
  });
  assert.equal(parseRequestLine("-"), null);
  assert.equal(parseRequestLine("GET"), null);
  assert.equal(parseRequestLine("\x16\x03\x01 junk"), null);
});

test("CLF line: fields, '-' bytes, HTTP/0.9 request, and each malformation's reason", () => {
  const r = record(
    parseClfLine('in24.inetnebr.com - - [01/Aug/1995:00:00:01 -0400] "GET /a.txt HTTP/1.0" 200 1839', 7),
  );
  assert.deepEqual(r, {
    line: 7,
    host: "in24.inetnebr.com",
    time: Date.UTC(1995, 7, 1, 4, 0, 1) / 1000,
    method: "GET",
    url: "/a.txt",
    protocol: "HTTP/1.0",
    status: 200,
    bytes: 1839,
  });
  assert.equal(record(parseClfLine('h - - [01/Aug/1995:00:00:07 -0400] "GET /" 304 -', 1)).bytes, null);
  assert.equal(record(parseClfLine('h - - [01/Aug/1995:00:00:07 -0400] "GET /" 304 -', 1)).protocol, null);
  const reason = (line: string) => {
    const x = parseClfLine(line, 1);
    return x.kind === "bad" ? x.reason : x.kind;
  };
  assert.equal(reason(""), "ignore");
  assert.equal(reason("not a log line"), "syntax");
  // Fields after the bytes are a log_format's own (nginx $request_time, ...): accepted.
  assert.equal(reason('h - - [01/Aug/1995:00:00:07 -0400] "GET / HTTP/1.0" 200 5 trailing'), "record");
  assert.equal(reason('h - - [01/Aug/1995:00:00:07 -0400] "GET / HTTP/1.0" 200 5 "unclosed'), "syntax");
  assert.equal(reason('h - - [99/Aug/1995:00:00:07 -0400] "GET / HTTP/1.0" 200 5'), "bad_date");
  assert.equal(reason('h - - [01/Aug/1995:00:00:07 -0400] "-" 408 -'), "bad_request");
  assert.equal(reason('h - - [01/Aug/1995:00:00:07 -0400] "GET / HTTP/1.0" 20x 5'), "bad_status");
  assert.equal(reason('h - - [01/Aug/1995:00:00:07 -0400] "GET / HTTP/1.0" 700 5'), "bad_status");
  assert.equal(reason('h - - [01/Aug/1995:00:00:07 -0400] "GET / HTTP/1.0" 200 -5'), "bad_bytes");
  assert.equal(reason("x".repeat(MAX_LINE_LENGTH + 1)), "too_long");
});

test("Combined: referer and user agent accepted, escaped quotes unescaped", () => {
  const r = record(
    parseClfLine(
      '10.0.0.2 - - [10/Oct/2000:13:55:37 -0700] "GET /q.html?x=\\"1\\" HTTP/1.1" 200 10 "-" "curl/7.0"',
      1,
    ),
  );
  assert.equal(r.url, '/q.html?x="1"');
  assert.equal(r.status, 200);
});

test("NASA TSV: header ignored, fields typed, bad epoch and short rows rejected", () => {
  assert.equal(parseNasaTsvLine("host\tlogname\ttime\tmethod\turl\tresponse\tbytes", 1).kind, "ignore");
  const r = record(parseNasaTsvLine("199.72.81.55\t-\t804571201\tGET\t/history/apollo/\t200\t6245", 2));
  assert.deepEqual(r, {
    line: 2,
    host: "199.72.81.55",
    time: 804571201,
    method: "GET",
    url: "/history/apollo/",
    protocol: null,
    status: 200,
    bytes: 6245,
  });
  assert.deepEqual(parseNasaTsvLine("h\t-\t8045x\tGET\t/\t200\t1", 3), { kind: "bad", reason: "bad_time" });
  assert.deepEqual(parseNasaTsvLine("h\t-\t804571201\tGET\t/\t200", 3), { kind: "bad", reason: "syntax" });
});

test("EPA: day:hour:min:sec becomes seconds into the month; bad clock rejected", () => {
  const r = record(parseEpaLine('141.243.1.172 [29:23:53:25] "GET /Software.html HTTP/1.0" 200 1497', 1));
  assert.equal(r.time, ((29 * 24 + 23) * 60 + 53) * 60 + 25);
  assert.equal(r.url, "/Software.html");
  assert.equal(record(parseEpaLine('h [29:23:53:36] "GET /C.html HTTP/1.0" 304 -', 2)).bytes, null);
  assert.deepEqual(parseEpaLine('h [29:25:00:00] "GET / HTTP/1.0" 200 1', 3), {
    kind: "bad",
    reason: "bad_date",
  });
  assert.deepEqual(parseEpaLine("h [29:23:00:00] GET / HTTP/1.0 200 1", 3), {
    kind: "bad",
    reason: "syntax",
  });
});

test("URL lists: absolute URLs reduced to their target, paths kept, others rejected", () => {
  assert.equal(record(parseUrlLine("http://www.example.com", 1)).url, "/");
  assert.equal(record(parseUrlLine("http://h:8080/docs/a.html", 1)).url, "/docs/a.html");
  assert.equal(record(parseUrlLine("https://h/c.jpg?size=2#f", 1)).url, "/c.jpg?size=2#f");
  assert.equal(record(parseUrlLine("  /relative/b.gif  ", 1)).url, "/relative/b.gif");
  assert.equal(record(parseUrlLine("/x", 1)).status, null);
  assert.equal(parseUrlLine("# comment", 1).kind, "ignore");
  assert.deepEqual(parseUrlLine("ftp://h/x", 1), { kind: "bad", reason: "bad_url" });
  assert.deepEqual(parseUrlLine("http://h/with space", 1), { kind: "bad", reason: "bad_url" });
});

test("format detection picks the format that parses most sample lines", () => {
  const clf = ['h - - [01/Aug/1995:00:00:01 -0400] "GET / HTTP/1.0" 200 1', "garbage"];
  assert.equal(detectFormat(clf), "clf");
  assert.equal(detectFormat(clf.map((l) => (l === "garbage" ? l : l + ' "-" "UA"'))), "combined");
  assert.equal(
    detectFormat(["host\tlogname\ttime\tmethod\turl\tresponse\tbytes", "h\t-\t1\tGET\t/\t200\t1"]),
    "nasa-tsv",
  );
  assert.equal(detectFormat(['h [01:00:00:00] "GET / HTTP/1.0" 200 1']), "epa");
  assert.equal(detectFormat(["# urls", "/a", "http://h/b"]), "urls");
  assert.equal(detectFormat(["nothing", "parses here"]), null);
  assert.equal(detectFormat([]), null);
});

test("consecutive CLF lines get exact times across seconds, minutes and zones", () => {
  const at = (d: string) => {
    const r = parseClfLine(`h - - [${d}] "GET / HTTP/1.0" 200 1`, 1);
    return r.kind === "record" ? r.record.time : r.kind === "bad" ? r.reason : null;
  };
  for (const d of [
    "01/Aug/1995:00:00:58 -0400",
    "01/Aug/1995:00:00:59 -0400",
    "01/Aug/1995:00:01:00 -0400",
    "01/Aug/1995:00:01:00 +0000",
    "01/Aug/1995:00:01:07 +0000",
    "31/Dec/1999:23:59:60 +0000",
  ]) {
    assert.equal(at(d), parseClfDate(d), d);
  }
  assert.equal(at("01/Aug/1995:00:01:61 +0000"), "bad_date");
  assert.equal(at("01/Aug/1995:00:01:7x +0000"), "bad_date");
  assert.equal(at("01/Aug/1995:24:01:07 +0000"), "bad_date");
});

test("CLF and EPA lines with a stray CR, LS or escaped line end are syntax errors", () => {
  const clf = 'h - - [01/Aug/1995:00:00:07 -0400] "GET / HTTP/1.0" 200 ';
  const reason = (r: LineResult) => (r.kind === "bad" ? r.reason : r.kind);
  assert.equal(reason(parseClfLine(clf + "5\rx", 1)), "syntax");
  assert.equal(reason(parseClfLine(clf + "5 x\u2028", 1)), "syntax");
  assert.equal(reason(parseClfLine(clf + "5\t\r", 1)), "syntax");
  assert.equal(reason(parseClfLine(clf + "5\t ", 1)), "record");
  assert.equal(reason(parseClfLine(clf + '5 "-" "UA"\u2028', 1)), "syntax");
  assert.equal(reason(parseClfLine(clf + '5 "-" "UA" anything after a space', 1)), "record");
  assert.equal(reason(parseClfLine(clf + '5 "-" "UA"x', 1)), "syntax");
  assert.equal(reason(parseClfLine('h - - [d] "GET /\\\r" 200 5', 1)), "syntax");
  assert.equal(reason(parseClfLine('h - - [] "GET /" 200 5', 1)), "syntax");
  assert.equal(reason(parseClfLine('h\t- - [01/Aug/1995:00:00:07 -0400] "GET /" 200 5', 1)), "syntax");
  assert.equal(reason(parseEpaLine('h [29:23:53:36] "GET /" 200 5 \t\r\u2028', 1)), "record");
  assert.equal(reason(parseEpaLine('h [29:23:53:36] "GET /" 200 5 x', 1)), "syntax");
  assert.equal(reason(parseEpaLine('h [] "GET /" 200 5', 1)), "bad_date");
});

test("isSpace is exactly JavaScript's \\s over every UTF-16 code unit", () => {
  for (let c = 0; c < 0x10000; c++) {
    assert.equal(isSpace(c), /\s/.test(String.fromCharCode(c)), `U+${c.toString(16)}`);
  }
});

// The regexes the scanners replaced, kept here only as the differential test's oracle. They
// backtrack ("(\S+)(.*)$" is quadratic, the quoted-string groups can retry), so they see only
// the short generated lines below (length asserted), never a trace file or network input;
// the scanners' own worst cases at the 64 KiB line limit are in linear-time.test.ts.
const ORACLE_MAX_LINE = 200;
const QUOTED = String.raw`"((?:[^"\\]|\\.)*)"`;
// Fields before the date: at least three, those after the third never opening with "[" (the
// date is the first that does); the host is the third before the date.
const CLF_RE = new RegExp(String.raw`^(\S+ \S+ \S+(?: [^\s\[]\S*)*) \[([^\]]+)\] ${QUOTED} (\S+) (\S+)(.*)$`);
const COMBINED_TAIL_RE = new RegExp(String.raw`^ ${QUOTED} ${QUOTED}(?:\s.*)?$`);
const CLF_TAIL_RE = new RegExp(String.raw`^(?:\s+(?:${QUOTED}(?=\s|$)|[^\s"]\S*))*\s*$`);
const EPA_RE = new RegExp(String.raw`^(\S+) \[([^\]]*)\] ${QUOTED} (\S+) (\S+)\s*$`);

test("CLF, Combined and EPA scanners split exactly as the old regexes on 60,000 mutated lines", () => {
  const rng = new Prng(7);
  const tricky = [" ", " ", "\t", "\r", "\n", "\u2028", "\u00a0", '"', '"', "\\", "[", "]", "x", "-", "1"];
  const templates = [
    'h - - [01/Aug/1995:00:00:01 -0400] "GET /a HTTP/1.0" 200 1839',
    'h - u [d] "GET /q?x=\\"1\\" HTTP/1.1" 200 10 "-" "curl/7.0"',
    'h - - [d] "GET /" 304 - "http://r/" "UA \\"x\\"" extra',
    'v:80 h - - [d] "GET /" 200 1 0.005 "x" k=v',
    'h [29:23:53:25] "GET /S.html HTTP/1.0" 200 1497',
    'h [] "" 200 1  ',
  ];
  const mutate = (line: string) => {
    let out = line;
    for (let k = rng.below(4); k > 0; k--) {
      const at = rng.below(out.length + 1);
      const op = rng.below(3);
      const piece = rng.pick(tricky);
      out =
        op === 0
          ? out.slice(0, at) + piece + out.slice(at)
          : op === 1
            ? out.slice(0, at) + piece + out.slice(at + 1)
            : out.slice(0, at) + out.slice(at + 1);
    }
    return out;
  };
  const counts = { clf: 0, epa: 0, combined: 0 };
  for (let k = 0; k < 60_000; k++) {
    const line = mutate(rng.pick(templates));
    assert.ok(line.length < ORACLE_MAX_LINE, "the backtracking oracle sees short lines only");
    const m = CLF_RE.exec(line);
    const f = splitClfLine(line);
    assert.deepEqual(
      f && [f.host, f.date, f.request, f.status, f.bytes, f.tail],
      m && [m[1]!.split(" ").at(-3), m[2], m[3], m[4], m[5], m[6]],
      JSON.stringify(line),
    );
    if (m) {
      counts.clf++;
      assert.equal(isCombinedTail(m[6]!), COMBINED_TAIL_RE.test(m[6]!), JSON.stringify(m[6]));
      assert.equal(hasCombinedFields(line), COMBINED_TAIL_RE.test(m[6]!), JSON.stringify(line));
      if (COMBINED_TAIL_RE.test(m[6]!)) counts.combined++;
      assert.equal(isClfTail(m[6]!), CLF_TAIL_RE.test(m[6]!), JSON.stringify(m[6]));
    }
    const e = EPA_RE.exec(line);
    const g = splitEpaLine(line);
    assert.deepEqual(
      g && [g.host, g.date, g.request, g.status, g.bytes],
      e && [e[1], e[2], e[3], e[4], e[5]],
      JSON.stringify(line),
    );
    if (e) counts.epa++;
  }
  // The mutations must leave enough lines that match for the comparison to mean something.
  assert.ok(counts.clf > 5000 && counts.epa > 5000 && counts.combined > 2000, JSON.stringify(counts));
});

test("CLF variants: fields before the host (vhost, X-Forwarded-For), fields after the bytes, IPv6, '-'", () => {
  const d = "[01/Aug/1995:00:00:01 -0400]";
  const t = Date.UTC(1995, 7, 1, 4, 0, 1) / 1000;
  const vhost = record(
    parseClfLine(`www.example.com:80 203.0.113.9 - - ${d} "GET /a HTTP/1.1" 200 5 "-" "UA"`, 1),
  );
  assert.deepEqual([vhost.host, vhost.url, vhost.time], ["203.0.113.9", "/a", t]);
  assert.equal(record(parseClfLine(`198.51.100.7, 10.0.0.2 - - ${d} "GET /a" 200 5`, 1)).host, "10.0.0.2");
  assert.equal(record(parseClfLine(`2001:db8::7 - - ${d} "GET /a" 200 -`, 1)).host, "2001:db8::7");
  assert.equal(record(parseClfLine(`::1 - - ${d} "GET /a" 304 - 0.001 -`, 1)).bytes, null);
  // nginx: $request_time $upstream_response_time; "main" + upstream k=v pairs.
  assert.equal(outcome(parseClfLine(`h - - ${d} "GET /a HTTP/1.1" 200 5 0.004 0.003`, 1)), "record");
  assert.equal(
    outcome(
      parseClfLine(`h - - ${d} "GET /a" 200 5 "-" "UA \\"q\\"" "1.2.3.4, 10.0.0.1" rt=0.004 uct="0.000"`, 1),
    ),
    "record",
  );
  assert.equal(hasCombinedFields(`h - - ${d} "GET /a" 200 5 "-" "UA" "-" rt=0.004`), true);
  assert.equal(hasCombinedFields(`h - - ${d} "GET /a" 200 5 0.004 0.003`), false);
  // Fewer than three fields before the date is not CLF (EPA has one).
  assert.equal(outcome(parseClfLine(`h - ${d} "GET /a" 200 5`, 1)), "syntax");
  assert.equal(outcome(parseClfLine(`h - - ${d} "GET /a" 200 5 "open`, 1)), "syntax");
  assert.equal(outcome(parseClfLine(`h - - ${d} "GET /a" 200 5 "a"b`, 1)), "syntax");
});

test("CLF dates in brackets: ISO 8601 (nginx $time_iso8601) and epoch ($msec) as well as %t", () => {
  const t = Date.UTC(1995, 7, 1, 4, 0, 1) / 1000;
  const at = (date: string) => {
    const r = parseClfLine(`h - - [${date}] "GET /a" 200 1`, 1);
    return r.kind === "record" ? r.record.time : outcome(r);
  };
  assert.equal(at("1995-08-01T00:00:01-04:00"), t);
  assert.equal(at("1995-08-01T04:00:01+00:00"), t);
  assert.equal(at("1995-08-01 04:00:01"), t);
  assert.equal(at(`${t}.500`), t + 0.5);
  assert.equal(at("1995-08-01T04:61:01Z"), "bad_date");
  assert.equal(at("29:23:53:25"), "bad_date");
});

test("quoted requests: Apache and nginx escapes; printable bytes come back, others as %HH", () => {
  assert.equal(unescapeQuoted('GET /a\\"b\\\\c'), 'GET /a"b\\c');
  assert.equal(unescapeQuoted("GET /a\\x22b\\x5Cc"), 'GET /a"b\\c');
  assert.equal(unescapeQuoted("GET /caf\\xC3\\xA9 HTTP/1.1"), "GET /caf%C3%A9 HTTP/1.1");
  assert.equal(unescapeQuoted("GET /a\\x20b\\n\\t"), "GET /a%20b%0A%09");
  assert.equal(unescapeQuoted("GET /a\\xZZ"), "GET /axZZ");
  assert.equal(unescapeQuoted("trailing\\"), "trailing\\");
  const r = record(
    parseClfLine('h - - [01/Aug/1995:00:00:01 -0400] "GET /a\\x22q\\x22.html HTTP/1.1" 200 1', 1),
  );
  assert.equal(r.url, '/a"q".html');
  // nginx's escaped TLS handshake on a plain port: a counted bad request, not a crash.
  assert.equal(
    outcome(parseClfLine('h - - [01/Aug/1995:00:00:01 -0400] "\\x16\\x03\\x01" 400 157', 1)),
    "bad_request",
  );
});

test("NASA TSV: extra columns, a header row naming them and placing the others, '-' or empty sizes", () => {
  const p = lineParser("nasa-tsv");
  assert.equal(
    outcome(p("host\tlogname\ttime\tmethod\turl\tresponse\tbytes\treferer\tuseragent", 1)),
    "ignore",
  );
  const r = record(p("199.72.81.55\t-\t804571201\tGET\t/history/apollo/\t200\t6245\t\t", 2));
  assert.deepEqual(
    [r.host, r.time, r.url, r.status, r.bytes],
    ["199.72.81.55", 804571201, "/history/apollo/", 200, 6245],
  );
  assert.equal(record(p("h\t-\t804571201\tGET\t/\t404\t-\t\t", 3)).bytes, null);
  assert.equal(record(p("h\t-\t804571201\tGET\t/\t404\t\t\t", 3)).bytes, null);
  // Without a header, the NASA layout with any trailing columns.
  assert.equal(outcome(parseNasaTsvLine("h\t-\t804571201\tGET\t/\t200\t1\tref\tua\tmore", 1)), "record");
  // A header in another order places the columns.
  const q = lineParser("nasa-tsv");
  q("url\tstatus\tmethod\ttime\thost", 1);
  const s = record(q("/x.html\t200\tHEAD\t804571201\th", 2));
  assert.deepEqual(
    [s.url, s.status, s.method, s.time, s.host, s.bytes],
    ["/x.html", 200, "HEAD", 804571201, "h", null],
  );
  assert.equal(outcome(q("/x.html\t200\tHEAD", 3)), "syntax");
});

test("detection: every format's count on the sample, the NASA variant and the new formats found", () => {
  const variant = [
    "host\tlogname\ttime\tmethod\turl\tresponse\tbytes\treferer\tuseragent",
    "199.72.81.55\t-\t804571201\tGET\t/history/apollo/\t200\t6245\t\t",
    "unicomp6.unicomp.net\t-\t804571206\tGET\t/shuttle/countdown/\t200\t3985\t\t",
  ];
  const guesses = guessFormats(variant);
  assert.deepEqual(
    guesses.map((g) => [g.format, g.records]),
    [
      ["nasa-tsv", 2],
      ["w3c", 0],
      ["json", 0],
      ["clf", 0],
      ["combined", 0],
      ["epa", 0],
      ["urls", 0],
    ],
  );
  assert.deepEqual(guesses.find((g) => g.format === "w3c")!.firstBad, { line: 1, reason: "no_header" });
  assert.equal(pickFormat(guesses), "nasa-tsv");
  assert.match(
    describeGuesses(guesses),
    /^nasa-tsv 2 of 2, w3c 0 of 3 \(line 1: no_header\), json 0 of 3 \(line 1: syntax\)/,
  );
  assert.equal(detectFormat(['{"method":"GET","url":"/"}', "not json"]), "json");
  assert.equal(detectFormat(["#Version: 1.0", "#Fields: cs-method cs-uri-stem", "GET /a"]), "w3c");
});
