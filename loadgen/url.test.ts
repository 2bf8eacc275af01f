import { test } from "node:test";
import assert from "node:assert/strict";
import { ancestorDirs, canonicalizeTarget, encodeSegment, MAX_DOC_PATH_BYTES } from "./url.js";
import { classify } from "./classify.js";
import { assertLinearTime, type LinearCase } from "../sc/testing/linear-time.js";
import { cpuClockMs } from "../sc/testing/cpu-clock.js";
import { MAX_LINE_LENGTH } from "./trace/formats.js";
import type { TraceRecord } from "./trace/formats.js";

function ok(target: string) {
  const c = canonicalizeTarget(target);
  assert.ok(c.ok, `${target}: ${JSON.stringify(c)}`);
  return c;
}
const reason = (target: string) => {
  const c = canonicalizeTarget(target);
  return c.ok ? "ok" : c.reason;
};

test("canonical URLs: decoding, dot segments, merged slashes, directories to index.html", () => {
  assert.deepEqual(ok("/"), {
    ok: true,
    url: "/",
    docPath: "/index.html",
    isDirectory: true,
    hadQuery: false,
  });
  assert.equal(ok("/a/b.html").docPath, "/a/b.html");
  assert.deepEqual([ok("/shuttle/").url, ok("/shuttle/").docPath], ["/shuttle/", "/shuttle/index.html"]);
  assert.deepEqual([ok("/a%20b.html").url, ok("/a%20b.html").docPath], ["/a%20b.html", "/a b.html"]);
  assert.equal(ok("/a b.html").url, "/a%20b.html");
  assert.equal(ok("/%7Euser/x").url, "/~user/x");
  assert.equal(ok("/finance//brrow_1t.gif").url, "/finance/brrow_1t.gif");
  assert.equal(ok("/a/./b/../c").url, "/a/c");
  assert.deepEqual([ok("/a/b/..").url, ok("/a/b/..").docPath], ["/a/", "/a/index.html"]);
  assert.equal(ok("/a/%2e%2e/c").url, "/c");
  assert.equal(ok("/caf%C3%A9.html").docPath, "/café.html");
  assert.equal(ok("/caf%C3%A9.html").url, "/caf%C3%A9.html");
  assert.equal(ok("/%252e%252e/x").docPath, "/%2e%2e/x");
  assert.deepEqual([ok("/q.html?a=1#f").url, ok("/q.html?a=1").hadQuery], ["/q.html", true]);
  assert.equal(ok("http://www.example.com/abs/x.gif").url, "/abs/x.gif");
  assert.equal(ok("http://www.example.com").url, "/");
});

test("targets that could escape the root or that servers read differently are refused", () => {
  assert.equal(reason("/../etc/passwd"), "escapes_root");
  assert.equal(reason("/a/../../etc/passwd"), "escapes_root");
  assert.equal(reason("/%2e%2e/%2e%2e/etc/passwd"), "escapes_root");
  assert.equal(reason("/..%2f..%2fetc/passwd"), "encoded_slash");
  assert.equal(reason("/a%2Fb"), "encoded_slash");
  assert.equal(reason("/a%00b"), "control_char");
  assert.equal(reason("/a\tb"), "control_char");
  assert.equal(reason("/\\yahoo.com"), "backslash");
  assert.equal(reason("/a%5c..%5cb"), "backslash");
  assert.equal(reason("/%zz"), "bad_encoding");
  assert.equal(reason("/%C3"), "bad_encoding");
  assert.equal(reason("/.htaccess"), "dotfile");
  assert.equal(reason("/a/%2ehidden"), "dotfile");
  assert.equal(reason("/" + "n".repeat(256)), "name_too_long");
  assert.equal(reason("/" + "n".repeat(255)), "ok");
  assert.equal(reason("/" + "é".repeat(128)), "name_too_long");
  assert.equal(reason(("/" + "d".repeat(200)).repeat(6)), "path_too_long");
  assert.ok(("/" + "d".repeat(200)).repeat(6).length > MAX_DOC_PATH_BYTES);
  assert.equal(reason("index.html"), "not_origin_form");
  assert.equal(reason("*"), "not_origin_form");
});

test("segment encoding round-trips through decodeURIComponent", () => {
  for (const s of ["a b", "100%", "x;y", "é", "?#", "ok-._~!$&'()*+,=:@"]) {
    assert.equal(decodeURIComponent(encodeSegment(s)), s);
    assert.doesNotMatch(encodeSegment(s), /[ ;?#%](?![0-9A-F]{2})/);
  }
  assert.deepEqual(ancestorDirs("/a/b/c.html"), ["/a", "/a/b"]);
  assert.deepEqual(ancestorDirs("/c.html"), []);
});

const rec = (method: string, url: string, status: number | null, bytes: number | null = 10): TraceRecord => ({
  line: 1,
  host: "h",
  time: 0,
  method,
  url,
  protocol: "HTTP/1.0",
  status,
  bytes,
});

test("classify: kinds for GET/HEAD/304, skips for what a static cluster cannot reproduce", () => {
  const kind = (r: TraceRecord, query?: "skip" | "strip") => {
    const c = classify(r, { query });
    return c.ok ? `${c.kind} ${c.url} ${c.status}` : `skip ${c.reason}`;
  };
  assert.equal(kind(rec("GET", "/a.html", 200)), "get /a.html 200");
  assert.equal(kind(rec("GET", "/a.html", 304, null)), "conditional /a.html 304");
  assert.equal(kind(rec("GET", "/a.html", 404, null)), "get /a.html 404");
  assert.equal(kind(rec("HEAD", "/a.html", 200, 0)), "head /a.html 200");
  assert.equal(kind(rec("GET", "/a.html", null, null)), "get /a.html null");
  assert.equal(kind(rec("POST", "/a.html", 200)), "skip method");
  assert.equal(kind(rec("GET", "/shuttle/countdown", 302)), "skip redirect");
  assert.equal(kind(rec("GET", "/a.html", 206)), "skip status");
  assert.equal(kind(rec("GET", "/a.html", 403)), "skip status");
  assert.equal(kind(rec("GET", "/cgi-bin/imagemap/fr", 200)), "skip cgi");
  assert.equal(kind(rec("GET", "/htbin/wais.pl?x", 200)), "skip cgi");
  assert.equal(kind(rec("GET", "/x/form.cgi", 200)), "skip cgi");
  assert.equal(kind(rec("GET", "/cgi%2Dbin/x", 200)), "skip cgi");
  assert.equal(kind(rec("GET", "/page.html?v=2", 200)), "skip query");
  assert.equal(kind(rec("GET", "/page.html?v=2", 200), "strip"), "get /page.html 200");
  assert.equal(kind(rec("GET", "/../x", 200)), "skip escapes_root");
});

test("canonicalizeTarget of logged targets with raw spaces, non-ASCII, sub-delims and %5C is linear", () => {
  const fill = (unit: string, n: number) => unit.repeat(Math.max(1, Math.floor(n / unit.length)));
  const cases: { name: string; make: (n: number) => string; want: string }[] = [
    { name: "raw spaces and non-ASCII", make: (n) => fill("/é ü", n), want: "path_too_long" },
    { name: "one segment of raw spaces", make: (n) => "/" + " ".repeat(n), want: "name_too_long" },
    { name: "raw sub-delims", make: (n) => fill("/+:@=,", n), want: "path_too_long" },
    { name: "escaped backslashes and dots", make: (n) => "/" + fill("%5C.", n), want: "name_too_long" },
    { name: "'://' late in the target", make: (n) => "/" + "a".repeat(n) + "://h", want: "name_too_long" },
  ];
  for (const t of cases) {
    const c: LinearCase<string> = {
      name: t.name,
      make: t.make,
      run: (s) => {
        const r = canonicalizeTarget(s);
        return r.ok ? "ok" : r.reason;
      },
    };
    assertLinearTime(c, { limit: MAX_LINE_LENGTH, clock: cpuClockMs });
    assert.equal(c.run(c.make(MAX_LINE_LENGTH)), t.want, t.name);
  }
});

test("logged spellings of one name are one canonical URL and one document", () => {
  for (const s of ["/a+b", "/a%2Bb", "/a%2bb", "http://h/a+b", "/x/../a+b?q#f"]) {
    const c = ok(s);
    assert.deepEqual([c.url, c.docPath], ["/a+b", "/a+b"], s);
  }
  assert.deepEqual([ok("/:(").url, ok("/:(").docPath], ["/:(", "/:("]);
  assert.deepEqual([ok("/a;b").url, ok("/a%3bb").docPath], ["/a%3Bb", "/a;b"]);
  assert.deepEqual([ok("/a%5Cb").url, ok("/a%5cb").docPath], ["/a%5Cb", "/a\\b"]);
  assert.deepEqual([ok("/a b\u00e9").url, ok("/a b\u00e9").docPath], ["/a%20b%C3%A9", "/a b\u00e9"]);
});
