/** Summary statistics across rounds: medians resist one noisy round on a shared machine. */

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median, in percent: how much the rounds disagreed. */
  spreadPct: number;
  n: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function spread(values: readonly number[]): Spread {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, spreadPct: Number.NaN, n: 0 };
  const m = median(finite);
  const min = Math.min(...finite);
  const max = Math.max(...finite);
  return { median: m, min, max, spreadPct: m === 0 ? 0 : ((max - min) / m) * 100, n: finite.length };
}

/** The largest finite value; NaN when there is none (a failed reading is not a peak of zero). */
export function maxOf(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v));
  return finite.length === 0 ? Number.NaN : Math.max(...finite);
}

/**
 * Exact percentile of recorded latencies. autocannon's own histogram keeps whole milliseconds,
 * too coarse for loopback hops that take a fraction of one, so the harness keeps every sample.
 */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** A growable buffer of samples without a JS array's boxing cost per response. */
export class Samples {
  #buf = new Float64Array(1 << 16);
  #n = 0;

  push(value: number): void {
    if (this.#n === this.#buf.length) {
      const next = new Float64Array(this.#buf.length * 2);
      next.set(this.#buf);
      this.#buf = next;
    }
    this.#buf[this.#n++] = value;
  }

  get length(): number {
    return this.#n;
  }

  sorted(): Float64Array {
    return this.#buf.slice(0, this.#n).sort();
  }
}
