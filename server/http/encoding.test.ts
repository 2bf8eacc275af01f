import { test } from "node:test";
import assert from "node:assert/strict";
import { chooseEncoding, parseAcceptEncoding, selectRepresentation } from "./encoding.js";
import { makeDoc, withVariants } from "./doc.js";

test("Accept-Encoding q-values: parsed per RFC 9110 12.4.2, malformed elements skipped", () => {
  assert.deepEqual(parseAcceptEncoding(["gzip, deflate, br, zstd"]), {
    br: 1000,
    gzip: 1000,
    identity: -1,
    any: -1,
  });
  assert.deepEqual(parseAcceptEncoding(["br;q=0.5, GZIP ; Q=0.25", "identity;q=0, *;q=0.001"]), {
    br: 500,
    gzip: 250,
    identity: 0,
    any: 1,
  });
  // x-gzip is gzip; the highest q of a coding named twice wins.
  assert.equal(parseAcceptEncoding(["x-gzip;q=0.3, gzip;q=0.7"]).gzip, 700);
  // q above 1, four decimals, garbage, a parameter other than q: the element is ignored.
  for (const bad of ["br;q=1.5", "br;q=0.1234", "br;q=x", "br;q=", "br;level=3", "br q=1", "br;q=1.001"]) {
    assert.equal(parseAcceptEncoding([bad]).br, -1, bad);
  }
  assert.equal(parseAcceptEncoding([",,, br ,,"]).br, 1000);
  assert.equal(parseAcceptEncoding(["br;q=1.000"]).br, 1000);
});

test("chooseEncoding: most acceptable available coding, br before gzip on ties, identity otherwise", () => {
  const both = ["br", "gzip"] as const;
  const cases: [string[], readonly ("br" | "gzip")[], string][] = [
    [[], both, "identity"],
    [["gzip, deflate, br"], both, "br"],
    [["gzip, deflate"], both, "gzip"],
    [["br"], ["gzip"], "identity"],
    [["br;q=0.5, gzip;q=0.8"], both, "gzip"],
    [["br;q=0.5"], both, "br"],
    [["br;q=0, gzip;q=0"], both, "identity"],
    [["*"], both, "br"],
    [["*;q=0.5, br;q=0"], both, "gzip"],
    [["identity"], both, "identity"],
    [["identity;q=1, br;q=0.9"], both, "identity"],
    [["identity;q=0"], both, "identity"],
    [["deflate"], both, "identity"],
    [["gzip"], [], "identity"],
  ];
  for (const [ae, available, want] of cases) {
    assert.equal(chooseEncoding(ae, available), want, `${JSON.stringify(ae)} over ${available.join(",")}`);
  }
});

test("selectRepresentation: each coding is its own representation with its own ETag and Vary", () => {
  const mk = (size: number, encodingEtag: string) =>
    makeDoc({
      key: "/app.js.x",
      size,
      mtimeMs: 1e12,
      etag: encodingEtag,
      contentType: "x",
      body: Buffer.alloc(size),
    });
  const base = makeDoc({
    key: "/app.js",
    size: 100,
    mtimeMs: 1e12,
    etag: '"64-e8d4a51000"',
    contentType: "text/javascript; charset=utf-8",
    body: Buffer.alloc(100),
  });
  const doc = withVariants(base, { br: mk(20, '"14-e8d4a51000"'), gzip: mk(30, '"1e-e8d4a51000"') });
  const req = (ae?: string) => ({ headers: ae === undefined ? [] : ["accept-encoding", ae] });
  const br = selectRepresentation(req("gzip, br"), doc);
  const gz = selectRepresentation(req("gzip"), doc);
  const id = selectRepresentation(req(), doc);
  assert.equal(br.encoding, "br");
  assert.equal(br.etag, '"14-e8d4a51000-br"');
  assert.equal(gz.etag, '"1e-e8d4a51000-gzip"');
  assert.equal(id, doc);
  assert.equal(new Set([br.etag, gz.etag, id.etag]).size, 3);
  for (const d of [br, gz, id]) {
    assert.match(d.head200.toString("latin1"), /\r\nVary: Accept-Encoding\r\n/);
    assert.match(d.head200.toString("latin1"), /\r\nContent-Type: text\/javascript; charset=utf-8\r\n/);
  }
  assert.match(br.head200.toString("latin1"), /\r\nContent-Encoding: br\r\nETag: "14-e8d4a51000-br"\r\n/);
  assert.doesNotMatch(id.head200.toString("latin1"), /Content-Encoding/);
  // A document without siblings: no Vary at all (nothing was negotiated).
  assert.doesNotMatch(base.head200.toString("latin1"), /Vary/);
  assert.equal(selectRepresentation(req("br"), base), base);
});
