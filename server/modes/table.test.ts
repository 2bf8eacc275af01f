// The mode table and the context each mode is created with: what a node lacks is named once, at
// start-up, before anything is opened.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MODE_NAMES, MODES, modeByName } from "./table.js";
import { createMode, missingForMode, type ModeParts } from "./mode.js";
import { UserError } from "../../common/errors.js";

const ALL = { cluster: true, trust: true, userStack: true };

test("the table has every mode once, each with what it needs", () => {
  assert.deepEqual([...MODE_NAMES].sort(), ["cf-lfu", "cf-lru", "lard", "local", "sc"]);
  assert.equal(MODES.local!.needs, "node");
  assert.equal(MODES["cf-lru"]!.needs, "cluster");
  assert.equal(MODES["cf-lfu"]!.cachePolicy, "lfu");
  assert.equal(MODES.sc!.needs, "user-stack");
  assert.equal(MODES.lard!.needs, "user-stack");
  assert.throws(
    () => modeByName("nope"),
    (e: unknown) => e instanceof UserError && /known: local, sc/.test(e.message),
  );
});

test("missingForMode names the first thing a node lacks for a mode, or nothing", () => {
  for (const name of MODE_NAMES) assert.equal(missingForMode(MODES[name]!, ALL), null, name);
  assert.equal(missingForMode(MODES.local!, { cluster: false, trust: false, userStack: false }), null);
  assert.match(
    missingForMode(MODES.sc!, { ...ALL, cluster: false })!,
    /--mode sc needs the cluster's members/,
  );
  assert.match(missingForMode(MODES.sc!, { ...ALL, userStack: false })!, /--mode sc needs --stack user/);
  assert.equal(missingForMode(MODES["cf-lru"]!, { ...ALL, userStack: false }), null);
  assert.match(missingForMode(MODES["cf-lfu"]!, { ...ALL, trust: false })!, /needs the cluster secret/);
});

test("createMode refuses a cluster mode without the cluster's parts, before creating anything", () => {
  let created = 0;
  const parts = { cluster: null, trust: null, membership: null, userStack: null } as unknown as ModeParts;
  const probe = {
    name: "probe",
    summary: "",
    create: () => (created++, { name: "probe", decide: () => "serve" as const }),
  };
  assert.throws(
    () => createMode({ ...probe, needs: "cluster" }, parts),
    /--mode probe needs the cluster's members/,
  );
  assert.throws(() => createMode({ ...probe, needs: "user-stack" }, parts), UserError);
  assert.equal(created, 0);
  assert.equal(createMode({ ...probe, needs: "node" }, parts) instanceof Promise, false);
  assert.equal(created, 1);
});
