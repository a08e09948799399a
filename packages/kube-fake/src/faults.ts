import { type KubeApiError, injected } from './status.js';

/** One request as the server saw it: what fault filters and the request log receive. */
export interface RequestInfo {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly watch: boolean;
}

export interface FailOptions {
  /** Only requests this returns true for are failed (and counted); default: every request. */
  match?: (request: RequestInfo) => boolean;
}

/**
 * What a failed request gets: an HTTP error status with the real server's `Status` body; `reset`:
 * the connection is reset; `hang`: accepted and never answered (a black hole, until the server
 * stops); `gone`: 410 Expired, for a watch in the form the server's `expiredWatch` says (an ERROR
 * event in a 200 stream, or HTTP 410), as after an etcd compaction.
 */
export type FaultKind = number | 'reset' | 'hang' | 'gone';

interface Rule {
  remaining: number;
  status: FaultKind;
  match: ((request: RequestInfo) => boolean) | undefined;
}

/** Answers the next N (matching) requests with an error Status instead of serving them. */
export class Faults {
  readonly #rules: Rule[] = [];

  /** `count` may be `Infinity`: every matching request fails until `clear()` (a storm). */
  failNext(count: number, status: FaultKind, options: FailOptions = {}): void {
    if ((!Number.isInteger(count) && count !== Infinity) || count < 1) throw new RangeError('failNext needs a positive count');
    if (typeof status === 'number' && (!Number.isInteger(status) || status < 400 || status > 599)) {
      throw new RangeError("failNext needs an HTTP error status, 'reset', 'hang' or 'gone'");
    }
    if (typeof status === 'string' && status !== 'reset' && status !== 'hang' && status !== 'gone') {
      throw new RangeError("failNext needs an HTTP error status, 'reset', 'hang' or 'gone'");
    }
    this.#rules.push({ remaining: count, status, match: options.match });
  }

  /** The error to answer `request` with ('reset', 'hang', 'gone': see FaultKind), consuming one use of the first matching rule. */
  take(request: RequestInfo): KubeApiError | 'reset' | 'hang' | 'gone' | undefined {
    const index = this.#rules.findIndex((r) => !r.match || r.match(request));
    if (index < 0) return undefined;
    const rule = this.#rules[index]!;
    if (--rule.remaining === 0) this.#rules.splice(index, 1);
    return typeof rule.status === 'string' ? rule.status : injected(rule.status);
  }

  clear(): void {
    this.#rules.length = 0;
  }
}
