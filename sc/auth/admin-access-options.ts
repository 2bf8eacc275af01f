// The options of the admin APIs of `node` and `dispatcher` beside their listen address: an
// own bearer token file (else the cluster secret's token) and the Host names they answer to.
import { readFile, stat } from "node:fs/promises";
import type { OptionSpec, ParsedValues } from "../../common/args.js";
import { list, optStr, UsageError } from "../../common/args.js";
import {
  AdminTokenError,
  checkHostName,
  MAX_ADMIN_TOKEN_CHARS,
  MIN_ADMIN_TOKEN_CHARS,
  parseAdminToken,
  type AdminEndpoint,
} from "./admin-access.js";

export const ADMIN_ACCESS_OPTIONS: Record<string, OptionSpec> = {
  "admin-token-file": {
    type: "string",
    value: "FILE",
    help:
      `Bearer token (>= ${MIN_ADMIN_TOKEN_CHARS} characters) the admin API's changes need ` +
      "[default: the cluster secret's token (`sc-cluster secret --admin-token` prints it); with neither the API is read-only]",
  },
  "admin-host": {
    type: "string",
    value: "NAME",
    multiple: true,
    help: "A host name the admin API answers to besides IP addresses and localhost (Host check against DNS rebinding)",
  },
};

/** Reads a token file (I/O edge): a regular file, small, a valid token. */
export async function readAdminToken(path: string): Promise<string> {
  let text: string;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new UsageError(`--admin-token-file ${path} is not a file`);
    if (st.size > MAX_ADMIN_TOKEN_CHARS + 16)
      throw new UsageError(`--admin-token-file ${path} is too large for a token (${st.size} bytes)`);
    text = await readFile(path, "utf8");
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read --admin-token-file ${path}: ${(err as Error).message}`);
  }
  const t = parseAdminToken(text);
  if (t instanceof AdminTokenError) throw new UsageError(`--admin-token-file ${path}: ${t.message}`);
  return t;
}

/** The admin endpoint of `--admin ADDR:PORT` with the access options. */
export async function adminEndpointFrom(
  values: ParsedValues,
  listen: { host: string; port: number },
): Promise<AdminEndpoint> {
  const names = list(values, "admin-host").map((n) => {
    const c = checkHostName(n);
    if (c === undefined)
      throw new UsageError(`--admin-host must be a host name (letters, digits, dots, hyphens), got '${n}'`);
    return c;
  });
  const file = optStr(values, "admin-token-file");
  return { ...listen, names, ...(file !== undefined ? { token: await readAdminToken(file) } : {}) };
}
