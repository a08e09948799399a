import { DevstackError, describeUntrusted } from '@devstack/core';
import type { KubeConfig } from '@kubernetes/client-node';
import { connectionFromKubeConfig, type KubeConnection } from './connection.js';
import { BadResponseError, KubeCallError } from './errors.js';
import { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_REQUEST_TIMEOUT_MS, send, type Answer } from './request.js';
import type { Classify } from './retry.js';

export const FIELD_MANAGER = 'devstack-hooks';

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [field: string]: unknown;
}

/**
 * One named kind in one namespace: what a read-modify-write needs. `get` answers undefined for a
 * missing object; every failure is a `KubeCallError` with the HTTP status.
 */
export interface Store<T extends KubeObject> {
  /** For messages: `IngressRoute shop/edge`. */
  describe(name: string): string;
  get(name: string): Promise<T | undefined>;
  create(object: T): Promise<T>;
  /** Fails with 409 when `metadata.resourceVersion` is no longer the object's. */
  replace(object: T): Promise<T>;
}

/** A failure as a `KubeCallError`, unless it already says what it is (a timeout, a bad answer). */
export function kubeError(what: string, error: unknown): DevstackError {
  if (error instanceof DevstackError) return error;
  const e = error as { message?: string; cause?: { code?: string; message?: string } };
  return new KubeCallError(what, undefined, [e.message, e.cause?.code ?? e.cause?.message].filter(Boolean).join(': '), { cause: error });
}

const isMap = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isStringMap = (value: unknown) => value === undefined || (isMap(value) && Object.values(value).every((v) => typeof v === 'string'));

function shape(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function parse(what: string, answer: Answer, expected: string): unknown {
  try {
    return JSON.parse(answer.body) as unknown;
  } catch (error) {
    throw new BadResponseError(what, answer.status, `not ${expected} (${answer.type || 'no content-type'}, ${Buffer.byteLength(answer.body)} bytes)`, { cause: error });
  }
}

/** What a kind's objects must look like before a command reads or changes them. */
export interface Kind {
  kind: string;
  /** Problems of the kind's own fields, beyond metadata. */
  check?: (object: Record<string, unknown>) => string | undefined;
}

/**
 * The object of an answer, checked: JSON, an object of the kind and name asked for, with metadata
 * as the API server writes it. An error answer is a `KubeCallError` with the `Status` message; one
 * that is no `Status` is said to be none (its text is not echoed: it is not the API server's).
 */
export function decode(what: string, answer: Answer, kind: Kind, name: string): KubeObject {
  if (answer.status < 200 || answer.status > 299) {
    let status: unknown;
    try {
      status = JSON.parse(answer.body) as unknown;
    } catch {
      status = undefined;
    }
    if (isMap(status) && status['kind'] === 'Status') {
      return raise(new KubeCallError(what, answer.status, typeof status['message'] === 'string' ? status['message'] : 'no message'));
    }
    const detail = `not a Kubernetes Status (${answer.type || 'no content-type'}, ${Buffer.byteLength(answer.body)} bytes)`;
    // A 404 that is no Status is not an object found missing: something else answered.
    if (answer.status === 404) throw new BadResponseError(what, answer.status, detail);
    throw new KubeCallError(what, answer.status, detail);
  }
  const object = parse(what, answer, 'JSON');
  const not = (why: string) => new BadResponseError(what, answer.status, `not a ${kind.kind}: ${why}`);
  if (!isMap(object)) throw not(shape(object));
  if (object['kind'] !== kind.kind) throw not(object['kind'] === undefined ? 'no kind' : `kind ${describeUntrusted(object['kind'])}`);
  const metadata = object['metadata'];
  if (!isMap(metadata)) throw not('no metadata');
  if (metadata['name'] !== name) throw not(`named ${describeUntrusted(metadata['name'])}, not ${JSON.stringify(name)}`);
  if (metadata['resourceVersion'] !== undefined && typeof metadata['resourceVersion'] !== 'string') throw not('metadata.resourceVersion is not a string');
  if (!isStringMap(metadata['labels'])) throw not('metadata.labels is not a map of strings');
  if (!isStringMap(metadata['annotations'])) throw not('metadata.annotations is not a map of strings');
  const problem = kind.check?.(object);
  if (problem !== undefined) throw not(problem);
  return object as KubeObject;
}

function raise(error: Error): never {
  throw error;
}

/** Conflicts, throttling, server faults and lost connections are retried; the rest are answers. */
export const classifyKube: Classify = (error) => {
  if (!(error instanceof KubeCallError)) return { retry: false, why: 'not an API failure' };
  const status = error.status;
  if (status === undefined) return { retry: true, why: 'no answer' };
  if (status === 409) return { retry: true, why: 'conflict' };
  return { retry: status === 429 || status >= 500, why: `HTTP ${status}` };
};

/** A connection, or what yields one: a client-node KubeConfig (its credentials applied once, at first use). */
export type KubeTarget = KubeConfig | KubeConnection;

function connector(target: KubeTarget): () => Promise<KubeConnection> {
  let connection: Promise<KubeConnection> | undefined;
  return () => (connection ??= 'server' in target ? Promise.resolve(target) : connectionFromKubeConfig(target));
}

export interface StoreOptions {
  /** Per request (default 30 s). */
  requestTimeoutMs?: number | undefined;
  /** The largest answer read, in bytes (default 8 MiB). */
  maxResponseBytes?: number | undefined;
}

/** get/create/replace of one kind at `collection` (`/api/v1/namespaces/NS/secrets`), answers checked. */
function restStore(target: KubeTarget, collection: string, kind: Kind, describe: (name: string) => string, options: StoreOptions): Store<KubeObject> {
  const connect = connector(target);
  const limits = { timeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES };
  const exchange = async (what: string, method: string, path: string, name: string, body?: KubeObject) => {
    try {
      return decode(what, await send(await connect(), what, method, path, body, limits), kind, name);
    } catch (error) {
      throw kubeError(what, error);
    }
  };
  const manager = `?fieldManager=${FIELD_MANAGER}`;
  const item = (name: string) => `${collection}/${encodeURIComponent(name)}`;
  return {
    describe,
    async get(name) {
      try {
        return await exchange(`get ${describe(name)}`, 'GET', item(name), name);
      } catch (error) {
        if (error instanceof KubeCallError && error.status === 404) return undefined;
        throw error;
      }
    },
    create: (object) => exchange(`create ${describe(object.metadata!.name!)}`, 'POST', collection + manager, object.metadata!.name!, object),
    replace: (object) => exchange(`update ${describe(object.metadata!.name!)}`, 'PUT', item(object.metadata!.name!) + manager, object.metadata!.name!, object),
  };
}

export const TRAEFIK_API_GROUPS = ['traefik.io', 'traefik.containo.us'] as const;
export type TraefikApiGroup = (typeof TRAEFIK_API_GROUPS)[number];

const INGRESS_ROUTE: Kind = {
  kind: 'IngressRoute',
  check: (object) => {
    const spec = object['spec'];
    if (spec === undefined) return undefined;
    if (!isMap(spec)) return 'spec is not an object';
    return spec['routes'] === undefined || Array.isArray(spec['routes']) ? undefined : 'spec.routes is not a list';
  },
};

const SECRET: Kind = { kind: 'Secret', check: (object) => (isStringMap(object['data']) ? undefined : 'data is not a map of strings') };

/** Traefik IngressRoutes (`<group>/v1alpha1`) in one namespace. */
export function ingressRouteStore(kube: KubeTarget, namespace: string, group: TraefikApiGroup, options: StoreOptions = {}): Store<KubeObject> {
  const describe = (name: string) => `IngressRoute ${namespace}/${name} (${group})`;
  return restStore(kube, `/apis/${group}/v1alpha1/namespaces/${encodeURIComponent(namespace)}/ingressroutes`, INGRESS_ROUTE, describe, options);
}

export type SecretObject = KubeObject & { type?: string; data?: Record<string, string> };

/** Secrets in one namespace. */
export function secretStore(kube: KubeTarget, namespace: string, options: StoreOptions = {}): Store<SecretObject> {
  const describe = (name: string) => `Secret ${namespace}/${name}`;
  return restStore(kube, `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`, SECRET, describe, options) as Store<SecretObject>;
}
