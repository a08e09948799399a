import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { KubeCallError } from './errors.js';
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

/** The status and the API server's own message out of a client-node `ApiException` or a network error. */
export function kubeError(what: string, error: unknown): KubeCallError {
  if (error instanceof KubeCallError) return error;
  const e = error as { code?: unknown; body?: unknown; message?: string };
  if (typeof e.code === 'number') {
    let body = e.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body) as unknown;
      } catch {
        // Not a Status: the text itself is the message.
      }
    }
    const message = typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string' ? (body as { message: string }).message : typeof body === 'string' && body.length > 0 ? body.slice(0, 300) : 'no message';
    return new KubeCallError(what, e.code, message, { cause: error });
  }
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return new KubeCallError(what, undefined, [e.message, cause?.code ?? cause?.message].filter(Boolean).join(': '), { cause: error });
}

/** Conflicts, throttling, server faults and lost connections are retried; the rest are answers. */
export const classifyKube: Classify = (error) => {
  if (!(error instanceof KubeCallError)) return { retry: false, why: 'not an API failure' };
  const status = error.status;
  if (status === undefined) return { retry: true, why: 'no answer' };
  if (status === 409) return { retry: true, why: 'conflict' };
  return { retry: status === 429 || status >= 500, why: `HTTP ${status}` };
};

async function call<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw kubeError(what, error);
  }
}

async function orMissing<T>(what: string, run: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call(what, run);
  } catch (error) {
    if (error instanceof KubeCallError && error.status === 404) return undefined;
    throw error;
  }
}

export const TRAEFIK_API_GROUPS = ['traefik.io', 'traefik.containo.us'] as const;
export type TraefikApiGroup = (typeof TRAEFIK_API_GROUPS)[number];

/** Traefik IngressRoutes (`<group>/v1alpha1`) in one namespace. */
export function ingressRouteStore(kc: KubeConfig, namespace: string, group: TraefikApiGroup): Store<KubeObject> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const where = { group, version: 'v1alpha1', namespace, plural: 'ingressroutes' };
  const describe = (name: string) => `IngressRoute ${namespace}/${name} (${group})`;
  return {
    describe,
    get: (name) => orMissing(`get ${describe(name)}`, () => api.getNamespacedCustomObject({ ...where, name }) as Promise<KubeObject>),
    create: (object) => call(`create ${describe(object.metadata!.name!)}`, () => api.createNamespacedCustomObject({ ...where, body: object, fieldManager: FIELD_MANAGER }) as Promise<KubeObject>),
    replace: (object) => call(`update ${describe(object.metadata!.name!)}`, () => api.replaceNamespacedCustomObject({ ...where, name: object.metadata!.name!, body: object, fieldManager: FIELD_MANAGER }) as Promise<KubeObject>),
  };
}

export type SecretObject = KubeObject & { type?: string; data?: Record<string, string> };

/** Secrets in one namespace. */
export function secretStore(kc: KubeConfig, namespace: string): Store<SecretObject> {
  const api = kc.makeApiClient(CoreV1Api);
  const describe = (name: string) => `Secret ${namespace}/${name}`;
  return {
    describe,
    get: (name) => orMissing(`get ${describe(name)}`, () => api.readNamespacedSecret({ name, namespace }) as Promise<SecretObject>),
    create: (object) => call(`create ${describe(object.metadata!.name!)}`, () => api.createNamespacedSecret({ namespace, body: object as V1Secret, fieldManager: FIELD_MANAGER }) as Promise<SecretObject>),
    replace: (object) => call(`update ${describe(object.metadata!.name!)}`, () => api.replaceNamespacedSecret({ name: object.metadata!.name!, namespace, body: object as V1Secret, fieldManager: FIELD_MANAGER }) as Promise<SecretObject>),
  };
}
