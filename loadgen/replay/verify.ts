// What a response must look like, and the verdict on one. Pure.

/** The expected answer to one replayable request. */
export interface Expectation {
  /** 200 or 404; 0 means "any success" (2xx or 304), for URL lists without a manifest. */
  status: number;
  /** A conditional request: 304 (no body) is as correct as the full 200. */
  allow304: boolean;
  /** Body length, when known (from the manifest). */
  size: number | null;
  /** SHA-256 of the body (hex), when known; never set for HEAD. */
  sha256: string | null;
}

export interface Observation {
  status: number;
  /** The Content-Length header, if the response had one. */
  contentLength: number | null;
  /** Body bytes received. */
  bodyBytes: number;
  /** SHA-256 of the body (hex), if it was computed. */
  sha256: string | null;
}

export type VerifyFailure = "status" | "length" | "sha256";
export type Verdict = "ok" | VerifyFailure;

export function checkResponse(exp: Expectation, head: boolean, obs: Observation): Verdict {
  if (exp.status === 0)
    return (obs.status >= 200 && obs.status < 300) || obs.status === 304 ? "ok" : "status";
  if (obs.status === 304 && exp.allow304) return obs.bodyBytes === 0 ? "ok" : "length";
  if (obs.status !== exp.status) return "status";
  if (exp.status !== 200 || exp.size === null) return "ok";
  if (obs.contentLength !== null && obs.contentLength !== exp.size) return "length";
  if (head) return obs.bodyBytes === 0 ? "ok" : "length";
  if (obs.bodyBytes !== exp.size) return "length";
  if (exp.sha256 !== null && obs.sha256 !== exp.sha256) return "sha256";
  return "ok";
}

/** Transport failures by kind: a bounded set of names for the report. */
export function errorKind(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  switch (code) {
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
    case "ETIMEDOUT":
      return "timeout";
    case "UND_ERR_SOCKET":
      return "socket_closed";
    case "ECONNREFUSED":
      return "refused";
    case "ECONNRESET":
    case "EPIPE":
      return "reset";
    case "UND_ERR_RES_CONTENT_LENGTH_MISMATCH":
      return "framing";
    case "UND_ERR_ABORTED":
      return "aborted";
    case "EADDRNOTAVAIL":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "unreachable";
    default:
      if (typeof code === "string" && code.startsWith("HPE_")) return "bad_response";
      if (code === "UND_ERR_INFO" || (err as Error)?.name === "InformationalError") return "socket_closed";
      return typeof code === "string" ? code.toLowerCase() : "other";
  }
}
