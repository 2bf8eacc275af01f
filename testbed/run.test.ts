// run(): failures name the command that failed and carry its stderr.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CommandError, run } from "./run.js";
import { UserError } from "../common/errors.js";

test("a failing line of an `sh -exc` script is named, with its error", async () => {
  await assert.rejects(run(["sh", "-exc", "true\nls /nonexistent-dir-sct\necho after"]), (e: unknown) => {
    assert.ok(e instanceof CommandError && e instanceof UserError);
    assert.match(
      e.message,
      /^sh -exc "<script>" failed \(exit \d+\): 'ls \/nonexistent-dir-sct' failed: .*No such file/,
    );
    assert.doesNotMatch(e.message, /after/);
    return true;
  });
  // A redirection the shell itself cannot make is reported with its script line.
  await assert.rejects(
    run(["sh", "-exc", "true\necho 1 > /nonexistent-dir-sct/x\necho after"]),
    /'echo 1 > \/nonexistent-dir-sct\/x' failed: sh: 2: cannot create/,
  );
});

test("exit codes, missing tools and timeouts", async () => {
  const r = await run(["sh", "-c", "echo out; echo err >&2; exit 3"], { check: false });
  assert.deepEqual([r.code, r.stdout, r.stderr], [3, "out\n", "err\n"]);
  assert.equal((await run(["cat"], { input: "fed through stdin" })).stdout, "fed through stdin");
  await assert.rejects(
    run(["sct-no-such-tool"]),
    /cannot run sct-no-such-tool: .*is 'sct-no-such-tool' installed/,
  );
  await assert.rejects(run(["sleep", "5"], { timeoutMs: 50 }), /sleep 5 did not finish within 50 ms/);
});
