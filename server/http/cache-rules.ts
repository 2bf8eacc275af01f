// Cache-Control (and Expires) per path pattern, e.g. `immutable` for hashed assets:
//   --cache-control '/assets/**=public, max-age=31536000, immutable' --cache-control '*.html=no-cache'
// The first rule whose pattern matches a document's path wins. Pure: the clock is passed in.
//
// Patterns are globs matched by simulating their automaton (a set of positions in the
// pattern), so a match costs O(path x pattern) with no backtracking, whatever the pattern:
//   *    any run of characters within one path segment (no "/")
//   **   any run of characters, "/" included
//   ?    one character other than "/"
// A pattern with a "/" is matched against the whole path (`/assets/**`); one without against
// the last segment only (`*.html` matches every HTML file, `index.html` every directory's index).
import { httpDate } from "./validators.js";

const enum Tok {
  Lit,
  One,
  Star,
  GlobStar,
}

type Token = { kind: Tok.Lit; ch: number } | { kind: Tok.One | Tok.Star | Tok.GlobStar };

const SLASH = 47;
const MAX_PATTERN = 1024;
/** A Cache-Control value: visible ASCII, spaces and tabs (no line breaks reach a header). */
const VALUE = /^[\t\x20-\x7e]+$/;

export class CachePatternError extends Error {}

/** A compiled glob (see the file comment). */
export class PathPattern {
  private readonly tokens: Token[] = [];
  /** Matched against the last segment only (no "/" in the pattern). */
  readonly basename: boolean;
  private readonly current: Uint8Array;
  private readonly next: Uint8Array;

  constructor(readonly source: string) {
    if (source.length === 0 || source.length > MAX_PATTERN) {
      throw new CachePatternError(
        `a pattern has 1 to ${MAX_PATTERN} characters, got '${source.slice(0, 40)}'`,
      );
    }
    for (let i = 0; i < source.length; i++) {
      const c = source.charCodeAt(i);
      if (c === 42 /* * */) {
        if (source.charCodeAt(i + 1) === 42) {
          i++;
          this.tokens.push({ kind: Tok.GlobStar });
        } else this.tokens.push({ kind: Tok.Star });
      } else if (c === 63 /* ? */) this.tokens.push({ kind: Tok.One });
      else this.tokens.push({ kind: Tok.Lit, ch: c });
    }
    this.basename = !source.includes("/");
    this.current = new Uint8Array(this.tokens.length + 1);
    this.next = new Uint8Array(this.tokens.length + 1);
  }

  matches(path: string): boolean {
    const from = this.basename ? path.lastIndexOf("/") + 1 : 0;
    const toks = this.tokens;
    const m = toks.length;
    let cur = this.current;
    let nxt = this.next;
    cur.fill(0);
    cur[0] = 1;
    this.close(cur);
    for (let i = from; i < path.length; i++) {
      const c = path.charCodeAt(i);
      nxt.fill(0);
      let any = false;
      for (let s = 0; s < m; s++) {
        if (cur[s] === 0) continue;
        const t = toks[s]!;
        // The position after a consumed character: s + 1 for a literal or ?, s for a star.
        let to = -1;
        if (t.kind === Tok.Lit) to = t.ch === c ? s + 1 : -1;
        else if (t.kind === Tok.One) to = c !== SLASH ? s + 1 : -1;
        else if (t.kind === Tok.Star) to = c !== SLASH ? s : -1;
        else to = s;
        if (to >= 0) {
          nxt[to] = 1;
          any = true;
        }
      }
      if (!any) return false;
      this.close(nxt);
      [cur, nxt] = [nxt, cur];
    }
    return cur[m] === 1;
  }

  /** Adds the positions reachable without input: past a * or ** (which may match nothing). */
  private close(set: Uint8Array): void {
    const toks = this.tokens;
    for (let s = 0; s < toks.length; s++) {
      const k = toks[s]!.kind;
      if (set[s] === 1 && (k === Tok.Star || k === Tok.GlobStar)) set[s + 1] = 1;
    }
  }
}

/** One `PATTERN=VALUE` rule. */
export interface CacheRule {
  readonly pattern: PathPattern;
  /** The Cache-Control value, as configured. */
  readonly value: string;
  /** Its max-age in seconds (then Expires = Date + max-age is sent too), or null. */
  readonly maxAgeS: number | null;
}

/** The max-age directive of a Cache-Control value (not s-maxage), or null. */
export function maxAgeOf(value: string): number | null {
  for (const part of value.split(",")) {
    const d = part.trim();
    const eq = d.indexOf("=");
    if (eq === -1 || d.slice(0, eq).trim().toLowerCase() !== "max-age") continue;
    const v = d
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, "$1");
    if (!/^\d{1,10}$/.test(v)) return null;
    return Number(v);
  }
  return null;
}

/** Parses `PATTERN=VALUE` (the value may contain "="); throws CachePatternError with the reason. */
export function parseCacheRule(spec: string): CacheRule {
  const eq = spec.indexOf("=");
  if (eq <= 0) throw new CachePatternError(`expected PATTERN=VALUE, got '${spec}'`);
  const value = spec.slice(eq + 1).trim();
  if (!VALUE.test(value)) {
    throw new CachePatternError(`the Cache-Control value of '${spec}' must be non-empty printable ASCII`);
  }
  return { pattern: new PathPattern(spec.slice(0, eq)), value, maxAgeS: maxAgeOf(value) };
}

/** Memoised rule per path: bounded, cleared when full (paths are the site's, a few thousand). */
const MEMO_MAX = 16384;

/**
 * The configured rules, and the header lines they give a path at a time. The lines of a rule
 * with max-age are rebuilt once per second (Expires moves with Date).
 */
export class CacheRules {
  private readonly memo = new Map<string, number>();
  /** Per rule: the second its lines were built for, and the lines. */
  private readonly built: { second: number; lines: Buffer }[];

  constructor(readonly rules: readonly CacheRule[]) {
    this.built = rules.map(() => ({ second: -1, lines: Buffer.alloc(0) }));
  }

  static parse(specs: readonly string[]): CacheRules {
    return new CacheRules(specs.map(parseCacheRule));
  }

  /** Index of the first rule matching `path`, or -1. */
  ruleFor(path: string): number {
    let i = this.memo.get(path);
    if (i !== undefined) return i;
    i = this.rules.findIndex((r) => r.pattern.matches(path));
    if (this.memo.size >= MEMO_MAX) this.memo.clear();
    this.memo.set(path, i);
    return i;
  }

  /** "Cache-Control: ...\r\n" [+ "Expires: ...\r\n"] for a document's path, or null. */
  linesFor(path: string, nowMs: number): Buffer | null {
    if (this.rules.length === 0) return null;
    const i = this.ruleFor(path);
    if (i === -1) return null;
    const rule = this.rules[i]!;
    const b = this.built[i]!;
    const second = rule.maxAgeS === null ? 0 : Math.floor(nowMs / 1000);
    if (b.second !== second) {
      b.second = second;
      const expires = rule.maxAgeS === null ? "" : `Expires: ${httpDate((second + rule.maxAgeS) * 1000)}\r\n`;
      b.lines = Buffer.from(`Cache-Control: ${rule.value}\r\n${expires}`, "latin1");
    }
    return b.lines;
  }
}
