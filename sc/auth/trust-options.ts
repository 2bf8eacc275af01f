// The options every process that joins a cluster shares: where its cluster secret comes
// from, and the explicit opt-out for a single-machine experiment.
import type { OptionSpec, ParsedValues } from "../../common/args.js";
import { bool, optStr, UsageError } from "../../common/args.js";
import {
  loadSecret,
  resolveSecretSource,
  SECRET_FILE_ENV,
  SECRET_VALUE_ENV,
  SecretError,
  type ClusterTrust,
} from "./secret.js";

export const TRUST_OPTIONS: Record<string, OptionSpec> = {
  "secret-file": {
    type: "string",
    value: "FILE",
    help:
      `Cluster secret (>= 32 characters; \`sc-cluster secret --out FILE\` makes one): authenticates ` +
      `SC links and peer-cache requests, derives the admin token [default: $${SECRET_FILE_ENV}, else the value of $${SECRET_VALUE_ENV}]`,
  },
  "insecure-dev": {
    type: "boolean",
    help: "Run without a cluster secret: peers and admin mutations unauthenticated (never on a shared network)",
  },
};

/**
 * The trust a process runs with. `required`: what needs it, for the error (e.g. "--mode sc");
 * undefined when the process may run without (then null: read-only admin, no SC links).
 */
export async function trustFrom(
  values: ParsedValues,
  env: NodeJS.ProcessEnv,
  required: string | undefined,
): Promise<ClusterTrust | null> {
  const insecure = bool(values, "insecure-dev");
  const source = resolveSecretSource(optStr(values, "secret-file"), env);
  if (insecure && source.kind !== "none")
    throw new UsageError("give either a cluster secret or --insecure-dev, not both");
  if (insecure) return { kind: "insecure-dev" };
  const secret = await loadSecret(source);
  if (secret instanceof SecretError) throw new UsageError(secret.message);
  if (secret === null) {
    if (required === undefined) return null;
    throw new UsageError(
      `${required} needs the cluster secret: --secret-file FILE (or $${SECRET_FILE_ENV}, $${SECRET_VALUE_ENV}); ` +
        "make one with `sc-cluster secret --out FILE` and give every member the same file. " +
        "--insecure-dev runs without (unauthenticated peers: never on a shared network)",
    );
  }
  return { kind: "secret", secret };
}
