// The modes `sc-cluster node --mode` accepts, by name: one static table, read by the node, the
// CLI's --help and the cluster launcher.
import { UserError } from "../../common/errors.js";
import type { ModeDefinition } from "./mode.js";
import { LOCAL_MODE } from "./local.js";
import { SC_MODE } from "./sc.js";
import { CF_MODES } from "./cf.js";
import { LARD_MODE } from "./lard.js";

export const MODES: Readonly<Record<string, ModeDefinition>> = Object.fromEntries(
  [LOCAL_MODE, SC_MODE, ...CF_MODES, LARD_MODE].map((d) => [d.name, d]),
);

export const MODE_NAMES: readonly string[] = Object.keys(MODES);

export function modeByName(name: string): ModeDefinition {
  const def = MODES[name];
  if (def === undefined) throw new UserError(`unknown mode '${name}' (known: ${MODE_NAMES.join(", ")})`);
  return def;
}
