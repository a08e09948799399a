import { readFileSync } from 'node:fs';
import { CoreV1Api, DiscoveryV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import type { ListPage, Transport, WatchEvent } from './reflector.js';
import type { EndpointSliceObject, ServiceObject } from './model.js';

const NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export interface ConnectOptions {
  /** A kubeconfig file; else `KUBECONFIG`, else the in-cluster service account. */
  kubeconfig?: string | undefined;
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * A KubeConfig from a file, `KUBECONFIG` or the pod's service account. A cluster whose server is
 * plain `http://` (`kubectl proxy`, a loopback test server) is used as written: client-node 2
 * refuses plain http unless `skipTLSVerify` is set, which means nothing without TLS, so it is set
 * for those clusters only.
 */
export function loadKubeConfig(options: ConnectOptions = {}): KubeConfig {
  const env = options.env ?? process.env;
  const kc = new KubeConfig();
  const file = options.kubeconfig ?? (env['KUBECONFIG'] || undefined);
  if (file !== undefined) kc.loadFromFile(file.split(':')[0]!);
  // Outside a pod client-node would aim at https://undefined and every request fail slowly.
  else if (env['KUBERNETES_SERVICE_HOST'] === undefined || env['KUBERNETES_SERVICE_HOST'] === '') throw new Error('no kubeconfig given and not in a pod (KUBERNETES_SERVICE_HOST is unset)');
  else kc.loadFromCluster();
  const clusters = kc.clusters.map((c) => (c.server.startsWith('http://') ? { ...c, skipTLSVerify: true } : c));
  kc.loadFromOptions({ clusters, users: kc.users, contexts: kc.contexts, currentContext: kc.currentContext });
  return kc;
}

/** The pod's own namespace (service account), else the kubeconfig context's, else `default`. */
export function defaultNamespace(kc: KubeConfig | undefined, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): string {
  try {
    const ns = readFile(NAMESPACE_FILE).trim();
    if (ns.length > 0) return ns;
  } catch {
    // Not in a pod.
  }
  const context = kc?.getContextObject(kc.getCurrentContext());
  return context?.namespace || 'default';
}

type Kind = 'services' | 'endpointslices';

function path(kind: Kind, namespace: string | undefined): string {
  const prefix = kind === 'services' ? '/api/v1' : '/apis/discovery.k8s.io/v1';
  return namespace === undefined ? `${prefix}/${kind}` : `${prefix}/namespaces/${namespace}/${kind}`;
}

interface ListResponse<T> {
  items: T[];
  metadata?: { resourceVersion?: string; _continue?: string };
}

/**
 * List and watch of one kind in one namespace (or all) through `@kubernetes/client-node`: its
 * generated list calls and its `Watch`. Its own 30 s inactivity cut is lifted: the reflector's
 * watchdog owns silence.
 */
export function kubeTransport<T extends ServiceObject | EndpointSliceObject>(kc: KubeConfig, kind: Kind, namespace: string | undefined, labelSelector: string): Transport<T> {
  const core = kc.makeApiClient(CoreV1Api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const watch = new Watch(kc);
  // Declared private, but it is the only way to lift the 30 s cut of every quiet watch.
  (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = 24 * 3600 * 1000;
  const list = (request: { resourceVersion?: string | undefined; continue?: string | undefined; limit: number }): Promise<ListResponse<T>> => {
    const params = { labelSelector, limit: request.limit, resourceVersion: request.resourceVersion, _continue: request.continue };
    if (kind === 'services') {
      return (namespace === undefined ? core.listServiceForAllNamespaces(params) : core.listNamespacedService({ namespace, ...params })) as Promise<ListResponse<T>>;
    }
    return (namespace === undefined ? discovery.listEndpointSliceForAllNamespaces(params) : discovery.listNamespacedEndpointSlice({ namespace, ...params })) as Promise<ListResponse<T>>;
  };
  return {
    async list(request): Promise<ListPage<T>> {
      const response = await list(request);
      return { items: response.items, resourceVersion: response.metadata?.resourceVersion ?? '', continue: response.metadata?._continue };
    },
    async watch(request, onEvent, onClose) {
      const controller = await watch.watch(
        path(kind, namespace),
        { allowWatchBookmarks: true, resourceVersion: request.resourceVersion, timeoutSeconds: request.timeoutSeconds, labelSelector },
        (type: string, object: unknown) => onEvent({ type, object } satisfies WatchEvent),
        (error: unknown) => onClose(error ?? undefined),
      );
      return () => controller.abort();
    },
  };
}
