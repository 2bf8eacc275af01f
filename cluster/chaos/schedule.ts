// The chaos run's fault schedule: which fault, on which host, when and for how long. Pure and
// seeded (the same options give the same schedule), bounded in count and time. Faults never
// overlap: each one is followed by a settle time, so every error of the replay can be laid at
// the door of exactly one fault (report.ts).
import { seededRandom } from "../../loadgen/schedule.js";
import { UserError } from "../../common/errors.js";

export const FAULT_KINDS = [
  /** kill -9 of a node, restarted after `durationS`. */
  "node_kill",
  /** SIGSTOP of a node, SIGCONT after `durationS` (shorter than the dispatcher's dead grace). */
  "node_stop",
  /** kill -9 of the dispatcher, restarted after `durationS`. */
  "dispatcher_restart",
  /** `lossPercent` of the packets crossing one node's link dropped for `durationS`. */
  "link_loss",
  /** SIGSTOP of the origin for `durationS` (shorter than the nodes' origin timeout). */
  "origin_stop",
  /**
   * Every cached document dropped on every node (POST /purge {"all": true} to the target
   * node, which passes it on to the members); the next request for each is a miss the
   * origin answers again. Instant: `durationS` is 0 unless given a range.
   */
  "purge",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export function isFaultKind(s: string): s is FaultKind {
  return (FAULT_KINDS as readonly string[]).includes(s);
}

export interface Fault {
  /** 0-based position in the schedule. */
  index: number;
  kind: FaultKind;
  /** Host it hits: "node2", "dispatcher", "origin". */
  target: string;
  /** Seconds from the start of the replay. */
  atS: number;
  /** How long the fault lasts (down, stopped, lossy), seconds. */
  durationS: number;
  /** link_loss only: percent of packets dropped, both ways. */
  lossPercent?: number;
}

/** A range of seconds a duration is drawn from (uniformly, to 0.1 s). */
export type SecondsRange = readonly [number, number];

export interface FaultScheduleOptions {
  seed: number;
  /** Length of the replay (s); every fault ends, settle included, before it. */
  durationS: number;
  /** Node host names ("node1", ...). */
  nodes: readonly string[];
  /** Kinds to inject (each appears in turn, in a seeded order per round). */
  kinds?: readonly FaultKind[];
  /** At most this many faults. */
  maxFaults: number;
  /** Quiet seconds before the first fault (connections established, caches warm). */
  warmupS?: number;
  /** Quiet seconds after each fault ends, before the next may start, drawn from this range. */
  settleS?: SecondsRange;
  /** Duration of each kind, drawn from its range. */
  durations?: Partial<Record<FaultKind, SecondsRange>>;
  /** link_loss: percent dropped, drawn from this range (whole percents). */
  lossPercent?: SecondsRange;
}

export const DEFAULT_DURATIONS: Record<FaultKind, SecondsRange> = {
  node_kill: [2, 5],
  // Below the health fall (2 checks of 1 s) up to well past it, far below the 60 s dead grace.
  node_stop: [1, 4],
  dispatcher_restart: [0.5, 2],
  link_loss: [3, 8],
  // Below the node's 10 s origin timeout and the replay's 10 s request timeout.
  origin_stop: [2, 5],
  purge: [0, 0],
};
// At least the report's attribution window (request timeout + 2 s): an error belongs to one fault.
export const DEFAULT_SETTLE_S: SecondsRange = [12, 20];
export const DEFAULT_WARMUP_S = 10;
export const DEFAULT_LOSS_PERCENT: SecondsRange = [5, 20];

export class FaultScheduleError extends UserError {
  constructor(message: string) {
    super(message, "ERR_FAULT_SCHEDULE");
  }
}

function checkRange(r: SecondsRange, what: string): void {
  if (!(Number.isFinite(r[0]) && Number.isFinite(r[1]) && r[0] >= 0 && r[1] >= r[0]))
    throw new FaultScheduleError(`${what} must be a range 0 <= A <= B, got ${r[0]}..${r[1]}`);
}

/** The faults of one run, in time order. */
export function planFaults(o: FaultScheduleOptions): Fault[] {
  const kinds = o.kinds ?? FAULT_KINDS;
  if (kinds.length === 0) throw new FaultScheduleError("give at least one fault kind");
  if (!(o.durationS > 0)) throw new FaultScheduleError(`duration must be > 0 s, got ${o.durationS}`);
  if (!Number.isSafeInteger(o.maxFaults) || o.maxFaults < 0)
    throw new FaultScheduleError(`the fault count must be a whole number >= 0, got ${o.maxFaults}`);
  if (
    o.nodes.length === 0 &&
    kinds.some((k) => k === "node_kill" || k === "node_stop" || k === "link_loss" || k === "purge")
  )
    throw new FaultScheduleError("node faults need at least one node");
  const settle = o.settleS ?? DEFAULT_SETTLE_S;
  checkRange(settle, "settle time");
  const durations = { ...DEFAULT_DURATIONS, ...o.durations };
  for (const k of kinds) checkRange(durations[k], `${k} duration`);
  const loss = o.lossPercent ?? DEFAULT_LOSS_PERCENT;
  checkRange(loss, "loss percent");
  if (loss[1] > 100) throw new FaultScheduleError(`loss percent must be at most 100, got ${loss[1]}`);

  const rnd = seededRandom(o.seed);
  const draw = (r: SecondsRange) => Math.round((r[0] + rnd() * (r[1] - r[0])) * 10) / 10;
  const pick = <T>(xs: readonly T[]): T => xs[Math.min(xs.length - 1, Math.floor(rnd() * xs.length))]!;
  const faults: Fault[] = [];
  let round: FaultKind[] = [];
  let t = o.warmupS ?? DEFAULT_WARMUP_S;
  while (faults.length < o.maxFaults) {
    if (round.length === 0) {
      // Every kind once per round, in a seeded order (Fisher-Yates).
      round = [...kinds];
      for (let i = round.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [round[i], round[j]] = [round[j]!, round[i]!];
      }
    }
    const kind = round.shift()!;
    const durationS = draw(durations[kind]);
    const settleS = draw(settle);
    const atS = Math.round(t * 10) / 10;
    // The fault and its settle time must end inside the run.
    if (atS + durationS + settleS > o.durationS) break;
    const target =
      kind === "dispatcher_restart" ? "dispatcher" : kind === "origin_stop" ? "origin" : pick(o.nodes);
    const f: Fault = { index: faults.length, kind, target, atS, durationS };
    if (kind === "link_loss") f.lossPercent = Math.round(draw(loss));
    faults.push(f);
    t = atS + durationS + settleS;
  }
  return faults;
}
