import { randomUUID } from 'node:crypto';
import type { KubeObject, ResourceType } from './types.js';
import { type Store, objectKey } from './store.js';
import { ClusterIps, applyDefaults } from './defaults.js';
import { canonical, clone } from './canonical.js';
import { groupVersion, storageKey } from './resources.js';
import { type StatusBody, alreadyExists, badRequest, conflict, failure, invalid, notFound, successStatus } from './status.js';
import { applyPatch } from './patch.js';

const NAMESPACE_TYPE = { group: '', plural: 'namespaces' };
const GENERATE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

function suffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += GENERATE_ALPHABET[Math.floor(Math.random() * GENERATE_ALPHABET.length)];
  return s;
}

/** What makes `metadata.generation` move: anything outside metadata and status. */
function specOf(object: KubeObject): string {
  const { metadata: _m, status: _s, ...rest } = object;
  return canonical(rest);
}

export interface WriteOptions {
  dryRun?: boolean;
}

/**
 * The write semantics of the real API server over the store: identity checks, preconditions,
 * server-set metadata and defaults. Shared by the HTTP routes and the test's seeding helpers.
 */
export class ObjectApi {
  readonly #ips = new ClusterIps();
  constructor(readonly store: Store) {}

  get(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const found = this.store.get(storageKey(type), objectKey(type.namespaced ? namespace : undefined, name));
    if (!found) throw notFound(type, name);
    return found;
  }

  #checkIdentity(type: ResourceType, namespace: string | undefined, body: KubeObject): KubeObject {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('the body of the request must be a JSON object');
    const expected = groupVersion(type);
    if (body.apiVersion !== undefined && body.apiVersion !== expected) {
      throw badRequest(`the API version in the data (${body.apiVersion}) does not match the expected API version (${expected})`);
    }
    if (body.kind !== undefined && body.kind !== type.kind) {
      throw badRequest(`the kind in the data (${body.kind}) does not match the expected kind (${type.kind})`);
    }
    const object = clone(body);
    object.apiVersion = expected;
    object.kind = type.kind;
    const meta = (object.metadata ??= {});
    if (type.namespaced) {
      if (meta.namespace && namespace && meta.namespace !== namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      meta.namespace = namespace ?? meta.namespace;
      if (!meta.namespace) throw badRequest('the namespace of the object is required');
    } else {
      delete meta.namespace;
    }
    return object;
  }

  create(type: ResourceType, namespace: string | undefined, body: KubeObject, options: WriteOptions = {}): KubeObject {
    const object = this.#checkIdentity(type, namespace, body);
    const meta = object.metadata!;
    if (!meta.name && meta.generateName) meta.name = meta.generateName + suffix();
    if (!meta.name) throw invalid(type, '', 'metadata.name', 'Required value: name or generateName is required');
    if (type.namespaced) this.#requireNamespace(meta.namespace!);
    const key = objectKey(meta.namespace, meta.name);
    if (this.store.get(storageKey(type), key)) throw alreadyExists(type, meta.name);
    meta.uid = randomUUID();
    meta.creationTimestamp = now();
    meta.generation = 1;
    delete meta.deletionTimestamp;
    applyDefaults(object, undefined, this.#ips);
    meta.resourceVersion = String(this.store.nextResourceVersion());
    if (options.dryRun) return object;
    this.store.commit('ADDED', storageKey(type), key, object);
    return object;
  }

  update(type: ResourceType, namespace: string | undefined, name: string, body: KubeObject, options: WriteOptions = {}): KubeObject {
    const object = this.#checkIdentity(type, namespace, body);
    const meta = object.metadata!;
    if (meta.name !== undefined && meta.name !== name) {
      throw badRequest(`the name of the object (${meta.name}) does not match the name on the URL (${name})`);
    }
    meta.name = name;
    const current = this.get(type, meta.namespace, name);
    const currentMeta = current.metadata!;
    if (meta.resourceVersion && meta.resourceVersion !== currentMeta.resourceVersion) throw conflict(type, name);
    if (meta.uid && meta.uid !== currentMeta.uid) throw conflict(type, name);
    meta.uid = currentMeta.uid;
    meta.creationTimestamp = currentMeta.creationTimestamp;
    // Only a delete sets deletionTimestamp; what a client sends there is ignored.
    if (currentMeta.deletionTimestamp) meta.deletionTimestamp = currentMeta.deletionTimestamp;
    else delete meta.deletionTimestamp;
    applyDefaults(object, current, this.#ips);
    meta.generation = (currentMeta.generation ?? 1) + (specOf(object) === specOf(current) ? 0 : 1);
    meta.resourceVersion = currentMeta.resourceVersion;
    // A write that changes nothing is not a change: no new version, no watch event.
    if (canonical(object) === canonical(current)) return current;
    const key = objectKey(meta.namespace, name);
    if (meta.deletionTimestamp && !(Array.isArray(meta.finalizers) && meta.finalizers.length > 0)) {
      // The last finalizer is gone from an object being deleted: now it goes.
      meta.resourceVersion = String(this.store.nextResourceVersion());
      if (!options.dryRun) this.store.commit('DELETED', storageKey(type), key, object);
      return object;
    }
    meta.resourceVersion = String(this.store.nextResourceVersion());
    if (options.dryRun) return object;
    this.store.commit('MODIFIED', storageKey(type), key, object);
    return object;
  }

  patch(type: ResourceType, namespace: string | undefined, name: string, body: string, contentType: string, options: WriteOptions = {}): KubeObject {
    const current = this.get(type, namespace, name);
    const patched = applyPatch(current, body, contentType);
    // The patched object carries the stored resourceVersion unless the patch set one: a stale one is a conflict.
    return this.update(type, namespace, name, patched, options);
  }

  delete(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    preconditions: { uid?: string; resourceVersion?: string } = {},
    options: WriteOptions = {},
  ): KubeObject | StatusBody {
    const current = this.get(type, namespace, name);
    const meta = current.metadata!;
    if (preconditions.uid && preconditions.uid !== meta.uid) {
      throw failure(409, 'Conflict', `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${meta.uid}`);
    }
    if (preconditions.resourceVersion && preconditions.resourceVersion !== meta.resourceVersion) {
      throw failure(409, 'Conflict', `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${meta.resourceVersion}`);
    }
    const key = objectKey(meta.namespace, name);
    const deleted = clone(current);
    deleted.metadata!.resourceVersion = String(this.store.nextResourceVersion());
    const finalizers = Array.isArray(meta.finalizers) ? meta.finalizers : [];
    if (finalizers.length > 0) {
      // Finalizers hold the object: it is only marked, and goes when the last one is removed.
      if (!meta.deletionTimestamp) {
        deleted.metadata!.deletionTimestamp = now();
        deleted.metadata!.deletionGracePeriodSeconds = 0;
        if (!options.dryRun) this.store.commit('MODIFIED', storageKey(type), key, deleted);
      } else {
        return current;
      }
      return deleted;
    }
    if (!options.dryRun) {
      this.store.commit('DELETED', storageKey(type), key, deleted);
      if (type.kind === 'Namespace' && !type.group) this.#deleteContents(name);
    }
    return type.returnDeleted ? deleted : successStatus(type, name, meta.uid);
  }

  /** The namespace controller's work, done at once: everything in a deleted namespace goes too. */
  #deleteContents(namespace: string): void {
    const prefix = `${namespace}/`;
    for (const storage of this.store.storages()) {
      for (const object of this.store.current(storage)) {
        if (object.metadata?.namespace !== namespace) continue;
        const gone = clone(object);
        gone.metadata!.resourceVersion = String(this.store.nextResourceVersion());
        this.store.commit('DELETED', storage, prefix + object.metadata.name, gone);
      }
    }
  }

  #requireNamespace(namespace: string): void {
    if (!this.store.get(`${NAMESPACE_TYPE.group}/${NAMESPACE_TYPE.plural}`, objectKey(undefined, namespace))) {
      throw failure(404, 'NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' });
    }
  }
}
