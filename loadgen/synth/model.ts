// The synthetic workload model, pure and seeded: file sizes, popularity, their correlation
// and the request sequence. synth.ts writes the result to disk.
//
// Defaults reproduce the paper's trace (UC Berkeley CS Division, January 2001): 3,940,707
// requests to 87,425 files totalling about 6.6 GB, mean requested document 40 KB. Sizes
// follow SURGE (Barford & Crovella 1998): a lognormal body with a Pareto tail; popularity is
// Zipf-like. Two numbers are calibrated so the output hits the paper's means:
//  - the tail weight, so the mean file size is total/files (6.6 GiB / 87,425 = 81 KB);
//  - the size-popularity correlation (a Gaussian copula), so the mean size per *request* is
//    40 KiB: popular documents are smaller than the average file, as in real web logs.

export interface SynthParams {
  seed: number;
  /** Multiplies requests, files and total bytes (so mean sizes stay the same). */
  scale: number;
  requests: number;
  files: number;
  totalBytes: number;
  /** Mean body bytes per request (request-weighted mean document size). */
  requestMeanBytes: number;
  /** Zipf exponent: the r-th most popular file gets requests proportional to r^-alpha. */
  zipfAlpha: number;
  /** Lognormal body of ln(size): SURGE's mu and sigma. */
  bodyMu: number;
  bodySigma: number;
  /** Pareto tail from tailK bytes with exponent tailAlpha (SURGE), cut at maxFileBytes. */
  tailK: number;
  tailAlpha: number;
  maxFileBytes: number;
  /** Trace timestamps: start (Unix seconds) and span. */
  startTime: number;
  spanSeconds: number;
  /** Distinct client hosts in the trace. */
  hosts: number;
}

const GiB = 2 ** 30;
export const PAPER_TRACE: SynthParams = {
  seed: 1,
  scale: 1,
  requests: 3_940_707,
  files: 87_425,
  totalBytes: Math.round(6.6 * GiB),
  requestMeanBytes: 40 * 1024,
  zipfAlpha: 0.8,
  bodyMu: 9.357,
  bodySigma: 1.318,
  tailK: 133_000,
  tailAlpha: 1.1,
  maxFileBytes: 64 * 2 ** 20,
  startTime: 978_307_200, // 2001-01-01T00:00:00Z
  spanSeconds: 31 * 86_400,
  hosts: 5_000,
};

// ---- seeded PRNG: sfc32, seeded through splitmix32; one independent stream per purpose ----

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = 0) {
    const sm = splitmix32((seed >>> 0) ^ Math.imul(stream + 1, 0x27d4eb2d));
    this.a = sm();
    this.b = sm();
    this.c = sm();
    this.d = sm();
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    return ((this.nextU32() >>> 5) * 67108864 + (this.nextU32() >>> 6)) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

// ---- normal distribution ----

/** Standard normal CDF (Abramowitz & Stegun 7.1.26 on erf; |error| < 1.5e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-z * z);
  return x >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** Standard normal quantile (Acklam's rational approximation; relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
    );
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

// ---- sizes ----

/** Quantile of the size mixture: lognormal body below tailK (weight 1-pTail), Pareto above. */
export function sizeQuantile(
  u: number,
  pTail: number,
  p: SynthParams,
  bodyAtK = normalCdf((Math.log(p.tailK) - p.bodyMu) / p.bodySigma),
): number {
  if (u < 1 - pTail) {
    const v = Math.min((u / (1 - pTail)) * bodyAtK, 1 - 1e-12);
    return Math.exp(p.bodyMu + p.bodySigma * normalQuantile(Math.max(v, 1e-300)));
  }
  const v = (u - (1 - pTail)) / pTail;
  const cut = Math.pow(p.tailK / p.maxFileBytes, p.tailAlpha);
  return p.tailK / Math.pow(1 - v * (1 - cut), 1 / p.tailAlpha);
}

/**
 * Stratified sample of `files` sizes (ascending): one draw in each of `files` equal slices
 * of probability. The sample mean is then close to the distribution's, even for a heavy
 * tail and few files, while the seed still moves every size.
 */
export function stratifiedSizes(jitter: Float64Array, pTail: number, p: SynthParams): Float64Array {
  const n = jitter.length;
  const bodyAtK = normalCdf((Math.log(p.tailK) - p.bodyMu) / p.bodySigma);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = sizeQuantile((i + jitter[i]!) / n, pTail, p, bodyAtK);
    out[i] = Math.max(1, Math.min(p.maxFileBytes, Math.round(x)));
  }
  return out;
}

function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return xs.length ? s / xs.length : 0;
}

/** Bisection for an increasing function: the x in [lo, hi] with f(x) closest to target. */
function bisect(f: (x: number) => number, target: number, lo: number, hi: number, iterations = 60): number {
  if (f(lo) >= target) return lo;
  if (f(hi) <= target) return hi;
  for (let i = 0; i < iterations; i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) < target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

// ---- popularity ----

/** Requests per popularity rank (rank 0 most popular): Zipf, summing to `requests`; when
 *  there are at least as many requests as files, every file is requested at least once. */
export function zipfCounts(files: number, requests: number, alpha: number): Int32Array {
  const w = new Float64Array(files);
  let total = 0;
  for (let r = 0; r < files; r++) total += w[r] = Math.pow(r + 1, -alpha);
  const counts = new Int32Array(files);
  const rema: number[] = [];
  let assigned = 0;
  for (let r = 0; r < files; r++) {
    const exact = (requests * w[r]!) / total;
    counts[r] = Math.floor(exact);
    assigned += counts[r]!;
    rema.push(exact - counts[r]!);
  }
  // Largest remainders first; ties to the more popular rank.
  const order = rema.map((_, i) => i).sort((a, b) => rema[b]! - rema[a]! || a - b);
  for (let k = 0; assigned < requests; k++, assigned++) counts[order[k % files]!]!++;
  if (requests >= files) {
    // Lift zeros to 1, taking the requests from the most popular ranks.
    let deficit = 0;
    for (let r = 0; r < files; r++) {
      if (counts[r] === 0) {
        counts[r] = 1;
        deficit++;
      }
    }
    for (let r = 0; deficit > 0; r = (r + 1) % files) {
      if (counts[r]! > 1) {
        counts[r]!--;
        deficit--;
      }
    }
  }
  return counts;
}

/** Normal scores of the size ranks: z_i = Phi^-1((i + 0.5) / n). */
export function sizeScores(n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => normalQuantile((i + 0.5) / n));
}

/**
 * Orders files (indexes into the ascending size array) by popularity with a Gaussian
 * copula: score = rho * (-z_size) + sqrt(1 - rho^2) * noise; the highest score is rank 0.
 * rho > 0 makes popular files smaller.
 */
export function popularityOrder(noise: Float64Array, rho: number, z = sizeScores(noise.length)): Int32Array {
  const n = noise.length;
  const score = new Float64Array(n);
  const s = Math.sqrt(Math.max(0, 1 - rho * rho));
  for (let i = 0; i < n; i++) score[i] = -rho * z[i]! + s * noise[i]!;
  const order = Int32Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => score[b]! - score[a]! || a - b);
  return order;
}

function requestMean(sizes: Float64Array, counts: Int32Array, order: Int32Array): number {
  let bytes = 0;
  let reqs = 0;
  for (let r = 0; r < order.length; r++) {
    bytes += counts[r]! * sizes[order[r]!]!;
    reqs += counts[r]!;
  }
  return reqs ? bytes / reqs : 0;
}

/** Least-squares slope of log(count) against log(rank), over ranks with >= minCount requests. */
export function zipfSlope(countsByRank: ArrayLike<number>, minCount = 10): number {
  let n = 0;
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let sxy = 0;
  for (let r = 0; r < countsByRank.length; r++) {
    const c = countsByRank[r]!;
    if (c < minCount) continue;
    const x = Math.log(r + 1);
    const y = Math.log(c);
    n++;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  return n < 2 ? NaN : (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

// ---- the whole model ----

export interface SynthModel {
  params: SynthParams;
  /** After scaling. */
  files: number;
  requests: number;
  /** Per file id: size in bytes and requests. */
  sizes: Float64Array;
  requestCounts: Int32Array;
  /** Calibrated tail weight and size-popularity correlation. */
  tailFraction: number;
  rho: number;
  achieved: {
    totalBytes: number;
    meanFileBytes: number;
    requestMeanBytes: number;
    medianFileBytes: number;
    maxFileBytes: number;
  };
}

export function scaledCounts(p: SynthParams): { files: number; requests: number; totalBytes: number } {
  return {
    files: Math.max(1, Math.round(p.files * p.scale)),
    requests: Math.max(1, Math.round(p.requests * p.scale)),
    totalBytes: p.totalBytes * p.scale,
  };
}

export function buildModel(p: SynthParams): SynthModel {
  const { files, requests, totalBytes } = scaledCounts(p);
  const jitterRng = new Rng(p.seed, 1);
  const noiseRng = new Rng(p.seed, 2);
  const permRng = new Rng(p.seed, 3);
  const jitter = Float64Array.from({ length: files }, () => jitterRng.next());
  const noise = Float64Array.from({ length: files }, () => normalQuantile(Math.max(noiseRng.next(), 1e-300)));

  const targetFileMean = totalBytes / files;
  const tailFraction = bisect((t) => mean(stratifiedSizes(jitter, t, p)), targetFileMean, 1e-6, 0.999, 50);
  const sorted = stratifiedSizes(jitter, tailFraction, p);
  const counts = zipfCounts(files, requests, p.zipfAlpha);
  // A larger rho means smaller popular files: the request mean decreases as rho increases.
  const z = sizeScores(files);
  const rho = bisect(
    (r) => -requestMean(sorted, counts, popularityOrder(noise, r, z)),
    -p.requestMeanBytes,
    -0.999,
    0.999,
    40,
  );
  const order = popularityOrder(noise, rho, z);

  // File ids are a seeded permutation of size order, so names say nothing about size or rank.
  const perm = Int32Array.from({ length: files }, (_, i) => i);
  for (let i = files - 1; i > 0; i--) {
    const j = permRng.int(i + 1);
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  const sizes = new Float64Array(files);
  const requestCounts = new Int32Array(files);
  for (let i = 0; i < files; i++) sizes[perm[i]!] = sorted[i]!;
  for (let r = 0; r < files; r++) requestCounts[perm[order[r]!]!] = counts[r]!;

  const total = sorted.reduce((a, b) => a + b, 0);
  return {
    params: p,
    files,
    requests,
    sizes,
    requestCounts,
    tailFraction,
    rho,
    achieved: {
      totalBytes: total,
      meanFileBytes: total / files,
      requestMeanBytes: requestMean(sorted, counts, order),
      medianFileBytes: sorted[Math.floor(files / 2)]!,
      maxFileBytes: sorted[files - 1]!,
    },
  };
}

/** The request sequence: file ids, each repeated by its count, in seeded random order (IRM). */
export function requestSequence(model: SynthModel): Int32Array {
  const seq = new Int32Array(model.requests);
  let k = 0;
  for (let id = 0; id < model.files; id++) for (let c = 0; c < model.requestCounts[id]!; c++) seq[k++] = id;
  const rng = new Rng(model.params.seed, 4);
  for (let i = seq.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = seq[i]!;
    seq[i] = seq[j]!;
    seq[j] = t;
  }
  return seq;
}

/** A plausible name for file `id`: 100 files per directory, 30 directories per top level;
 *  the extension follows the size, as on a real site (small pages, big archives). */
export function documentPath(id: number, size: number): string {
  const top = Math.floor(id / 3000);
  const sub = Math.floor(id / 100) % 30;
  const ext =
    size < 16_384
      ? "html"
      : size < 131_072
        ? "gif"
        : size < 1_048_576
          ? "jpg"
          : size < 16_777_216
            ? "pdf"
            : "tar.gz";
  return `/d${top}/s${String(sub).padStart(2, "0")}/f${id}.${ext}`;
}
