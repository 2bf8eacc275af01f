// --mode local: every request is served by the node it arrived at, which behind a
// round-robin L4 dispatcher is the paper's RR baseline.
import type { Mode, ModeDefinition } from "./mode.js";

export const localMode: Mode = {
  name: "local",
  decide: () => "serve",
};

export const LOCAL_MODE: ModeDefinition = {
  name: "local",
  summary: "serve every request on the node it arrived at",
  needs: "node",
  create: () => localMode,
};
