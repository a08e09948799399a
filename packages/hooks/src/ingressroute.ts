import { ConfigError, describeUntrusted } from '@devstack/core';
import { NotFoundError, NotOwnedError } from './errors.js';
import { classifyKube, ingressRouteStore, TRAEFIK_API_GROUPS, type KubeObject, type KubeTarget, type Store, type TraefikApiGroup } from './kube.js';
import { SILENT, type Logger } from './log.js';
import { withRetries, type RetryOptions } from './retry.js';
import { addRoute, removeRoute, ROUTES_ANNOTATION, SERVICE_SCHEMES, type AddChange, type RemoveChange, type RouteSpec, type RuleSyntax, type ServiceScheme } from './routes.js';
import { dnsLabel, dnsSubdomain, headerName, portRef, problemsOf, routingKey, serviceName } from './validate.js';

export const DEFAULT_KEY_HEADER = 'uber-ctx-key';

interface Common {
  /** The shared IngressRoute. */
  name: string;
  namespace: string;
  key: string;
  apiGroup?: TraefikApiGroup | undefined;
  retry?: RetryOptions | undefined;
  /** Per Kubernetes API request, in ms (default 30 000). */
  requestTimeoutMs?: number | undefined;
  /** The largest Kubernetes API answer read, in bytes (default 8 MiB). */
  maxResponseBytes?: number | undefined;
  log?: Logger | undefined;
}

export interface AddIngressRouteOptions extends Common {
  host: string;
  service: string;
  port?: number | string | undefined;
  traefik?: RuleSyntax | undefined;
  keyName?: string | undefined;
  priority?: number | undefined;
  /**
   * The `scheme` Traefik uses to reach the Service (`h2c` for an HTTP/2 cleartext or gRPC app);
   * undefined writes none, and a rerun without it takes an earlier one away.
   */
  scheme?: ServiceScheme | undefined;
  /** Create the IngressRoute when it does not exist, instead of failing. */
  create?: boolean | undefined;
}

export type RemoveIngressRouteOptions = Common;

export interface Outcome<C extends string> {
  change: C;
  /** How many read-modify-write attempts it took. */
  attempts: number;
}

function checkCommon(options: Common): string[] {
  const problems = problemsOf([
    [routingKey, '--key', options.key],
    [dnsSubdomain, '--name', options.name],
    [dnsLabel, '--namespace', options.namespace],
  ]);
  if (options.apiGroup !== undefined && !TRAEFIK_API_GROUPS.includes(options.apiGroup)) problems.push(`--api-group: expected ${TRAEFIK_API_GROUPS.join(' or ')}`);
  return problems;
}

/** Every problem of the options at once, as a ConfigError, before any request. */
export function checkAddOptions(options: AddIngressRouteOptions): void {
  const problems = [
    ...checkCommon(options),
    ...problemsOf([
      [dnsSubdomain, '--host', options.host],
      [serviceName, '--service', options.service],
      [portRef, '--port', options.port === undefined ? undefined : String(options.port)],
      [headerName, '--key-name', options.keyName],
    ]),
  ];
  if (options.traefik !== undefined && options.traefik !== 'v3' && options.traefik !== 'v2') problems.push('--traefik: expected v3 or v2');
  if (options.scheme !== undefined && !SERVICE_SCHEMES.includes(options.scheme)) problems.push(`--scheme: ${describeUntrusted(options.scheme)} is not one of ${SERVICE_SCHEMES.join(', ')}`);
  if (options.priority !== undefined && !(Number.isInteger(options.priority) && options.priority >= 0 && options.priority <= 2 ** 31 - 1)) problems.push('--priority: expected a whole number from 0 to 2147483647');
  if (problems.length > 0) throw new ConfigError(problems);
}

export function checkRemoveOptions(options: RemoveIngressRouteOptions): void {
  const problems = checkCommon(options);
  if (problems.length > 0) throw new ConfigError(problems);
}

function spec(options: AddIngressRouteOptions): RouteSpec {
  const port = options.port ?? 80;
  return {
    host: options.host,
    key: options.key,
    keyName: options.keyName ?? DEFAULT_KEY_HEADER,
    service: options.service,
    port: typeof port === 'string' && /^[0-9]+$/.test(port) ? Number(port) : port,
    priority: options.priority,
    scheme: options.scheme,
    syntax: options.traefik ?? 'v3',
  };
}

/**
 * Adds the key's route to the shared IngressRoute: read, change, replace with the read
 * `resourceVersion`; on a conflict (another copy wrote first) read again and redo the change, so
 * concurrent writers all end up in the route, each once. Unchanged when the route is already there.
 */
export async function addIngressRoute(kube: KubeTarget, options: AddIngressRouteOptions): Promise<Outcome<AddChange | 'created'>> {
  checkAddOptions(options);
  const store = ingressRouteStore(kube, options.namespace, options.apiGroup ?? 'traefik.io', options);
  return addWith(store, options);
}

export async function addWith(store: Store<KubeObject>, options: AddIngressRouteOptions): Promise<Outcome<AddChange | 'created'>> {
  const log = options.log ?? SILENT;
  const wanted = spec(options);
  const group = options.apiGroup ?? 'traefik.io';
  let attempts = 0;
  const change = await withRetries(
    `add the route for ${options.key} to ${store.describe(options.name)}`,
    async (n) => {
      attempts = n;
      const current = await store.get(options.name);
      if (current === undefined) {
        if (!options.create) throw new NotFoundError(`${store.describe(options.name)} does not exist (pass --create to create it)`);
        const fresh = addRoute({ apiVersion: `${group}/v1alpha1`, kind: 'IngressRoute', metadata: { name: options.name, namespace: options.namespace }, spec: { routes: [] } }, wanted);
        if ('conflict' in fresh) throw new Error('unreachable: a new IngressRoute has no routes');
        // A 409 AlreadyExists (another copy created it first) is retried: the next read finds it.
        await store.create(fresh.object);
        return 'created' as const;
      }
      const next = addRoute(current, wanted);
      if ('conflict' in next) throw new NotOwnedError(`${store.describe(options.name)} already has a route ${JSON.stringify(next.conflict)} that devstack-hooks did not add (not in its ${ROUTES_ANNOTATION} annotation); it is left alone`);
      if (next.change !== 'unchanged') await store.replace(next.object);
      return next.change;
    },
    classifyKube,
    log,
    options.retry,
  );
  return { change, attempts };
}

/** Removes the routes this tool added for the key, and only those; absent is success. */
export async function removeIngressRoute(kube: KubeTarget, options: RemoveIngressRouteOptions): Promise<Outcome<RemoveChange | 'no-ingressroute'> & { removed: number }> {
  checkRemoveOptions(options);
  return removeWith(ingressRouteStore(kube, options.namespace, options.apiGroup ?? 'traefik.io', options), options);
}

export async function removeWith(store: Store<KubeObject>, options: RemoveIngressRouteOptions): Promise<Outcome<RemoveChange | 'no-ingressroute'> & { removed: number }> {
  let attempts = 0;
  let removed = 0;
  const change = await withRetries(
    `remove the routes of ${options.key} from ${store.describe(options.name)}`,
    async (n) => {
      attempts = n;
      const current = await store.get(options.name);
      // Nothing left to remove from: on a pre-delete hook the shared route may be gone already.
      if (current === undefined) return 'no-ingressroute' as const;
      const next = removeRoute(current, options.key);
      removed = next.removed;
      if (next.change === 'removed') await store.replace(next.object);
      return next.change;
    },
    classifyKube,
    options.log ?? SILENT,
    options.retry,
  );
  return { change, attempts, removed };
}
