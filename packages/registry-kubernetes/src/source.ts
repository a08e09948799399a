import { Emitter, RegistryValidationError, SERVICE_LABEL, buildSnapshot, describeUntrusted, type RegistrySource, type Snapshot, type SourceStatus } from '@devstack/core';
import { Fleet } from './fleet.js';
import { SLICE_SERVICE_LABEL, type EndpointSliceObject, type ServiceObject, type TargetMode } from './model.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, Reflector, SYSTEM_CLOCK, type Clock, type FailureReason, type ReflectorError, type StoreChange, type Transport } from './reflector.js';
import { toService, toSlice } from './objects.js';
import type { BackoffOptions } from './backoff.js';

/** A little above the API server's bookmark interval (about a minute), so a healthy watch never trips it. */
export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 90_000;
/** Quiet time that ends a burst of events. */
export const DEFAULT_DEBOUNCE_MS = 5;
/** While events keep coming, a snapshot at least this often. */
export const DEFAULT_MAX_DELAY_MS = 100;
/** At most one report of failures per watch, and one of unusable objects, this often. */
export const DEFAULT_REPORT_INTERVAL_MS = 30_000;
/** Objects per list page: what one page costs in memory while it is read. */
export const DEFAULT_PAGE_SIZE = 500;
/** Problems named in one report; the rest are counted. */
const REPORTED_PROBLEMS = 50;

const FAILURE_REASONS: readonly FailureReason[] = ['list', 'list-timeout', 'watch', 'watch-timeout', 'gone', 'idle'];

export interface KubernetesSourceOptions {
  /** Namespaces to watch; undefined: all namespaces (needs a ClusterRole). */
  namespaces: readonly string[] | undefined;
  targets?: TargetMode;
  clusterDomain?: string;
  watchIdleTimeoutMs?: number;
  /** A list page or a watch request not answered after this long is abandoned and retried (default 30 s). */
  requestTimeoutMs?: number;
  /** Objects per list page (default 500). */
  pageSize?: number;
  /** Coalesces bursts of events into one snapshot: the quiet time that ends a burst (default 5 ms). */
  debounceMs?: number;
  /** While events keep coming, a snapshot at least this often (default 100 ms). */
  maxDelayMs?: number;
  /** At most one report through `onError` per watch's failures, and per change of unusable objects, this often (default 30 s). */
  reportIntervalMs?: number;
  /** Makes the list/watch transport of one kind in one namespace (undefined: all). */
  transport(kind: 'services' | 'endpointslices', namespace: string | undefined, labelSelector: string): Transport<ServiceObject | EndpointSliceObject>;
  clock?: Clock;
  random?: () => number;
  backoff?: BackoffOptions;
}

export interface KubernetesStatus extends SourceStatus {
  namespaces: readonly string[] | 'all';
  synced: boolean;
  /** When every watch last had a full list (ms since the epoch), or undefined before that. */
  lastSync: number | undefined;
  /**
   * Some watch is not current now (a failed or unanswered request, a 410 relist, a watch the
   * watchdog restarted): routing goes on from the last good snapshot.
   */
  stale: boolean;
  /** Every failure of every kind, counted. */
  failures: number;
  failuresByReason: Record<FailureReason, number>;
  lastError: string | undefined;
  /** Objects the API server sent that cannot be used now (reported and skipped). */
  unusableObjects: number;
  resourceVersions: Record<string, string>;
}

/** Services labelled `devstack.io/service` and their EndpointSlices, in one or more namespaces (or all). */
export const SERVICE_SELECTOR = SERVICE_LABEL;
export const SLICE_SELECTOR = SLICE_SERVICE_LABEL;

/**
 * Publishes routing snapshots from the Kubernetes API: one reflector (list, then watch) per kind and
 * namespace. `start()` resolves after the first full sync of every one of them. While the API server
 * is away, the last snapshot stays in force and the status says it is stale; recovery needs nobody.
 */
export class KubernetesSource implements RegistrySource {
  readonly kind = 'kubernetes';
  readonly #o: KubernetesSourceOptions;
  readonly #clock: Clock;
  readonly #fleet: Fleet;
  readonly #services: Reflector<ServiceObject>[] = [];
  readonly #slices: Reflector<EndpointSliceObject>[] = [];
  readonly #snapshots = new Emitter<Snapshot>();
  readonly #errors = new Emitter<Error>();
  readonly #reports = new Map<object, { at: number; suppressed: number }>();
  readonly #unusable = new Map<string, string>();
  readonly #failuresByReason = Object.fromEntries(FAILURE_REASONS.map((r) => [r, 0])) as Record<FailureReason, number>;
  #fleetProblems: readonly string[] = [];
  #problemsAt: number | undefined;
  #problemsTimer: unknown;
  #firstChange: number | undefined;
  #snapshot: Snapshot | undefined;
  #version = 0;
  readonly #synced = new Set<object>();
  #timer: unknown;
  #started: Promise<Snapshot> | undefined;
  #onFirstSync: (() => void) | undefined;
  #failures = 0;
  #lastError: string | undefined;
  #lastProblems = '';

  constructor(options: KubernetesSourceOptions) {
    this.#o = options;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#fleet = new Fleet({ targets: options.targets ?? 'service', clusterDomain: options.clusterDomain ?? 'cluster.local' });
    const namespaces: Array<string | undefined> = options.namespaces === undefined ? [undefined] : [...new Set(options.namespaces)];
    for (const ns of namespaces) {
      this.#services.push(this.#reflector<ServiceObject>('services', ns, SERVICE_SELECTOR));
      this.#slices.push(this.#reflector<EndpointSliceObject>('endpointslices', ns, SLICE_SELECTOR));
    }
  }

  #reflector<T extends ServiceObject | EndpointSliceObject>(kind: 'services' | 'endpointslices', namespace: string | undefined, selector: string): Reflector<T> {
    const name = `${kind} in ${namespace ?? 'all namespaces'}`;
    const reflector: Reflector<T> = new Reflector<T>({
      name,
      transport: this.#o.transport(kind, namespace, selector) as Transport<T>,
      idleTimeoutMs: this.#o.watchIdleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS,
      requestTimeoutMs: this.#o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      pageSize: this.#o.pageSize ?? DEFAULT_PAGE_SIZE,
      convert: (kind === 'services' ? toService : toSlice) as (raw: unknown) => T,
      onUnusable: (key, problem) => {
        const id = `${kind === 'services' ? 'Service' : 'EndpointSlice'} ${describeUntrusted(key)}`;
        if (problem === undefined) this.#unusable.delete(id);
        else this.#unusable.set(id, `${id}: ${problem}; skipped`);
        this.#problemsChanged();
      },
      clock: this.#clock,
      random: this.#o.random,
      backoff: this.#o.backoff,
      onChange: (change) => {
        if (change.full) this.#fleet.reset(this.#services.flatMap((r) => [...r.store.values()]), this.#slices.flatMap((r) => [...r.store.values()]));
        else if (kind === 'services') this.#fleet.service(change as StoreChange<ServiceObject>);
        else this.#fleet.slice(change as StoreChange<EndpointSliceObject>);
        this.#schedule();
      },
      onSync: () => {
        this.#synced.add(reflector);
        if (this.#synced.size === this.#services.length + this.#slices.length) this.#onFirstSync?.();
      },
      onFailure: (error: ReflectorError, retryInMs: number) => {
        this.#failures++;
        this.#failuresByReason[error.reason ?? (kind === 'services' ? 'watch' : 'watch')]++;
        this.#lastError = error.message;
        this.#reportFailure(reflector, error, retryInMs);
      },
      onRecovered: () => undefined,
    });
    return reflector;
  }

  start(): Promise<Snapshot> {
    this.#started ??= new Promise<Snapshot>((resolve) => {
      this.#onFirstSync = () => {
        this.#onFirstSync = undefined;
        this.#publish();
        // Only a defect leaves no snapshot here (reported by #publish): route nothing rather than fail.
        this.#snapshot ??= buildSnapshot({ services: {} }, { version: ++this.#version, source: 'kubernetes', createdAt: this.#clock.now() });
        resolve(this.#snapshot);
      };
      for (const r of [...this.#services, ...this.#slices]) r.start();
    });
    return this.#started;
  }

  current(): Snapshot | undefined {
    return this.#snapshot;
  }

  subscribe(listener: (snapshot: Snapshot) => void): () => void {
    return this.#snapshots.add(listener);
  }

  onError(listener: (error: Error) => void): () => void {
    return this.#errors.add(listener);
  }

  status(): KubernetesStatus {
    const all = [...this.#services, ...this.#slices];
    const syncs = all.map((r) => r.lastSync);
    const resourceVersions: Record<string, string> = {};
    this.#services.forEach((r, i) => (resourceVersions[`services/${this.#o.namespaces?.[i] ?? '*'}`] = r.resourceVersion));
    this.#slices.forEach((r, i) => (resourceVersions[`endpointslices/${this.#o.namespaces?.[i] ?? '*'}`] = r.resourceVersion));
    const synced = syncs.every((s) => s > 0);
    return {
      namespaces: this.#o.namespaces ?? 'all',
      synced,
      lastSync: synced ? Math.min(...syncs) : undefined,
      stale: all.some((r) => r.stale),
      failures: this.#failures,
      failuresByReason: { ...this.#failuresByReason },
      lastError: this.#lastError,
      unusableObjects: this.#unusable.size,
      resourceVersions,
    };
  }

  async close(): Promise<void> {
    this.#clock.clearTimeout(this.#timer);
    this.#clock.clearTimeout(this.#problemsTimer);
    await Promise.all([...this.#services, ...this.#slices].map((r) => r.close()));
    this.#snapshots.clear();
    this.#errors.clear();
  }

  /**
   * A failure is reported when its watch has had no report for `reportIntervalMs` (the first one
   * at once), with how many came meanwhile: a storm of 410s or a server that is down logs one
   * line per watch per interval, while every failure is counted in `status()`.
   */
  #reportFailure(reflector: object, error: ReflectorError, retryInMs: number): void {
    const now = this.#clock.now();
    const last = this.#reports.get(reflector);
    if (last !== undefined && now - last.at < (this.#o.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS)) {
      last.suppressed++;
      return;
    }
    this.#reports.set(reflector, { at: now, suppressed: 0 });
    const meanwhile = last !== undefined && last.suppressed > 0 ? ` (${last.suppressed} more since the last report)` : '';
    const next = retryInMs === 0 ? 'now' : `next in ${retryInMs} ms`;
    this.#errors.emit(Object.assign(new Error(`${error.message}; retrying (${next}), routing from the last snapshot${meanwhile}`, { cause: error }), { code: 'DEVSTACK_REGISTRY_UNREACHABLE', reason: error.reason }));
  }

  /** Problems are reported when they change, at most once per `reportIntervalMs` (the latest state then). */
  #problemsChanged(): void {
    if (this.#problemsTimer !== undefined) return;
    const interval = this.#o.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS;
    const wait = this.#problemsAt === undefined ? 0 : Math.max(0, this.#problemsAt + interval - this.#clock.now());
    this.#problemsTimer = this.#clock.setTimeout(() => {
      this.#problemsTimer = undefined;
      this.#reportProblems();
    }, wait);
  }

  #reportProblems(): void {
    const problems = [...this.#fleetProblems, ...[...this.#unusable.values()].sort()];
    const text = problems.join('\n');
    if (text === this.#lastProblems) return;
    this.#lastProblems = text;
    this.#problemsAt = this.#clock.now();
    if (problems.length === 0) return;
    const named = problems.length > REPORTED_PROBLEMS ? [...problems.slice(0, REPORTED_PROBLEMS), `and ${problems.length - REPORTED_PROBLEMS} more`] : problems;
    this.#errors.emit(new RegistryValidationError(named, { source: 'kubernetes' }));
  }

  #schedule(): void {
    // Before the first full sync, start() publishes; after it, bursts are coalesced, but a steady
    // stream of events still gets a snapshot every maxDelayMs.
    if (this.#onFirstSync !== undefined || this.#snapshot === undefined) return;
    const now = this.#clock.now();
    this.#firstChange ??= now;
    const wait = Math.max(0, Math.min(this.#o.debounceMs ?? DEFAULT_DEBOUNCE_MS, this.#firstChange + (this.#o.maxDelayMs ?? DEFAULT_MAX_DELAY_MS) - now));
    this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => this.#publish(), wait);
  }

  #publish(): void {
    this.#firstChange = undefined;
    if (!this.#fleet.pending && this.#snapshot !== undefined) return;
    let built: { snapshot: Snapshot; problems: string[] };
    try {
      built = this.#fleet.build(this.#snapshot, { version: this.#version + 1, source: 'kubernetes', createdAt: this.#clock.now() });
    } catch (error) {
      // The fleet contains what core refuses; anything else is a defect, reported, not thrown.
      this.#errors.emit(error as Error);
      return;
    }
    this.#version++;
    if (built.problems.join('\n') !== this.#fleetProblems.join('\n')) {
      this.#fleetProblems = built.problems;
      this.#problemsChanged();
    }
    this.#snapshot = built.snapshot;
    this.#snapshots.emit(built.snapshot);
  }
}
