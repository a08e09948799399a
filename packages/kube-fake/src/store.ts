import type { KubeObject } from './types.js';
import { expired } from './status.js';

/** One change, as etcd records it: the object after it (before it, for a deletion) and before it. */
export interface StoreEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  storage: string;
  key: string;
  object: KubeObject;
  previous: KubeObject | undefined;
}

export type StoreListener = (event: StoreEvent) => void;

export const objectKey = (namespace: string | undefined, name: string) => `${namespace ?? ''}/${name}`;

/**
 * Objects by storage and key, one global resourceVersion counter (as etcd's revision) and the
 * history of changes since the last compaction, so lists at an older version and watches from
 * one can be answered, and older ones get 410.
 */
export class Store {
  #rv: number;
  #compacted: number;
  readonly #objects = new Map<string, Map<string, KubeObject>>();
  readonly #history: StoreEvent[] = [];
  readonly #listeners = new Set<StoreListener>();

  constructor(firstResourceVersion = 1) {
    this.#rv = firstResourceVersion - 1;
    this.#compacted = this.#rv;
  }

  get resourceVersion(): number {
    return this.#rv;
  }

  /** Versions at or above this one can still be listed and watched from. */
  get compactedResourceVersion(): number {
    return this.#compacted;
  }

  nextResourceVersion(): number {
    return this.#rv + 1;
  }

  get(storage: string, key: string): KubeObject | undefined {
    return this.#objects.get(storage)?.get(key);
  }

  storages(): string[] {
    return [...this.#objects.keys()];
  }

  /** The current objects in key order (namespace, then name), as etcd ranges over them. */
  current(storage: string): KubeObject[] {
    const objects = this.#objects.get(storage);
    if (!objects) return [];
    return [...objects.keys()].sort().map((k) => objects.get(k)!);
  }

  /** The objects as they were at `rv`, rebuilt by undoing the newer history. */
  at(storage: string, rv: number): KubeObject[] {
    this.assertAvailable(rv);
    const state = new Map(this.#objects.get(storage));
    for (let i = this.#history.length - 1; i >= 0 && this.#history[i]!.rv > rv; i--) {
      const e = this.#history[i]!;
      if (e.storage !== storage) continue;
      if (e.previous) state.set(e.key, e.previous);
      else state.delete(e.key);
    }
    return [...state.keys()].sort().map((k) => state.get(k)!);
  }

  assertAvailable(rv: number): void {
    if (rv < this.#compacted) throw expired(rv, this.#compacted + 1);
  }

  /** History after `rv` for one storage; throws 410 when part of it was compacted. */
  since(storage: string, rv: number): StoreEvent[] {
    this.assertAvailable(rv);
    return this.#history.filter((e) => e.rv > rv && e.storage === storage);
  }

  /** Records a change at the next resourceVersion; `object` must already carry that version. */
  commit(type: StoreEvent['type'], storage: string, key: string, object: KubeObject): StoreEvent {
    let objects = this.#objects.get(storage);
    if (!objects) this.#objects.set(storage, (objects = new Map()));
    const previous = objects.get(key);
    this.#rv++;
    if (type === 'DELETED') objects.delete(key);
    else objects.set(key, object);
    const event: StoreEvent = { rv: this.#rv, type, storage, key, object, previous };
    this.#history.push(event);
    for (const listener of this.#listeners) listener(event);
    return event;
  }

  /** Forgets the history up to `rv` (default: all of it), as etcd compaction does. */
  compact(rv = this.#rv): number {
    const upTo = Math.min(rv, this.#rv);
    if (upTo <= this.#compacted) return this.#compacted;
    this.#compacted = upTo;
    const keep = this.#history.findIndex((e) => e.rv > upTo);
    this.#history.splice(0, keep < 0 ? this.#history.length : keep);
    return this.#compacted;
  }

  subscribe(listener: StoreListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
