// Errors a user can act on (bad root, address in use): the CLI prints their message, no stack.
import { stat } from "node:fs/promises";
import { resolve } from "node:path";

export class UserFacingError extends Error {
  readonly userFacing = true;
}

export async function checkRootDir(root: string): Promise<string> {
  const abs = resolve(root);
  let st;
  try {
    st = await stat(abs);
  } catch {
    throw new UserFacingError(`document root '${root}' does not exist`);
  }
  if (!st.isDirectory()) throw new UserFacingError(`document root '${root}' is not a directory`);
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
  return new UserFacingError(`cannot listen for ${what} on ${host}:${port}: ${why}`);
}
