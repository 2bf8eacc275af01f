// The server's user-facing checks (a bad document root, an address in use), as UserErrors.
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { UserError } from "../common/errors.js";

export async function checkRootDir(root: string): Promise<string> {
  const abs = resolve(root);
  let st;
  try {
    st = await stat(abs);
  } catch {
    throw new UserError(`document root '${root}' does not exist`, "ERR_DOCUMENT_ROOT");
  }
  if (!st.isDirectory())
    throw new UserError(`document root '${root}' is not a directory`, "ERR_DOCUMENT_ROOT");
  return abs;
}

export function listenError(err: unknown, what: string, host: string, port: number): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === "EADDRINUSE"
      ? "address already in use"
      : code === "EADDRNOTAVAIL"
        ? "address not available on this host"
        : code === "EACCES"
          ? "permission denied"
          : (err as Error).message;
  return new UserError(`cannot listen for ${what} on ${host}:${port}: ${why}`, code ?? "ERR_LISTEN", {
    cause: err,
  });
}
