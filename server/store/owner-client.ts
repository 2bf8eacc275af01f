// A worker's client of the node's cache owner (shared-cache.ts has the design): the DocSource
// of the worker's DocStore, whose cache is the worker's L1. A miss asks the owner over a
// MessagePort; the answer's document shares the owner's bytes. The client reports the L1's hits
// to the owner, applies the owner's drops and purges to the store, and loads what the owner
// does not hold in memory (large files) from the worker's own fallback source.
import type { MessagePort } from "node:worker_threads";
import type { ContentCoding, Doc } from "../http/doc.js";
import type { Lookup } from "../source/source.js";
import { attachSiblings, type DatedSource, type DocStore } from "./doc-store.js";
import {
  MAX_HIT_COUNT,
  MAX_PENDING_LOADS,
  MAX_REPORT_KEYS,
  parseToWorker,
  sameVersion,
  type Answer,
  type ToOwner,
} from "./shared-wire.js";
import type { DocSource } from "../source/source.js";

/** How long L1 hits wait before they are reported (ms). */
export const HIT_REPORT_MS = 50;
/** Paths remembered as "large: load locally". */
const MAX_LOCAL_PATHS = 4096;

export interface OwnerClientOptions {
  /** Hits are reported after this long (ms), or at once when `reportKeys` keys have hits. */
  reportMs?: number;
  reportKeys?: number;
  /** Loads that may wait for the owner at once; more are error lookups (500). */
  maxPending?: number;
}

export interface OwnerClientStats {
  ownerLoads: number;
  /** Answers whose document the owner does not hold: served, not cached. */
  notHeld: number;
  localLoads: number;
  hitReports: number;
  reportedHits: number;
  dropMessages: number;
  droppedEntries: number;
  purges: number;
  /** Loads failed because too many waited, or the owner was gone. */
  failedLoads: number;
}

const OWNER_GONE: Lookup = { kind: "error", status: 500, reason: "cache owner gone" };
const TOO_MANY: Lookup = { kind: "error", status: 500, reason: "cache owner: too many loads waiting" };

export class OwnerClient implements DatedSource {
  readonly describe: string;
  private readonly pending = new Map<number, (a: Answer | Lookup) => void>();
  private nextId = 0;
  private store: DocStore | null = null;
  private stopHits: (() => void) | null = null;
  private readonly hits = new Map<string, number>();
  private reportTimer: NodeJS.Timeout | null = null;
  /** When the owner last validated each document it handed over (held ones only). */
  private readonly times = new WeakMap<Doc, number>();
  /** Paths the owner answered "local" for, oldest first. */
  private readonly localPaths = new Set<string>();
  /** The owner's sibling codings, for documents loaded here. */
  private precompressed: readonly ContentCoding[] = [];
  private gone = false;
  private readonly reportMs: number;
  private readonly reportKeys: number;
  private readonly maxPending: number;
  private readonly counters: OwnerClientStats = {
    ownerLoads: 0,
    notHeld: 0,
    localLoads: 0,
    hitReports: 0,
    reportedHits: 0,
    dropMessages: 0,
    droppedEntries: 0,
    purges: 0,
    failedLoads: 0,
  };

  constructor(
    private readonly port: MessagePort,
    private readonly fallback: DocSource,
    opts: OwnerClientOptions = {},
  ) {
    this.describe = `cache owner (large files: ${fallback.describe})`;
    this.reportMs = opts.reportMs ?? HIT_REPORT_MS;
    this.reportKeys = Math.min(opts.reportKeys ?? MAX_REPORT_KEYS, MAX_REPORT_KEYS);
    this.maxPending = Math.min(opts.maxPending ?? MAX_PENDING_LOADS, MAX_PENDING_LOADS);
    port.on("message", (m: unknown) => this.onMessage(m));
    port.on("close", () => this.ownerGone());
    // Referenced only while loads wait (ask), so an idle client does not keep the thread alive.
    port.unref();
  }

  /**
   * The worker's store, whose cache is the L1: its hits are reported, the owner's drops and
   * purges applied to it. Its documents come with their variants from the owner, so the store
   * must not look for siblings itself (that would load them through the owner as documents).
   */
  bind(store: DocStore): void {
    if (store.source !== this) throw new Error("OwnerClient.bind: the store's source is another one");
    if (store.precompressed.length > 0) {
      throw new Error(
        "OwnerClient.bind: a worker's store takes no precompressed codings (the owner's apply)",
      );
    }
    this.stopHits?.();
    this.store = store;
    this.stopHits = store.cache.onHit((key) => this.noteHit(key));
  }

  async load(path: string): Promise<Lookup> {
    if (this.localPaths.has(path)) return this.loadHere(path);
    return this.fromAnswer(path, await this.ask(path));
  }

  /** Asks the owner: "unchanged" when it holds the same version (with its validation time). */
  async revalidate(path: string, cached: Doc): Promise<Lookup | { kind: "unchanged" }> {
    const r = await this.load(path);
    if (r.kind !== "doc" || !sameVersion(cached, r.doc)) return r;
    const at = this.times.get(r.doc);
    if (at === undefined) return r;
    this.times.set(cached, at);
    return { kind: "unchanged" };
  }

  validatedAt(doc: Doc): number | undefined {
    return this.times.get(doc);
  }

  stats(): Record<string, number> {
    return { ...this.fallback.stats(), ...this.counters, pendingLoads: this.pending.size };
  }

  /** Reports the last hits, fails the loads still waiting, closes the port and the fallback. */
  async close(): Promise<void> {
    this.flushHits();
    this.stopHits?.();
    this.stopHits = null;
    this.ownerGone();
    this.port.close();
    await this.fallback.close();
  }

  private ask(path: string): Promise<Answer | Lookup> {
    if (this.gone || this.pending.size >= this.maxPending) {
      this.counters.failedLoads++;
      return Promise.resolve(this.gone ? OWNER_GONE : TOO_MANY);
    }
    this.counters.ownerLoads++;
    const id = this.nextId++;
    return new Promise((resolve) => {
      if (this.pending.size === 0) this.port.ref();
      this.pending.set(id, resolve);
      this.port.postMessage({ op: "load", id, path } satisfies ToOwner);
    });
  }

  private async fromAnswer(path: string, a: Answer | Lookup): Promise<Lookup> {
    if (a.kind === "local") {
      this.precompressed = a.precompressed;
      this.rememberLocal(path);
      return this.loadHere(path);
    }
    if (a.kind !== "doc") return a;
    if ("held" in a && a.held && a.validatedAt !== null) this.times.set(a.doc, a.validatedAt);
    else {
      // The owner does not hold it (purged or evicted meanwhile, or too large): neither may L1.
      this.counters.notHeld++;
      this.store?.drop([path]);
    }
    return { kind: "doc", doc: a.doc, cached: "cached" in a && a.cached };
  }

  /** A document the owner does not hold in memory, from the worker's own source. */
  private async loadHere(path: string): Promise<Lookup> {
    this.counters.localLoads++;
    const r = await this.fallback.load(path);
    if (r.kind !== "doc") return r;
    const doc = await attachSiblings(this.fallback, r.doc, this.precompressed);
    if (doc.body !== null) {
      // Small (now): served, but cached only through the owner, whom the next request asks.
      this.localPaths.delete(path);
      this.store?.drop([path]);
    }
    return { kind: "doc", doc };
  }

  private rememberLocal(path: string): void {
    this.localPaths.delete(path);
    this.localPaths.add(path);
    if (this.localPaths.size <= MAX_LOCAL_PATHS) return;
    const oldest = this.localPaths.values().next();
    if (oldest.done !== true) this.localPaths.delete(oldest.value);
  }

  private onMessage(m: unknown): void {
    const msg = parseToWorker(m);
    if (msg === null) return;
    switch (msg.op) {
      case "answer": {
        const resolve = this.pending.get(msg.id);
        if (resolve === undefined) return;
        this.settle(msg.id, resolve, msg.answer);
        return;
      }
      case "drop":
        this.counters.dropMessages++;
        this.counters.droppedEntries += this.store?.drop(msg.keys) ?? 0;
        return;
      case "purge":
        this.counters.purges++;
        this.store?.purge(msg.target);
        return;
    }
  }

  private settle(id: number, resolve: (a: Answer | Lookup) => void, a: Answer | Lookup): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.port.unref();
    resolve(a);
  }

  /** The port closed (or this client did): every waiting load ends as an error, and later ones. */
  private ownerGone(): void {
    this.gone = true;
    if (this.reportTimer !== null) clearTimeout(this.reportTimer);
    this.reportTimer = null;
    this.hits.clear();
    for (const [id, resolve] of [...this.pending]) {
      this.counters.failedLoads++;
      this.settle(id, resolve, OWNER_GONE);
    }
  }

  private noteHit(key: string): void {
    if (this.gone) return;
    this.hits.set(key, Math.min((this.hits.get(key) ?? 0) + 1, MAX_HIT_COUNT));
    if (this.hits.size >= this.reportKeys) this.flushHits();
    else if (this.reportTimer === null) {
      this.reportTimer = setTimeout(() => this.flushHits(), this.reportMs);
      this.reportTimer.unref();
    }
  }

  /** Posts the hits counted since the last report. */
  private flushHits(): void {
    if (this.reportTimer !== null) clearTimeout(this.reportTimer);
    this.reportTimer = null;
    if (this.gone || this.hits.size === 0) return;
    const keys = [...this.hits.keys()];
    const counts = [...this.hits.values()];
    this.hits.clear();
    this.counters.hitReports++;
    for (const c of counts) this.counters.reportedHits += c;
    this.port.postMessage({ op: "hits", keys, counts } satisfies ToOwner);
  }
}
