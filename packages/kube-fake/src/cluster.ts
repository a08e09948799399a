import { EventEmitter } from 'node:events';
import type { CustomResourceDefinition, KubeObject, ObjectRef, ResourceType } from './types.js';
import { Store, objectKey } from './store.js';
import { ObjectApi } from './objects.js';
import { ServerSideApply } from './apply.js';
import { ResourceTypes, storageKey } from './resources.js';
import { present } from './watch.js';
import { list } from './list.js';
import { clone } from './canonical.js';
import { KubeApiError } from './status.js';

/** The helpers put a namespaced object without a namespace in `default`, as kubectl does. */
const namespaceOf = (type: ResourceType, namespace: string | undefined) => (type.namespaced ? (namespace ?? 'default') : undefined);

const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export interface ClusterOptions {
  /** Namespaces to create besides default, kube-system, kube-public and kube-node-lease. */
  namespaces?: string[];
  customResources?: CustomResourceDefinition[];
  /** Objects to create before the server starts listening. */
  objects?: KubeObject[];
  /** The first resourceVersion handed out (default 1). */
  firstResourceVersion?: number;
}

/**
 * The cluster state behind the fake API server, and the helpers a test seeds and inspects it
 * with: the same rules as the HTTP API (defaults, conflicts, watch events), without a client.
 */
export class FakeCluster extends EventEmitter {
  protected readonly store: Store;
  protected readonly objects: ObjectApi;
  protected readonly types = new ResourceTypes();
  protected readonly applier: ServerSideApply;

  constructor(options: ClusterOptions = {}) {
    super();
    this.store = new Store(options.firstResourceVersion ?? 1);
    this.objects = new ObjectApi(this.store);
    this.applier = new ServerSideApply(this.objects);
    for (const def of options.customResources ?? []) this.registerCustomResource(def);
    for (const name of [...SYSTEM_NAMESPACES, ...(options.namespaces ?? [])]) {
      this.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    }
    for (const object of options.objects ?? []) this.create(object);
  }

  /** The global resourceVersion: the version of the last change. */
  get resourceVersion(): string {
    return String(this.store.resourceVersion);
  }

  registerCustomResource(def: CustomResourceDefinition): void {
    this.types.register(def);
  }

  create(object: KubeObject): KubeObject {
    const type = this.types.byKind(object.apiVersion, object.kind);
    return present(type, this.objects.create(type, namespaceOf(type, object.metadata?.namespace), object));
  }

  /** PUT semantics: a `metadata.resourceVersion` that is not the stored one is a 409 Conflict. */
  update(object: KubeObject): KubeObject {
    const type = this.types.byKind(object.apiVersion, object.kind);
    const meta = object.metadata ?? {};
    return present(type, this.objects.update(type, namespaceOf(type, meta.namespace), meta.name ?? '', object));
  }

  /** Creates the object, or replaces it whatever its stored version. */
  apply(object: KubeObject): KubeObject {
    const type = this.types.byKind(object.apiVersion, object.kind);
    const meta = object.metadata ?? {};
    if (!this.tryGet({ apiVersion: object.apiVersion!, kind: object.kind!, name: meta.name ?? '', namespace: meta.namespace })) {
      return this.create(object);
    }
    const body = clone(object);
    if (body.metadata) delete body.metadata.resourceVersion;
    return present(type, this.objects.update(type, namespaceOf(type, meta.namespace), meta.name ?? '', body));
  }

  /** A merge patch by default; `application/json-patch+json` takes an array of operations. */
  patch(ref: ObjectRef, patch: unknown, contentType = 'application/merge-patch+json'): KubeObject {
    const type = this.types.byKind(ref.apiVersion, ref.kind);
    return present(type, this.objects.patch(type, namespaceOf(type, ref.namespace), ref.name, JSON.stringify(patch), contentType));
  }

  delete(ref: ObjectRef): void {
    const type = this.types.byKind(ref.apiVersion, ref.kind);
    this.objects.delete(type, namespaceOf(type, ref.namespace), ref.name);
  }

  get(ref: ObjectRef): KubeObject {
    const type = this.types.byKind(ref.apiVersion, ref.kind);
    return present(type, this.objects.get(type, namespaceOf(type, ref.namespace), ref.name));
  }

  /** Like get, but undefined for a missing object (an unknown kind still throws). */
  tryGet(ref: ObjectRef): KubeObject | undefined {
    try {
      return this.get(ref);
    } catch (error) {
      if (error instanceof KubeApiError && error.status.code === 404) return undefined;
      throw error;
    }
  }

  list(apiVersion: string, kind: string, namespace?: string): KubeObject[] {
    const type = this.types.byKind(apiVersion, kind);
    const all = () => true;
    const listed = list(this.store, type, { namespace, label: all, field: all, filtered: false, resourceVersion: undefined, resourceVersionMatch: undefined, limit: undefined, continueToken: undefined });
    return listed.items.map((item) => present(type, item));
  }

  /**
   * Stores `object` exactly as given, with no defaults and no checks but a string name (the
   * namespace defaults to `default`): what a non-validating server, a future field or a
   * CRD-backed source could hand a client. Created, or replacing the stored one (MODIFIED).
   */
  poison(object: KubeObject): KubeObject {
    const type = this.types.byKind(object.apiVersion, object.kind);
    const stored = clone(object);
    const meta = (stored.metadata ??= {});
    if (typeof meta.name !== 'string' || meta.name === '') throw new TypeError('poison needs a metadata.name');
    if (type.namespaced) meta.namespace ??= 'default';
    const storage = storageKey(type);
    const key = objectKey(meta.namespace, meta.name);
    const previous = this.store.get(storage, key);
    meta.resourceVersion = String(this.store.nextResourceVersion());
    this.store.commit(previous ? 'MODIFIED' : 'ADDED', storage, key, stored);
    return present(type, stored);
  }

  /** Forgets history up to `resourceVersion` (default: now): older versions get 410 from then on. */
  compact(resourceVersion?: string | number): string {
    return String(this.store.compact(resourceVersion === undefined ? undefined : Number(resourceVersion)));
  }
}
