// The cluster secret: one shared key from which every authenticated plane of the cluster
// derives its own key (SC links, the admin APIs), so a key leaked from one plane (an admin
// token in a shell history) does not open another (the SC links). Pure: reading the file is
// done by readClusterSecret at the edge.
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile, stat } from "node:fs/promises";

/** Smallest secret accepted, in characters of the file (after trimming whitespace). */
export const MIN_SECRET_CHARS = 32;
/** Largest secret file read (a secret is short; a huge file is a mistake). */
export const MAX_SECRET_CHARS = 4096;

/** Environment variables, in the order they are consulted after an explicit --secret-file. */
export const SECRET_FILE_ENV = "SC_CLUSTER_SECRET_FILE";
export const SECRET_VALUE_ENV = "SC_CLUSTER_SECRET";

/** The planes that derive a key from the secret; each label gives an independent key. */
export type KeyPurpose = "sc-link" | "admin-token" | "peer-cache";

export class ClusterSecret {
  private constructor(private readonly material: Buffer) {}

  /** Parses a secret as written in its file or variable: trimmed, 32..4096 characters. */
  static parse(text: string): ClusterSecret | SecretError {
    const t = text.trim();
    if (t.length < MIN_SECRET_CHARS)
      return new SecretError(
        `the cluster secret is too short (${t.length} characters, at least ${MIN_SECRET_CHARS}); ` +
          "make one with `sc-cluster secret --out FILE`",
      );
    if (t.length > MAX_SECRET_CHARS)
      return new SecretError(`the cluster secret is longer than ${MAX_SECRET_CHARS} characters`);
    return new ClusterSecret(Buffer.from(t, "utf8"));
  }

  /** A 32-byte key for one purpose (HKDF-SHA-256, RFC 5869). */
  key(purpose: KeyPurpose): Buffer {
    return Buffer.from(hkdfSync("sha256", this.material, Buffer.alloc(0), `sc-cluster ${purpose} v1`, 32));
  }

  /**
   * The secret as its text, only to hand it to this process's own data-path worker threads
   * (node --workers N), which parse it again: a ClusterSecret cannot cross threads.
   */
  textForWorkerThread(): string {
    return this.material.toString("utf8");
  }

  /** The bearer token of the admin APIs, as text (hex). */
  adminToken(): string {
    return this.key("admin-token").toString("hex");
  }
}

/** Why a secret could not be loaded; the CLI prints the message. */
export class SecretError {
  constructor(readonly message: string) {}
}

/** A new random secret (64 hex characters, 256 bits), as `sc-cluster secret` writes it. */
export function generateSecretText(): string {
  return randomBytes(32).toString("hex");
}

/** HMAC-SHA-256 of `parts` (each length-prefixed, so fields cannot slide into each other). */
export function mac(key: Uint8Array, ...parts: (Uint8Array | string)[]): Buffer {
  const h = createHmac("sha256", key);
  const len = Buffer.alloc(4);
  for (const p of parts) {
    const b = typeof p === "string" ? Buffer.from(p, "utf8") : p;
    len.writeUInt32BE(b.length, 0);
    h.update(len);
    h.update(b);
  }
  return h.digest();
}

/** Constant-time comparison of two byte strings (false when lengths differ). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Where a process takes its secret from; resolveSecretSource picks one. */
export type SecretSource =
  { kind: "file"; path: string; from: "option" | "env" } | { kind: "value"; text: string } | { kind: "none" };

/** --secret-file wins, then $SC_CLUSTER_SECRET_FILE, then $SC_CLUSTER_SECRET. */
export function resolveSecretSource(option: string | undefined, env: NodeJS.ProcessEnv): SecretSource {
  if (option !== undefined && option !== "") return { kind: "file", path: option, from: "option" };
  const file = env[SECRET_FILE_ENV];
  if (file !== undefined && file !== "") return { kind: "file", path: file, from: "env" };
  const value = env[SECRET_VALUE_ENV];
  if (value !== undefined && value !== "") return { kind: "value", text: value };
  return { kind: "none" };
}

/** Reads the secret a source names (I/O edge). `null` for source "none". */
export async function loadSecret(source: SecretSource): Promise<ClusterSecret | SecretError | null> {
  switch (source.kind) {
    case "none":
      return null;
    case "value":
      return ClusterSecret.parse(source.text);
    case "file": {
      const where = source.from === "option" ? "--secret-file" : `$${SECRET_FILE_ENV}`;
      let text: string;
      try {
        const st = await stat(source.path);
        if (!st.isFile()) return new SecretError(`${where} ${source.path} is not a file`);
        if (st.size > MAX_SECRET_CHARS + 16)
          return new SecretError(`${where} ${source.path} is too large for a secret (${st.size} bytes)`);
        text = await readFile(source.path, "utf8");
      } catch (err) {
        return new SecretError(`cannot read ${where} ${source.path}: ${(err as Error).message}`);
      }
      const s = ClusterSecret.parse(text);
      return s instanceof SecretError ? new SecretError(`${where} ${source.path}: ${s.message}`) : s;
    }
  }
}

/**
 * How a process treats its peers: authenticated with the cluster secret, or, only when
 * asked for by --insecure-dev, not at all (a single-machine experiment).
 */
export type ClusterTrust = { kind: "secret"; secret: ClusterSecret } | { kind: "insecure-dev" };
