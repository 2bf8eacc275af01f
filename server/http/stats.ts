// Data-path counters: plain numbers bumped per request (cheap), read by the control plane's
// /stats and /metrics at scrape time, never the other way round.

export class ServerStats {
  /** Responses by status code (index = code). */
  readonly byCode = new Float64Array(600);
  responseBytes = 0;
  connectionsAccepted = 0;
  connectionsOpen = 0;
  /** Requests a mode handled itself (not answered by this node's responder). */
  modeHandled = 0;
  headerTimeouts = 0;
  idleTimeouts = 0;
  sendTimeouts = 0;
  /** Connections reset after a write error or a failed body stream. */
  aborted = 0;

  countResponse(status: number, bytes: number): void {
    this.byCode[status]!++;
    this.responseBytes += bytes;
  }

  requests(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let c = 100; c < 600; c++) if (this.byCode[c]! > 0) out[String(c)] = this.byCode[c]!;
    return out;
  }

  totalResponses(): number {
    let n = 0;
    for (let c = 100; c < 600; c++) n += this.byCode[c]!;
    return n;
  }
}
