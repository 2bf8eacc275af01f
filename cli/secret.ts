// `sc-cluster secret`: makes a new cluster secret (256 random bits, hex) for --secret-file.
import { open } from "node:fs/promises";
import type { Command } from "./command.js";
import { optStr, parseCommand, UsageError } from "./args.js";
import { generateSecretText } from "../sc/auth/secret.js";

export const command: Command = {
  spec: {
    name: "secret",
    summary: "Make a new cluster secret for --secret-file (256 random bits)",
    usage: "sc-cluster secret [--out FILE]",
    options: {
      out: {
        type: "string",
        value: "FILE",
        help: "Write it to FILE (created with mode 0600; an existing file is never overwritten) instead of stdout",
      },
    },
    epilog:
      "Give every node and the dispatcher the same file (--secret-file FILE or $SC_CLUSTER_SECRET_FILE).\n" +
      "It authenticates the SC links between nodes and derives the admin APIs' bearer token\n" +
      "(docs/security.md).",
  },
  async run(argv) {
    const { values } = parseCommand(this.spec, argv);
    const out = optStr(values, "out");
    const text = `${generateSecretText()}\n`;
    if (out === undefined) {
      process.stdout.write(text);
      return 0;
    }
    let fh;
    try {
      fh = await open(out, "wx", 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UsageError(
        code === "EEXIST"
          ? `secret: ${out} exists already (not overwritten; remove it first to make a new secret)`
          : `secret: cannot create ${out}: ${(err as Error).message}`,
      );
    }
    try {
      await fh.writeFile(text);
    } finally {
      await fh.close();
    }
    return 0;
  },
};

export default command;
