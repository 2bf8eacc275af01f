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

/** Label sets and their values, read at each scrape (e.g. one per node, or per reason). */
export type LabelledValues = Iterable<readonly [Record<string, string>, number]>;

/** A counter with labels whose values are copied from `read()` at each scrape. */
export function mirrorCounterBy(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => LabelledValues,
): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, n] of read()) this.inc(labels, n);
    },
  });
}

/** A gauge with labels whose values are read at each scrape (label sets not read are dropped). */
export function mirrorGaugeBy(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => LabelledValues,
): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, n] of read()) this.set(labels, n);
    },
  });
}

/** One label set per key (`label` = the key) with its count: e.g. drops by reason. */
export function byLabel<K extends string>(
  label: string,
  keys: readonly K[],
  counts: Readonly<Record<K, number>> | ((key: K) => number),
): LabelledValues {
  const value = typeof counts === "function" ? counts : (k: K) => counts[k];
  return keys.map((k) => [{ [label]: k }, value(k)] as const);
}
