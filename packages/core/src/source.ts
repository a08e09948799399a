import type { Snapshot } from './snapshot.js';

export type SnapshotListener = (snapshot: Snapshot) => void;
export type ErrorListener = (error: Error) => void;

/**
 * What every registry source offers, so the proxy and the SDK take any of them unchanged.
 * A source publishes immutable snapshots; consumers keep a reference to the latest one.
 */
export interface RegistrySource {
  /** A short name for logs and metrics: `file`, `kubernetes`, `static`. */
  readonly kind: string;
  /** Loads the first snapshot and starts watching. Rejects when no first snapshot can be had. */
  start(): Promise<Snapshot>;
  /** The latest good snapshot; undefined before the first one. */
  current(): Snapshot | undefined;
  /** Called with every new snapshot after the first. Returns an unsubscribe function. */
  subscribe(listener: SnapshotListener): () => void;
  /** Called when an update is refused and the last good snapshot is kept. Returns an unsubscribe function. */
  onError(listener: ErrorListener): () => void;
  close(): Promise<void>;
  /** Re-reads the source now (SIGHUP), where that means something (a file); watched sources need not. */
  reload?(): Promise<ReloadOutcome>;
  /** What the source can tell about its state, for `/routes` and `/readyz`. */
  status?(): SourceStatus;
}

/** What `reload()` came to: a new snapshot, nothing new, or a refusal reported through `onError`. */
export type ReloadOutcome = 'published' | 'unchanged' | 'refused';

export interface SourceStatus {
  /** The first full sync happened. */
  readonly synced: boolean;
  /** The source cannot reach what it watches now: routing goes on from the last good snapshot. */
  readonly stale: boolean;
  /** When the data was last known complete and current (ms since the epoch). */
  readonly lastSync: number | undefined;
  readonly [detail: string]: unknown;
}

/** Listener bookkeeping shared by the sources; a throwing listener never breaks the others. */
export class Emitter<T> {
  readonly #listeners = new Set<(value: T) => void>();

  add(listener: (value: T) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(value: T): void {
    for (const listener of this.#listeners) {
      try {
        listener(value);
      } catch {
        // A consumer's bug must not stop the snapshot from reaching the other consumers.
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}

/** A source that holds one snapshot, or whatever `publish` gives it: for tests and embedding. */
export class StaticSource implements RegistrySource {
  readonly kind = 'static';
  #snapshot: Snapshot;
  readonly #snapshots = new Emitter<Snapshot>();
  readonly #errors = new Emitter<Error>();

  constructor(snapshot: Snapshot) {
    this.#snapshot = snapshot;
  }

  async start(): Promise<Snapshot> {
    return this.#snapshot;
  }

  current(): Snapshot {
    return this.#snapshot;
  }

  publish(snapshot: Snapshot): void {
    this.#snapshot = snapshot;
    this.#snapshots.emit(snapshot);
  }

  subscribe(listener: (snapshot: Snapshot) => void): () => void {
    return this.#snapshots.add(listener);
  }

  onError(listener: (error: Error) => void): () => void {
    return this.#errors.add(listener);
  }

  async close(): Promise<void> {
    this.#snapshots.clear();
    this.#errors.clear();
  }
}
