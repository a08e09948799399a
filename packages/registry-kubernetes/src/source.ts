import { Emitter, RegistryValidationError, SERVICE_LABEL, type RegistrySource, type Snapshot, type SourceStatus } from '@devstack/core';
import { Fleet } from './fleet.js';
import { SLICE_SERVICE_LABEL, type EndpointSliceObject, type ServiceObject, type TargetMode } from './model.js';
import { Reflector, SYSTEM_CLOCK, type Clock, type ReflectorError, type StoreChange, type Transport } from './reflector.js';
import type { BackoffOptions } from './backoff.js';

/** A little above the API server's bookmark interval (about a minute), so a healthy watch never trips it. */
export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 90_000;

export interface KubernetesSourceOptions {
  /** Namespaces to watch; undefined: all namespaces (needs a ClusterRole). */
  namespaces: readonly string[] | undefined;
  targets?: TargetMode;
  clusterDomain?: string;
  watchIdleTimeoutMs?: number;
  /** Coalesces bursts of events into one snapshot. */
  debounceMs?: number;
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
  /** The API server is not answering now: routing goes on from the last good snapshot. */
  stale: boolean;
  failures: number;
  lastError: string | undefined;
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
  readonly #failing = new Set<object>();
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
        this.#lastError = error.message;
        // Reported once per state change, not on every retry.
        if (!this.#failing.has(reflector)) {
          this.#failing.add(reflector);
          this.#errors.emit(Object.assign(new Error(`${error.message}; retrying (next in ${retryInMs} ms), routing from the last snapshot`, { cause: error }), { code: 'DEVSTACK_REGISTRY_UNREACHABLE' }));
        }
      },
      onRecovered: () => {
        this.#failing.delete(reflector);
      },
    });
    return reflector;
  }

  start(): Promise<Snapshot> {
    this.#started ??= new Promise<Snapshot>((resolve) => {
      this.#onFirstSync = () => {
        this.#onFirstSync = undefined;
        this.#publish();
        resolve(this.#snapshot!);
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
      stale: this.#failing.size > 0,
      failures: this.#failures,
      lastError: this.#lastError,
      resourceVersions,
    };
  }

  async close(): Promise<void> {
    this.#clock.clearTimeout(this.#timer);
    await Promise.all([...this.#services, ...this.#slices].map((r) => r.close()));
    this.#snapshots.clear();
    this.#errors.clear();
  }

  #schedule(): void {
    // Before the first full sync, start() publishes; after it, bursts are coalesced.
    if (this.#onFirstSync !== undefined || this.#snapshot === undefined) return;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => this.#publish(), this.#o.debounceMs ?? 5);
  }

  #publish(): void {
    if (!this.#fleet.pending && this.#snapshot !== undefined) return;
    let built: { snapshot: Snapshot; problems: string[] };
    try {
      built = this.#fleet.build(this.#snapshot, { version: this.#version + 1, source: 'kubernetes', createdAt: this.#clock.now() });
    } catch (error) {
      // The model only emits valid descriptions; this is a defect, reported rather than thrown.
      this.#errors.emit(error as Error);
      return;
    }
    this.#version++;
    const problems = built.problems.join('\n');
    if (problems !== this.#lastProblems) {
      this.#lastProblems = problems;
      if (built.problems.length > 0) this.#errors.emit(new RegistryValidationError(built.problems, { source: 'kubernetes' }));
    }
    this.#snapshot = built.snapshot;
    this.#snapshots.emit(built.snapshot);
  }
}
