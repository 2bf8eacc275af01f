// Who may use an admin API (the node's, the dispatcher's) and which names it answers to. Pure:
// the token file is read at the edge (sc/auth/admin-access-options.ts); the HTTP servers ask check() for
// every request and send the refusal it returns.
//
// - Changes (any method but GET and HEAD) need `Authorization: Bearer <token>`; the token is
//   the cluster secret's adminToken() or the text of --admin-token-file. Without either the
//   API is read-only; with --insecure-dev (and no token file) changes are open.
// - Every request must name the server by an IP literal, `localhost` or a configured name:
//   a page from another site that rebinds its own name to the admin address (DNS rebinding)
//   sends that name as Host and is refused before anything runs.
import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import type { ClusterTrust } from "./secret.js";

/** Smallest token accepted from --admin-token-file (like the cluster secret). */
export const MIN_ADMIN_TOKEN_CHARS = 32;
export const MAX_ADMIN_TOKEN_CHARS = 4096;

/** Longest Host header looked at (a name is at most 253 characters, plus a port). */
const MAX_HOST_CHARS = 300;

/** How changes are authorised. */
export type AdminAuth =
  /** A bearer token; only its SHA-256 is kept, so comparisons take equal time for any guess. */
  | { kind: "token"; digest: Buffer; from: "secret" | "token-file" }
  /** --insecure-dev without a token file: anyone who reaches the API may change things. */
  | { kind: "open" }
  /** Neither a secret nor a token: the API is read-only. */
  | { kind: "read-only" };

/** An admin API's listen address and who it lets in. */
export interface AdminEndpoint {
  host: string;
  port: number;
  /** The text of --admin-token-file (checked by parseAdminToken); else the secret's token. */
  token?: string;
  /** --admin-host: names the API answers to besides IP literals and localhost. */
  names?: readonly string[];
}

/** Why a token file's text is not a token; the CLI prints the message. */
export class AdminTokenError {
  constructor(readonly message: string) {}
}

/** Checks a token as written in its file: trimmed, 32..4096 visible ASCII characters. */
export function parseAdminToken(text: string): string | AdminTokenError {
  const t = text.trim();
  if (t.length < MIN_ADMIN_TOKEN_CHARS)
    return new AdminTokenError(
      `the admin token is too short (${t.length} characters, at least ${MIN_ADMIN_TOKEN_CHARS})`,
    );
  if (t.length > MAX_ADMIN_TOKEN_CHARS)
    return new AdminTokenError(`the admin token is longer than ${MAX_ADMIN_TOKEN_CHARS} characters`);
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c < 0x21 || c > 0x7e)
      return new AdminTokenError(
        "the admin token must be visible ASCII without spaces (it goes in a header)",
      );
  }
  return t;
}

const digestOf = (token: string): Buffer => createHash("sha256").update(token, "utf8").digest();

/** The auth an admin API runs with: a token file wins, then the secret, then --insecure-dev. */
export function adminAuthFrom(trust: ClusterTrust | null, tokenFromFile: string | undefined): AdminAuth {
  if (tokenFromFile !== undefined)
    return { kind: "token", digest: digestOf(tokenFromFile), from: "token-file" };
  if (trust?.kind === "secret")
    return { kind: "token", digest: digestOf(trust.secret.adminToken()), from: "secret" };
  if (trust?.kind === "insecure-dev") return { kind: "open" };
  return { kind: "read-only" };
}

/** The host part of a Host header value (`name`, `1.2.3.4`, `[::1]`, each with an optional port). */
export function hostOfHeader(value: string): string | undefined {
  if (value.length === 0 || value.length > MAX_HOST_CHARS) return undefined;
  let host: string;
  let rest: string;
  if (value.startsWith("[")) {
    const close = value.indexOf("]");
    if (close < 0) return undefined;
    host = value.slice(1, close);
    if (isIP(host) !== 6) return undefined;
    rest = value.slice(close + 1);
  } else {
    const colon = value.indexOf(":");
    host = colon < 0 ? value : value.slice(0, colon);
    rest = colon < 0 ? "" : value.slice(colon);
  }
  if (rest !== "") {
    if (rest.length < 2 || rest.length > 6 || rest[0] !== ":") return undefined;
    for (let i = 1; i < rest.length; i++) {
      const c = rest.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return undefined;
    }
  }
  return host.toLowerCase();
}

/** A name --admin-host accepts: letters, digits, dots and hyphens (lower-cased). */
export function checkHostName(name: string): string | undefined {
  const n = name.trim().toLowerCase();
  if (n.length === 0 || n.length > 253) return undefined;
  for (let i = 0; i < n.length; i++) {
    const c = n.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d;
    if (!ok) return undefined;
  }
  return n;
}

/**
 * Whether a Host header names this server: any IP literal (a browser sends one only for a page
 * whose own origin is that address, so rebinding a name cannot produce it; any, not only the
 * listen address, so NAT, port forwarding and 0.0.0.0 listeners keep working), `localhost`, or
 * one of `names` (lower case). A missing Host is refused: every browser sends one.
 */
export function hostAllowed(header: string | undefined, names: ReadonlySet<string>): boolean {
  if (header === undefined) return false;
  const host = hostOfHeader(header);
  if (host === undefined) return false;
  return host === "localhost" || names.has(host) || isIP(host) !== 0;
}

export type AdminRefusalReason = "host" | "read_only" | "no_token" | "bad_token";
export const ADMIN_REFUSAL_REASONS: readonly AdminRefusalReason[] = [
  "host",
  "read_only",
  "no_token",
  "bad_token",
];

export interface AdminRefusal {
  reason: AdminRefusalReason;
  status: 401 | 403 | 421;
  headers: Record<string, string>;
  message: string;
}

const HOW_TO_GET_THE_TOKEN =
  "`sc-cluster secret --admin-token --secret-file FILE` prints the token of a cluster secret";

/** Whether a method changes something (everything but GET and HEAD is treated so). */
export function isMutation(method: string): boolean {
  return method !== "GET" && method !== "HEAD";
}

/** Reads `Bearer <token>` (scheme case-insensitive); undefined for anything else. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined || header.length > MAX_ADMIN_TOKEN_CHARS + 64) return undefined;
  if (header.length < 7 || header.slice(0, 7).toLowerCase() !== "bearer ") return undefined;
  const t = header.slice(7).trim();
  return t === "" ? undefined : t;
}

/** The admin policy of one API, with its refusal counters. */
export class AdminGuard {
  readonly refused: Record<AdminRefusalReason, number> = { host: 0, read_only: 0, no_token: 0, bad_token: 0 };
  private readonly names: ReadonlySet<string>;

  /** `names`: --admin-host values and the listen host when it is a name. */
  constructor(
    readonly auth: AdminAuth,
    names: Iterable<string>,
  ) {
    const set = new Set<string>();
    for (const n of names) {
      const c = checkHostName(n);
      if (c !== undefined && isIP(c) === 0) set.add(c);
    }
    this.names = set;
  }

  /** The names accepted besides IP literals and localhost. */
  get hostNames(): string[] {
    return [...this.names];
  }

  /** null: let the request through; else the refusal to send (and it is counted). */
  check(method: string, headers: { host?: string; authorization?: string }): AdminRefusal | null {
    const r = this.verdict(method, headers);
    if (r !== null) this.refused[r.reason]++;
    return r;
  }

  private verdict(method: string, headers: { host?: string; authorization?: string }): AdminRefusal | null {
    if (!hostAllowed(headers.host, this.names))
      return {
        reason: "host",
        status: 421,
        headers: {},
        message:
          "this admin API answers only to requests that name it by IP address, localhost or an " +
          "--admin-host name (the Host header; a guard against DNS rebinding)",
      };
    if (!isMutation(method)) return null;
    const auth = this.auth;
    switch (auth.kind) {
      case "open":
        return null;
      case "read-only":
        return {
          reason: "read_only",
          status: 403,
          headers: {},
          message:
            "this admin API is read-only: no admin token is configured. Start it with the cluster " +
            "secret (--secret-file FILE) or --admin-token-file FILE and send `Authorization: Bearer " +
            `<token>\`; ${HOW_TO_GET_THE_TOKEN}`,
        };
      case "token": {
        const given = bearerToken(headers.authorization);
        const challenge = { "www-authenticate": 'Bearer realm="sc-cluster admin"' };
        if (given === undefined)
          return {
            reason: "no_token",
            status: 401,
            headers: challenge,
            message: `changes need \`Authorization: Bearer <token>\`; ${HOW_TO_GET_THE_TOKEN}`,
          };
        if (!timingSafeEqual(digestOf(given), auth.digest))
          return {
            reason: "bad_token",
            status: 401,
            headers: { "www-authenticate": 'Bearer realm="sc-cluster admin", error="invalid_token"' },
            message:
              auth.from === "secret"
                ? `wrong admin token (it is derived from the cluster secret: ${HOW_TO_GET_THE_TOKEN})`
                : "wrong admin token (the one in the server's --admin-token-file)",
          };
        return null;
      }
    }
  }

  /** One line for the start-up log: how changes are authorised. */
  describe(): string {
    switch (this.auth.kind) {
      case "open":
        return "admin API changes are OPEN to anyone who reaches it (--insecure-dev)";
      case "read-only":
        return "admin API is read-only (no cluster secret or --admin-token-file)";
      case "token":
        return `admin API changes need the bearer token (${this.auth.from === "secret" ? "from the cluster secret" : "--admin-token-file"})`;
    }
  }
}
