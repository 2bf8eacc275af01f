// The shape every subcommand module exports; cli/main.ts lists the implemented ones.
import type { CommandSpec } from "../common/args.js";

export interface Command {
  spec: CommandSpec;
  /** Returns the process exit code. */
  run(argv: string[]): Promise<number>;
}
