// `sc-cluster certs`: the demo CA and VIP certificate that compose and hand-run nodes use.
import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "../server/node/testing.js";

const BIN = fileURLToPath(new URL("../../bin/sc-cluster.js", import.meta.url));
const cli = (args: string[]) => run(process.execPath, [BIN, ...args], 60_000);

test("certs makes a CA and a VIP certificate signed by it; the keys 0600; --no-ca-key drops the CA's key", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sc-certs-cli-"));
  try {
    const out = join(dir, "tls");
    const r = await cli([
      "certs",
      "--out",
      out,
      "--ip",
      "198.18.100.1",
      "--name",
      "demo.example",
      "--no-ca-key",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const ca = new X509Certificate(await readFile(join(out, "ca.crt")));
    const leaf = new X509Certificate(await readFile(join(out, "server.crt")));
    assert.ok(leaf.verify(ca.publicKey), "the leaf is signed by the CA");
    assert.ok(leaf.checkIP("198.18.100.1"));
    assert.ok(leaf.checkHost("demo.example"));
    assert.equal(leaf.checkHost("localhost"), undefined, "only the names asked for");
    assert.equal(ca.ca, true);
    assert.equal((await stat(join(out, "server.key"))).mode & 0o777, 0o600);
    await assert.rejects(stat(join(out, "ca.key")), /ENOENT/);
    // Defaults: the VIP and localhost; the CA's key kept (0600).
    const def = join(dir, "def");
    assert.equal((await cli(["certs", "--out", def])).code, 0);
    const d = new X509Certificate(await readFile(join(def, "server.crt")));
    assert.ok(d.checkIP("198.18.100.1") && d.checkHost("localhost"));
    assert.equal((await stat(join(def, "ca.key"))).mode & 0o777, 0o600);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("certs never writes into a directory that has files, and refuses a bad address or name", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sc-certs-cli-"));
  try {
    await writeFile(join(dir, "keep"), "x");
    const full = await cli(["certs", "--out", dir]);
    assert.equal(full.code, 2);
    assert.match(full.stderr, /is not empty \(nothing is overwritten\)/);
    assert.equal(await readFile(join(dir, "keep"), "utf8"), "x");
    const badIp = await cli(["certs", "--out", join(dir, "n"), "--ip", "198.18.300.1"]);
    assert.equal(badIp.code, 2);
    assert.match(badIp.stderr, /--ip 198\.18\.300\.1 is not an IP address/);
    const badName = await cli(["certs", "--out", join(dir, "n"), "--name", "a b"]);
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /--name a b is not a DNS name/);
    assert.equal((await cli(["certs"])).code, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
