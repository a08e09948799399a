import { constants, type ServerHttp2Stream } from 'node:http2';
import { clientGone, h1, h2Response, requestHasBody } from './downstream.js';
import type { Exchange, Stage } from './exchange.js';

const { NGHTTP2_REFUSED_STREAM } = constants;

export interface InFlightOptions {
  /** Exchanges the sidecar carries at once, every listener together; the next ones are shed. */
  limit: number;
  /** Told about every exchange shed, before it is refused. */
  onShed?: (ex: Exchange) => void;
}

/**
 * The sidecar-wide bound on exchanges in flight, in the spirit of Envoy's overload manager: past
 * the limit a new exchange costs one refusal and nothing upstream. Every exchange holds buffers,
 * an upstream request and its connection, so without the bound the clients decide how much memory
 * the process takes (10 000 concurrent HTTP/2 streams ran a 128 MiB heap out of memory).
 *
 * An HTTP/2 stream is refused with RST_STREAM REFUSED_STREAM, which tells the client that nothing
 * of it was processed, so it may retry (RFC 9113 §8.7; gRPC clients do it on their own). An
 * HTTP/1.1 request gets 503 `DEVSTACK_OVERLOADED`.
 */
export class InFlight {
  readonly stage: Stage;
  readonly #limit: number;
  #count = 0;

  constructor(options: InFlightOptions) {
    const { limit, onShed } = options;
    this.#limit = limit;
    const release = (): void => {
      this.#count--;
    };
    this.stage = (ex) => {
      // A stream the client reset while its headers were read: nothing to carry, nothing to count.
      if (clientGone(ex.res)) return;
      if (this.#count >= limit) {
        onShed?.(ex);
        return shed(ex, limit);
      }
      this.#count++;
      ex.res.once('close', release);
      ex.next();
    };
  }

  /** Whether the next exchange would be shed. */
  full(): boolean {
    return this.#count >= this.#limit;
  }

  /** Exchanges in flight now. */
  get count(): number {
    return this.#count;
  }
}

function shed(ex: Exchange, limit: number): void {
  const h2 = h2Response(ex.res);
  if (h2 !== undefined) {
    h2.stream.close(NGHTTP2_REFUSED_STREAM);
    return;
  }
  // Its body (if any) is not read: the connection cannot carry another request after this answer.
  const http1 = h1(ex.req, ex.res);
  if (http1 !== undefined && requestHasBody(ex.req)) http1.res.shouldKeepAlive = false;
  ex.fail('DEVSTACK_OVERLOADED', `the sidecar is carrying ${limit} requests, its limit (--max-in-flight); try again`);
}

export interface ResetBudgetOptions {
  /** Streams a client may reset before their response began, per connection, as a burst. */
  budget: number;
  /** The window the budget refills over, in milliseconds. */
  windowMs: number;
  /** The clock (for tests); default `performance.now`. */
  now?: () => number;
}

/**
 * The budget of one HTTP/2 connection for streams its client resets before their response began
 * (the rapid-reset shape, CVE-2023-44487: each pair costs the server a request and the client
 * nothing). A token bucket as nghttp2's: `budget` at once, refilled at `budget` per `windowMs`;
 * `spend()` returns false once the connection is over it, and the caller ends the connection.
 */
export class ResetBudget {
  readonly #options: ResetBudgetOptions;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  constructor(options: ResetBudgetOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    this.#tokens = options.budget;
    this.#at = this.#now();
  }

  spend(): boolean {
    const now = this.#now();
    const { budget, windowMs } = this.#options;
    this.#tokens = Math.min(budget, this.#tokens + ((now - this.#at) * budget) / windowMs);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}

/** Whether a server stream was reset by its client before any response was sent. */
export function resetBeforeResponse(stream: ServerHttp2Stream): boolean {
  const code = stream.rstCode ?? 0;
  // REFUSED_STREAM is what the sidecar itself sends when it sheds.
  return code !== 0 && code !== NGHTTP2_REFUSED_STREAM && !stream.headersSent;
}
