import { ConfigError } from './errors.js';

/**
 * Passive health checking of targets, the way Envoy's outlier detection does it for local-origin
 * failures: a target whose connections keep failing (refused, reset while connecting, connect
 * timeout) is ejected, passed over by routing for a while, and comes back by itself when the
 * ejection ends. Nothing is probed: only real calls tell. Pure: the clock is injected.
 */
export interface PassiveHealthOptions {
  /** Consecutive connect failures that eject a target. Default 1: nothing listening is a strong signal. */
  readonly ejectAfter?: number | undefined;
  /** The first ejection, in milliseconds; it doubles with every ejection in a row. Default 1000. */
  readonly baseEjectionMs?: number | undefined;
  /** The longest ejection, so a copy that comes back is used again within this. Default 10000. */
  readonly maxEjectionMs?: number | undefined;
  /** Targets remembered at most (only failing ones are); the oldest is forgotten past it. Default 10000. */
  readonly maxTracked?: number | undefined;
  /** Milliseconds since the epoch. Default `Date.now`. */
  readonly now?: (() => number) | undefined;
}

export const PASSIVE_HEALTH_DEFAULTS = Object.freeze({ ejectAfter: 1, baseEjectionMs: 1000, maxEjectionMs: 10_000, maxTracked: 10_000 });

/** What `/routes` and the SDK's `health()` show of one target that failed. */
export interface TargetHealth {
  readonly origin: string;
  /** Connect failures since its last successful connection. */
  readonly consecutiveFailures: number;
  /** Ejections in a row (the backoff's exponent); 0 after a successful connection. */
  readonly ejections: number;
  /** While ejected: milliseconds since the epoch when it is tried again. */
  readonly ejectedUntil: number | undefined;
}

interface Entry {
  failures: number;
  ejections: number;
  until: number;
}

function whole(name: string, value: number | undefined, min: number, max: number, fallback: number, problems: string[]): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) problems.push(`passive health: ${name} must be a whole number from ${min} to ${max}, got ${String(value)}`);
  return value;
}

/**
 * The ejection tracker, keyed by a target's origin (`http://10.0.0.7:8080`): a snapshot rebuilt
 * with the same target keeps its ejection, so a registry update does not send calls back to a
 * copy that is still dead. Costs nothing while every target is healthy (`success` returns at once
 * when nothing is tracked).
 */
export class PassiveHealth {
  readonly ejectAfter: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxTracked: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();

  constructor(options: PassiveHealthOptions = {}) {
    const d = PASSIVE_HEALTH_DEFAULTS;
    const problems: string[] = [];
    this.ejectAfter = whole('ejectAfter', options.ejectAfter, 1, 1000, d.ejectAfter, problems);
    this.baseEjectionMs = whole('baseEjectionMs', options.baseEjectionMs, 1, 3_600_000, d.baseEjectionMs, problems);
    this.maxEjectionMs = whole('maxEjectionMs', options.maxEjectionMs, 1, 3_600_000, d.maxEjectionMs, problems);
    this.maxTracked = whole('maxTracked', options.maxTracked, 1, 10_000_000, d.maxTracked, problems);
    if (problems.length === 0 && this.maxEjectionMs < this.baseEjectionMs) problems.push(`passive health: maxEjectionMs (${this.maxEjectionMs}) is below baseEjectionMs (${this.baseEjectionMs})`);
    if (problems.length > 0) throw new ConfigError(problems);
    this.#now = options.now ?? Date.now;
  }

  /** Targets with a failure on record. */
  get size(): number {
    return this.#entries.size;
  }

  /** True while `origin` is passed over. */
  ejected(origin: string): boolean {
    if (this.#entries.size === 0) return false;
    const e = this.#entries.get(origin);
    return e !== undefined && e.until > this.#now();
  }

  /**
   * A connection to `origin` failed before any request byte went out. Returns true when this
   * failure ejected it (count it: the ejections metric). A target back from an ejection that fails
   * again is ejected at once, for twice as long, up to `maxEjectionMs`.
   */
  failure(origin: string): boolean {
    const now = this.#now();
    let e = this.#entries.get(origin);
    if (e === undefined) {
      if (this.#entries.size >= this.maxTracked) this.#forget(now);
      e = { failures: 0, ejections: 0, until: 0 };
      this.#entries.set(origin, e);
    }
    if (e.until > now) return false; // already ejected: a call that was on its way when it was
    e.failures++;
    if (e.failures < this.ejectAfter) return false;
    const ms = Math.min(this.maxEjectionMs, this.baseEjectionMs * 2 ** Math.min(e.ejections, 30));
    e.ejections++;
    e.until = now + ms;
    return true;
  }

  /** A connection to `origin` was made: its record is cleared, backoff included. */
  success(origin: string): void {
    if (this.#entries.size === 0) return;
    this.#entries.delete(origin);
  }

  /** Every target with a failure on record, ejected ones with the time they come back. */
  status(): TargetHealth[] {
    const now = this.#now();
    const out: TargetHealth[] = [];
    for (const [origin, e] of this.#entries) {
      out.push({ origin, consecutiveFailures: e.failures, ejections: e.ejections, ejectedUntil: e.until > now ? e.until : undefined });
    }
    return out;
  }

  /** Makes room: first every record not ejected now, else the oldest. */
  #forget(now: number): void {
    for (const [origin, e] of this.#entries) if (e.until <= now) this.#entries.delete(origin);
    if (this.#entries.size >= this.maxTracked) this.#entries.delete(this.#entries.keys().next().value!);
  }
}

/** Methods that RFC 9110 §9.2.2 makes idempotent: sent twice, they mean what they mean once. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotent(method: string | undefined): boolean {
  return IDEMPOTENT.has((method ?? 'GET').toUpperCase());
}

/** Socket codes of a connection that never carried a byte of the request, besides core's table. */
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

export interface AttemptState {
  /** A byte of the request may have been written to the target. */
  readonly sent: boolean;
  /** A byte of the response arrived. */
  readonly responded: boolean;
  readonly method: string | undefined;
  /** The request body can be sent again (none, or held whole in memory). */
  readonly replayable: boolean;
}

/**
 * Whether a failed attempt may go to another target, and why: `connect` (nothing reached the
 * target: any method; a passive health failure), `idempotent` (the request was sent, nothing came
 * back, and sending it again means the same: not a health failure, the target accepted the
 * connection), or false (the error surfaces).
 */
export function retryable(error: unknown, state: AttemptState): 'connect' | 'idempotent' | false {
  if (state.responded) return false;
  const code = (error as { code?: unknown } | null)?.code;
  const known = typeof code === 'string' && CONNECT_CODES.has(code);
  if (!state.sent) return known ? 'connect' : false;
  return known && state.replayable && isIdempotent(state.method) ? 'idempotent' : false;
}
