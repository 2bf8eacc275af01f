// `sc-cluster secret`: makes a new cluster secret (256 random bits, hex) for --secret-file, or
// prints the admin token an existing secret gives (for curl against the admin APIs).
import { open } from "node:fs/promises";
import type { Command } from "./command.js";
import { bool, optStr, parseCommand, UsageError } from "../common/args.js";
import {
  generateSecretText,
  loadSecret,
  resolveSecretSource,
  SECRET_FILE_ENV,
  SECRET_VALUE_ENV,
  SecretError,
} from "../sc/auth/secret.js";
import { EXIT } from "../common/errors.js";

async function printAdminToken(secretFile: string | undefined): Promise<number> {
  const secret = await loadSecret(resolveSecretSource(secretFile, process.env));
  if (secret === null)
    throw new UsageError(
      `secret --admin-token: which secret? Give --secret-file FILE (or $${SECRET_FILE_ENV}, $${SECRET_VALUE_ENV})`,
    );
  if (secret instanceof SecretError) throw new UsageError(`secret: ${secret.message}`);
  process.stdout.write(`${secret.adminToken()}\n`);
  return EXIT.ok;
}

export const command: Command = {
  spec: {
    name: "secret",
    summary: "Make a new cluster secret for --secret-file (256 random bits), or print its admin token",
    usage: "sc-cluster secret [--out FILE] | sc-cluster secret --admin-token [--secret-file FILE]",
    options: {
      out: {
        type: "string",
        value: "FILE",
        help: "Write it to FILE (created with mode 0600; an existing file is never overwritten) instead of stdout",
      },
      "admin-token": {
        type: "boolean",
        help: "Print the admin APIs' bearer token of an existing secret instead of making one",
      },
      "secret-file": {
        type: "string",
        value: "FILE",
        help: `The secret --admin-token reads [default: $${SECRET_FILE_ENV}, else the value of $${SECRET_VALUE_ENV}]`,
      },
    },
    epilog:
      "Give every node and the dispatcher the same file (--secret-file FILE or $SC_CLUSTER_SECRET_FILE).\n" +
      "It authenticates the SC links and the peer cache requests between nodes and derives the admin\n" +
      "APIs' bearer token (docs/security.md). A change through an admin API, e.g.:\n" +
      '  curl -X PUT -H "Authorization: Bearer $(sc-cluster secret --admin-token --secret-file FILE)" \\\n' +
      "    -H 'content-type: application/json' -d '{\"weight\":2}' http://198.18.0.1:9100/nodes/node1",
  },
  async run(argv) {
    const { values } = parseCommand(this.spec, argv);
    const out = optStr(values, "out");
    if (bool(values, "admin-token")) {
      if (out !== undefined) throw new UsageError("secret: --admin-token prints a token; it takes no --out");
      return printAdminToken(optStr(values, "secret-file"));
    }
    if (optStr(values, "secret-file") !== undefined)
      throw new UsageError(
        "secret: --secret-file goes with --admin-token (a new secret is written with --out)",
      );
    const text = `${generateSecretText()}\n`;
    if (out === undefined) {
      process.stdout.write(text);
      return EXIT.ok;
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
    return EXIT.ok;
  },
};

export default command;
