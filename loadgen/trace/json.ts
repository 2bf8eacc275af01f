// JSON lines access logs: one JSON object per line, the fields found by name. Pure.
// The default names cover nginx `log_format ... escape=json` as commonly written, Caddy's
// access log, Traefik's JSON access log and Google Cloud load balancer entries; each field
// can be pointed elsewhere (`--json-fields url=req.path,...`).
//
// Untrusted input: a line is length-checked before JSON.parse (linear, iterative in V8, so
// deep nesting cannot overflow the stack), and fields are read only through own properties
// of plain objects, so "__proto__", "constructor" and friends are just names that are absent.
import {
  bad,
  IGNORE,
  isMethod,
  isTarget,
  MAX_LINE_LENGTH,
  parseRequestLine,
  parseStatus,
  type LineParser,
  type LineResult,
} from "./record.js";
import { epochSeconds, parseLoggedTime } from "./time.js";
import { UserError } from "../../common/errors.js";

export const JSON_FIELDS = [
  "time",
  "host",
  "method",
  "url",
  "request",
  "protocol",
  "status",
  "bytes",
] as const;
export type JsonField = (typeof JSON_FIELDS)[number];

/** Per field, the paths tried in order (a path is a list of keys into nested objects). */
export type JsonFieldMap = Record<JsonField, readonly (readonly string[])[]>;

const paths = (...list: string[]) => list.map((p) => p.split("."));

/** The defaults; the comment says who writes each name. */
export const DEFAULT_JSON_FIELDS: JsonFieldMap = {
  // Caddy ts; Traefik StartUTC/time; nginx $time_iso8601, $time_local, $msec; GCP timestamp; ECS.
  time: paths("ts", "StartUTC", "time", "time_iso8601", "time_local", "msec", "timestamp", "@timestamp"),
  // Caddy (client_ip since 2.7, remote_ip before); Traefik; nginx; GCP.
  host: paths("request.client_ip", "request.remote_ip", "ClientHost", "remote_addr", "httpRequest.remoteIp"),
  method: paths("request.method", "RequestMethod", "request_method", "method", "httpRequest.requestMethod"),
  // $request_uri keeps the query, $uri does not: it comes last.
  url: paths("request.uri", "RequestPath", "request_uri", "url", "path", "httpRequest.requestUrl", "uri"),
  // nginx $request: "GET /x HTTP/1.1", used when no method or url field is there.
  request: paths("request"),
  protocol: paths("request.proto", "RequestProtocol", "server_protocol", "protocol", "httpRequest.protocol"),
  // Traefik logs OriginStatus too; DownstreamStatus is what the client got.
  status: paths("status", "DownstreamStatus", "httpRequest.status"),
  // Body bytes: Caddy size, nginx $body_bytes_sent, Traefik DownstreamContentSize, GCP.
  bytes: paths("size", "body_bytes_sent", "DownstreamContentSize", "httpRequest.responseSize", "bytes"),
};

export class JsonFieldsError extends UserError {
  constructor(message: string) {
    super(message, "ERR_TRACE_FIELDS");
  }
}

const MAX_PATH_KEYS = 8;

/**
 * "url=req.path,status=code" -> the defaults with those fields replaced (each by one path).
 * Throws JsonFieldsError naming what is wrong.
 */
export function parseJsonFields(spec: string): JsonFieldMap {
  const out: Record<JsonField, readonly (readonly string[])[]> = { ...DEFAULT_JSON_FIELDS };
  if (spec.trim() === "") return out;
  for (const item of spec.split(",")) {
    const eq = item.indexOf("=");
    const name = item.slice(0, eq).trim();
    const path = item.slice(eq + 1).trim();
    if (eq === -1 || !(JSON_FIELDS as readonly string[]).includes(name))
      throw new JsonFieldsError(
        `--json-fields: '${item}' is not FIELD=PATH with FIELD one of ${JSON_FIELDS.join(", ")}`,
      );
    const keys = path.split(".");
    if (path === "" || keys.some((k) => k === "") || keys.length > MAX_PATH_KEYS)
      throw new JsonFieldsError(
        `--json-fields: '${path}' is not a path of 1 to ${MAX_PATH_KEYS} keys (a.b.c)`,
      );
    out[name as JsonField] = [keys];
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The value at `path`, following own properties only; undefined if absent. */
function at(root: Record<string, unknown>, path: readonly string[]): unknown {
  let cur: unknown = root;
  for (const key of path) {
    if (!isPlainObject(cur) || !Object.hasOwn(cur, key)) return undefined;
    cur = cur[key];
  }
  return cur;
}

/** The first path of `paths` that holds a string or number (null and "" count as absent). */
function first(
  root: Record<string, unknown>,
  list: readonly (readonly string[])[],
): string | number | undefined {
  for (const p of list) {
    const v = at(root, p);
    if ((typeof v === "string" && v !== "") || typeof v === "number") return v;
  }
  return undefined;
}

function text(v: string | number | undefined): string | null {
  return typeof v === "string" ? v : null;
}

function status(v: string | number | undefined): number | null | undefined {
  if (v === undefined) return null;
  if (typeof v === "number") return Number.isInteger(v) && v >= 100 && v <= 599 ? v : undefined;
  return parseStatus(v) ?? undefined;
}

function bytes(v: string | number | undefined): number | null | undefined {
  if (v === undefined || v === "-") return null;
  if (typeof v === "number") return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  return /^\d{1,15}$/.test(v) ? Number(v) : undefined;
}

function time(v: string | number | undefined): number | null | undefined {
  if (v === undefined) return null;
  return (typeof v === "number" ? epochSeconds(v) : parseLoggedTime(v)) ?? undefined;
}

/** The JSON lines parser for a field map (stateless; the map is fixed per trace). */
export function jsonLineParser(fields: JsonFieldMap = DEFAULT_JSON_FIELDS): LineParser {
  return (line: string, n: number): LineResult => {
    if (line.length > MAX_LINE_LENGTH) return bad("too_long");
    const t = line.trim();
    if (t === "") return IGNORE;
    if (t.charCodeAt(0) !== 123 /* { */) return bad("syntax");
    let parsed: unknown;
    try {
      parsed = JSON.parse(t);
    } catch {
      return bad("syntax");
    }
    if (!isPlainObject(parsed)) return bad("syntax");
    let method = text(first(parsed, fields.method));
    let url = text(first(parsed, fields.url));
    let protocol = text(first(parsed, fields.protocol));
    if (method === null || url === null) {
      const request = text(first(parsed, fields.request));
      const req = request === null ? null : parseRequestLine(request);
      if (!req) return bad("bad_request");
      method ??= req.method;
      url ??= req.url;
      protocol ??= req.protocol;
    }
    if (!isMethod(method) || !isTarget(url)) return bad("bad_request");
    const s = status(first(parsed, fields.status));
    if (s === undefined) return bad("bad_status");
    const b = bytes(first(parsed, fields.bytes));
    if (b === undefined) return bad("bad_bytes");
    const when = time(first(parsed, fields.time));
    if (when === undefined) return bad("bad_date");
    return {
      kind: "record",
      record: {
        line: n,
        host: text(first(parsed, fields.host)),
        time: when,
        method: method.toUpperCase(),
        url,
        protocol,
        status: s,
        bytes: b,
      },
    };
  };
}
