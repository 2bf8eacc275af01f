import { test } from "node:test";
import assert from "node:assert/strict";
import { splitW3cFields, w3cLineParser } from "./w3c.js";
import type { LineResult } from "./record.js";

const outcome = (r: LineResult) => (r.kind === "bad" ? r.reason : r.kind);
function record(r: LineResult) {
  assert.equal(r.kind, "record", JSON.stringify(r));
  return (r as Extract<LineResult, { kind: "record" }>).record;
}

test("W3C fields: spaces or tabs, '-', quoted strings with doubled quotes", () => {
  assert.deepEqual(splitW3cFields("a  b\t-\t\t c", 10), ["a", "b", "-", "c"]);
  assert.deepEqual(splitW3cFields('x "a b ""q""" y', 10), ["x", 'a b "q"', "y"]);
  assert.deepEqual(splitW3cFields('""', 10), [""]);
  assert.equal(splitW3cFields('"open', 10), null);
  assert.equal(splitW3cFields('"a"b', 10), null);
  assert.equal(splitW3cFields("a b c d", 2)!.length, 3, "stops one past the maximum");
});

test("W3C: data before #Fields is no_header; #Fields places the columns; a new #Fields lays them out again", () => {
  const p = w3cLineParser();
  assert.equal(outcome(p("GET /a 200", 1)), "no_header");
  assert.equal(outcome(p("#Software: Microsoft Internet Information Services 10.0", 2)), "ignore");
  assert.equal(outcome(p("#Date: 1995-08-01 04:00:00", 3)), "ignore");
  assert.equal(
    outcome(p("#Fields: time cs-method cs-uri-stem cs-uri-query sc-status sc-bytes", 4)),
    "ignore",
  );
  // No date column: the #Date directive's day.
  const a = record(p("04:00:01 GET /a.html - 200 1839", 5));
  assert.deepEqual(
    [a.time, a.method, a.url, a.status, a.bytes, a.host],
    [807249601, "GET", "/a.html", 200, 1839, null],
  );
  assert.equal(record(p("04:00:01 GET /s.asp q=1&r=2 200 -", 6)).url, "/s.asp?q=1&r=2");
  assert.equal(outcome(p("04:00:01 GET /a.html - 200", 7)), "syntax");
  assert.equal(outcome(p("04:00:01 GET /a.html - 200 1 extra", 8)), "syntax");
  assert.equal(outcome(p("04:00:01 GET /a.html - 2000 1", 9)), "bad_status");
  assert.equal(outcome(p("04:00:01 GET /a.html - 200 x", 10)), "bad_bytes");
  assert.equal(outcome(p("25:00:01 GET /a.html - 200 1", 11)), "bad_date");
  assert.equal(outcome(p("04:00:01 - /a.html - 200 1", 12)), "bad_request");
  // A second log appended: its own columns, with the date in a column.
  p("#Fields: date time c-ip cs-method cs-uri cs-version sc-status", 13);
  const b = record(p('1995-08-02 00:00:00 2001:db8::1 get "/b.html" HTTP/1.1 404', 14));
  assert.equal(b.method, "GET");
  assert.equal(b.url, "/b.html");
  assert.equal(outcome(p('1995-08-02 00:00:00 ::1 GET "/b c.html" HTTP/1.1 404', 15)), "bad_request");
  assert.equal(b.time, 807249601 + 86400 - 4 * 3600 - 1);
  assert.equal(b.host, "2001:db8::1");
  assert.equal(b.protocol, "HTTP/1.1");
  assert.equal(b.bytes, null);
});

test("W3C: time without any date is bad_date, no time at all is null", () => {
  const p = w3cLineParser();
  p("#Fields: time cs-method cs-uri-stem", 1);
  assert.equal(outcome(p("04:00:01 GET /a", 2)), "bad_date");
  p("#Fields: cs-method cs-uri-stem", 3);
  assert.equal(record(p("GET /a", 4)).time, null);
  assert.equal(record(p("GET /a", 4)).status, null);
});
