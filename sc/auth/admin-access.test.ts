// The admin policy without a server: Host parsing, token parsing and precedence, and what
// check() lets through.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AdminGuard,
  adminAuthFrom,
  AdminTokenError,
  bearerToken,
  hostAllowed,
  hostOfHeader,
  parseAdminToken,
} from "./admin-access.js";
import { ClusterSecret } from "./secret.js";

const secret = ClusterSecret.parse("k".repeat(40)) as ClusterSecret;

test("hostOfHeader: name, IPv4, [IPv6], each with an optional port; nothing else", () => {
  assert.equal(hostOfHeader("Example.COM:8080"), "example.com");
  assert.equal(hostOfHeader("198.18.0.1"), "198.18.0.1");
  assert.equal(hostOfHeader("[::1]:9100"), "::1");
  assert.equal(hostOfHeader("[fe80::1]"), "fe80::1");
  for (const bad of [
    "",
    "[::1",
    "[nope]",
    "[::1]x",
    "a:",
    "a:b",
    "a:1:2",
    "a:1234567",
    "::1",
    "x".repeat(301),
  ])
    assert.equal(hostOfHeader(bad), undefined, JSON.stringify(bad));
});

test("hostAllowed: any IP literal, localhost, the configured names; a missing Host is refused", () => {
  const names = new Set(["admin.example"]);
  for (const ok of ["10.1.2.3:1", "[2001:db8::1]:80", "localhost", "LocalHost:9", "admin.example"])
    assert.equal(hostAllowed(ok, names), true, ok);
  for (const bad of [
    undefined,
    "evil.example",
    "127.0.0.1.evil.example",
    "localhost.",
    "sub.admin.example",
    "999.1.1.1",
  ])
    assert.equal(hostAllowed(bad, names), false, String(bad));
});

test("bearerToken reads the Bearer scheme only", () => {
  assert.equal(bearerToken("Bearer abc"), "abc");
  assert.equal(bearerToken("bearer   abc  "), "abc");
  for (const bad of [undefined, "", "Bearer ", "Basic abc", "abc", `Bearer ${"x".repeat(5000)}`])
    assert.equal(bearerToken(bad), undefined, String(bad).slice(0, 20));
});

test("parseAdminToken: trimmed, 32..4096 visible ASCII", () => {
  assert.equal(parseAdminToken(` ${"a".repeat(32)}\n`), "a".repeat(32));
  assert.ok(parseAdminToken("short") instanceof AdminTokenError);
  assert.ok(parseAdminToken(`${"a".repeat(20)} ${"b".repeat(20)}`) instanceof AdminTokenError);
  assert.ok(parseAdminToken("a".repeat(4097)) instanceof AdminTokenError);
});

test("adminAuthFrom: token file, then the secret, then --insecure-dev, else read-only", () => {
  assert.equal(adminAuthFrom({ kind: "secret", secret }, "f".repeat(32)).kind, "token");
  const fromFile = adminAuthFrom({ kind: "insecure-dev" }, "f".repeat(32));
  assert.equal(fromFile.kind === "token" && fromFile.from, "token-file");
  const fromSecret = adminAuthFrom({ kind: "secret", secret }, undefined);
  assert.equal(fromSecret.kind === "token" && fromSecret.from, "secret");
  assert.equal(adminAuthFrom({ kind: "insecure-dev" }, undefined).kind, "open");
  assert.equal(adminAuthFrom(null, undefined).kind, "read-only");
});

test("check(): reads pass, changes need the token, every refusal is counted", () => {
  const g = new AdminGuard(adminAuthFrom({ kind: "secret", secret }, undefined), [
    "Admin.Example",
    "bad name!",
  ]);
  assert.deepEqual(g.hostNames, ["admin.example"]);
  const host = "127.0.0.1:9100";
  assert.equal(g.check("GET", { host }), null);
  assert.equal(g.check("HEAD", { host }), null);
  assert.equal(g.check("POST", { host })?.status, 401);
  assert.equal(g.check("OPTIONS", { host, authorization: "Bearer x" })?.reason, "bad_token");
  assert.equal(g.check("DELETE", { host, authorization: `Bearer ${secret.adminToken()}` }), null);
  assert.equal(g.check("GET", { host: "evil.example" })?.status, 421);
  assert.deepEqual(g.refused, { host: 1, read_only: 0, no_token: 1, bad_token: 1 });
  const ro = new AdminGuard(adminAuthFrom(null, undefined), []);
  assert.equal(ro.check("PUT", { host, authorization: `Bearer ${secret.adminToken()}` })?.status, 403);
  assert.equal(new AdminGuard({ kind: "open" }, []).check("PUT", { host }), null);
});
