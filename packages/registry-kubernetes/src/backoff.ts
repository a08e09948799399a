/**
 * Capped exponential backoff with full jitter in the upper half (as client-go's wait.Backoff with
 * jitter): about `initialMs`, doubling up to `maxMs`, back to the start once a connection has been
 * healthy for `resetAfterMs`.
 */
export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  resetAfterMs?: number;
  random?: () => number;
}

export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #resetAfter: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.#initial = options.initialMs ?? 800;
    this.#max = options.maxMs ?? 30_000;
    this.#resetAfter = options.resetAfterMs ?? 60_000;
    this.#random = options.random ?? Math.random;
  }

  /** The wait before the next attempt: between half and all of the capped exponential step. */
  next(): number {
    const step = Math.min(this.#max, this.#initial * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(step / 2 + (step / 2) * this.#random());
  }

  /** A connection that stayed up `healthyForMs` resets the sequence; says whether it did. */
  healthy(healthyForMs: number): boolean {
    if (healthyForMs < this.#resetAfter) return false;
    this.#attempt = 0;
    return true;
  }

  reset(): void {
    this.#attempt = 0;
  }

  get attempts(): number {
    return this.#attempt;
  }
}
