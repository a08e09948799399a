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
    transport: (kind, namespace, selector) => kubeTransport(kc, kind, namespace, selector),
  });
}

/** This package's entry for `createRegistrySource` in `@devstack/core`. */
export function createSource(options: CreateKubernetesSourceOptions): KubernetesSource {
  return createKubernetesSource(options);
}
