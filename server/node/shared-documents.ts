// The documents of a node with data-path workers (node --workers N): this (the main) thread
// owns the node's one cache in front of its one source (server/store/shared-cache.ts), and
// each worker's store is an L1 in front of it, on a MessageChannel of its own. So a document
// is loaded once and held once per node; /stats, /metrics and purges of the documents are
// this thread's (the owner's cache stats count the workers' L1 hits, which they report).
import { MessageChannel, type MessagePort } from "node:worker_threads";
import type { Registry } from "prom-client";
import { createDocCache } from "../cache/doc-cache.js";
import { DocStore } from "../store/doc-store.js";
import { CacheOwner, sharedBodies } from "../store/shared-cache.js";
import type { DocSource } from "../source/source.js";
import { cachePolicyOf, openSource, type NodeConfig } from "./node.js";
import { registerDocumentMetrics, registerStoreMetrics } from "./metrics.js";

export class SharedDocuments {
  private constructor(
    readonly store: DocStore,
    readonly owner: CacheOwner,
    private readonly source: DocSource,
  ) {}

  static async open(cfg: NodeConfig): Promise<SharedDocuments> {
    const source = await openSource(cfg);
    const store = new DocStore(createDocCache(cachePolicyOf(cfg), cfg.cacheBytes), sharedBodies(source), {
      ttlMs: cfg.revalidateTtlMs ?? 0,
      precompressed: cfg.precompressed ?? [],
    });
    return new SharedDocuments(store, new CacheOwner(store), source);
  }

  /** A port for a new worker's OwnerClient: the owner serves the other end. Transfer it. */
  connectWorker(): MessagePort {
    const { port1, port2 } = new MessageChannel();
    this.owner.attach(port1);
    return port2;
  }

  registerMetrics(registry: Registry): void {
    registerDocumentMetrics(registry, this.store.cache, this.store);
    registerStoreMetrics(registry, this.store);
  }

  /** The /stats fields about documents, for the node as a whole. */
  snapshot(): Record<string, unknown> {
    const { cache } = this.store;
    return {
      cache: { policy: cache.policy, ...cache.stats() },
      store: this.store.snapshot(),
      source: this.source.describe,
      sourceStats: this.source.stats(),
      sharedCache: this.owner.stats(),
    };
  }

  async close(): Promise<void> {
    this.owner.close();
    await this.source.close();
  }
}
