import { test } from "node:test";
import assert from "node:assert/strict";
import { servicePorts } from "./dispatcher-config.js";
import { UsageError } from "../common/args.js";

test("dispatcher --port takes one port or a comma list, each once", () => {
  assert.deepEqual(servicePorts("80"), [80]);
  assert.deepEqual(servicePorts("80,443"), [80, 443]);
  assert.deepEqual(servicePorts(" 80 , 443 "), [80, 443]);
  for (const bad of ["", "0", "65536", "80,", "http", "80,80", "8o"])
    assert.throws(() => servicePorts(bad), UsageError, bad);
});
