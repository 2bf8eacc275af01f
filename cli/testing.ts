// Test support for the commands' option conversions.
import assert from "node:assert/strict";
import { UsageError } from "../common/args.js";

/** Asserts that `fn` throws a UsageError (exit code 2) with this message, or one matching it. */
export function throwsUsage(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UsageError, String(err));
    if (typeof message === "string") assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}
