import { h1, type DownstreamResponse } from './downstream.js';
import type { Exchange, Stage } from './exchange.js';

/** What a client stopped doing: sending its request headers or body, or reading the response. */
export type ClientStall = 'headers' | 'body' | 'drain';

export interface ClientTimeoutOptions {
  /** No request body byte for this long while the sidecar is reading the body. */
  bodyTimeoutMs: number;
  /** The client has not taken any response bytes for this long while the upstream is held back for it. */
  drainTimeoutMs: number;
  /** Called once per exchange that timed out, before it is answered or cut. */
  onTimeout?: (ex: Exchange, stall: ClientStall) => void;
}

/**
 * One watched exchange, a node of an intrusive doubly-linked list. Not a Map keyed by response: V8
 * keeps the entries a Map deleted reachable for its young-generation collections, so every
 * exchange that passed through one was promoted to the old generation and lived on there as
 * garbage until a full collection (30% of all the sidecar allocated, at every heap size).
 * A node unlinked here points at nothing, so a finished exchange dies young.
 */
class Watch {
  ex: Exchange | undefined;
  prev: Watch | undefined = undefined;
  next: Watch | undefined = undefined;
  stall: ClientStall | undefined = undefined;
  /** Progress seen at the last sweep: bytes read from the client plus drains. */
  mark = -1;
  drains = 0;
  since = 0;

  constructor(ex: Exchange) {
    this.ex = ex;
  }
}

/**
 * The response's own slot for its watch, so the 'close' and 'drain' listeners can be the same two
 * functions for every exchange instead of two closures each.
 */
const WATCH = Symbol('devstack.clientTimeouts.watch');
type Watched = DownstreamResponse & { [WATCH]?: Watch };

class WatchList {
  head: Watch | undefined = undefined;

  add(watch: Watch): void {
    watch.next = this.head;
    if (this.head !== undefined) this.head.prev = watch;
    this.head = watch;
  }

  /** Unlinks `watch` and drops every reference it holds; removing it twice is harmless. */
  remove(watch: Watch): void {
    if (watch.ex === undefined) return;
    if (watch.prev !== undefined) watch.prev.next = watch.next;
    else this.head = watch.next;
    if (watch.next !== undefined) watch.next.prev = watch.prev;
    watch.prev = watch.next = watch.ex = undefined;
  }

  clear(): void {
    while (this.head !== undefined) this.remove(this.head);
  }
}

/** How often the sweep runs: a quarter of the shortest timeout, within 5 ms and 1 s. */
export function sweepInterval(options: Pick<ClientTimeoutOptions, 'bodyTimeoutMs' | 'drainTimeoutMs'>): number {
  return Math.min(1000, Math.max(5, Math.floor(Math.min(options.bodyTimeoutMs, options.drainTimeoutMs) / 4)));
}

/**
 * Timeouts for clients that stall in the middle of an exchange: a request body that stops arriving
 * while the sidecar reads it, or a response the client stops reading while the upstream is paused
 * for it. Both hold an upstream connection, so without them a few hundred slow clients keep the
 * upstream busy for as long as they like.
 *
 * A stall only counts while the client is the one holding things up: a body the sidecar is not
 * reading (queued for a connection, or held back by a slow upstream) is not the client's fault.
 * One sweep checks every open exchange, so the request path starts no timer.
 */
export class ClientTimeouts {
  readonly stage: Stage;
  readonly #watching = new WatchList();
  readonly #options: ClientTimeoutOptions;
  readonly #timer: NodeJS.Timeout;

  constructor(options: ClientTimeoutOptions) {
    this.#options = options;
    const watching = this.#watching;
    function untrack(this: Watched): void {
      const watch = this[WATCH];
      if (watch !== undefined) watching.remove(watch);
    }
    function drained(this: Watched): void {
      const watch = this[WATCH];
      if (watch !== undefined) watch.drains++;
    }
    this.stage = (ex) => {
      // A gRPC call may stream for as long as it likes, quiet in either direction: it is bounded by
      // its deadline (grpc-timeout) and by HTTP/2 flow control, which no stalled stream can exhaust.
      if (ex.grpc) return ex.next();
      const watch = new Watch(ex);
      watching.add(watch);
      (ex.res as Watched)[WATCH] = watch;
      ex.res.once('close', untrack);
      ex.res.on('drain', drained);
      ex.next();
    };
    this.#timer = setInterval(() => this.#sweep(), sweepInterval(options));
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#watching.clear();
  }

  #sweep(): void {
    const now = performance.now();
    for (let watch = this.#watching.head; watch !== undefined; ) {
      const next = watch.next;
      const ex = watch.ex;
      // Expiring one exchange never unlinks another, but a sweep must not trust that.
      if (ex === undefined) break;
      const { req, res } = ex;
      const stall = !req.complete && req.readableFlowing === true ? 'body' : res.writableNeedDrain ? 'drain' : undefined;
      const mark = (req.socket?.bytesRead ?? 0) + watch.drains;
      if (stall === undefined || stall !== watch.stall || mark !== watch.mark) {
        watch.stall = stall;
        watch.mark = mark;
        watch.since = now;
      } else if (now - watch.since >= (stall === 'body' ? this.#options.bodyTimeoutMs : this.#options.drainTimeoutMs)) {
        this.#watching.remove(watch);
        this.#expire(ex, stall);
      }
      watch = next;
    }
  }

  #expire(ex: Exchange, stall: 'body' | 'drain'): void {
    this.#options.onTimeout?.(ex, stall);
    if (stall === 'body' && !ex.res.headersSent) {
      // The rest of the body will never be read: this connection cannot carry another request.
      const http1 = h1(ex.req, ex.res);
      if (http1 !== undefined) http1.res.shouldKeepAlive = false;
      ex.fail('DEVSTACK_CLIENT_TIMEOUT', `no request body byte for ${this.#options.bodyTimeoutMs} ms`);
      // Node forgets a request once its response is done, so nothing would end the body stream the
      // upstream attempt is reading from; ending it here abandons that attempt.
      ex.res.once('close', () => ex.req.destroy());
      return;
    }
    // The response has started (or the client is not reading it): no status can be sent any more.
    ex.errorCode = 'DEVSTACK_CLIENT_TIMEOUT';
    ex.res.destroy();
  }
}
