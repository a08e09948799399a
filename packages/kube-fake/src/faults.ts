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

interface Rule {
  remaining: number;
  status: number | 'reset';
  match: ((request: RequestInfo) => boolean) | undefined;
}

/** Answers the next N (matching) requests with an error Status instead of serving them. */
export class Faults {
  readonly #rules: Rule[] = [];

  failNext(count: number, status: number | 'reset', options: FailOptions = {}): void {
    if (!Number.isInteger(count) || count < 1) throw new RangeError('failNext needs a positive count');
    if (status !== 'reset' && (!Number.isInteger(status) || status < 400 || status > 599)) {
      throw new RangeError("failNext needs an HTTP error status or 'reset'");
    }
    this.#rules.push({ remaining: count, status, match: options.match });
  }

  /** The error to answer `request` with ('reset': none, cut the connection), consuming one use of the first matching rule. */
  take(request: RequestInfo): KubeApiError | 'reset' | undefined {
    const index = this.#rules.findIndex((r) => !r.match || r.match(request));
    if (index < 0) return undefined;
    const rule = this.#rules[index]!;
    if (--rule.remaining === 0) this.#rules.splice(index, 1);
    return rule.status === 'reset' ? 'reset' : injected(rule.status);
  }

  clear(): void {
    this.#rules.length = 0;
  }
}
