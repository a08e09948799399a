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

export interface ListRequest {
  resourceVersion?: string | undefined;
  continue?: string | undefined;
  limit: number;
}

export interface WatchRequest {
  resourceVersion: string;
  timeoutSeconds: number;
}

/**
 * How one kind of object is listed and watched (the API server, or a fake in unit tests). The
 * `signal` aborts a request the reflector gave up on (a timeout, `close()`); a transport that
 * ignores it only keeps a socket open longer, the reflector has moved on either way.
 */
export interface Transport<T> {
  list(request: ListRequest, signal?: AbortSignal): Promise<ListPage<T>>;
  /**
   * Starts a watch and resolves once the server accepted it; events arrive through `onEvent` until
   * `onClose` is called once (with the error, if the stream failed). Returns a function that stops
   * it (after which `onClose` may still come).
   */
  watch(request: WatchRequest, onEvent: (event: WatchEvent) => void, onClose: (error?: unknown) => void, signal?: AbortSignal): Promise<() => void>;
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

/**
 * Why the source was not current: a list or watch failed (`list`, `watch`), was not answered in
 * time (`list-timeout`, `watch-timeout`), was answered 410 Gone (`gone`: relisted), or a watch
 * went silent and the watchdog restarted it (`idle`).
 */
export type FailureReason = 'list' | 'list-timeout' | 'watch' | 'watch-timeout' | 'gone' | 'idle';

/** A failure of the list or the watch, with the HTTP status when the server answered. */
export class ReflectorError extends Error {
  readonly status: number | undefined;
  readonly reason: FailureReason | undefined;
  constructor(message: string, status: number | undefined, options?: { cause?: unknown; reason?: FailureReason | undefined }) {
    super(message, options);
    this.name = 'ReflectorError';
    this.status = status;
    this.reason = options?.reason;
  }
}

/** A list page or a watch's answer that takes longer than this is abandoned and retried with backoff. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** An object the reflector cannot use: reported (`onUnusable`) and left out of the store. */
export interface UnusableObject {
  readonly unusable: string;
}

export interface ReflectorOptions<T> {
  /** What is reflected, for messages: `services in shop`. */
  name: string;
  transport: Transport<T>;
  /** A watch with no event (bookmarks included) for this long is dropped and restarted. */
  idleTimeoutMs: number;
  /** A list page, or the answer to a watch request, not complete after this long is abandoned (default 30 s). */
  requestTimeoutMs?: number;
  /** Page size of lists. */
  pageSize?: number;
  backoff?: BackoffOptions;
  clock?: Clock;
  random?: () => number;
  /**
   * What the server sent, as the store keeps it (only what is needed), or why it cannot be used.
   * Default: kept as sent.
   */
  convert?: (raw: unknown) => T | UnusableObject;
  /** An object that cannot be used (`problem`), or no longer (undefined: fixed or deleted). */
  onUnusable?(key: string, problem: string | undefined): void;
  /** The store changed: one object (with what it replaced), or all of it (a relist). */
  onChange(change: StoreChange<T>): void;
  /** A list completed: the store is a full, current copy. */
  onSync(): void;
  /** Every failure of every kind, with the wait before the next attempt. */
  onFailure(error: ReflectorError, retryInMs: number): void;
  /** Current again after failures. */
  onRecovered(): void;
}

/**
 * What changed in a reflector's store. A relist is reported object by object, as what differs
 * from the store before it; `full` is kept for callers that rebuild from the store.
 */
export type StoreChange<T> = { full: true } | { full: false; object: T | undefined; previous: T | undefined };

type Outcome = { kind: 'closed'; events: number } | { kind: 'gone'; error: ReflectorError } | { kind: 'idle'; error: ReflectorError } | { kind: 'error'; error: ReflectorError; events: number };

function statusOf(error: unknown): number | undefined {
  const e = error as { statusCode?: unknown; code?: unknown; status?: unknown } | null;
  for (const v of [e?.statusCode, e?.code, e?.status]) if (typeof v === 'number' && v >= 100 && v < 600) return v;
  return undefined;
}

export function asReflectorError(error: unknown, what: string, reason?: FailureReason): ReflectorError {
  if (error instanceof ReflectorError && (error.reason !== undefined || reason === undefined)) return error;
  const status = statusOf(error);
  const code = (error as { code?: unknown; cause?: { code?: unknown } } | null)?.cause?.code ?? (error as { code?: unknown } | null)?.code;
  const detail = error instanceof ReflectorError ? error.message : status !== undefined ? `HTTP ${status}` : typeof code === 'string' ? code : ((error as Error | null)?.message ?? String(error));
  return new ReflectorError(error instanceof ReflectorError ? detail : `${what} failed: ${detail}`, status, { cause: error, reason: status === 410 ? 'gone' : reason });
}

const isUnusable = (value: unknown): value is UnusableObject => typeof (value as UnusableObject | null)?.unusable === 'string';

function rawResourceVersion(raw: unknown): string | undefined {
  const rv = (raw as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
  return typeof rv === 'string' ? rv : undefined;
}

/**
 * List, then watch from the list's resourceVersion, for one kind of object, as client-go's
 * reflector does: bookmarks asked for, a random 5-10 minute server timeout, a resumed watch after
 * every close, a timeout on every list page and watch request, a relist on 410 Gone (at once the
 * first time, then with backoff while 410s keep coming, from etcd rather than the watch cache),
 * capped backoff with jitter on every other failure (never giving up), and a watchdog that
 * restarts a watch that has gone silent. Lists are read page by page into the store's own
 * objects: an object whose resourceVersion did not change is kept, not copied, so a relist holds
 * no second copy of what is known.
 */
export class Reflector<T extends KubeObject> {
  readonly store = new Map<string, T>();
  readonly #o: ReflectorOptions<T>;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #backoff: Backoff;
  readonly #requestTimeoutMs: number;
  #unusable = new Map<string, string>();
  #resourceVersion = '';
  #needList = true;
  /** The next list is a consistent read (no resourceVersion), not from the watch cache. */
  #consistent = false;
  /** 410s since a healthy watch: the first relists at once, the next ones back off. */
  #goneStreak = 0;
  #closed = false;
  #stale = false;
  /** After a watchdog restart, only an event or bookmark proves the new watch current. */
  #awaitEvent = false;
  #stop: (() => void) | undefined;
  #abort: (() => void) | undefined;
  #settle: ((outcome: Outcome) => void) | undefined;
  #wake: (() => void) | undefined;
  #started = false;
  #lastSync = 0;

  constructor(options: ReflectorOptions<T>) {
    this.#o = options;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#random = options.random ?? Math.random;
    this.#backoff = new Backoff({ random: this.#random, ...options.backoff });
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  /** When the last full list completed (clock ms), 0 before the first. */
  get lastSync(): number {
    return this.#lastSync;
  }

  /** Not current now: a failure, a 410, a timeout or a watchdog restart, until a list or watch proves otherwise. */
  get stale(): boolean {
    return this.#stale;
  }

  /** Objects the server sent that cannot be used, by key, with why. */
  get unusable(): ReadonlyMap<string, string> {
    return this.#unusable;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    // The loop catches its own failures; anything else is reported, never an unhandled rejection.
    void this.#run().catch((error: unknown) => this.#o.onFailure(asReflectorError(error, `reflector of ${this.#o.name}`), 0));
  }

  /** Stops at once: a list in flight and an open watch are aborted, a backoff wait ends. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort?.();
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
          if (this.#closed) break;
          const failure = asReflectorError(error, `list of ${this.#o.name}`, 'list');
          // A continue token the server no longer has (410) restarts the list, as a 410 watch does.
          if (failure.reason === 'gone') await this.#gone(failure);
          else await this.#fail(failure);
          continue;
        }
      }
      if (this.#closed) break;
      const started = this.#clock.now();
      const outcome = await this.#watch();
      const lived = this.#clock.now() - started;
      if (this.#backoff.healthy(lived)) this.#goneStreak = 0;
      if (this.#closed) break;
      if (outcome.kind === 'gone') {
        await this.#gone(outcome.error);
      } else if (outcome.kind === 'error') {
        await this.#fail(outcome.error);
      } else if (outcome.kind === 'idle') {
        // Restarted at once: the watchdog's own period already spaces these out.
        this.#awaitEvent = true;
        this.#failed(outcome.error, 0);
      } else if (outcome.events === 0 && lived < 1000) {
        // A server that ends every watch at once must not be asked again in a tight loop.
        await this.#sleep(this.#backoff.next());
      }
    }
  }

  #timed<R>(what: string, reason: FailureReason, start: (signal: AbortSignal) => Promise<R>): Promise<R> {
    const controller = new AbortController();
    const ms = this.#requestTimeoutMs;
    return new Promise<R>((resolve, reject) => {
      const done = () => {
        this.#clock.clearTimeout(timer);
        this.#abort = undefined;
      };
      const timer = this.#clock.setTimeout(() => {
        done();
        controller.abort();
        reject(new ReflectorError(`${what} was not answered in ${ms} ms`, undefined, { reason }));
      }, ms);
      this.#abort = () => {
        done();
        controller.abort();
        reject(new ReflectorError(`${what} stopped`, undefined));
      };
      Promise.resolve()
        .then(() => start(controller.signal))
        .then(
          (value) => {
            done();
            resolve(value);
          },
          (error: unknown) => {
            done();
            reject(error);
          },
        );
    });
  }

  async #list(): Promise<void> {
    const fresh = new Map<string, T>();
    const unusable = new Map<string, string>();
    let resourceVersion = '';
    let next: string | undefined;
    // The first page from the watch cache (resourceVersion "0"), or after a 410 from etcd itself
    // (none), as the cache may be what is behind; later pages follow the continue token.
    const first = this.#consistent ? undefined : '0';
    do {
      const request: ListRequest = { resourceVersion: next === undefined ? first : undefined, continue: next, limit: this.#o.pageSize ?? 500 };
      const page = await this.#timed(`list of ${this.#o.name}`, 'list-timeout', (signal) => this.#o.transport.list(request, signal));
      if (this.#closed) return;
      for (const raw of page.items) this.#take(raw, fresh, unusable);
      resourceVersion = page.resourceVersion;
      next = page.continue || undefined;
    } while (next !== undefined);
    this.#consistent = false;
    for (const [key, previous] of this.store) {
      if (fresh.has(key)) continue;
      this.store.delete(key);
      this.#o.onChange({ full: false, object: undefined, previous });
    }
    for (const [key, object] of fresh) {
      const previous = this.store.get(key);
      if (previous === object) continue;
      this.store.set(key, object);
      this.#o.onChange({ full: false, object, previous });
    }
    const before = this.#unusable;
    this.#unusable = unusable;
    for (const key of before.keys()) if (!unusable.has(key)) this.#o.onUnusable?.(key, undefined);
    for (const [key, problem] of unusable) if (before.get(key) !== problem) this.#o.onUnusable?.(key, problem);
    this.#resourceVersion = resourceVersion;
    this.#needList = false;
    this.#awaitEvent = false;
    this.#lastSync = this.#clock.now();
    this.#recovered();
    this.#o.onSync();
  }

  /** One listed object into `fresh`: the stored one when its version did not change, else converted. */
  #take(raw: unknown, fresh: Map<string, T>, unusable: Map<string, string>): void {
    const key = keyOf(raw as T);
    const rv = rawResourceVersion(raw);
    const known = this.store.get(key);
    if (known !== undefined && rv !== undefined && rv !== '' && known.metadata?.resourceVersion === rv) {
      fresh.set(key, known);
      return;
    }
    const object = this.#convert(raw);
    if (isUnusable(object)) unusable.set(key, object.unusable);
    else fresh.set(key, object);
  }

  #convert(raw: unknown): T | UnusableObject {
    return this.#o.convert === undefined ? (raw as T) : this.#o.convert(raw);
  }

  /** One watch event into the store; an object that cannot be used is reported and taken out. */
  #apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', raw: unknown): void {
    const key = keyOf(raw as T);
    const previous = this.store.get(key);
    const object = type === 'DELETED' ? undefined : this.#convert(raw);
    if (isUnusable(object)) {
      if (previous !== undefined) {
        this.store.delete(key);
        this.#o.onChange({ full: false, object: undefined, previous });
      }
      if (this.#unusable.get(key) !== object.unusable) {
        this.#unusable.set(key, object.unusable);
        this.#o.onUnusable?.(key, object.unusable);
      }
      return;
    }
    if (this.#unusable.delete(key)) this.#o.onUnusable?.(key, undefined);
    if (object === undefined) {
      if (previous === undefined) return;
      this.store.delete(key);
    } else {
      this.store.set(key, object);
    }
    this.#o.onChange({ full: false, object, previous });
  }

  #watch(): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      let events = 0;
      let settled = false;
      let watchdog: unknown;
      const controller = new AbortController();
      const name = this.#o.name;
      const settle = (outcome: Outcome) => {
        if (settled) return;
        settled = true;
        this.#settle = undefined;
        this.#clock.clearTimeout(watchdog);
        this.#clock.clearTimeout(connect);
        this.#stop?.();
        this.#stop = undefined;
        controller.abort();
        resolve(outcome);
      };
      const arm = () => {
        this.#clock.clearTimeout(watchdog);
        watchdog = this.#clock.setTimeout(() => settle({ kind: 'idle', error: new ReflectorError(`watch of ${name} sent nothing for ${this.#o.idleTimeoutMs} ms; restarted`, undefined, { reason: 'idle' }) }), this.#o.idleTimeoutMs);
      };
      const connect = this.#clock.setTimeout(
        () => settle({ kind: 'error', error: new ReflectorError(`watch of ${name} was not answered in ${this.#requestTimeoutMs} ms`, undefined, { reason: 'watch-timeout' }), events }),
        this.#requestTimeoutMs,
      );
      const onEvent = (event: WatchEvent) => {
        if (settled) return;
        arm();
        events++;
        if (event.type === 'ERROR') {
          const status = (event.object as { code?: number } | null)?.code;
          const message = `watch of ${name} failed: ${(event.object as { message?: string } | null)?.message ?? 'ERROR event'}`;
          if (status === 410) return settle({ kind: 'gone', error: new ReflectorError(message, 410, { reason: 'gone' }) });
          return settle({ kind: 'error', error: new ReflectorError(message, status, { reason: 'watch' }), events });
        }
        if (event.type !== 'ADDED' && event.type !== 'MODIFIED' && event.type !== 'DELETED' && event.type !== 'BOOKMARK') return;
        const rv = rawResourceVersion(event.object);
        if (rv !== undefined) this.#resourceVersion = rv;
        if (event.type !== 'BOOKMARK') this.#apply(event.type, event.object);
        this.#awaitEvent = false;
        this.#recovered();
      };
      const onClose = (error?: unknown) => {
        if (error === undefined || error === null) return settle({ kind: 'closed', events });
        const failure = asReflectorError(error, `watch of ${name}`, 'watch');
        settle(failure.reason === 'gone' ? { kind: 'gone', error: failure } : { kind: 'error', error: failure, events });
      };
      this.#settle = settle;
      arm();
      // 5 to 10 minutes, so the watches of many sidecars do not all end at the same moment.
      const timeoutSeconds = 300 + Math.floor(this.#random() * 300);
      Promise.resolve()
        .then(() => this.#o.transport.watch({ resourceVersion: this.#resourceVersion, timeoutSeconds }, onEvent, onClose, controller.signal))
        .then(
          (stop) => {
            this.#clock.clearTimeout(connect);
            if (settled) return stop();
            this.#stop = stop;
            // The server accepted the watch: it is reachable again (after a watchdog restart,
            // only what the watch sends proves it current).
            if (!this.#awaitEvent) this.#recovered();
          },
          (error: unknown) => onClose(error ?? new Error('watch failed')),
        );
      if (this.#closed) settle({ kind: 'closed', events });
    });
  }

  /** 410 Gone: relist, at once the first time, with backoff while 410s keep coming. */
  async #gone(error: ReflectorError): Promise<void> {
    this.#needList = true;
    this.#consistent = true;
    if (this.#goneStreak++ === 0) return this.#failed(error, 0);
    await this.#fail(error);
  }

  async #fail(error: ReflectorError): Promise<void> {
    const wait = this.#backoff.next();
    this.#failed(error, wait);
    await this.#sleep(wait);
  }

  #failed(error: ReflectorError, wait: number): void {
    this.#stale = true;
    this.#o.onFailure(error, wait);
  }

  #recovered(): void {
    if (!this.#stale) return;
    this.#stale = false;
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

/** `namespace/name` of an object, whatever shape the server sent it in. */
export function keyOf(object: KubeObject | null | undefined): string {
  const meta = (object as { metadata?: unknown } | null | undefined)?.metadata as { name?: unknown; namespace?: unknown } | null | undefined;
  const part = (v: unknown) => (typeof v === 'string' ? v : '');
  return `${part(meta?.namespace)}/${part(meta?.name)}`;
}
