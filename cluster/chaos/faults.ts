// The faults of a chaos run carried out on the replay's clock: kill -9 and restart of a node or
// the dispatcher, SIGSTOP/SIGCONT of a node or the origin, a purge of every cache, a burst of
// packet loss on one node's link (an nftables rule in the testbed's switch namespace). The one
// in progress is undone however the run ends.
import { setTimeout as sleep } from "node:timers/promises";
import type { Cluster } from "../index.js";
import { run } from "../../testbed/run.js";
import { describeFault, type FaultEvent } from "./report.js";
import type { Fault } from "./schedule.js";

/** nftables table (bridge family, in the switch namespace) of the loss bursts. */
export const CHAOS_NFT_TABLE = "sc_chaos";

/** Runs `ip netns exec <switch> nft <cmd>`: the loss bursts live in the testbed's switch. */
async function nft(c: Cluster, cmd: string): Promise<void> {
  await run(["ip", "netns", "exec", c.testbed.plan.switchNetns, "nft", cmd], { timeoutMs: 10_000 });
}

/** Drops `percent` of the IPv4 frames to and from one host's bridge port. */
export function lossBurstRules(port: string, percent: number): string {
  const threshold = Math.round(percent * 100);
  const rule = (dir: "iifname" | "oifname") =>
    `add rule bridge ${CHAOS_NFT_TABLE} forward ${dir} "${port}" ether type ip numgen random mod 10000 < ${threshold} drop`;
  return [
    `add table bridge ${CHAOS_NFT_TABLE}`,
    `add chain bridge ${CHAOS_NFT_TABLE} forward { type filter hook forward priority -10; policy accept; }`,
    rule("iifname"),
    rule("oifname"),
  ].join("; ");
}

/** A fault carried out: what was done, and how to undo it (resolving to what undoing did). */
interface Inflicted {
  detail: string;
  undo: () => Promise<string>;
}

/** Carries one fault out; returns how to undo it and what was done. */
async function inflict(c: Cluster, f: Fault): Promise<Inflicted> {
  const pid = () => c.process(f.target).pid;
  switch (f.kind) {
    case "node_kill":
    case "dispatcher_restart": {
      const old = pid();
      c.signal(f.target, "SIGKILL");
      return {
        detail: `kill -9 ${f.target} (pid ${old})`,
        undo: async () => {
          const t0 = Date.now();
          const p = await c.restart(f.target);
          return `${f.target} restarted as pid ${p.pid}, ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`;
        },
      };
    }
    case "node_stop":
    case "origin_stop": {
      c.signal(f.target, "SIGSTOP");
      return {
        detail: `SIGSTOP ${f.target} (pid ${pid()})`,
        undo: async () => {
          c.signal(f.target, "SIGCONT");
          return `SIGCONT ${f.target} after ${f.durationS} s`;
        },
      };
    }
    case "purge": {
      // The target node purges its cache and every other member's (server/node/purge.ts).
      const admin = c.process(f.target).admin;
      if (!admin) throw new Error(`${f.target} has no control API to purge through`);
      const a = await c.request({
        url: `${admin}/purge`,
        method: "POST",
        json: { all: true },
        timeoutMs: 10_000,
      });
      const answer = `POST /purge {"all":true} to ${f.target}: ${a.status ?? a.error ?? "no answer"} ${a.body.trim().slice(0, 200)}`;
      return {
        detail: answer,
        // A purge that not every member carried out is the fault's failure (the report's verdict).
        undo: () => (a.status === 200 ? Promise.resolve("purged") : Promise.reject(new Error(answer))),
      };
    }
    case "link_loss": {
      const pct = f.lossPercent ?? 10;
      await nft(c, lossBurstRules(f.target, pct));
      return {
        detail: `${pct}% loss on ${f.target}'s link`,
        undo: async () => {
          await nft(c, `delete table bridge ${CHAOS_NFT_TABLE}`);
          return `loss on ${f.target}'s link removed after ${f.durationS} s`;
        },
      };
    }
  }
}

/** Seconds on the replay's clock, counted from its start; waits end early when `stop` aborts. */
export class ReplayClock {
  constructor(
    /** The replay's start on the wall clock (ms since the epoch). */
    readonly startEpoch: number,
    private readonly stop: AbortSignal,
  ) {}

  now(): number {
    return (Date.now() - this.startEpoch) / 1000;
  }

  /** Waits until `s` seconds after the replay's start; rejects when `stop` aborts. */
  async until(s: number): Promise<void> {
    const ms = this.startEpoch + s * 1000 - Date.now();
    if (ms > 0) await sleep(ms, undefined, { signal: this.stop });
  }
}

/** A fault carried out and not yet undone; undone once, however often asked. */
class FaultInProgress {
  private detail: string;
  private failure: string | undefined;
  private undone = false;

  constructor(
    private readonly fault: Fault,
    private readonly startedS: number,
    private readonly inflicted: Inflicted,
  ) {
    this.detail = inflicted.detail;
  }

  async undo(): Promise<void> {
    if (this.undone) return;
    this.undone = true;
    try {
      this.detail = `${this.inflicted.detail}; ${await this.inflicted.undo()}`;
    } catch (err) {
      this.failure = (err as Error).message.split("\n")[0];
    }
  }

  event(endedS: number): FaultEvent {
    return {
      fault: this.fault,
      startedS: this.startedS,
      endedS,
      detail: this.detail,
      ...(this.failure ? { failure: this.failure } : {}),
    };
  }
}

/** Carries out the planned faults one after the other and keeps what each did (events). */
export class FaultRunner {
  readonly events: FaultEvent[] = [];
  private active: FaultInProgress | undefined;

  constructor(
    private readonly c: Cluster,
    private readonly say: (line: string) => void,
  ) {}

  /**
   * Each fault at its time on the replay's clock, for its duration; stops before the next one
   * once the replay ended. Rejects when the clock's stop signal aborts a wait.
   */
  async runAll(planned: readonly Fault[], clock: ReplayClock, replayEnded: () => boolean): Promise<void> {
    for (const f of planned) {
      await clock.until(f.atS);
      if (replayEnded()) break;
      await this.runOne(f, clock);
    }
  }

  private async runOne(f: Fault, clock: ReplayClock): Promise<void> {
    const startedS = clock.now();
    const inflicted = await inflict(this.c, f);
    this.say(`  [${startedS.toFixed(1)} s] #${f.index} ${describeFault(f)}: ${inflicted.detail}`);
    const active = new FaultInProgress(f, startedS, inflicted);
    this.active = active;
    try {
      await clock.until(f.atS + f.durationS);
    } finally {
      await active.undo();
      this.active = undefined;
      const ev = active.event(clock.now());
      this.events.push(ev);
      this.say(
        `  [${ev.endedS.toFixed(1)} s] #${f.index} ends: ${ev.detail}${ev.failure ? ` (FAILED: ${ev.failure})` : ""}`,
      );
    }
  }

  /** Undoes the fault in progress, if any (the run ends early). */
  async undoActive(): Promise<void> {
    await this.active?.undo().catch(() => {});
  }
}
