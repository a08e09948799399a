import { readFileSync } from 'node:fs';
import { HttpMethod, IsomorphicFetchHttpLibrary, KubeConfig, RequestContext } from '@kubernetes/client-node';
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

/** A non-2xx answer of the API server, with its `Status` message when it sent one. */
export class KubeHttpError extends Error {
  readonly code = 'DEVSTACK_KUBE_HTTP';
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.name = 'KubeHttpError';
    this.statusCode = statusCode;
  }
}

function failure(status: number, body: string): KubeHttpError {
  let message = `HTTP ${status}`;
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') message = `HTTP ${status}: ${parsed.message.slice(0, 200)}`;
  } catch {
    // Not a Status: the code says enough.
  }
  return new KubeHttpError(status, message);
}

const library = new IsomorphicFetchHttpLibrary();

/** A GET with the kubeconfig's credentials and TLS settings, through client-node's own fetch. */
async function get(kc: KubeConfig, url: URL, signal: AbortSignal | undefined) {
  const context = new RequestContext(url.toString(), HttpMethod.GET);
  context.setHeaderParam('Accept', 'application/json');
  await kc.applySecurityAuthentication(context);
  if (signal !== undefined) context.setSignal(signal);
  return library.send(context).toPromise();
}

/**
 * List and watch of one kind in one namespace (or all), with the kubeconfig's credentials and
 * TLS settings applied by `@kubernetes/client-node`. The answers are read as plain JSON, not
 * turned into the client's model classes: the reflector keeps only the fields routing reads, and
 * a page is garbage as soon as it is read. Every request takes the reflector's abort signal.
 */
export function kubeTransport<T extends ServiceObject | EndpointSliceObject>(kc: KubeConfig, kind: Kind, namespace: string | undefined, labelSelector: string): Transport<T> {
  const base = (): URL => {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/+$/, '') + path(kind, namespace));
    url.searchParams.set('labelSelector', labelSelector);
    return url;
  };
  return {
    async list(request, signal): Promise<ListPage<T>> {
      const url = base();
      url.searchParams.set('limit', String(request.limit));
      if (request.resourceVersion !== undefined) url.searchParams.set('resourceVersion', request.resourceVersion);
      if (request.continue !== undefined) url.searchParams.set('continue', request.continue);
      const response = await get(kc, url, signal);
      const text = await response.body.text();
      if (response.httpStatusCode !== 200) throw failure(response.httpStatusCode, text);
      const list = JSON.parse(text) as { items?: unknown; metadata?: { resourceVersion?: unknown; continue?: unknown } };
      const items = Array.isArray(list.items) ? (list.items as T[]) : [];
      const resourceVersion = typeof list.metadata?.resourceVersion === 'string' ? list.metadata.resourceVersion : '';
      const next = typeof list.metadata?.continue === 'string' && list.metadata.continue !== '' ? list.metadata.continue : undefined;
      return { items, resourceVersion, continue: next };
    },
    async watch(request, onEvent, onClose, signal) {
      const url = base();
      url.searchParams.set('watch', 'true');
      url.searchParams.set('allowWatchBookmarks', 'true');
      url.searchParams.set('timeoutSeconds', String(request.timeoutSeconds));
      if (request.resourceVersion !== '') url.searchParams.set('resourceVersion', request.resourceVersion);
      const controller = new AbortController();
      const abort = () => controller.abort();
      signal?.addEventListener('abort', abort, { once: true });
      const response = await get(kc, url, controller.signal);
      if (response.httpStatusCode !== 200) {
        const text = await response.body.text().catch(() => '');
        signal?.removeEventListener('abort', abort);
        throw failure(response.httpStatusCode, text);
      }
      const stream = response.body.stream();
      if (stream === null) throw new Error('the watch answer has no body');
      void readLines(stream, (line) => {
        let event: { type?: unknown; object?: unknown };
        try {
          event = JSON.parse(line) as { type?: unknown; object?: unknown };
        } catch {
          // A line cut by a dropped connection: the close that follows says what happened.
          return;
        }
        if (typeof event.type === 'string') onEvent({ type: event.type, object: event.object } satisfies WatchEvent);
      }).then(
        () => onClose(),
        (error: unknown) => onClose(controller.signal.aborted ? undefined : (error ?? new Error('watch stream failed'))),
      ).finally(() => signal?.removeEventListener('abort', abort));
      return abort;
    },
  };
}

/** A watch event longer than this is not one (etcd keeps objects under 1.5 MiB): the stream is refused. */
const MAX_LINE = 8 * 1024 * 1024;

/** Newline-delimited text from a byte stream, one line at a time. */
async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  const reader = stream.getReader();
  let pending = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    let start = 0;
    let newline: number;
    while ((newline = pending.indexOf('\n', start)) >= 0) {
      const line = pending.slice(start, newline);
      start = newline + 1;
      if (line.trim() !== '') onLine(line);
    }
    pending = pending.slice(start);
    if (pending.length > MAX_LINE) {
      await reader.cancel();
      throw new Error(`a watch event over ${MAX_LINE} bytes`);
    }
  }
  pending += decoder.decode();
  if (pending.trim() !== '') onLine(pending);
}
