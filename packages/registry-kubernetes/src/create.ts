import { ConfigError, describeUntrusted, isValidKey } from '@devstack/core';
import { defaultNamespace, kubeTransport, loadKubeConfig } from './kube.js';
import { KubernetesSource } from './source.js';
import type { TargetMode } from './model.js';

export interface CreateKubernetesSourceOptions {
  /** Namespaces to watch. Default: the pod's own namespace, else the kubeconfig context's, else `default`. */
  namespaces?: readonly string[] | undefined;
  /** Watch every namespace (needs a ClusterRole). */
  allNamespaces?: boolean | undefined;
  /** A kubeconfig file; else `KUBECONFIG`, else the in-cluster service account. */
  kubeconfig?: string | undefined;
  targets?: TargetMode | undefined;
  clusterDomain?: string | undefined;
  watchIdleTimeoutMs?: number | undefined;
  /** A list page or watch request not answered after this long is abandoned and retried (default 30 000). */
  requestTimeoutMs?: number | undefined;
  /** Objects per list page (default 500). */
  pageSize?: number | undefined;
  /** Quiet time that ends a burst of events (default 5). */
  debounceMs?: number | undefined;
  /** While events keep coming, a snapshot at least this often (default 100). */
  maxDelayMs?: number | undefined;
  /** At most one report of a watch's failures, and of unusable objects, this often (default 30 000). */
  reportIntervalMs?: number | undefined;
  env?: Readonly<Record<string, string | undefined>>;
}

/** A KubernetesSource talking to the API server through `@kubernetes/client-node`. */
export function createKubernetesSource(options: CreateKubernetesSourceOptions = {}): KubernetesSource {
  const problems: string[] = [];
  for (const ns of options.namespaces ?? []) {
    // A namespace name is a DNS-1123 label, the same shape as a routing key.
    if (!isValidKey(ns)) problems.push(`namespace ${describeUntrusted(ns)} is not a DNS-1123 label`);
  }
  if (options.allNamespaces && options.namespaces !== undefined && options.namespaces.length > 0) problems.push('give namespaces or allNamespaces, not both');
  if (options.targets !== undefined && options.targets !== 'service' && options.targets !== 'endpoints') problems.push(`targets ${describeUntrusted(options.targets)} must be service or endpoints`);
  const limits: Array<[string, number | undefined, number, number]> = [
    ['watchIdleTimeoutMs', options.watchIdleTimeoutMs, 1000, 3_600_000],
    ['requestTimeoutMs', options.requestTimeoutMs, 100, 600_000],
    ['pageSize', options.pageSize, 1, 10_000],
    ['debounceMs', options.debounceMs, 0, 60_000],
    ['maxDelayMs', options.maxDelayMs, 0, 600_000],
    ['reportIntervalMs', options.reportIntervalMs, 0, 3_600_000],
  ];
  for (const [name, value, min, max] of limits) {
    if (value !== undefined && (!Number.isInteger(value) || value < min || value > max)) problems.push(`${name} ${describeUntrusted(value)} must be an integer from ${min} to ${max}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  let kc;
  try {
    kc = loadKubeConfig({ kubeconfig: options.kubeconfig, env: options.env });
  } catch (error) {
    throw new ConfigError([`no Kubernetes credentials: ${(error as Error).message} (give --kubeconfig, set KUBECONFIG, or run in a pod with a service account)`], { cause: error });
  }
  const namespaces = options.allNamespaces ? undefined : options.namespaces && options.namespaces.length > 0 ? options.namespaces : [defaultNamespace(kc)];
  return new KubernetesSource({
    namespaces,
    targets: options.targets,
    clusterDomain: options.clusterDomain,
    watchIdleTimeoutMs: options.watchIdleTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs,
    pageSize: options.pageSize,
    debounceMs: options.debounceMs,
    maxDelayMs: options.maxDelayMs,
    reportIntervalMs: options.reportIntervalMs,
    transport: (kind, namespace, selector) => kubeTransport(kc, kind, namespace, selector),
  });
}

/** This package's entry for `createRegistrySource` in `@devstack/core`. */
export function createSource(options: CreateKubernetesSourceOptions): KubernetesSource {
  return createKubernetesSource(options);
}
