// Which trace lines a static server can reproduce, and as what kind of request. Pure;
// shared by `site` and the replay engine so a manifest and a replay agree line for line.
import type { TraceRecord } from "./trace/formats.js";
import { canonicalizeTarget, type CanonicalUrl, type UrlRejectReason } from "./url.js";

/**
 * get          plain GET
 * head         HEAD
 * conditional  GET with If-Modified-Since, replaying a logged 304 (200 or 304 both correct)
 */
export type RequestKind = "get" | "head" | "conditional";
export const REQUEST_KINDS: readonly RequestKind[] = ["get", "head", "conditional"];

export type SkipReason =
  | "method" // not GET or HEAD (POST, PUT, ...)
  | "cgi" // a dynamic resource (cgi-bin, htbin, *.cgi, *.pl, ...)
  | "query" // has a query string (dynamic), unless queries are stripped
  | "redirect" // a logged 3xx other than 304
  | "status" // any other status a static cluster cannot reproduce (206, 403, 500, ...)
  | UrlRejectReason;

export type QueryPolicy = "skip" | "strip";

export interface ClassifyOptions {
  /** Query strings: skip the line (default) or drop the query and replay the path. */
  query?: QueryPolicy;
}

export type Classified =
  | {
      ok: true;
      kind: RequestKind;
      /** Canonical request path to replay. */
      url: string;
      /** Document path from the root ("/a/index.html" for "/a/"). */
      docPath: string;
      isDirectory: boolean;
      /** The logged status: 200, 304 or 404; null if the format logs none (URL lists). */
      status: 200 | 304 | 404 | null;
      bytes: number | null;
    }
  | { ok: false; reason: SkipReason };

const DYNAMIC_SEGMENT = /^(cgi-bin|htbin|cgi|scripts)$/i;
const DYNAMIC_EXT = /\.(cgi|pl|php\d?|asp|aspx|jsp|exe|dll|fcgi)$/i;

function isDynamic(path: string): boolean {
  const segments = path.split("/");
  return segments.some((s) => DYNAMIC_SEGMENT.test(s)) || DYNAMIC_EXT.test(segments.at(-1) ?? "");
}

/**
 * classify() with a bounded memo of canonicalized targets: a trace has far fewer distinct
 * URLs than lines, and canonicalization (decode, resolve, re-encode) dominates the cost.
 */
export class Classifier {
  private readonly cache = new Map<string, Target>();

  constructor(
    private readonly options: ClassifyOptions = {},
    private readonly maxEntries = 500_000,
  ) {}

  classify(rec: TraceRecord): Classified {
    return classify(rec, this.options, (raw) => {
      let t = this.cache.get(raw);
      if (t === undefined) {
        // Copies: a string cut from a line shares the memory of the whole chunk read
        // (V8 sliced strings), so caching it would keep the trace text alive.
        const key = detach(raw);
        t = resolveTarget(key);
        if (t.canonical.ok) {
          t.canonical = {
            ...t.canonical,
            url: detach(t.canonical.url),
            docPath: detach(t.canonical.docPath),
          };
        }
        if (this.cache.size >= this.maxEntries) this.cache.clear();
        this.cache.set(key, t);
      }
      return t;
    });
  }
}

/** A copy of s that shares no memory with the string it was cut from. */
export function detach(s: string): string {
  return Buffer.from(s, "utf8").toString("utf8");
}

/** A logged target, canonicalized, and whether it names a dynamic resource. */
interface Target {
  canonical: CanonicalUrl;
  dynamic: boolean;
}

function resolveTarget(raw: string): Target {
  const canonical = canonicalizeTarget(raw);
  // Check the raw path too: "/cgi-bin/x" stays dynamic however it is encoded.
  const dynamic = (canonical.ok && isDynamic(canonical.docPath)) || isDynamic(raw.split("?")[0]!);
  return { canonical, dynamic };
}

export function classify(
  rec: TraceRecord,
  options: ClassifyOptions = {},
  resolve: (target: string) => Target = resolveTarget,
): Classified {
  const method = rec.method;
  if (method !== "GET" && method !== "HEAD") return { ok: false, reason: "method" };
  const s = rec.status;
  let status: 200 | 304 | 404 | null;
  if (s === null || s === 200 || s === 304 || s === 404) status = s;
  else if (s >= 300 && s < 400) return { ok: false, reason: "redirect" };
  else return { ok: false, reason: "status" };

  const t = resolve(rec.url);
  const c = t.canonical;
  if (!c.ok) return { ok: false, reason: c.reason };
  if (t.dynamic) return { ok: false, reason: "cgi" };
  if (c.hadQuery && (options.query ?? "skip") === "skip") return { ok: false, reason: "query" };

  const kind: RequestKind = method === "HEAD" ? "head" : status === 304 ? "conditional" : "get";
  return {
    ok: true,
    kind,
    url: c.url,
    docPath: c.docPath,
    isDirectory: c.isDirectory,
    status,
    bytes: rec.bytes,
  };
}
