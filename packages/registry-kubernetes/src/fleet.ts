import { FEATURE_LABEL, RegistryValidationError, SERVICE_LABEL, STACK_ON_ANNOTATION, buildSnapshot, describeUntrusted, isValidKey, updateSnapshot, type ServiceInput, type Snapshot, type SnapshotMeta } from '@devstack/core';
import { buildModel, created, SLICE_SERVICE_LABEL, type EndpointSliceObject, type ModelOptions, type ServiceObject } from './model.js';
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

/** A feature copy's `devstack.io/stack-on`: what its key stacks on, by its Service's word. */
interface StackClaim {
  readonly key: string;
  readonly parent: string;
  readonly ref: string;
  readonly created: number;
}

function stackClaim(ref: string, o: ServiceObject): StackClaim | undefined {
  const parent = o.metadata?.annotations?.[STACK_ON_ANNOTATION];
  const key = o.metadata?.labels?.[FEATURE_LABEL];
  if (parent === undefined || key === undefined || logicalOf(o) === undefined) return undefined;
  return { key, parent, ref, created: created(o) };
}

/**
 * Every key's stack from its copies' annotations. Copies without the annotation have no say; those
 * that have it must agree, else the oldest (then namespace/name) wins and the others are reported.
 */
function stacksOf(claims: Iterable<StackClaim>): { stacks: Record<string, string>; problems: string[] } {
  const problems: string[] = [];
  const byKey = new Map<string, StackClaim[]>();
  for (const claim of claims) {
    if (!isValidKey(claim.key) || claim.key === 'base') continue; // the model reports the label
    if (!isValidKey(claim.parent) || claim.parent === 'base') {
      problems.push(`Service ${claim.ref}: annotation ${STACK_ON_ANNOTATION}=${describeUntrusted(claim.parent)} is not a routing key (a DNS-1123 label other than "base"); key ${claim.key} is not stacked by it`);
      continue;
    }
    let list = byKey.get(claim.key);
    if (list === undefined) byKey.set(claim.key, (list = []));
    list.push(claim);
  }
  const stacks: Record<string, string> = {};
  for (const key of [...byKey.keys()].sort()) {
    const list = byKey.get(key)!.sort((a, b) => a.created - b.created || (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
    const winner = list[0]!;
    stacks[key] = winner.parent;
    const others = list.filter((c) => c.parent !== winner.parent);
    if (others.length > 0) {
      problems.push(`copies of key ${key} disagree on ${STACK_ON_ANNOTATION}: ${[winner, ...others].map((c) => `${c.ref} says ${c.parent}`).join(', ')}; ${winner.ref} (the oldest) is used`);
    }
  }
  return { stacks, problems };
}

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
  /** namespace/Service name -> its stack-on claim */
  readonly #stackClaims = new Map<string, StackClaim>();
  #stacksDirty = true;
  #stacks: { stacks: Record<string, string>; problems: string[] } = { stacks: {}, problems: [] };
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
    this.#stackClaims.clear();
    this.#stacksDirty = true;
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
    if (this.#stackClaims.delete(key)) this.#stacksDirty = true;
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
    return this.#full || this.#dirty.size > 0 || this.#stacksDirty;
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
    if (this.#stacksDirty) this.#stacks = stacksOf(this.#stackClaims.values());
    const { stacks } = this.#stacks;
    const make = () =>
      full ? buildSnapshot({ services: Object.fromEntries([...changes].filter(([, v]) => v !== undefined)), stacks }, meta) : updateSnapshot(previous, changes, meta, this.#stacksDirty ? stacks : undefined);
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
    this.#stacksDirty = false;
    const refused = snapshot.stackProblems.map((p) => `key ${p.key}: stack ${p.chain.join(' -> ')} ${p.problem === 'cycle' ? 'is a cycle' : 'is deeper than 8'}: not stacked`);
    return { snapshot, problems: [...[...this.#problems.keys()].sort().flatMap((k) => this.#problems.get(k)!), ...this.#stacks.problems, ...refused] };
  }

  #putService(key: string, object: ServiceObject): void {
    this.#services.set(key, object);
    const claim = stackClaim(key, object);
    if (claim !== undefined) {
      this.#stackClaims.set(key, claim);
      this.#stacksDirty = true;
    }
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
