import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_JSON_FIELDS, jsonLineParser, parseJsonFields, JsonFieldsError } from "./json.js";
import { MAX_LINE_LENGTH, type LineResult } from "./record.js";

const parse = jsonLineParser();
const outcome = (r: LineResult) => (r.kind === "bad" ? r.reason : r.kind);
function record(r: LineResult) {
  assert.equal(r.kind, "record", JSON.stringify(r));
  return (r as Extract<LineResult, { kind: "record" }>).record;
}

test("JSON: times as Caddy, Traefik, nginx and GCP write them are the same Unix seconds", () => {
  const at = (time: unknown) => record(parse(JSON.stringify({ method: "GET", url: "/", ts: time }), 1)).time;
  const t = 807249601;
  for (const v of [
    t,
    `${t}`,
    t * 1e3, // Caddy unix_milli_float
    t * 1e6,
    t * 1e9, // Caddy unix_nano
    "1995-08-01T04:00:01Z",
    "1995-08-01T04:00:01.000000000Z", // Traefik StartUTC
    "1995-08-01T00:00:01-04:00", // nginx $time_iso8601
    "1995-08-01T06:00:01+0200",
    "01/Aug/1995:00:00:01 -0400", // nginx $time_local
  ]) {
    assert.equal(at(v), t, JSON.stringify(v));
  }
  assert.equal(at(t + 0.25), t + 0.25);
  assert.equal(at("1995-08-01T04:00:01.250Z"), t + 0.25);
  assert.equal(at(undefined), null);
  assert.equal(outcome(parse('{"method":"GET","url":"/","ts":"yesterday"}', 1)), "bad_date");
  assert.equal(outcome(parse('{"method":"GET","url":"/","ts":-5}', 1)), "bad_date");
});

test("JSON: status and sizes as numbers or strings, '-' sizes, bad values have their reason", () => {
  const r = record(parse('{"request":"GET /a.html HTTP/1.1","status":"304","body_bytes_sent":"-"}', 3));
  assert.deepEqual(r, {
    line: 3,
    host: null,
    time: null,
    method: "GET",
    url: "/a.html",
    protocol: "HTTP/1.1",
    status: 304,
    bytes: null,
  });
  assert.equal(record(parse('{"method":"get","uri":"/","status":200,"size":0}', 1)).method, "GET");
  const reason = (s: string) => outcome(parse(s, 1));
  assert.equal(reason('{"method":"GET","url":"/","status":2000}'), "bad_status");
  assert.equal(reason('{"method":"GET","url":"/","status":"2xx"}'), "bad_status");
  assert.equal(reason('{"method":"GET","url":"/","size":-1}'), "bad_bytes");
  assert.equal(reason('{"method":"GET","url":"/","size":"12k"}'), "bad_bytes");
  assert.equal(reason('{"method":"GET","url":"/a b"}'), "bad_request");
  assert.equal(reason('{"request":"-"}'), "bad_request");
  assert.equal(reason('{"msg":"server running"}'), "bad_request");
  assert.equal(reason("[1,2]"), "syntax");
  assert.equal(reason('{"method":'), "syntax");
  assert.equal(reason("GET / 200"), "syntax");
  assert.equal(reason("   "), "ignore");
  assert.equal(reason(`{"x":"${"a".repeat(MAX_LINE_LENGTH)}"}`), "too_long");
});

test("JSON: a Google Cloud load balancer entry (httpRequest) with an absolute URL", () => {
  const r = record(
    parse(
      JSON.stringify({
        httpRequest: {
          requestMethod: "GET",
          requestUrl: "https://www.example.com/index.html",
          status: 200,
          responseSize: "1839",
          remoteIp: "203.0.113.9",
          protocol: "HTTP/1.1",
        },
        timestamp: "1995-08-01T04:00:01.123456Z",
      }),
      1,
    ),
  );
  assert.equal(r.url, "https://www.example.com/index.html");
  assert.equal(r.bytes, 1839);
  assert.equal(r.host, "203.0.113.9");
  assert.ok(Math.abs(r.time! - 807249601.123456) < 1e-6);
});

test("JSON: fields are read from own properties only; __proto__ and constructor are plain names", () => {
  // An inherited "constructor" must not be taken for a field: the path constructor.name
  // would otherwise read "Object".
  const viaProto = jsonLineParser(parseJsonFields("method=constructor.name,url=toString"));
  assert.equal(outcome(viaProto('{"a":1}', 1)), "bad_request");
  const r = record(
    parse('{"__proto__":{"method":"POST","status":500},"method":"GET","url":"/x","status":200}', 1),
  );
  assert.equal(r.method, "GET");
  assert.equal(r.status, 200);
  assert.equal(({} as Record<string, unknown>).method, undefined, "Object.prototype untouched");
  // A field named __proto__ is read like any other.
  const own = jsonLineParser(parseJsonFields("url=__proto__.u"));
  assert.equal(record(own('{"method":"GET","__proto__":{"u":"/p"}}', 1)).url, "/p");
});

test("--json-fields replaces the named fields' paths and keeps the defaults of the others", () => {
  const fields = parseJsonFields("url=req.path, status=resp.code");
  assert.deepEqual(fields.url, [["req", "path"]]);
  assert.deepEqual(fields.status, [["resp", "code"]]);
  assert.deepEqual(fields.time, DEFAULT_JSON_FIELDS.time);
  const p = jsonLineParser(fields);
  const r = record(p('{"method":"GET","req":{"path":"/custom"},"resp":{"code":404},"ts":807249601}', 1));
  assert.deepEqual([r.url, r.status, r.time], ["/custom", 404, 807249601]);
  assert.equal(outcome(p('{"method":"GET","url":"/default-name"}', 1)), "bad_request");
  assert.throws(() => parseJsonFields("colour=x"), JsonFieldsError);
  assert.throws(() => parseJsonFields("url"), JsonFieldsError);
  assert.throws(() => parseJsonFields("url=a..b"), JsonFieldsError);
  assert.throws(() => parseJsonFields("url=a.b.c.d.e.f.g.h.i"), JsonFieldsError);
});
