// Prometheus metrics that mirror the data path's plain counters: the data path bumps numbers
// (cheap), and these read them at each scrape. Shared by the node, its modes and the dispatcher.
import { Counter, Gauge, type Registry } from "prom-client";

/** A counter whose value is copied from `read()` at each scrape. */
export function mirrorCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A gauge whose value is read at each scrape. */
export function mirrorGauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}
