import { ConfigError, Emitter, RegistryValidationError, buildSnapshot, describeUntrusted, isValidKey, updateSnapshot, type RegistrySource, type ServiceInput, type Snapshot, type SourceStatus } from '@devstack/core';
import { NDJSON, streamPath, type RelayMessage } from './protocol.js';

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

/** Three of the relay's default 10 s heartbeats: one lost line is not an outage. */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/** A relay that does not answer a stream request by then is given up and tried again. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** A line longer than this is not a relay's (a snapshot of 10 000 services is about 1 MiB). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_REPORT_INTERVAL_MS = 30_000;
export const DEFAULT_BACKOFF = Object.freeze({ initialMs: 500, maxMs: 30_000, resetAfterMs: 60_000 });

/**
 * Why the source was not current: the relay could not be reached or did not answer in time
 * (`connect`), answered with an error (`http`), the stream broke (`stream`), went silent past the
 * watchdog (`idle`), or sent what is not its protocol (`protocol`).
 */
export type RelayFailure = 'connect' | 'http' | 'stream' | 'idle' | 'protocol';
const FAILURES: readonly RelayFailure[] = ['connect', 'http', 'stream', 'idle', 'protocol'];

export interface RelaySourceOptions {
  /** The relay's origin, `http://devstack-relay.devstack:7400` (or https). */
  url: string;
  /** The namespace whose registry to follow. */
  namespace: string;
  /** No line (heartbeats included) for this long: the stream is dropped and opened again. */
  idleTimeoutMs?: number;
  connectTimeoutMs?: number;
  maxMessageBytes?: number;
  /** At most one failure report through `onError` this often (every failure is counted). */
  reportIntervalMs?: number;
  backoff?: { initialMs?: number; maxMs?: number; resetAfterMs?: number };
  clock?: Clock;
  random?: () => number;
  fetch?: typeof fetch;
}

export interface RelayStatus extends SourceStatus {
  relay: string;
  namespace: string;
  /** A stream is open and the relay's data is current through it. */
  connected: boolean;
  /** The relay says it cannot reach the API server (what it serves is its last snapshot). */
  relayStale: boolean;
  /** The relay's epoch and version of what this source holds. */
  epoch: string | undefined;
  relayVersion: number | undefined;
  failures: number;
  failuresByReason: Record<RelayFailure, number>;
  lastError: string | undefined;
  reconnects: number;
}

/** A failure of the relay stream, with the reason it is counted under. */
export class RelayStreamError extends Error {
  readonly code = 'DEVSTACK_REGISTRY_UNREACHABLE';
  readonly reason: RelayFailure;
  readonly status: number | undefined;
  constructor(message: string, reason: RelayFailure, options?: { cause?: unknown; status?: number }) {
    super(message, options);
    this.name = 'RelayStreamError';
    this.reason = reason;
    this.status = options?.status;
  }
}

/** Capped exponential backoff, jittered over the upper half of each step. */
class Backoff {
  #attempt = 0;
  constructor(
    private readonly o: { initialMs: number; maxMs: number; resetAfterMs: number },
    private readonly random: () => number,
  ) {}
  next(): number {
    const step = Math.min(this.o.maxMs, this.o.initialMs * 2 ** Math.min(this.#attempt++, 30));
    return Math.round(step / 2 + (step / 2) * this.random());
  }
  healthy(forMs: number): void {
    if (forMs >= this.o.resetAfterMs) this.#attempt = 0;
  }
}

/**
 * Follows one namespace's registry from a devstack-relay: a full snapshot when the stream opens,
 * changes after it, heartbeats between. Through any failure the last good snapshot stays in force
 * (the status says stale); the stream is opened again with capped, jittered backoff, resuming
 * from the version held, so a relay that is still current resends nothing.
 */
export class RelaySource implements RegistrySource {
  readonly kind = 'relay';
  readonly #o: Required<Omit<RelaySourceOptions, 'backoff' | 'fetch'>> & { fetch: typeof fetch };
  readonly #backoff: Backoff;
  readonly #snapshots = new Emitter<Snapshot>();
  readonly #errors = new Emitter<Error>();
  readonly #failuresByReason = Object.fromEntries(FAILURES.map((r) => [r, 0])) as Record<RelayFailure, number>;
  #snapshot: Snapshot | undefined;
  #version = 0;
  #epoch: string | undefined;
  #relayVersion: number | undefined;
  #relayStale = false;
  #relayLastSync: number | undefined;
  #connected = false;
  #failures = 0;
  #reconnects = 0;
  #lastError: string | undefined;
  #report: { at: number; suppressed: number } | undefined;
  #abort: AbortController | undefined;
  #retry: unknown;
  #closed = false;
  #started: Promise<Snapshot> | undefined;
  #onFirst: ((s: Snapshot) => void) | undefined;

  constructor(options: RelaySourceOptions) {
    this.#o = {
      url: options.url.replace(/\/+$/, ''),
      namespace: options.namespace,
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      reportIntervalMs: options.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS,
      clock: options.clock ?? SYSTEM_CLOCK,
      random: options.random ?? Math.random,
      fetch: options.fetch ?? globalThis.fetch,
    };
    this.#backoff = new Backoff({ ...DEFAULT_BACKOFF, ...options.backoff }, this.#o.random);
  }

  /** Resolves with the first snapshot; until then it keeps trying (a relay may come up after its clients). */
  start(): Promise<Snapshot> {
    this.#started ??= new Promise<Snapshot>((resolve, reject) => {
      this.#onFirst = resolve;
      this.#closedBeforeStart = reject;
      void this.#run();
    });
    return this.#started;
  }

  #closedBeforeStart: ((error: Error) => void) | undefined;

  current(): Snapshot | undefined {
    return this.#snapshot;
  }

  subscribe(listener: (snapshot: Snapshot) => void): () => void {
    return this.#snapshots.add(listener);
  }

  onError(listener: (error: Error) => void): () => void {
    return this.#errors.add(listener);
  }

  status(): RelayStatus {
    const synced = this.#snapshot !== undefined;
    return {
      synced,
      stale: !synced || !this.#connected || this.#relayStale,
      lastSync: this.#relayLastSync,
      relay: this.#o.url,
      namespace: this.#o.namespace,
      connected: this.#connected,
      relayStale: this.#relayStale,
      epoch: this.#epoch,
      relayVersion: this.#relayVersion,
      failures: this.#failures,
      failuresByReason: { ...this.#failuresByReason },
      lastError: this.#lastError,
      reconnects: this.#reconnects,
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#o.clock.clearTimeout(this.#retry);
    this.#abort?.abort();
    this.#closedBeforeStart?.(new Error('the relay source was closed before its first snapshot'));
    this.#snapshots.clear();
    this.#errors.clear();
  }

  async #run(): Promise<void> {
    if (this.#closed) return;
    const opened = this.#o.clock.now();
    let useful = false;
    try {
      useful = await this.#stream();
    } catch (error) {
      if (this.#closed) return;
      this.#connected = false;
      this.#fail(error instanceof RelayStreamError ? error : new RelayStreamError(`relay ${this.#o.url}: ${(error as Error).message}`, 'stream', { cause: error }));
      this.#schedule(this.#backoff.next());
      return;
    }
    this.#connected = false;
    if (this.#closed) return;
    // A stream the relay ended after serving it (its maximum age, a rollout) is opened again at
    // once; one that ended before telling anything is a failure like any other.
    if (useful) {
      this.#backoff.healthy(this.#o.clock.now() - opened);
      this.#reconnects++;
      this.#schedule(0);
    } else {
      this.#fail(new RelayStreamError(`relay ${this.#o.url}: the stream ended before any message`, 'stream'));
      this.#schedule(this.#backoff.next());
    }
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    this.#retry = this.#o.clock.setTimeout(() => void this.#run(), ms);
  }

  #fail(error: RelayStreamError): void {
    this.#failures++;
    this.#failuresByReason[error.reason]++;
    this.#lastError = error.message;
    const now = this.#o.clock.now();
    const last = this.#report;
    if (last !== undefined && now - last.at < this.#o.reportIntervalMs) {
      last.suppressed++;
      return;
    }
    this.#report = { at: now, suppressed: 0 };
    const meanwhile = last !== undefined && last.suppressed > 0 ? ` (${last.suppressed} more since the last report)` : '';
    const holding = this.#snapshot === undefined ? 'no snapshot yet' : 'routing from the last snapshot';
    this.#errors.emit(new RelayStreamError(`${error.message}; retrying, ${holding}${meanwhile}`, error.reason, { cause: error, status: error.status }));
  }

  /** One stream, to its end. Resolves whether it delivered anything; throws a RelayStreamError. */
  async #stream(): Promise<boolean> {
    const abort = new AbortController();
    this.#abort = abort;
    const query = this.#epoch !== undefined && this.#relayVersion !== undefined ? `?epoch=${encodeURIComponent(this.#epoch)}&since=${this.#relayVersion}` : '';
    const url = `${this.#o.url}${streamPath(this.#o.namespace)}${query}`;
    const clock = this.#o.clock;
    let watchdog: unknown;
    let idle = false;
    const arm = (ms: number, reason: 'connect' | 'idle') => {
      clock.clearTimeout(watchdog);
      watchdog = clock.setTimeout(() => {
        idle = reason === 'idle';
        abort.abort(new RelayStreamError(reason === 'idle' ? `relay ${this.#o.url}: no message for ${ms} ms` : `relay ${this.#o.url}: no answer in ${ms} ms`, reason));
      }, ms);
    };
    arm(this.#o.connectTimeoutMs, 'connect');
    try {
      let response: Response;
      try {
        response = await this.#o.fetch(url, { signal: abort.signal, headers: { accept: NDJSON } });
      } catch (error) {
        throw abort.signal.reason instanceof RelayStreamError ? abort.signal.reason : new RelayStreamError(`relay ${this.#o.url}: ${describeFetchError(error)}`, 'connect', { cause: error });
      }
      if (response.status !== 200) {
        const body = await response.text().catch(() => '');
        let detail = `HTTP ${response.status}`;
        try {
          const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
          if (typeof parsed.error?.code === 'string') detail += ` ${parsed.error.code}: ${String(parsed.error.message)}`;
        } catch {
          // Not the relay's JSON: the status says enough.
        }
        throw new RelayStreamError(`relay ${this.#o.url} namespace ${this.#o.namespace}: ${detail}`, 'http', { status: response.status });
      }
      if (response.body === null) throw new RelayStreamError(`relay ${this.#o.url}: an answer without a body`, 'protocol');
      arm(this.#o.idleTimeoutMs, 'idle');
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffered = '';
      let useful = false;
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (error) {
          if (abort.signal.reason instanceof RelayStreamError) throw abort.signal.reason;
          throw new RelayStreamError(`relay ${this.#o.url}: the stream broke: ${describeFetchError(error)}`, idle ? 'idle' : 'stream', { cause: error });
        }
        if (chunk.done) break;
        arm(this.#o.idleTimeoutMs, 'idle');
        buffered += decoder.decode(chunk.value, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          if (line.length > 0) {
            this.#message(line);
            useful = true;
          }
        }
        if (buffered.length > this.#o.maxMessageBytes) {
          abort.abort();
          throw new RelayStreamError(`relay ${this.#o.url}: a message longer than ${this.#o.maxMessageBytes} bytes`, 'protocol');
        }
      }
      return useful;
    } finally {
      clock.clearTimeout(watchdog);
      abort.abort();
    }
  }

  #message(line: string): void {
    let message: RelayMessage;
    try {
      message = JSON.parse(line) as RelayMessage;
    } catch (error) {
      throw this.#protocol('a line that is not JSON', error);
    }
    if (typeof message !== 'object' || message === null || typeof message.version !== 'number' || typeof message.epoch !== 'string') throw this.#protocol('a message without epoch and version');
    switch (message.type) {
      case 'snapshot': {
        let snapshot: Snapshot;
        try {
          snapshot = buildSnapshot({ services: message.services, ...(message.stacks === undefined ? {} : { stacks: message.stacks }) }, { version: this.#version + 1, source: `relay ${this.#o.url}`, createdAt: this.#o.clock.now() });
        } catch (error) {
          throw this.#refused(error);
        }
        this.#accept(message, snapshot);
        return;
      }
      case 'delta': {
        const previous = this.#snapshot;
        if (previous === undefined || message.epoch !== this.#epoch || message.from !== this.#relayVersion) throw this.#protocol(`a change from version ${message.from} on top of ${this.#relayVersion ?? 'nothing'}`);
        let snapshot: Snapshot;
        try {
          const changes = new Map<string, ServiceInput | undefined>(Object.entries(message.services ?? {}).map(([k, v]) => [k, v ?? undefined]));
          snapshot = updateSnapshot(previous, changes, { version: this.#version + 1, source: `relay ${this.#o.url}`, createdAt: this.#o.clock.now() }, message.stacks);
        } catch (error) {
          throw this.#refused(error);
        }
        this.#accept(message, snapshot);
        return;
      }
      case 'resumed':
        if (this.#snapshot === undefined || message.epoch !== this.#epoch || message.version !== this.#relayVersion) throw this.#protocol(`resumed at version ${message.version}, not ${this.#relayVersion ?? 'nothing'}`);
        this.#state(message);
        return;
      case 'heartbeat':
        if (this.#snapshot === undefined || message.epoch !== this.#epoch) throw this.#protocol('a heartbeat before any snapshot');
        this.#state(message);
        return;
      default:
        // A newer relay's message: skipped, so the protocol can grow.
        return;
    }
  }

  #state(message: RelayMessage): void {
    this.#connected = true;
    this.#relayStale = message.stale === true;
    if (typeof message.lastSync === 'number') this.#relayLastSync = message.lastSync;
  }

  #accept(message: RelayMessage, snapshot: Snapshot): void {
    this.#epoch = message.epoch;
    this.#relayVersion = message.version;
    this.#version++;
    this.#snapshot = snapshot;
    this.#state(message);
    const first = this.#onFirst;
    if (first !== undefined) {
      this.#onFirst = undefined;
      this.#closedBeforeStart = undefined;
      first(snapshot);
      return;
    }
    this.#snapshots.emit(snapshot);
  }

  /** A protocol fault: the next stream starts over with a full snapshot. */
  #protocol(what: string, cause?: unknown): RelayStreamError {
    this.#epoch = undefined;
    this.#relayVersion = undefined;
    return new RelayStreamError(`relay ${this.#o.url}: ${what}`, 'protocol', { cause });
  }

  #refused(error: unknown): RelayStreamError {
    this.#epoch = undefined;
    this.#relayVersion = undefined;
    const problems = error instanceof RegistryValidationError ? `: ${error.problems.slice(0, 5).join('; ')}` : `: ${(error as Error).message}`;
    return new RelayStreamError(`relay ${this.#o.url}: a registry the snapshot rules refuse${problems}; the last good snapshot is kept`, 'protocol', { cause: error });
  }
}

function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return (error as Error | null)?.message ?? String(error);
}

/** The Fetch standard's bad ports: fetch() refuses them outright, so a relay there could never be reached. */
const BAD_PORTS = new Set([1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080]);

export interface CreateRelaySourceOptions extends Partial<Omit<RelaySourceOptions, 'url' | 'namespace'>> {
  url: string;
  /** The namespace to follow; or `namespaces` with exactly one; else `DEVSTACK_NAMESPACE`, else `POD_NAMESPACE`. */
  namespace?: string | undefined;
  namespaces?: readonly string[] | undefined;
  env?: Readonly<Record<string, string | undefined>>;
}

/** A RelaySource with every option checked: a ConfigError names each problem. */
export function createRelaySource(options: CreateRelaySourceOptions): RelaySource {
  const problems: string[] = [];
  let url: URL | undefined;
  try {
    url = new URL(options.url);
  } catch {
    problems.push(`relay ${describeUntrusted(options.url)} is not a URL`);
  }
  if (url !== undefined) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') problems.push(`relay ${describeUntrusted(options.url)} must use http or https`);
    if (BAD_PORTS.has(Number(url.port))) problems.push(`relay ${describeUntrusted(options.url)}: fetch refuses port ${url.port} (a "bad port" of the Fetch standard): give the relay another port`);
    if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) problems.push(`relay ${describeUntrusted(options.url)} must be an origin only (no path, query, credentials)`);
  }
  const env = options.env ?? process.env;
  const given = options.namespace ?? (options.namespaces?.length === 1 ? options.namespaces[0] : undefined);
  if (options.namespaces !== undefined && options.namespaces.length > 1) problems.push('a relay source follows one namespace: give one --namespace');
  const namespace = given ?? env['DEVSTACK_NAMESPACE'] ?? env['POD_NAMESPACE'];
  if (namespace === undefined) problems.push('a relay source needs the namespace to follow: --namespace NS (or DEVSTACK_NAMESPACE, set from the downward API)');
  else if (!isValidKey(namespace)) problems.push(`namespace ${describeUntrusted(namespace)} is not a DNS-1123 label`);
  const limits: Array<[string, number | undefined, number, number]> = [
    ['idleTimeoutMs', options.idleTimeoutMs, 10, 3_600_000],
    ['connectTimeoutMs', options.connectTimeoutMs, 10, 600_000],
    ['maxMessageBytes', options.maxMessageBytes, 1024, 1024 * 1024 * 1024],
    ['reportIntervalMs', options.reportIntervalMs, 0, 3_600_000],
  ];
  for (const [name, value, min, max] of limits) {
    if (value !== undefined && (!Number.isInteger(value) || value < min || value > max)) problems.push(`${name} ${describeUntrusted(value)} must be an integer from ${min} to ${max}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return new RelaySource({ ...options, url: url!.origin, namespace: namespace! });
}

/** This package's entry for `createRegistrySource` in `@devstack/core`. */
export function createSource(options: CreateRelaySourceOptions): RelaySource {
  return createRelaySource(options);
}
