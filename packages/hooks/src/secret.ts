import { ConfigError, FEATURE_LABEL, SERVICE_LABEL } from '@devstack/core';
import { NotFoundError, NotOwnedError } from './errors.js';
import { classifyKube, secretStore, type KubeTarget, type SecretObject, type Store } from './kube.js';
import { SILENT, type Logger } from './log.js';
import { withRetries, type RetryOptions } from './retry.js';
import { dnsLabel, dnsSubdomain, problemsOf, routingKey, secretKey, serviceName, ttl } from './validate.js';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'devstack-hooks';
export const TTL_ANNOTATION = 'janitor/ttl';
export const DEFAULT_TTL = '6h';

export type SecretChange = 'created' | 'updated' | 'unchanged';

export interface SecretOutcome {
  change: SecretChange;
  /** The data keys written (names only: values are never reported). */
  keys: string[];
  attempts: number;
}

interface Common {
  namespace: string;
  /** KEY=VALUE pairs to set, as plain text (stored base64 in `data`). */
  set?: Record<string, string> | undefined;
  retry?: RetryOptions | undefined;
  /** Per Kubernetes API request, in ms (default 30 000). */
  requestTimeoutMs?: number | undefined;
  /** The largest Kubernetes API answer read, in bytes (default 8 MiB). */
  maxResponseBytes?: number | undefined;
  log?: Logger | undefined;
}

export interface CloneSecretOptions extends Common {
  from: string;
  to: string;
  /** The copy's routing key: its `devstack.io/feature` label. */
  key: string;
  /** The logical service: its `devstack.io/service` label, when given. */
  service?: string | undefined;
  /** kube-janitor's `janitor/ttl` (default 6h; `forever` keeps it). */
  ttl?: string | undefined;
}

export interface UpdateSecretOptions extends Common {
  name: string;
}

function checkSet(set: Record<string, string> | undefined): string[] {
  // A KEY that is not one may be a mistyped pair with the value in it: it is numbered, not shown.
  return Object.keys(set ?? {}).flatMap((k, i) => (secretKey('--set', k) === undefined ? [] : [`--set #${i + 1}: its KEY is not a Secret key (letters, digits, '-', '_', '.')`]));
}

export function checkCloneOptions(options: CloneSecretOptions): void {
  const problems = [
    ...problemsOf([
      [routingKey, '--key', options.key],
      [dnsSubdomain, '--from', options.from],
      [dnsSubdomain, '--to', options.to],
      [dnsLabel, '--namespace', options.namespace],
      [serviceName, '--service', options.service],
      [ttl, '--ttl', options.ttl],
    ]),
    ...checkSet(options.set),
  ];
  if (options.from === options.to) problems.push('--to: must name another secret than --from');
  if (problems.length > 0) throw new ConfigError(problems);
}

export function checkUpdateOptions(options: UpdateSecretOptions): void {
  const problems = [...problemsOf([[dnsSubdomain, '--name', options.name], [dnsLabel, '--namespace', options.namespace]]), ...checkSet(options.set)];
  if (Object.keys(options.set ?? {}).length === 0) problems.push('--set: at least one KEY=VALUE');
  if (problems.length > 0) throw new ConfigError(problems);
}

const b64 = (set: Record<string, string> | undefined) => Object.fromEntries(Object.entries(set ?? {}).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));

function sameMap(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const x = Object.entries(a ?? {});
  return x.length === Object.keys(b ?? {}).length && x.every(([k, v]) => b?.[k] === v);
}

/** Writes `changes` over a secret through `store`, with the read `resourceVersion`; skipped when nothing differs. */
async function writeChanges(store: Store<SecretObject>, current: SecretObject, data: Record<string, string>, labels: Record<string, string>, annotations: Record<string, string>): Promise<SecretChange> {
  const next = {
    data: { ...current.data, ...data },
    labels: { ...current.metadata?.labels, ...labels },
    annotations: { ...current.metadata?.annotations, ...annotations },
  };
  if (sameMap(next.data, current.data) && sameMap(next.labels, current.metadata?.labels) && sameMap(next.annotations, current.metadata?.annotations)) return 'unchanged';
  await store.replace({ ...current, metadata: { ...current.metadata, labels: next.labels, annotations: next.annotations }, data: next.data });
  return 'updated';
}

/**
 * Copies a base secret's data into the copy's secret, labelled as the copy's and with a TTL for
 * kube-janitor, then applies `set`. A rerun brings the copy up to date (keys added since, such as
 * a queue URL, are kept) and changes nothing when it already is. A secret of that name that
 * devstack-hooks did not make is refused, never overwritten.
 */
export async function cloneSecret(kube: KubeTarget, options: CloneSecretOptions): Promise<SecretOutcome> {
  checkCloneOptions(options);
  return cloneWith(secretStore(kube, options.namespace, options), options);
}

export async function cloneWith(store: Store<SecretObject>, options: CloneSecretOptions): Promise<SecretOutcome> {
  const labels: Record<string, string> = { [MANAGED_BY_LABEL]: MANAGED_BY, [FEATURE_LABEL]: options.key, ...(options.service === undefined ? {} : { [SERVICE_LABEL]: options.service }) };
  const annotations = { [TTL_ANNOTATION]: options.ttl ?? DEFAULT_TTL };
  let attempts = 0;
  let keys: string[] = [];
  const change = await withRetries(
    `clone ${store.describe(options.from)} to ${options.to}`,
    async (n) => {
      attempts = n;
      const source = await store.get(options.from);
      if (source === undefined) throw new NotFoundError(`${store.describe(options.from)} does not exist: nothing to clone`);
      const data = { ...source.data, ...b64(options.set) };
      keys = Object.keys(data).sort();
      const target = await store.get(options.to);
      if (target === undefined) {
        await store.create({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: options.to, namespace: options.namespace, labels, annotations },
          ...(source.type === undefined ? {} : { type: source.type }),
          data,
        });
        return 'created' as const;
      }
      if (target.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY) {
        throw new NotOwnedError(`${store.describe(options.to)} exists and was not made by devstack-hooks (no ${MANAGED_BY_LABEL}=${MANAGED_BY} label); it is left alone`);
      }
      return writeChanges(store, target, data, labels, annotations);
    },
    classifyKube,
    options.log ?? SILENT,
    options.retry,
  );
  return { change, keys, attempts };
}

/** Sets keys of an existing secret in place, with the same optimistic concurrency. */
export async function updateSecret(kube: KubeTarget, options: UpdateSecretOptions): Promise<SecretOutcome> {
  checkUpdateOptions(options);
  return setKeys(secretStore(kube, options.namespace, options), options.name, options.set ?? {}, undefined, options);
}

/**
 * Sets keys of a secret; a missing one is created with `createLabels` when they are given (the
 * copy's secret a queue URL goes to), else it is a NotFoundError.
 */
export async function setKeys(store: Store<SecretObject>, name: string, set: Record<string, string>, createLabels: Record<string, string> | undefined, options: Common): Promise<SecretOutcome> {
  let attempts = 0;
  const data = b64(set);
  const change = await withRetries(
    `set ${Object.keys(set).sort().join(', ')} in ${store.describe(name)}`,
    async (n) => {
      attempts = n;
      const current = await store.get(name);
      if (current === undefined) {
        if (createLabels === undefined) throw new NotFoundError(`${store.describe(name)} does not exist`);
        await store.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: options.namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY, ...createLabels } }, type: 'Opaque', data });
        return 'created' as const;
      }
      return writeChanges(store, current, data, {}, {});
    },
    classifyKube,
    options.log ?? SILENT,
    options.retry,
  );
  return { change, keys: Object.keys(set).sort(), attempts };
}

/**
 * Rewrites one key of an existing secret through `rewrite` (given and returning plain text), with
 * the same optimistic concurrency; the same value back writes nothing. A missing secret or key is
 * a NotFoundError: the value to rewrite is what `secret clone` copied from the base.
 */
export async function rewriteKey(store: Store<SecretObject>, name: string, key: string, rewrite: (value: string) => string, options: Common): Promise<SecretOutcome> {
  let attempts = 0;
  const change = await withRetries(
    `rewrite ${key} in ${store.describe(name)}`,
    async (n) => {
      attempts = n;
      const current = await store.get(name);
      if (current === undefined) throw new NotFoundError(`${store.describe(name)} does not exist (the copy's secret, cloned from the base's with secret clone, is where ${key} is rewritten)`);
      const value = current.data?.[key];
      if (value === undefined) throw new NotFoundError(`${store.describe(name)} has no key ${key}`);
      return writeChanges(store, current, b64({ [key]: rewrite(Buffer.from(value, 'base64').toString('utf8')) }), {}, {});
    },
    classifyKube,
    options.log ?? SILENT,
    options.retry,
  );
  return { change, keys: [key], attempts };
}
