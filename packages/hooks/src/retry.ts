import { RetriesExhaustedError } from './errors.js';
import type { Logger } from './log.js';

export interface RetryOptions {
  /** Attempts in all, the first included (default 30: twenty writers at once all get through). */
  attempts?: number;
  /** The first delay's ceiling in ms (default 50); doubled per attempt up to `capMs`. */
  baseMs?: number;
  /** The ceiling of any delay in ms (default 2000). */
  capMs?: number;
  /** [0, 1); injected by tests. */
  random?: () => number;
  /** Injected by tests to run without waiting. */
  sleep?: (ms: number) => Promise<void>;
}

export const DEFAULT_RETRY = Object.freeze({ attempts: 30, baseMs: 50, capMs: 2000 });

/**
 * The delay before retry number `retry` (1-based): "equal jitter", half fixed and half random, so
 * writers that collided spread out while no delay collapses to zero and re-collides at once.
 */
export function backoffDelay(retry: number, options: RetryOptions = {}): number {
  const base = options.baseMs ?? DEFAULT_RETRY.baseMs;
  const cap = options.capMs ?? DEFAULT_RETRY.capMs;
  const ceiling = Math.min(cap, base * 2 ** Math.min(retry - 1, 30));
  const random = options.random ?? Math.random;
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Whether a failure is worth another attempt: a conflict, throttling, a server fault, no answer. */
export type Classify = (error: unknown) => { retry: boolean; why: string };

const sleepReal = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `attempt` until it succeeds, a failure is not retryable, or the attempts run out (then
 * `RetriesExhaustedError` with the last failure as its cause). Each attempt starts from scratch:
 * for a read-modify-write that means a fresh read, so a 409 is answered with the winner's state.
 */
export async function withRetries<T>(what: string, attempt: (n: number) => Promise<T>, classify: Classify, log: Logger, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? DEFAULT_RETRY.attempts;
  const sleep = options.sleep ?? sleepReal;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      const { retry, why } = classify(error);
      if (!retry) throw error;
      if (n >= attempts) throw new RetriesExhaustedError(what, n, { cause: error });
      const delayMs = backoffDelay(n, options);
      log.warn('retrying', { what, attempt: n, reason: why, error: error instanceof Error ? error.message : String(error), delayMs });
      await sleep(delayMs);
    }
  }
}
