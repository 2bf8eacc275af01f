// The stack-wide cap on challenge ACKs (RFC 5961 section 7), randomised per second.
//
// A fixed global budget is a side channel (CVE-2016-5696, "Off-Path TCP Exploits", USENIX
// Security 2016): an off-path attacker spoofs a segment for a victim connection, then
// triggers challenge ACKs on its own connection and counts them; one missing means the
// victim's connection spent one, so the guess (4-tuple, then sequence number) was in the
// window. Linux answered (4.7) with a budget drawn at random each second from
// [limit/2, 3*limit/2), and since 6.0 keeps only the per-socket limit by default. We do both halves of that: every connection rate-limits its own challenge ACKs
// (TcpConfig.challengeAckInterval, the main bound, in connection.ts), and this randomised
// global cap bounds what many connections together can make us send. Pure: time is a
// parameter and the randomness is injected.

/** Returns a uniform integer in [0, n). */
export type RandomBelow = (n: number) => number;

export class ChallengeAckBudget {
  private second = Number.NEGATIVE_INFINITY;
  private left = 0;

  /**
   * @param perSecond mean budget per second; Infinity: no global cap (per-connection only).
   * @param random source of the per-second draw (unpredictable in production).
   */
  constructor(
    private readonly perSecond: number,
    private readonly random: RandomBelow,
  ) {}

  /** Takes one challenge ACK from the current second's budget; false when it is spent. */
  take(now: number): boolean {
    if (this.perSecond === Infinity) return true;
    const second = Math.floor(now / 1000);
    if (second !== this.second) {
      this.second = second;
      // Linux: get_random_u32_inclusive(half, limit + half - 1).
      const half = Math.ceil(this.perSecond / 2);
      this.left = this.perSecond >= 1 ? half + this.random(Math.floor(this.perSecond)) : 0;
    }
    if (this.left <= 0) return false;
    this.left--;
    return true;
  }
}
