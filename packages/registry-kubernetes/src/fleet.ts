import { RegistryValidationError, SERVICE_LABEL, buildSnapshot, updateSnapshot, type ServiceInput, type Snapshot, type SnapshotMeta } from '@devstack/core';
import { buildModel, SLICE_SERVICE_LABEL, type EndpointSliceObject, type ModelOptions, type ServiceObject } from './model.js';
import { keyOf, type StoreChange } from './reflector.js';

function add(index: Map<string, Set<string>>, group: string, key: string): void {
  let set = index.get(group);
  if (set === undefined) index.set(group, (set = new Set()));
  set.add(key);
}

function remove(index: Map<string, Set<string>>, group: string, key: string): void {
  const set = index.get(group);
  if (set === undefined) return;
  set.delete(key);
  if (set.size === 0) index.delete(group);
}

const logicalOf = (o: ServiceObject | undefined) => o?.metadata?.labels?.[SERVICE_LABEL];
const ownerOf = (o: EndpointSliceObject | undefined) => {
  const owner = o?.metadata?.labels?.[SLICE_SERVICE_LABEL];
  return owner === undefined ? undefined : `${o?.metadata?.namespace ?? ''}/${owner}`;
};

/**
 * The watched objects, grouped by the logical service they make up, so a change rebuilds only
 * the services it touches: the model of those services and their snapshot entries (core's
 * `updateSnapshot`). A relist rebuilds everything.
 */
export class Fleet {
  readonly #options: ModelOptions;
  readonly #services = new Map<string, ServiceObject>();
  readonly #slices = new Map<string, EndpointSliceObject>();
  /** logical service -> keys of the Services that claim it */
  readonly #groups = new Map<string, Set<string>>();
  /** namespace/Service name -> keys of its EndpointSlices */
  readonly #slicesByOwner = new Map<string, Set<string>>();
  readonly #problems = new Map<string, readonly string[]>();
  readonly #dirty = new Set<string>();
  #full = true;

  constructor(options: ModelOptions) {
    this.#options = options;
  }

  /** All objects again (after a relist): everything is rebuilt at the next `build`. */
  reset(services: Iterable<ServiceObject>, slices: Iterable<EndpointSliceObject>): void {
    this.#services.clear();
    this.#slices.clear();
    this.#groups.clear();
    this.#slicesByOwner.clear();
    for (const s of services) this.#putService(keyOf(s), s);
    for (const s of slices) this.#putSlice(keyOf(s), s);
    this.#full = true;
  }

  service(change: StoreChange<ServiceObject>): void {
    if (change.full) return;
    const key = keyOf((change.object ?? change.previous)!);
    const before = logicalOf(change.previous);
    if (before !== undefined) {
      remove(this.#groups, before, key);
      this.#dirty.add(before);
    }
    this.#services.delete(key);
    if (change.object !== undefined) this.#putService(key, change.object);
  }

  slice(change: StoreChange<EndpointSliceObject>): void {
    if (change.full) return;
    const key = keyOf((change.object ?? change.previous)!);
    const before = ownerOf(change.previous);
    if (before !== undefined) {
      remove(this.#slicesByOwner, before, key);
      this.#touchOwner(before);
    }
    this.#slices.delete(key);
    if (change.object !== undefined) this.#putSlice(key, change.object);
  }

  /** Whether a `build` would change anything. */
  get pending(): boolean {
    return this.#full || this.#dirty.size > 0;
  }

  /** The next snapshot (from `previous` where it can) and every current problem. */
  build(previous: Snapshot | undefined, meta: SnapshotMeta): { snapshot: Snapshot; problems: string[] } {
    const names = this.#full || previous === undefined ? [...this.#groups.keys()] : [...this.#dirty];
    const changes = new Map<string, ServiceInput | undefined>();
    if (this.#full || previous === undefined) this.#problems.clear();
    for (const name of names) {
      const { input, problems } = this.#model(name);
      changes.set(name, input);
      if (problems.length > 0) this.#problems.set(name, problems);
      else this.#problems.delete(name);
    }
    const full = this.#full || previous === undefined;
    const make = () => (full ? buildSnapshot({ services: Object.fromEntries([...changes].filter(([, v]) => v !== undefined)) }, meta) : updateSnapshot(previous, changes, meta));
    let snapshot: Snapshot;
    try {
      snapshot = make();
    } catch (error) {
      if (!(error instanceof RegistryValidationError)) throw error;
      // The model gave core a description it refuses: only the services concerned are left out.
      for (const [name, input] of changes) {
        if (input === undefined) continue;
        try {
          buildSnapshot({ services: { [name]: input } });
        } catch (refused) {
          if (!(refused instanceof RegistryValidationError)) throw refused;
          changes.set(name, undefined);
          this.#problems.set(name, [...(this.#problems.get(name) ?? []), ...refused.problems.map((p) => `service ${name}: ${p}; not routed`)]);
        }
      }
      snapshot = make();
    }
    this.#full = false;
    this.#dirty.clear();
    return { snapshot, problems: [...this.#problems.keys()].sort().flatMap((k) => this.#problems.get(k)!) };
  }

  #putService(key: string, object: ServiceObject): void {
    this.#services.set(key, object);
    const logical = logicalOf(object);
    if (logical === undefined) return;
    add(this.#groups, logical, key);
    this.#dirty.add(logical);
  }

  #putSlice(key: string, object: EndpointSliceObject): void {
    this.#slices.set(key, object);
    const owner = ownerOf(object);
    if (owner === undefined) return;
    add(this.#slicesByOwner, owner, key);
    this.#touchOwner(owner);
  }

  #touchOwner(owner: string): void {
    const logical = logicalOf(this.#services.get(owner));
    if (logical !== undefined) this.#dirty.add(logical);
  }

  /** One logical service's description (undefined: not routed) and its problems. */
  #model(name: string): { input: ServiceInput | undefined; problems: string[] } {
    const services: ServiceObject[] = [];
    const slices: EndpointSliceObject[] = [];
    for (const key of this.#groups.get(name) ?? []) {
      services.push(this.#services.get(key)!);
      for (const sliceKey of this.#slicesByOwner.get(key) ?? []) slices.push(this.#slices.get(sliceKey)!);
    }
    const model = buildModel(services, slices, this.#options);
    return { input: model.input.services[name] as ServiceInput | undefined, problems: model.problems };
  }
}
