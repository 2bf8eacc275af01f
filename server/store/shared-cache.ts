// One document cache per node, shared by its data-path worker threads (`node --workers N`).
// - Owner (main thread): the node's one DocStore (cache + source: single-flight, TTL, purge).
//   Its source is wrapped in sharedBodies(), which copies each body (and each precompressed
//   variant's) into a SharedArrayBuffer once at load, so an answer posted to a worker shares
//   the bytes instead of copying them.
// - L1 (each worker): a DocStore whose cache holds only documents the owner holds, and whose
//   source is an OwnerClient (owner-client.ts) that asks the owner on a miss.
// - Hit reports: L1 hits never reach the owner, so a worker posts them (key -> count) every
//   ~50 ms or at MAX_REPORT_KEYS keys; the owner counts them as hits and ranks the documents
//   (DocCache.touch), so its LRU order, LFU frequencies and cache stats are the node's.
// - Invalidation: each key the owner's cache drops or replaces goes to every worker (batched,
//   and always flushed before the next answer), which drops it from its L1 and detaches its load
//   in flight. A port delivers in order, so a drop posted after an answer arrives after it; an
//   answer whose document the owner does not hold (any more) says so and is not cached.
// - Purge: the owner purges its store, then sends the target to every worker's store.
// - TTL: an answer carries when the owner last validated the document; the L1 copy expires with
//   the owner's, and the worker's revalidation asks the owner (one check per node).
// - Large files (body null, read on demand) cannot cross threads: the owner answers "local" and
//   the worker loads them from its own fallback source (directly, next time).
import type { MessagePort } from "node:worker_threads";
import type { Doc, DocVariants } from "../http/doc.js";
import type { DocSource, Lookup } from "../source/source.js";
import type { RemovalReason } from "../cache/doc-cache.js";
import type { DocStore, PurgeTarget } from "./doc-store.js";
import {
  MAX_PENDING_LOADS,
  MAX_REPORT_KEYS,
  parseToOwner,
  toWire,
  type ToOwner,
  type ToWorker,
  type WireAnswer,
} from "./shared-wire.js";

/** Dropped keys pending for the workers beyond which they are told to drop everything. */
const MAX_DROP_KEYS = 64 * 1024;

/** `source` with every document body (and variant body) copied once into a SharedArrayBuffer. */
export function sharedBodies(source: DocSource): DocSource {
  const revalidate = source.revalidate?.bind(source);
  return {
    describe: source.describe,
    load: (path) => source.load(path).then(sharedLookup),
    ...(revalidate && {
      revalidate: (path: string, doc: Doc) =>
        revalidate(path, doc).then((r) => (r.kind === "unchanged" ? r : sharedLookup(r))),
    }),
    stats: () => source.stats(),
    close: () => source.close(),
  };
}

function sharedLookup(r: Lookup): Lookup {
  return r.kind === "doc" ? { kind: "doc", doc: sharedDoc(r.doc) } : r;
}

/** The document with its bodies on SharedArrayBuffers (itself if they are already). */
export function sharedDoc(doc: Doc): Doc {
  const body = doc.body === null ? null : sharedBuffer(doc.body);
  const v = doc.variants;
  let variants: DocVariants | null = v;
  if (v !== null) {
    variants = { codings: v.codings };
    for (const c of v.codings) if (v[c] !== undefined) variants = { ...variants, [c]: sharedDoc(v[c]) };
  }
  const same = body === doc.body && (v === null || v.codings.every((c) => variants?.[c] === v[c]));
  return same ? doc : { ...doc, body, variants };
}

function sharedBuffer(b: Buffer): Buffer {
  if (b.buffer instanceof SharedArrayBuffer) return b;
  const out = Buffer.from(new SharedArrayBuffer(b.length));
  b.copy(out);
  return out;
}

export interface CacheOwnerStats {
  workers: number;
  /** Loads asked by workers (L1 misses and revalidations). */
  loads: number;
  /** Loads refused: the worker had MAX_PENDING_LOADS waiting. */
  busy: number;
  hitReports: number;
  /** Reported hits on documents the owner holds (counted in its cache stats). */
  reportedHits: number;
  /** Reported hits on documents the owner no longer holds (a drop was on its way). */
  lateHits: number;
  /** Keys sent to the workers as dropped. */
  droppedKeys: number;
  dropMessages: number;
}

interface WorkerLink {
  readonly port: MessagePort;
  /** Loads of this worker being answered. */
  inflight: number;
  attached: boolean;
  stopListening: () => void;
}

/** The node's cache owner (main thread): answers the workers' clients; see the top of this file. */
export class CacheOwner {
  private readonly links = new Map<MessagePort, WorkerLink>();
  private readonly dropped = new Set<string>();
  private dropAll = false;
  private flushTimer: NodeJS.Immediate | null = null;
  private readonly stopRemovals: () => void;
  private closed = false;
  private readonly counters: Omit<CacheOwnerStats, "workers"> = {
    loads: 0,
    busy: 0,
    hitReports: 0,
    reportedHits: 0,
    lateHits: 0,
    droppedKeys: 0,
    dropMessages: 0,
  };

  constructor(readonly store: DocStore) {
    this.stopRemovals = store.cache.onRemove((key, reason) => this.noteRemoval(key, reason));
  }

  /** Serves one worker's client on `port` until the port closes (or detach/close). */
  attach(port: MessagePort): void {
    if (this.closed || this.links.has(port)) return;
    const link: WorkerLink = { port, inflight: 0, attached: true, stopListening: () => undefined };
    const onMessage = (m: unknown): void => this.onMessage(link, m);
    const onClose = (): void => this.detach(port);
    port.on("message", onMessage);
    port.on("close", onClose);
    // The node's servers keep the thread alive, not an idle port.
    port.unref();
    link.stopListening = () => {
      port.off("message", onMessage);
      port.off("close", onClose);
    };
    this.links.set(port, link);
  }

  /** Stops serving `port` and forgets it (answers still in flight for it are dropped). */
  detach(port: MessagePort): void {
    const link = this.links.get(port);
    if (link === undefined) return;
    link.attached = false;
    link.stopListening();
    this.links.delete(port);
  }

  /** Purges the node: the owner's store, then every worker's; the owner's entries dropped. */
  purge(target: PurgeTarget): number {
    const n = this.store.purge(target);
    this.flushDrops();
    this.broadcast({ op: "purge", target });
    return n;
  }

  stats(): CacheOwnerStats {
    return { workers: this.links.size, ...this.counters };
  }

  /** Detaches and closes every worker's port (their pending loads then fail). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.flushDrops();
    this.stopRemovals();
    for (const link of [...this.links.values()]) {
      this.detach(link.port);
      link.port.close();
    }
  }

  private onMessage(link: WorkerLink, m: unknown): void {
    const msg: ToOwner | null = parseToOwner(m);
    if (msg === null) return;
    if (msg.op === "load") this.answerLoad(link, msg.id, msg.path);
    else this.applyHits(msg.keys, msg.counts);
  }

  private answerLoad(link: WorkerLink, id: number, path: string): void {
    this.counters.loads++;
    if (link.inflight >= MAX_PENDING_LOADS) {
      this.counters.busy++;
      const answer: WireAnswer = { kind: "error", status: 500, reason: "cache owner: too many loads" };
      link.port.postMessage({ op: "answer", id, answer } satisfies ToWorker);
      return;
    }
    link.inflight++;
    const found = this.store.lookup(path);
    if (!(found instanceof Promise)) this.answer(link, id, path, found, true);
    else void found.then((r) => this.answer(link, id, path, r, false));
  }

  private answer(link: WorkerLink, id: number, path: string, r: Lookup, cached: boolean): void {
    link.inflight--;
    if (!link.attached) return;
    // Drops noted so far go first: the worker then never caches what the owner dropped before.
    this.flushDrops();
    link.port.postMessage({ op: "answer", id, answer: this.wireAnswer(path, r, cached) } satisfies ToWorker);
  }

  private wireAnswer(path: string, r: Lookup, cached: boolean): WireAnswer {
    if (r.kind !== "doc") return r;
    const doc = toWire(r.doc);
    if (doc === null) return { kind: "local", precompressed: [...this.store.precompressed] };
    const held = this.store.cache.peek(path) === r.doc;
    const validatedAt = held ? (this.store.validatedAtOf(r.doc) ?? null) : null;
    return { kind: "doc", doc, held, cached, validatedAt };
  }

  private applyHits(keys: readonly string[], counts: readonly number[]): void {
    this.counters.hitReports++;
    const n = Math.min(keys.length, MAX_REPORT_KEYS);
    for (let i = 0; i < n; i++) {
      const key = keys[i];
      const count = counts[i];
      if (key === undefined || count === undefined) continue;
      if (this.store.cache.touch(key, count)) this.counters.reportedHits += count;
      else this.counters.lateHits += count;
    }
  }

  private noteRemoval(key: string, reason: RemovalReason): void {
    if (this.links.size === 0 || this.dropAll) return;
    if (reason === "clear" || this.dropped.size >= MAX_DROP_KEYS) {
      this.dropAll = true;
      this.dropped.clear();
    } else this.dropped.add(key);
    this.flushTimer ??= setImmediate(() => this.flushDrops());
  }

  /** Sends the dropped keys noted so far to every worker. */
  private flushDrops(): void {
    if (this.flushTimer !== null) clearImmediate(this.flushTimer);
    this.flushTimer = null;
    if (!this.dropAll && this.dropped.size === 0) return;
    const keys = this.dropAll ? "all" : [...this.dropped];
    this.counters.droppedKeys += keys === "all" ? 0 : keys.length;
    this.counters.dropMessages++;
    this.dropAll = false;
    this.dropped.clear();
    this.broadcast({ op: "drop", keys });
  }

  private broadcast(msg: ToWorker): void {
    for (const link of this.links.values()) link.port.postMessage(msg);
  }
}
