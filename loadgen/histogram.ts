// A log-linear latency histogram (pure, no I/O) with HdrHistogram's bucket layout at 3
// significant digits: values below 2048 are exact, above that each power of two is split
// into 1024 equal sub-buckets, so any recorded value is known to within 1/1024 (0.1%).
// Counts are stored sparsely (a Map from bucket index), so a histogram that saw a few
// distinct latencies (per URL, per second) costs a few entries, not the 22 x 1024 array.
//
// Percentiles, mean, standard deviation and the `.hgrm` percentile-distribution text follow
// HdrHistogram's definitions exactly (highest equivalent value for percentiles, median
// equivalent value for the mean), so the text is the one wrk2 and HdrHistogram print and
// HistogramLogAnalyzer / hdr-histogram-js users expect (loadgen/histogram.test.ts compares
// it with hdr-histogram-js byte for byte).

/** Sub-buckets per power of two (HdrHistogram's subBucketCount for 3 significant digits). */
const SUB_BUCKETS = 2048;
const HALF = SUB_BUCKETS / 2;
/** Largest trackable value (microseconds: one hour); larger values are recorded as this. */
export const HIGHEST_TRACKABLE = 3_600_000_000;
/** HdrHistogram's bucket count for HIGHEST_TRACKABLE (the `.hgrm` footer reports it). */
const BUCKET_COUNT = (() => {
  let smallestUntrackable = SUB_BUCKETS;
  let n = 1;
  while (smallestUntrackable <= HIGHEST_TRACKABLE) {
    smallestUntrackable *= 2;
    n++;
  }
  return n;
})();

/** Bucket index of a non-negative integer value. */
export function indexOf(value: number): number {
  if (value < SUB_BUCKETS) return value;
  // e: the power-of-two scale at which value / 2^e falls in [HALF, SUB_BUCKETS).
  let e = Math.floor(Math.log2(value)) - 10;
  while (Math.floor(value / 2 ** e) >= SUB_BUCKETS) e++;
  while (Math.floor(value / 2 ** e) < HALF) e--;
  return SUB_BUCKETS + (e - 1) * HALF + (Math.floor(value / 2 ** e) - HALF);
}

/** Lowest value and width of bucket `index`. */
export function bucketRange(index: number): { low: number; width: number } {
  if (index < SUB_BUCKETS) return { low: index, width: 1 };
  const k = index - SUB_BUCKETS;
  const e = Math.floor(k / HALF) + 1;
  return { low: ((k % HALF) + HALF) * 2 ** e, width: 2 ** e };
}

const highestEquivalent = (index: number) => {
  const { low, width } = bucketRange(index);
  return low + width - 1;
};
const medianEquivalent = (index: number) => {
  const { low, width } = bucketRange(index);
  return low + Math.floor(width / 2);
};

/** What crosses a worker_threads message or a JSON file: [index, count] pairs. */
export interface EncodedHistogram {
  counts: number[];
  max: number;
}

export class Histogram {
  private readonly counts = new Map<number, number>();
  private total = 0;
  private maxValue = 0;

  get totalCount(): number {
    return this.total;
  }

  /** The exact largest value recorded (after clamping to HIGHEST_TRACKABLE). */
  get max(): number {
    return this.maxValue;
  }

  record(value: number, count = 1): void {
    const v = Math.min(HIGHEST_TRACKABLE, Math.max(0, Math.round(value)));
    const i = indexOf(v);
    this.counts.set(i, (this.counts.get(i) ?? 0) + count);
    this.total += count;
    if (v > this.maxValue) this.maxValue = v;
  }

  add(other: Histogram | EncodedHistogram): void {
    const e = other instanceof Histogram ? other.encode() : other;
    for (let j = 0; j + 1 < e.counts.length; j += 2) {
      const i = e.counts[j]!;
      const c = e.counts[j + 1]!;
      this.counts.set(i, (this.counts.get(i) ?? 0) + c);
      this.total += c;
    }
    if (e.max > this.maxValue) this.maxValue = e.max;
  }

  encode(): EncodedHistogram {
    const counts: number[] = [];
    for (const i of this.sortedIndexes()) counts.push(i, this.counts.get(i)!);
    return { counts, max: this.maxValue };
  }

  static decode(e: EncodedHistogram): Histogram {
    const h = new Histogram();
    h.add(e);
    return h;
  }

  private sortedIndexes(): number[] {
    return [...this.counts.keys()].sort((a, b) => a - b);
  }

  /** HdrHistogram's getValueAtPercentile (0..100): the highest value of the bucket reached. */
  valueAtPercentile(percentile: number): number {
    if (this.total === 0) return 0;
    const wanted = Math.max(1, Math.floor((Math.min(percentile, 100) / 100) * this.total + 0.5));
    let seen = 0;
    for (const i of this.sortedIndexes()) {
      seen += this.counts.get(i)!;
      if (seen >= wanted) return percentile === 0 ? bucketRange(i).low : highestEquivalent(i);
    }
    return 0;
  }

  get mean(): number {
    if (this.total === 0) return 0;
    let sum = 0;
    for (const [i, c] of this.counts) sum += medianEquivalent(i) * c;
    return sum / this.total;
  }

  stdDeviation(mean = this.mean): number {
    if (this.total === 0) return 0;
    let sq = 0;
    for (const [i, c] of this.counts) sq += (medianEquivalent(i) - mean) ** 2 * c;
    return Math.sqrt(sq / this.total);
  }

  /**
   * The `.hgrm` percentile distribution (HdrHistogram's outputPercentileDistribution): one
   * line per percentile step, steps halving in size every half distance to 100%, values
   * divided by `unitScale` (1000: microseconds printed as milliseconds, as wrk2 does).
   */
  percentileDistribution(unitScale = 1000, ticksPerHalfDistance = 5): string {
    const value = fixed(12, 3);
    const pct = fixed(2, 12);
    const inv = fixed(14, 2);
    const int = (w: number) => (n: number) => String(n).padStart(w);
    let out = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n";
    const line = (v: number, level: number, count: number, last: boolean) => {
      out += `${value(v / unitScale)} ${pct(level / 100)} ${int(10)(count)}`;
      out += last ? "\n" : ` ${inv(1 / (1 - level / 100))}\n`;
    };
    let level = 0;
    const nextLevel = () => {
      const ticks = ticksPerHalfDistance * 2 ** (Math.floor(Math.log2(100 / (100 - level))) + 1);
      level += 100 / ticks;
    };
    let seen = 0;
    let lastIndex = 0;
    for (const i of this.sortedIndexes()) {
      seen += this.counts.get(i)!;
      lastIndex = i;
      if (seen >= this.total) {
        // The last bucket: HdrHistogram's iterator emits the current step once, then 100%.
        line(highestEquivalent(i), level, seen, level >= 100);
        nextLevel();
        break;
      }
      while ((100 * seen) / this.total >= level) {
        line(highestEquivalent(i), level, seen, level >= 100);
        nextLevel();
      }
    }
    if (this.total > 0) line(highestEquivalent(lastIndex), 100, this.total, true);
    const mean = this.mean;
    const f = fixed(12, 3);
    out += `#[Mean    = ${f(mean / unitScale)}, StdDeviation   = ${f(this.stdDeviation(mean) / unitScale)}]\n`;
    out += `#[Max     = ${f(this.maxValue / unitScale)}, Total count    = ${int(12)(this.total)}]\n`;
    out += `#[Buckets = ${int(12)(BUCKET_COUNT)}, SubBuckets     = ${int(12)(SUB_BUCKETS)}]\n`;
    return out;
  }
}

function fixed(width: number, digits: number): (x: number) => string {
  const nf = new Intl.NumberFormat("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
    useGrouping: false,
  });
  return (x) => nf.format(x).padStart(width);
}

/** One row of a parsed `.hgrm` file. */
export interface HgrmRow {
  value: number;
  percentile: number;
  totalCount: number;
}

export interface ParsedHgrm {
  rows: HgrmRow[];
  mean: number;
  stdDeviation: number;
  max: number;
  totalCount: number;
}

/**
 * Reads a `.hgrm` percentile distribution back (ours, wrk2's or HdrHistogram's): the
 * rows and the Mean/StdDeviation/Max/Total count footer. Throws on anything else.
 */
export function parseHgrm(text: string): ParsedHgrm {
  const rows: HgrmRow[] = [];
  const footer: Record<string, number> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("Value")) continue;
    if (line.startsWith("#[")) {
      for (const part of line.slice(2, -1).split(",")) {
        const [k, v] = part.split("=").map((s) => s.trim());
        if (k && v !== undefined) footer[k] = Number(v);
      }
      continue;
    }
    const cols = line.split(/\s+/);
    if (cols.length !== 3 && cols.length !== 4) throw new Error(`.hgrm: bad row '${line}'`);
    const [value, percentile, totalCount] = cols.slice(0, 3).map(Number) as [number, number, number];
    if (![value, percentile, totalCount].every(Number.isFinite)) throw new Error(`.hgrm: bad row '${line}'`);
    rows.push({ value, percentile, totalCount });
  }
  const need = ["Mean", "StdDeviation", "Max", "Total count"];
  for (const k of need) if (!Number.isFinite(footer[k])) throw new Error(`.hgrm: footer lacks ${k}`);
  return {
    rows,
    mean: footer["Mean"]!,
    stdDeviation: footer["StdDeviation"]!,
    max: footer["Max"]!,
    totalCount: footer["Total count"]!,
  };
}
