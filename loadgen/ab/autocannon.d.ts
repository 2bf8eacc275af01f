// The part of autocannon's API the single-URL mode uses (the package ships no types).
declare module "autocannon" {
  import type { EventEmitter } from "node:events";

  interface AutocannonRequest {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    onResponse?: (
      status: number,
      body: string,
      context: unknown,
      headers: Record<string, string | string[]>,
    ) => void;
  }

  interface AutocannonOptions {
    url: string;
    connections?: number;
    duration?: number;
    amount?: number;
    pipelining?: number;
    /** Seconds, >= 1. */
    timeout?: number;
    method?: string;
    headers?: Record<string, string>;
    requests?: AutocannonRequest[];
    excludeErrorStats?: boolean;
    /** Called with each connection's client before it connects (internals: see ab/worker.ts). */
    setupClient?: (client: never) => void;
  }

  interface AutocannonResult {
    errors: number;
    timeouts: number;
    mismatches: number;
    non2xx: number;
    duration: number;
    start: Date;
    finish: Date;
    statusCodeStats: Record<string, { count: number }>;
    totalCompletedRequests?: number;
    totalRequests?: number;
    totalBytes?: number;
  }

  interface Instance extends EventEmitter {
    stop(): void;
  }

  function autocannon(
    opts: AutocannonOptions,
    cb: (err: Error | null, result: AutocannonResult) => void,
  ): Instance;

  export default autocannon;
}
