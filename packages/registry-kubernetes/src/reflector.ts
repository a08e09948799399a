import { Backoff, type BackoffOptions } from './backoff.js';

export interface KubeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface ListPage<T> {
  items: T[];
  resourceVersion: string;
  continue?: string | undefined;
}

export interface WatchEvent {
  type: string;
  object: unknown;
}

/** How one kind of object is listed and watched (the API server, or a fake in unit tests). */
export interface Transport<T> {
  list(request: { resourceVersion?: string | undefined; continue?: string | undefined; limit: number }): Promise<ListPage<T>>;
  /**
   * Starts a watch; events arrive through `onEvent` until `onClose` is called once (with the error,
   * if the stream failed). Returns a function that stops it (after which `onClose` may still come).
   */
  watch(request: { resourceVersion: string; timeoutSeconds: number }, onEvent: (event: WatchEvent) => void, onClose: (error?: unknown) => void): Promise<() => void>;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** A failure of the list or the watch, with the HTTP status when the server answered. */
export class ReflectorError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status: number | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReflectorError';
    this.status = status;
  }
}

export interface ReflectorOptions<T> {
  /** What is reflected, for messages: `services in shop`. */
  name: string;
  transport: Transport<T>;
  /** A watch with no event (bookmarks included) for this long is dropped and restarted. */
  idleTimeoutMs: number;
  /** Page size of lists. */
  pageSize?: number;
  backoff?: BackoffOptions;
  clock?: Clock;
  random?: () => number;
  /** The store changed: one object (with what it replaced), or all of it (a relist). */
  onChange(change: StoreChange<T>): void;
  /** A list completed: the store is a full, current copy. */
  onSync(): void;
  /** Every failed list or watch, and the recovery after failures. */
  onFailure(error: ReflectorError, retryInMs: number): void;
  onRecovered(): void;
}

/** What changed in a reflector's store. */
export type StoreChange<T> = { full: true } | { full: false; object: T | undefined; previous: T | undefined };

type Outcome = { kind: 'closed'; events: number } | { kind: 'gone' } | { kind: 'idle' } | { kind: 'error'; error: ReflectorError; events: number };

function statusOf(error: unknown): number | undefined {
  const e = error as { statusCode?: unknown; code?: unknown; status?: unknown } | null;
  for (const v of [e?.statusCode, e?.code, e?.status]) if (typeof v === 'number' && v >= 100 && v < 600) return v;
  return undefined;
}

export function asReflectorError(error: unknown, what: string): ReflectorError {
  if (error instanceof ReflectorError) return error;
  const status = statusOf(error);
  const code = (error as { code?: unknown; cause?: { code?: unknown } } | null)?.cause?.code ?? (error as { code?: unknown } | null)?.code;
  const detail = status !== undefined ? `HTTP ${status}` : typeof code === 'string' ? code : ((error as Error | null)?.message ?? String(error));
  return new ReflectorError(`${what} failed: ${detail}`, status, { cause: error });
}

/**
 * List, then watch from the list's resourceVersion, for one kind of object, as client-go's
 * reflector does: bookmarks asked for, a random 5-10 minute server timeout, a resumed watch after
 * every close, a relist on 410 Gone, capped backoff with jitter on every other failure (never
 * giving up), and a watchdog that restarts a watch that has gone silent.
 */
export class Reflector<T extends KubeObject> {
  readonly store = new Map<string, T>();
  readonly #o: ReflectorOptions<T>;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #backoff: Backoff;
  #resourceVersion = '';
  #needList = true;
  #closed = false;
  #failing = false;
  #stop: (() => void) | undefined;
  #settle: ((outcome: Outcome) => void) | undefined;
  #wake: (() => void) | undefined;
  #started = false;
  #lastSync = 0;

  constructor(options: ReflectorOptions<T>) {
    this.#o = options;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#random = options.random ?? Math.random;
    this.#backoff = new Backoff({ random: this.#random, ...options.backoff });
  }

  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  /** When the last full list completed (clock ms), 0 before the first. */
  get lastSync(): number {
    return this.#lastSync;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    // The loop catches its own failures; anything else is reported, never an unhandled rejection.
    void this.#run().catch((error: unknown) => this.#o.onFailure(asReflectorError(error, `reflector of ${this.#o.name}`), 0));
  }

  /**
   * Stops watching at once: an open watch is aborted and its outcome settled, a backoff wait ends.
   * A list already sent is left to finish on its own; its result is dropped.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stop?.();
    this.#settle?.({ kind: 'closed', events: 0 });
    this.#wake?.();
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      if (this.#needList) {
        try {
          await this.#list();
        } catch (error) {
          await this.#fail(asReflectorError(error, `list of ${this.#o.name}`));
          continue;
        }
      }
      if (this.#closed) break;
      const started = this.#clock.now();
      const outcome = await this.#watch();
      this.#backoff.healthy(this.#clock.now() - started);
      if (this.#closed) break;
      if (outcome.kind === 'gone') {
        this.#needList = true;
      } else if (outcome.kind === 'error') {
        await this.#fail(outcome.error);
      } else if (outcome.kind === 'closed' && outcome.events === 0 && this.#clock.now() - started < 1000) {
        // A server that ends every watch at once must not be asked again in a tight loop.
        await this.#sleep(this.#backoff.next());
      }
    }
  }

  async #list(): Promise<void> {
    const items: T[] = [];
    let page: ListPage<T>;
    let next: string | undefined;
    // The first page from the watch cache (resourceVersion "0"); later pages follow the continue token.
    do {
      page = await this.#o.transport.list({ resourceVersion: next === undefined ? '0' : undefined, continue: next, limit: this.#o.pageSize ?? 500 });
      items.push(...page.items);
      next = page.continue || undefined;
    } while (next !== undefined && !this.#closed);
    if (this.#closed) return;
    this.store.clear();
    for (const item of items) this.store.set(keyOf(item), item);
    this.#resourceVersion = page.resourceVersion;
    this.#needList = false;
    this.#lastSync = this.#clock.now();
    this.#recovered();
    this.#o.onChange({ full: true });
    this.#o.onSync();
  }

  #watch(): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      let events = 0;
      let settled = false;
      let watchdog: unknown;
      const settle = (outcome: Outcome) => {
        if (settled) return;
        settled = true;
        this.#settle = undefined;
        this.#clock.clearTimeout(watchdog);
        this.#stop?.();
        this.#stop = undefined;
        resolve(outcome);
      };
      const arm = () => {
        this.#clock.clearTimeout(watchdog);
        watchdog = this.#clock.setTimeout(() => settle({ kind: 'idle' }), this.#o.idleTimeoutMs);
      };
      const onEvent = (event: WatchEvent) => {
        if (settled) return;
        arm();
        events++;
        if (event.type === 'ERROR') {
          const status = (event.object as { code?: number } | null)?.code;
          if (status === 410) return settle({ kind: 'gone' });
          return settle({ kind: 'error', error: new ReflectorError(`watch of ${this.#o.name} failed: ${(event.object as { message?: string } | null)?.message ?? 'ERROR event'}`, status), events });
        }
        const object = event.object as T;
        const rv = object?.metadata?.resourceVersion;
        if (event.type !== 'ADDED' && event.type !== 'MODIFIED' && event.type !== 'DELETED' && event.type !== 'BOOKMARK') return;
        if (rv !== undefined) this.#resourceVersion = rv;
        if (event.type !== 'BOOKMARK') {
          const key = keyOf(object);
          const previous = this.store.get(key);
          if (event.type === 'DELETED') this.store.delete(key);
          else this.store.set(key, object);
          this.#o.onChange({ full: false, object: event.type === 'DELETED' ? undefined : object, previous });
        }
        this.#recovered();
      };
      const onClose = (error?: unknown) => {
        if (error === undefined || error === null) return settle({ kind: 'closed', events });
        const failure = asReflectorError(error, `watch of ${this.#o.name}`);
        settle(failure.status === 410 ? { kind: 'gone' } : { kind: 'error', error: failure, events });
      };
      this.#settle = settle;
      arm();
      // 5 to 10 minutes, so the watches of many sidecars do not all end at the same moment.
      const timeoutSeconds = 300 + Math.floor(this.#random() * 300);
      this.#o.transport.watch({ resourceVersion: this.#resourceVersion, timeoutSeconds }, onEvent, onClose).then(
        (stop) => {
          if (settled) return stop();
          this.#stop = stop;
          // The server accepted the watch: it is reachable again.
          this.#recovered();
        },
        (error: unknown) => onClose(error ?? new Error('watch failed')),
      );
      if (this.#closed) settle({ kind: 'closed', events });
    });
  }

  async #fail(error: ReflectorError): Promise<void> {
    const wait = this.#backoff.next();
    this.#failing = true;
    this.#o.onFailure(error, wait);
    await this.#sleep(wait);
  }

  #recovered(): void {
    if (!this.#failing) return;
    this.#failing = false;
    // The backoff itself resets only after a healthy minute: a server that answers once and
    // fails again must not be hammered.
    this.#o.onRecovered();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#clock.setTimeout(done, ms);
      function done() {
        resolve();
      }
      this.#wake = () => {
        this.#clock.clearTimeout(timer);
        resolve();
      };
    });
  }
}

export function keyOf(object: KubeObject): string {
  return `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
}
