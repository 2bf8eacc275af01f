import { test } from "node:test";
import assert from "node:assert/strict";
import { checkResponse, errorKind, type Expectation } from "./verify.js";

const doc: Expectation = { status: 200, allow304: false, size: 5, sha256: "a".repeat(64) };
const obs = (
  status: number,
  bodyBytes: number,
  sha256: string | null,
  contentLength: number | null = bodyBytes,
) => ({
  status,
  bodyBytes,
  sha256,
  contentLength,
});

test("a document must come back with its status, length and bytes", () => {
  assert.equal(checkResponse(doc, false, obs(200, 5, "a".repeat(64))), "ok");
  assert.equal(checkResponse(doc, false, obs(200, 5, "b".repeat(64))), "sha256");
  assert.equal(checkResponse(doc, false, obs(200, 4, "a".repeat(64))), "length");
  assert.equal(checkResponse(doc, false, obs(200, 5, "a".repeat(64), 6)), "length");
  assert.equal(checkResponse(doc, false, obs(200, 5, "a".repeat(64), null)), "ok");
  assert.equal(checkResponse(doc, false, obs(404, 0, null)), "status");
  assert.equal(checkResponse(doc, false, obs(304, 0, null)), "status");
  assert.equal(checkResponse(doc, false, obs(206, 5, "a".repeat(64))), "status");
});

test("conditional requests accept 304 without a body, or the full 200", () => {
  const cond = { ...doc, allow304: true };
  assert.equal(checkResponse(cond, false, obs(304, 0, null)), "ok");
  assert.equal(checkResponse(cond, false, obs(304, 3, null)), "length");
  assert.equal(checkResponse(cond, false, obs(200, 5, "a".repeat(64))), "ok");
  assert.equal(checkResponse(cond, false, obs(200, 5, "c".repeat(64))), "sha256");
});

test("HEAD checks the length header and an empty body; 404 and 'any success' expectations", () => {
  const head = { ...doc, sha256: null };
  assert.equal(checkResponse(head, true, obs(200, 0, null, 5)), "ok");
  assert.equal(checkResponse(head, true, obs(200, 0, null, 7)), "length");
  assert.equal(checkResponse(head, true, obs(200, 0, null, null)), "ok");
  const missing = { status: 404, allow304: false, size: null, sha256: null };
  assert.equal(checkResponse(missing, false, obs(404, 120, null)), "ok");
  assert.equal(checkResponse(missing, false, obs(200, 5, null)), "status");
  const any = { status: 0, allow304: false, size: null, sha256: null };
  assert.equal(checkResponse(any, false, obs(204, 0, null)), "ok");
  assert.equal(checkResponse(any, false, obs(304, 0, null)), "ok");
  assert.equal(checkResponse(any, false, obs(301, 0, null)), "status");
  assert.equal(checkResponse(any, false, obs(500, 0, null)), "status");
  const traceOnly = { status: 200, allow304: false, size: null, sha256: null };
  assert.equal(checkResponse(traceOnly, false, obs(200, 12345, null)), "ok");
});

test("transport errors map to a small set of kinds", () => {
  const e = (code: string) => Object.assign(new Error(code), { code });
  assert.equal(errorKind(e("UND_ERR_HEADERS_TIMEOUT")), "timeout");
  assert.equal(errorKind(e("UND_ERR_BODY_TIMEOUT")), "timeout");
  assert.equal(errorKind(e("UND_ERR_CONNECT_TIMEOUT")), "timeout");
  assert.equal(errorKind(e("UND_ERR_SOCKET")), "socket_closed");
  assert.equal(errorKind(e("ECONNREFUSED")), "refused");
  assert.equal(errorKind(e("ECONNRESET")), "reset");
  assert.equal(errorKind(e("HPE_INVALID_CONSTANT")), "bad_response");
  assert.equal(errorKind(e("UND_ERR_RES_CONTENT_LENGTH_MISMATCH")), "framing");
  assert.equal(errorKind(new Error("x")), "other");
});
