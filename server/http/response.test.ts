import { test } from "node:test";
import assert from "node:assert/strict";
import { normalizePath, encodePath } from "./url-path.js";
import { parseRange, type RangeResult } from "./range.js";
import { Prng } from "../../sc/wire/testing.js";
import { etagListMatches, evaluatePreconditions, ifRangeHolds } from "./conditional.js";
import { docResponse, errorResponse, redirectResponse, WholeResponses, WHOLE_MAX } from "./response.js";
import { RequestParser, type HttpRequest } from "./parser.js";
import { DateCache } from "./date.js";
import { makeDoc } from "./doc.js";
import { contentTypeFor } from "./mime.js";
import { fileEtag, httpDate } from "./validators.js";

test("path normalisation: decoding, dot segments, trailing slash", () => {
  const ok = (raw: string, want: string) =>
    assert.deepEqual(normalizePath(raw), { ok: true, path: want }, raw);
  ok("/", "/");
  ok("/a/b.html", "/a/b.html");
  ok("/a/", "/a/");
  ok("//a///b", "/a/b");
  ok("/a/./b", "/a/b");
  ok("/a/b/../c", "/a/c");
  ok("/a/b/..", "/a/");
  ok("/a/.", "/a/");
  ok("/a/%2e%2e/c", "/c");
  ok("/a/%2E/c", "/a/c");
  ok("/caf%C3%A9%20x", "/café x");
  ok("/a+b", "/a+b");
});

test("path normalisation: traversal and bad encodings are 400, dotfiles 404", () => {
  const bad = (raw: string, status: number) => {
    const r = normalizePath(raw);
    assert.equal(r.ok, false, raw);
    assert.equal((r as { status: number }).status, status, raw);
  };
  bad("/..", 400);
  bad("/../etc/passwd", 400);
  bad("/a/../../etc/passwd", 400);
  bad("/%2e%2e/etc/passwd", 400);
  bad("/%2E%2e/", 400);
  bad("/a/%2f..%2f..%2fetc", 400);
  bad("/a%2fb", 400);
  bad("/a%5c..%5cb", 400);
  bad("/a\\..\\b", 400);
  bad("/a%00b", 400);
  bad("/a%0d%0aSet-Cookie:x", 400);
  bad("/a%zz", 400);
  bad("/a%", 400);
  bad("/a%c3", 400); // truncated UTF-8
  bad("/a%ff", 400);
  bad("x", 400);
  bad("/.git/config", 404);
  bad("/a/.env", 404);
  bad("/a/%2ehidden", 404);
  bad("/..%2e", 404); // "..." is not a dot segment, but it is a dotfile
});

test("encodePath round-trips through normalizePath", () => {
  for (const p of ["/", "/a/b/", "/café x/y?z#", "/a+b%c"]) {
    assert.deepEqual(normalizePath(encodePath(p)), { ok: true, path: p });
  }
  assert.equal(encodePath("/a b/"), "/a%20b/");
});

test("single byte ranges: closed, open-ended, suffix, clamped; unsatisfiable and ignored forms", () => {
  assert.deepEqual(parseRange("bytes=0-9", 100), { kind: "range", start: 0, end: 9 });
  assert.deepEqual(parseRange("bytes=10-", 100), { kind: "range", start: 10, end: 99 });
  assert.deepEqual(parseRange("bytes=-10", 100), { kind: "range", start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=-1000", 100), { kind: "range", start: 0, end: 99 });
  assert.deepEqual(parseRange("bytes=90-1000", 100), { kind: "range", start: 90, end: 99 });
  assert.deepEqual(parseRange("Bytes = 5 - 6", 100), { kind: "range", start: 5, end: 6 });
  assert.deepEqual(parseRange("bytes=99-99", 100), { kind: "range", start: 99, end: 99 });
  assert.deepEqual(parseRange("bytes=100-", 100), { kind: "unsatisfiable" });
  assert.deepEqual(parseRange("bytes=100-200", 100), { kind: "unsatisfiable" });
  assert.deepEqual(parseRange("bytes=-0", 100), { kind: "unsatisfiable" });
  assert.deepEqual(parseRange("bytes=0-", 0), { kind: "unsatisfiable" });
  assert.deepEqual(parseRange("bytes=-5", 0), { kind: "unsatisfiable" });
  for (const h of [
    "bytes=5-1",
    "bytes=0-1,3-4",
    "items=0-1",
    "bytes=",
    "bytes=-",
    "bytes=a-b",
    "bytes 0-1",
    "bytes=1-2-3",
  ]) {
    assert.deepEqual(parseRange(h, 100), { kind: "none" }, h);
  }
  assert.deepEqual(parseRange(undefined, 100), { kind: "none" });
});

test("byte ranges: OWS of spaces and tabs, 15-digit positions, shapes the scanner refuses", () => {
  const range = (start: number, end: number) => ({ kind: "range", start, end });
  assert.deepEqual(parseRange("bytes=\t5\t-\t6\t", 100), range(5, 6));
  assert.deepEqual(parseRange("bytes= \t -5 \t ", 100), range(95, 99));
  assert.deepEqual(parseRange("bytes=0-0", 100), range(0, 0));
  assert.deepEqual(parseRange("bytes=000000000000005-", 100), range(5, 99)); // 15 digits
  assert.deepEqual(parseRange("bytes=0-999999999999999", 100), range(0, 99));
  assert.deepEqual(parseRange("bytes=-999999999999999", 100), range(0, 99));
  assert.deepEqual(parseRange(" BYTES\t=1-2", 100), range(1, 2));
  assert.deepEqual(parseRange("bytes=999999999999999-", 100), { kind: "unsatisfiable" });
  for (const h of [
    "bytes=0000000000000005-", // 16 digits
    "bytes=0-1000000000000000",
    "bytes=-1000000000000000",
    "bytes=5 6-7",
    "bytes=5-6 7",
    "bytes=--5",
    "bytes=5--",
    "bytes=5-6x",
    "bytes=x5-6",
    "bytes==5-6",
    "bytes=5-6=",
    "bytes= 5-6 ,7-8",
    "bytes=,5-6",
    "bytes=\u00a05-6", // NBSP is not OWS
    "bytes=5-6\r",
    "bytes=\uff15-6", // a full-width digit is not a DIGIT
  ]) {
    assert.deepEqual(parseRange(h, 100), { kind: "none" }, JSON.stringify(h));
  }
});

/** The regex the scanner replaced (cubic on runs of OWS): the reference for short inputs. */
function regexRange(header: string, size: number): RangeResult {
  const eq = header.indexOf("=");
  if (eq === -1 || header.slice(0, eq).trim().toLowerCase() !== "bytes") return { kind: "none" };
  const spec = header.slice(eq + 1);
  if (spec.includes(",")) return { kind: "none" };
  const m = /^[ \t]*(\d{0,15})[ \t]*-[ \t]*(\d{0,15})[ \t]*$/.exec(spec);
  if (!m) return { kind: "none" };
  const [, first, last] = m as unknown as [string, string, string];
  if (first === "") {
    if (last === "") return { kind: "none" };
    const n = Number(last);
    if (n === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "range", start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  if (last !== "" && Number(last) < start) return { kind: "none" };
  if (start >= size) return { kind: "unsatisfiable" };
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  return { kind: "range", start, end };
}

test("byte ranges: the scanner answers exactly as the old regex on 50,000 random short headers", () => {
  const rng = new Prng(14);
  const units = ["bytes=", "Bytes =", " bytes\t=", "byte=", "=", "bytes", ""];
  const pieces = [" ", "\t", "-", ",", "=", "x", "0", "1", "5", "9", "99", "000000", "12345678", "\u00a0"];
  const ows = () => rng.pick(["", "", " ", "\t", " \t "]);
  const digits = () =>
    rng.bool(0.3)
      ? ""
      : String(rng.u32())
          .repeat(1 + rng.below(2))
          .slice(0, 1 + rng.below(17));
  for (let k = 0; k < 50_000; k++) {
    let h: string;
    if (rng.bool()) {
      // Well-formed or nearly: OWS digits OWS "-" OWS digits OWS, sometimes with a piece inserted.
      h = `${rng.pick(rng.bool(0.8) ? units.slice(0, 3) : units)}${ows()}${digits()}${ows()}-${ows()}${digits()}${ows()}`;
      if (rng.bool(0.3)) {
        const at = rng.below(h.length + 1);
        h = h.slice(0, at) + rng.pick(pieces) + h.slice(at);
      }
    } else {
      h = rng.pick(units);
      const parts = rng.below(9);
      for (let p = 0; p < parts; p++) h += rng.pick(pieces);
    }
    const size = rng.pick([0, 1, 10, 100, 1e9, 2 ** 53]);
    assert.deepEqual(parseRange(h, size), regexRange(h, size), `${JSON.stringify(h)} size ${size}`);
  }
});

function req(head: string): HttpRequest {
  const p = new RequestParser();
  p.feed(Buffer.from(`${head}\r\n\r\n`, "latin1"));
  const r = p.next();
  assert.ok(r && "method" in r, `parse ${head}`);
  return r;
}

const MTIME = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
const ETAG = fileEtag(10, MTIME);

test("entity-tag lists: weak and strong comparison", () => {
  assert.equal(etagListMatches('"a", "b"', '"b"', false), true);
  assert.equal(etagListMatches('"a",W/"b"', '"b"', true), true);
  assert.equal(etagListMatches('"a",W/"b"', '"b"', false), false);
  assert.equal(etagListMatches('W/"b"', 'W/"b"', false), false);
  assert.equal(etagListMatches('"ab"', '"a"', true), false);
  assert.equal(etagListMatches('junk, "a"', '"a"', true), true);
  assert.equal(etagListMatches(",,", '"a"', true), false);
});

test("preconditions: If-None-Match wins over If-Modified-Since; If-Match and If-Unmodified-Since 412", () => {
  const H = "GET / HTTP/1.1\r\nHost: h";
  const lm = httpDate(MTIME);
  const later = httpDate(MTIME + 5000);
  const earlier = httpDate(MTIME - 5000);
  assert.equal(evaluatePreconditions(req(H), ETAG, MTIME), "proceed");
  assert.equal(evaluatePreconditions(req(`${H}\r\nIf-None-Match: ${ETAG}`), ETAG, MTIME), "not-modified");
  assert.equal(
    evaluatePreconditions(req(`${H}\r\nIf-None-Match: "x", W/${ETAG}`), ETAG, MTIME),
    "not-modified",
  );
  assert.equal(evaluatePreconditions(req(`${H}\r\nIf-None-Match: *`), ETAG, MTIME), "not-modified");
  assert.equal(evaluatePreconditions(req(`${H}\r\nIf-None-Match: "x"`), ETAG, MTIME), "proceed");
  assert.equal(evaluatePreconditions(req(`${H}\r\nIf-Modified-Since: ${lm}`), ETAG, MTIME), "not-modified");
  assert.equal(
    evaluatePreconditions(req(`${H}\r\nIf-Modified-Since: ${later}`), ETAG, MTIME),
    "not-modified",
  );
  assert.equal(evaluatePreconditions(req(`${H}\r\nIf-Modified-Since: ${earlier}`), ETAG, MTIME), "proceed");
  assert.equal(evaluatePreconditions(req(`${H}\r\nIf-Modified-Since: yesterday`), ETAG, MTIME), "proceed");
  // If-None-Match present and not matching: If-Modified-Since is ignored.
  assert.equal(
    evaluatePreconditions(req(`${H}\r\nIf-None-Match: "x"\r\nIf-Modified-Since: ${later}`), ETAG, MTIME),
    "proceed",
  );
  assert.equal(evaluatePreconditions(req(`${H}\r\nIf-Match: "x"`), ETAG, MTIME), "failed");
  assert.equal(evaluatePreconditions(req(`${H}\r\nIf-Match: W/${ETAG}`), ETAG, MTIME), "failed");
  assert.equal(evaluatePreconditions(req(`${H}\r\nIf-Match: ${ETAG}`), ETAG, MTIME), "proceed");
  assert.equal(evaluatePreconditions(req(`${H}\r\nIf-Unmodified-Since: ${earlier}`), ETAG, MTIME), "failed");
  assert.equal(evaluatePreconditions(req(`${H}\r\nIf-Unmodified-Since: ${lm}`), ETAG, MTIME), "proceed");
});

test("If-Range: strong ETag or exact date", () => {
  assert.equal(ifRangeHolds(undefined, ETAG, MTIME), true);
  assert.equal(ifRangeHolds(ETAG, ETAG, MTIME), true);
  assert.equal(ifRangeHolds('"other"', ETAG, MTIME), false);
  assert.equal(ifRangeHolds(`W/${ETAG}`, ETAG, MTIME), false);
  assert.equal(ifRangeHolds(httpDate(MTIME), ETAG, MTIME), true);
  assert.equal(ifRangeHolds(httpDate(MTIME + 1000), ETAG, MTIME), false);
});

const DATE = new DateCache().dateLine(Date.UTC(2024, 5, 1, 0, 0, 0));
const body = Buffer.from("0123456789");
const docFields = {
  key: "/f.txt",
  size: 10,
  mtimeMs: MTIME,
  etag: ETAG,
  contentType: contentTypeFor("/f.txt"),
  body,
};
const doc = makeDoc(docFields);

function text(r: { head: Buffer; body: Buffer | null }): string {
  return r.head.toString("latin1") + (r.body?.toString("latin1") ?? "");
}

test("200 response: exact bytes, HEAD without body, Connection per keep-alive", () => {
  const r = docResponse(req("GET /f.txt HTTP/1.1\r\nHost: h"), doc, true, DATE);
  assert.equal(
    text(r),
    "HTTP/1.1 200 OK\r\nServer: sc-cluster\r\nContent-Type: text/plain; charset=utf-8\r\n" +
      `ETag: ${ETAG}\r\nLast-Modified: Tue, 02 Jan 2024 03:04:05 GMT\r\nAccept-Ranges: bytes\r\n` +
      "Content-Length: 10\r\nDate: Sat, 01 Jun 2024 00:00:00 GMT\r\nConnection: keep-alive\r\n\r\n0123456789",
  );
  assert.equal(r.length, r.head.length + 10);
  assert.equal(r.close, false);
  const h = docResponse(req("HEAD /f.txt HTTP/1.0"), doc, false, DATE);
  assert.equal(h.body, null);
  assert.match(h.head.toString(), /Content-Length: 10\r\n.*Connection: close\r\n\r\n$/s);
  assert.equal(h.close, true);
});

test("whole responses: the same bytes from the cache, one buffer, rebuilt per Date line, capped", () => {
  const get = req("GET /f.txt HTTP/1.1\r\nHost: h");
  const plain = text(docResponse(get, doc, true, DATE));
  const whole = new WholeResponses(1024);
  const a = docResponse(get, doc, true, DATE, null, whole);
  const b = docResponse(get, doc, true, DATE, null, whole);
  assert.equal(text(a), plain);
  assert.equal(a.length, Buffer.byteLength(plain, "latin1"));
  // head and body are adjacent views of one buffer, and the second request reuses it
  assert.equal(a.head.buffer, a.body!.buffer);
  assert.equal(a.head.byteOffset + a.head.length, a.body!.byteOffset);
  assert.equal(b.head.buffer, a.head.buffer);
  assert.equal(whole.size, a.length);
  // Connection: close and extra lines are their own bytes, never the keep-alive entry's
  const c = docResponse(req("GET /f.txt HTTP/1.0"), doc, false, DATE, null, whole);
  assert.equal(text(c), text(docResponse(req("GET /f.txt HTTP/1.0"), doc, false, DATE)));
  const extra = Buffer.from("Cache-Control: max-age=60\r\n", "latin1");
  const e = docResponse(get, doc, true, DATE, extra, whole);
  assert.equal(text(e), text(docResponse(get, doc, true, DATE, extra)));
  // a new second's Date line drops what was built for the old one
  const date2 = new DateCache().dateLine(Date.UTC(2024, 5, 1, 0, 0, 1));
  const d = docResponse(get, doc, true, date2, null, whole);
  assert.match(text(d), /Date: Sat, 01 Jun 2024 00:00:01 GMT\r\n/);
  assert.notEqual(d.head.buffer, a.head.buffer);
  assert.equal(whole.size, d.length);
  // past the byte cap, responses are still right but not kept
  const tiny = new WholeResponses(10);
  const t = docResponse(get, doc, true, DATE, null, tiny);
  assert.equal(text(t), plain);
  assert.equal(tiny.size, 0);
  // HEAD and documents above WHOLE_MAX keep a separate head
  const h = docResponse(req("HEAD /f.txt HTTP/1.1\r\nHost: h"), doc, true, DATE, null, whole);
  assert.equal(h.body, null);
  const big = makeDoc({
    ...docFields,
    key: "/big.txt",
    size: WHOLE_MAX + 1,
    body: Buffer.alloc(WHOLE_MAX + 1, 0x61),
  });
  const g = docResponse(req("GET /big.txt HTTP/1.1\r\nHost: h"), big, true, DATE, null, whole);
  assert.notEqual(g.head.buffer, g.body!.buffer);
  assert.equal(g.body!.length, WHOLE_MAX + 1);
});

test("206 for a satisfiable range, 416 with Content-Range */len, full 200 when If-Range fails", () => {
  const r = docResponse(req("GET /f.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=-3"), doc, true, DATE);
  assert.equal(r.status, 206);
  assert.match(r.head.toString(), /\r\nContent-Range: bytes 7-9\/10\r\nContent-Length: 3\r\n/);
  assert.equal(r.body?.toString(), "789");
  const u = docResponse(req("GET /f.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=10-"), doc, true, DATE);
  assert.equal(u.status, 416);
  assert.match(u.head.toString(), /\r\nContent-Range: bytes \*\/10\r\n/);
  const f = docResponse(
    req('GET /f.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\nIf-Range: "old"'),
    doc,
    true,
    DATE,
  );
  assert.equal(f.status, 200);
  assert.equal(f.body?.length, 10);
  const m = docResponse(req("GET /f.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1,4-5"), doc, true, DATE);
  assert.equal(m.status, 200);
  const hd = docResponse(req("HEAD /f.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1"), doc, true, DATE);
  assert.equal(hd.status, 200);
});

test("304 carries the validators and no body or Content-Length", () => {
  const r = docResponse(req(`GET /f.txt HTTP/1.1\r\nHost: h\r\nIf-None-Match: ${ETAG}`), doc, true, DATE);
  assert.equal(r.status, 304);
  assert.equal(r.body, null);
  const head = r.head.toString();
  assert.match(head, new RegExp(`ETag: ${ETAG}\r\n`));
  assert.match(head, /Last-Modified: /);
  assert.doesNotMatch(head, /Content-Length/);
  assert.equal(r.length, r.head.length);
});

test("error and redirect responses", () => {
  const e = errorResponse(405, true, DATE, "Allow: GET, HEAD\r\n");
  assert.match(e.head.toString(), /^HTTP\/1\.1 405 Method Not Allowed\r\n.*Allow: GET, HEAD\r\n/s);
  assert.equal(e.body?.toString(), "405 Method Not Allowed\n");
  assert.equal(e.length, e.head.length + e.body!.length);
  const rd = redirectResponse(301, "/dir/?q=1", false, DATE);
  assert.match(rd.head.toString(), /^HTTP\/1\.1 301 Moved Permanently\r\n.*Location: \/dir\/\?q=1\r\n/s);
  assert.equal(rd.close, true);
  assert.equal(errorResponse(404, true, DATE, "", true).body, null);
});

test("Date line is cached per second", () => {
  const d = new DateCache();
  const a = d.dateLine(1_000_000_000_100);
  assert.equal(d.dateLine(1_000_000_000_900), a);
  assert.notEqual(d.dateLine(1_000_000_001_000), a);
  assert.equal(a.toString(), "Date: Sun, 09 Sep 2001 01:46:40 GMT\r\n");
});
