// The messages between a node's cache owner and its workers' clients (shared-cache.ts,
// owner-client.ts), and their checks. Pure. A document crosses as its fields with the body as a
// Uint8Array: on a SharedArrayBuffer the structured clone shares the bytes (zero-copy); the
// receiver rewraps them as a Buffer without copying and rebuilds the head with makeDoc. A
// document that reads from disk on demand (`read`) cannot cross: the owner says "local".
import { makeDoc, type ContentCoding, type Doc } from "../http/doc.js";
import type { Lookup } from "../source/source.js";
import type { PurgeTarget } from "./doc-store.js";

/** Loads one worker may have waiting at the owner. */
export const MAX_PENDING_LOADS = 4096;
/** Keys in one hit report: a worker posts at this many, the owner reads no more. */
export const MAX_REPORT_KEYS = 1000;
/** Hits one report may claim for one key. */
export const MAX_HIT_COUNT = 1 << 24;
/** Longest path a load may name (request lines are far shorter). */
export const MAX_PATH_LENGTH = 16 * 1024;

export interface WireDoc {
  key: string;
  size: number;
  mtimeMs: number;
  etag: string;
  contentType: string;
  body: Uint8Array;
  encoding: ContentCoding | null;
  variants: { codings: ContentCoding[]; br?: WireDoc; gzip?: WireDoc } | null;
}

type ErrorLookup = Extract<Lookup, { kind: "error" }>;
type Passed = Extract<Lookup, { kind: "redirect" }> | ErrorLookup;

/** The owner's answer to a load, as decoded by the worker. */
export type Answer =
  /**
   * `held`: the owner's cache holds this very document (so a worker may cache it too);
   * `cached`: the owner answered from its cache, without a load.
   */
  | { kind: "doc"; doc: Doc; held: boolean; cached: boolean; validatedAt: number | null }
  /** Not in the owner's memory (a large file): load it from your own source, with these siblings. */
  | { kind: "local"; precompressed: ContentCoding[] }
  | Passed;

export type WireAnswer =
  | Exclude<Answer, { kind: "doc" }>
  | { kind: "doc"; doc: WireDoc; held: boolean; cached: boolean; validatedAt: number | null };

export type ToOwner =
  { op: "load"; id: number; path: string } | { op: "hits"; keys: string[]; counts: number[] };

export type ToWorker =
  | { op: "answer"; id: number; answer: WireAnswer }
  /** The owner no longer holds these keys (or anything: "all"). */
  | { op: "drop"; keys: string[] | "all" }
  | { op: "purge"; target: PurgeTarget };

export type DecodedToWorker =
  Exclude<ToWorker, { op: "answer" }> | { op: "answer"; id: number; answer: Answer };

const CODINGS: readonly ContentCoding[] = ["br", "gzip"];
const ERROR_STATUSES: readonly number[] = [403, 404, 500, 502, 504];

/** A document's wire form; null if it or a variant has no body in memory. */
export function toWire(doc: Doc): WireDoc | null {
  if (doc.body === null) return null;
  const { key, size, mtimeMs, etag, contentType, body, encoding } = doc;
  const v = doc.variants;
  if (v === null) return { key, size, mtimeMs, etag, contentType, body, encoding, variants: null };
  const variants: NonNullable<WireDoc["variants"]> = { codings: [...v.codings] };
  for (const c of v.codings) {
    const wired = v[c] === undefined ? null : toWire(v[c]);
    if (wired === null) return null;
    variants[c] = wired;
  }
  return { key, size, mtimeMs, etag, contentType, body, encoding, variants };
}

/** The document back from its wire form (the body's bytes shared, not copied); null if malformed. */
export function fromWire(w: unknown, depth = 0): Doc | null {
  if (!isRecord(w) || depth > 1) return null;
  const { key, size, mtimeMs, etag, contentType, body, encoding } = w;
  if (typeof key !== "string" || typeof etag !== "string" || typeof contentType !== "string") return null;
  if (!isCount(size) || typeof mtimeMs !== "number" || !(body instanceof Uint8Array)) return null;
  if (body.byteLength !== size || (encoding !== null && !isCoding(encoding))) return null;
  const variants = w.variants === null ? null : variantsFromWire(w.variants, depth);
  if (variants === undefined) return null;
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return makeDoc({ key, size, mtimeMs, etag, contentType, body: bytes, encoding, variants });
}

function variantsFromWire(v: unknown, depth: number): Doc["variants"] | undefined {
  if (!isRecord(v) || !Array.isArray(v.codings) || v.codings.length > CODINGS.length) return undefined;
  const codings: ContentCoding[] = [];
  const made: { br?: Doc; gzip?: Doc } = {};
  for (const c of v.codings as unknown[]) {
    if (!isCoding(c) || codings.includes(c)) return undefined;
    const doc = fromWire(v[c], depth + 1);
    if (doc === null) return undefined;
    codings.push(c);
    made[c] = doc;
  }
  return { codings, ...made };
}

/** A message from a worker, or null if it is not one (ignored). */
export function parseToOwner(m: unknown): ToOwner | null {
  if (!isRecord(m)) return null;
  if (m.op === "load") {
    const { id, path } = m;
    if (!isCount(id) || typeof path !== "string" || path.length > MAX_PATH_LENGTH) return null;
    return { op: "load", id, path };
  }
  if (m.op === "hits") {
    const { keys, counts } = m;
    if (!Array.isArray(keys) || !Array.isArray(counts) || keys.length !== counts.length) return null;
    if (keys.length > MAX_REPORT_KEYS) return null;
    const ok = keys.every((k) => typeof k === "string") && counts.every(isHitCount);
    return ok ? { op: "hits", keys: keys as string[], counts: counts as number[] } : null;
  }
  return null;
}

/** A message from the owner, documents decoded, or null if it is not one (ignored). */
export function parseToWorker(m: unknown): DecodedToWorker | null {
  if (!isRecord(m)) return null;
  if (m.op === "answer") {
    const { id } = m;
    const answer = isCount(id) ? answerFromWire(m.answer) : null;
    return answer === null || !isCount(id) ? null : { op: "answer", id, answer };
  }
  if (m.op === "drop") {
    const { keys } = m;
    if (keys === "all") return { op: "drop", keys };
    return Array.isArray(keys) && keys.every((k) => typeof k === "string") ? { op: "drop", keys } : null;
  }
  if (m.op === "purge") {
    const target = purgeTargetFrom(m.target);
    return target === null ? null : { op: "purge", target };
  }
  return null;
}

function answerFromWire(a: unknown): Answer | null {
  if (!isRecord(a)) return null;
  switch (a.kind) {
    case "doc": {
      const doc = fromWire(a.doc);
      const at = a.validatedAt;
      if (doc === null || typeof a.held !== "boolean" || typeof a.cached !== "boolean") return null;
      if (at !== null && typeof at !== "number") return null;
      return { kind: "doc", doc, held: a.held, cached: a.cached, validatedAt: at };
    }
    case "local": {
      const p = a.precompressed;
      return Array.isArray(p) && p.every(isCoding) ? { kind: "local", precompressed: p } : null;
    }
    case "redirect":
      return typeof a.path === "string" ? { kind: "redirect", path: a.path } : null;
    case "error": {
      const { status, reason } = a;
      if (typeof status !== "number" || !ERROR_STATUSES.includes(status) || typeof reason !== "string")
        return null;
      return { kind: "error", status: status as ErrorLookup["status"], reason };
    }
    default:
      return null;
  }
}

function purgeTargetFrom(t: unknown): PurgeTarget | null {
  if (!isRecord(t)) return null;
  if (t.kind === "all") return { kind: "all" };
  if (t.kind === "url" && typeof t.path === "string") return { kind: "url", path: t.path };
  if (t.kind === "prefix" && typeof t.prefix === "string") return { kind: "prefix", prefix: t.prefix };
  return null;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null;
}

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function isHitCount(x: unknown): boolean {
  return isCount(x) && x >= 1 && x <= MAX_HIT_COUNT;
}

function isCoding(x: unknown): x is ContentCoding {
  return CODINGS.includes(x as ContentCoding);
}

/** Whether two documents are the same version: the same ETag, and the same variants' ETags. */
export function sameVersion(a: Doc, b: Doc): boolean {
  if (a.etag !== b.etag || a.size !== b.size) return false;
  const va = a.variants;
  const vb = b.variants;
  if (va === null || vb === null) return va === vb;
  if (va.codings.join() !== vb.codings.join()) return false;
  return va.codings.every((c) => va[c]?.etag === vb[c]?.etag);
}
