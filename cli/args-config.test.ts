// Options from the environment (SC_*) and the JSON config file: precedence, validation errors
// that name the field, and the source of a bad value in the command's own error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CONFIG_OPTIONS,
  envName,
  int,
  optionsFromConfig,
  optionsFromEnv,
  parseConfigured,
  UsageError,
  withValueSource,
  type CommandSpec,
} from "../common/args.js";
import { command as nodeCommand } from "./node.js";
import { command as originCommand } from "./origin.js";
import { command as dispatcherCommand } from "./dispatcher.js";

const spec: CommandSpec = {
  name: "node",
  summary: "test",
  usage: "test",
  options: {
    "cache-bytes": { type: "string", help: "", default: "256M" },
    port: { type: "string", help: "", default: "80" },
    mode: { type: "string", help: "", default: "local" },
    peer: { type: "string", help: "", multiple: true },
    "insecure-dev": { type: "boolean", help: "" },
    ...CONFIG_OPTIONS,
  },
};

async function withFile(doc: unknown, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "sc-config-"));
  const path = join(dir, "sc.json");
  await writeFile(path, typeof doc === "string" ? doc : JSON.stringify(doc));
  try {
    await fn(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("envName: SC_ and the option in upper case", () => {
  assert.equal(envName("cache-bytes"), "SC_CACHE_BYTES");
  assert.equal(envName("config"), "SC_CONFIG");
});

test("precedence: flag > environment > config file > default", async () => {
  await withFile(
    { node: { "cache-bytes": "1G", port: 8080, mode: "sc", peer: ["a=198.18.0.11", "b=198.18.0.12"] } },
    async (file) => {
      const env = { SC_CONFIG: file, SC_PORT: "81", SC_MODE: "cf-lru" };
      const p = await parseConfigured(spec, ["--mode", "local"], env);
      assert.equal(p.values.mode, "local");
      assert.equal(p.sources.mode, "flag");
      assert.equal(p.values.port, "81");
      assert.equal(p.sources.port, "env");
      assert.equal(p.values["cache-bytes"], "1G");
      assert.equal(p.sources["cache-bytes"], "file");
      assert.deepEqual(p.values.peer, ["a=198.18.0.11", "b=198.18.0.12"]);
      assert.equal(p.configFile, file);
      const none = await parseConfigured(spec, [], {});
      assert.equal(none.values["cache-bytes"], "256M");
      assert.equal(none.sources["cache-bytes"], "default");
      // --config wins over $SC_CONFIG; an environment list is whitespace-separated.
      const e = await parseConfigured(spec, ["--config", file], {
        SC_CONFIG: "/nonexistent",
        SC_PEER: " x=1.2.3.4  y=1.2.3.5 ",
      });
      assert.deepEqual(e.values.peer, ["x=1.2.3.4", "y=1.2.3.5"]);
    },
  );
});

test("booleans from the environment and the file", () => {
  assert.deepEqual(optionsFromEnv(spec, { SC_INSECURE_DEV: "yes" }), { "insecure-dev": true });
  assert.deepEqual(optionsFromEnv(spec, { SC_INSECURE_DEV: "0" }), {});
  assert.throws(
    () => optionsFromEnv(spec, { SC_INSECURE_DEV: "maybe" }),
    /\$SC_INSECURE_DEV must be true\/false/,
  );
  assert.deepEqual(optionsFromConfig({ node: { "insecure-dev": true } }, spec, "f"), {
    "insecure-dev": true,
  });
});

test("config errors name the file and the field", async () => {
  const bad: [unknown, RegExp][] = [
    [[], /config f: the top level must be an object/],
    [{ nodes: {} }, /config f: 'nodes' is not a section \(sections: node, dispatcher, origin\)/],
    [{ dispatcher: 3 }, /config f: 'dispatcher' must be an object, got a number/],
    [{ node: { "cache-byte": "1G" } }, /config f: node\.cache-byte: unknown field/],
    [{ node: { port: true } }, /config f: node\.port: must be a string or a number, got a boolean/],
    [{ node: { peer: { a: 1 } } }, /config f: node\.peer: must be an array of strings, got a object/],
    [{ node: { peer: ["a=1.2.3.4", null] } }, /config f: node\.peer: must be a string or a number, got null/],
    [{ node: { "insecure-dev": "yes" } }, /config f: node\.insecure-dev: must be true or false/],
    [{ node: { config: "other.json" } }, /config f: node\.config: unknown field/],
  ];
  for (const [doc, re] of bad) assert.throws(() => optionsFromConfig(doc, spec, "f"), re);
  await withFile("{ not json", async (file) => {
    await assert.rejects(parseConfigured(spec, ["--config", file], {}), /config .*sc\.json: not valid JSON/);
  });
  await assert.rejects(parseConfigured(spec, ["--config", "/nonexistent/sc.json"], {}), /cannot read config/);
});

test("a bad value from the file or the environment says where it was set", async () => {
  await withFile({ node: { port: "eighty" } }, async (file) => {
    const p = await parseConfigured(spec, ["--config", file], {});
    let err: unknown;
    try {
      int(p.values, "port", 1, 65535);
    } catch (e) {
      err = withValueSource(e, p, "node");
    }
    assert.ok(err instanceof UsageError);
    assert.equal(err.message, `--port must be a whole number, got 'eighty' (set by ${file}: node.port)`);
    const q = await parseConfigured(spec, [], { SC_PORT: "x" });
    assert.throws(
      () => {
        try {
          int(q.values, "port");
        } catch (e) {
          throw withValueSource(e, q, "node");
        }
      },
      { message: "--port must be a whole number, got 'x' (set by $SC_PORT)" },
    );
  });
});

test("node, dispatcher and origin all take --config (and so SC_* and the file)", () => {
  for (const c of [nodeCommand, dispatcherCommand, originCommand]) {
    assert.ok(c.spec.options.config !== undefined, `${c.spec.name} has --config`);
  }
});
