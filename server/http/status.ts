// Reason phrases for the statuses this server sends.
export const REASONS: Record<number, string> = {
  200: "OK",
  206: "Partial Content",
  301: "Moved Permanently",
  304: "Not Modified",
  308: "Permanent Redirect",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  416: "Range Not Satisfiable",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

export function reason(status: number): string {
  return REASONS[status] ?? "Unknown";
}

/** Methods this server knows but does not allow on static documents (405, not 501). */
export const KNOWN_METHODS = new Set(["POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]);
