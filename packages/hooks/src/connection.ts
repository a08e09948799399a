import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';

/**
 * Where the API server is and how to authenticate to it: what one request needs. The hooks talk to
 * the API server through this, not through @kubernetes/client-node's generated clients: loading
 * client-node costs about 85 MiB of a Job's 128Mi before the first request.
 */
export interface KubeConnection {
  /** `https://host:port` (or `http://` for `kubectl proxy` and loopback test servers), no trailing '/'. */
  server: string;
  headers: Record<string, string>;
  ca?: string | Buffer | undefined;
  cert?: string | Buffer | undefined;
  key?: string | Buffer | undefined;
  /** False only with `insecure-skip-tls-verify`. */
  rejectUnauthorized: boolean;
  servername?: string | undefined;
  /** The context's namespace, if any. */
  namespace?: string | undefined;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export type ReadFile = (path: string) => Buffer;
const readFile: ReadFile = (path) => readFileSync(path);

/** A client-node KubeConfig as a connection: its own code applies every kind of credential it knows. */
export async function connectionFromKubeConfig(kc: KubeConfig): Promise<KubeConnection> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('the kubeconfig has no current cluster');
  const options: { headers?: Record<string, string | string[] | number | undefined>; ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean; servername?: string } = { headers: {} };
  await kc.applyToHTTPSOptions(options as Parameters<KubeConfig['applyToHTTPSOptions']>[0]);
  const headers = Object.fromEntries(Object.entries(options.headers ?? {}).filter((e): e is [string, string | number | string[]] => e[1] !== undefined).map(([k, v]) => [k, String(v)]));
  const context = kc.getContextObject(kc.getCurrentContext());
  return {
    server: cluster.server.replace(/\/+$/, ''),
    headers,
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    rejectUnauthorized: options.rejectUnauthorized !== false && !cluster.skipTLSVerify,
    servername: options.servername ?? cluster.tlsServerName,
    namespace: context?.namespace || undefined,
  };
}

/** The pod's service account, as client-go's in-cluster config reads it. */
export function inClusterConnection(env: Readonly<Record<string, string | undefined>>, read: ReadFile = readFile, dir = SERVICE_ACCOUNT_DIR): KubeConnection {
  const host = env['KUBERNETES_SERVICE_HOST']!;
  const port = env['KUBERNETES_SERVICE_PORT'] || '443';
  const token = read(join(dir, 'token')).toString('utf8').trim();
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    headers: { authorization: `Bearer ${token}` },
    ca: read(join(dir, 'ca.crt')),
    rejectUnauthorized: true,
  };
}

type Named<T> = { name?: unknown } & { [k: string]: T | unknown };

const CLUSTER_FIELDS = new Set(['server', 'certificate-authority', 'certificate-authority-data', 'insecure-skip-tls-verify', 'tls-server-name', 'extensions']);
const USER_FIELDS = new Set(['client-certificate', 'client-certificate-data', 'client-key', 'client-key-data', 'token', 'tokenFile', 'username', 'password', 'extensions']);

/**
 * A kubeconfig file read without client-node, for what it holds in a Job or a test: a server, a CA,
 * client certificates, a token or a token file, basic auth. Anything else (exec plugins,
 * auth-provider, proxy-url, impersonation) is undefined: the caller then loads client-node, which
 * knows them all.
 */
export function kubeconfigConnection(path: string, text: string, read: ReadFile = readFile, parse: (text: string) => unknown): KubeConnection | undefined {
  const doc = parse(text) as { 'current-context'?: unknown; contexts?: unknown; clusters?: unknown; users?: unknown } | null;
  if (typeof doc !== 'object' || doc === null) return undefined;
  const find = <T>(list: unknown, name: unknown, field: string): T | undefined => {
    if (!Array.isArray(list)) return undefined;
    const entry = (list as Named<T>[]).find((e) => typeof e === 'object' && e !== null && e.name === name);
    const value = entry?.[field];
    return typeof value === 'object' && value !== null ? (value as T) : undefined;
  };
  const context = find<{ cluster?: unknown; user?: unknown; namespace?: unknown }>(doc.contexts, doc['current-context'], 'context');
  if (context === undefined) return undefined;
  const cluster = find<Record<string, unknown>>(doc.clusters, context.cluster, 'cluster');
  const user = context.user === undefined ? {} : find<Record<string, unknown>>(doc.users, context.user, 'user');
  if (cluster === undefined || typeof cluster['server'] !== 'string' || user === undefined) return undefined;
  if (Object.keys(cluster).some((k) => !CLUSTER_FIELDS.has(k)) || Object.keys(user).some((k) => !USER_FIELDS.has(k))) return undefined;
  // Relative file paths in a kubeconfig are relative to the file itself.
  const file = (p: unknown) => read(isAbsolute(String(p)) ? String(p) : join(dirname(path), String(p)));
  const pem = (data: unknown, p: unknown) => (typeof data === 'string' ? Buffer.from(data, 'base64') : p === undefined ? undefined : file(p));
  const headers: Record<string, string> = {};
  const token = typeof user['token'] === 'string' ? user['token'] : user['tokenFile'] !== undefined ? file(user['tokenFile']).toString('utf8').trim() : undefined;
  if (token !== undefined && token !== '') headers['authorization'] = `Bearer ${token}`;
  else if (typeof user['username'] === 'string') headers['authorization'] = `Basic ${Buffer.from(`${user['username']}:${String(user['password'] ?? '')}`).toString('base64')}`;
  return {
    server: cluster['server'].replace(/\/+$/, ''),
    headers,
    ca: pem(cluster['certificate-authority-data'], cluster['certificate-authority']),
    cert: pem(user['client-certificate-data'], user['client-certificate']),
    key: pem(user['client-key-data'], user['client-key']),
    rejectUnauthorized: cluster['insecure-skip-tls-verify'] !== true,
    servername: typeof cluster['tls-server-name'] === 'string' ? cluster['tls-server-name'] : undefined,
    namespace: typeof context.namespace === 'string' && context.namespace !== '' ? context.namespace : undefined,
  };
}

/** The pod's own namespace (service account), else the connection's context's, else `default`. */
export function namespaceOf(connection: KubeConnection | undefined, read: ReadFile = readFile): string {
  try {
    const ns = read(join(SERVICE_ACCOUNT_DIR, 'namespace')).toString('utf8').trim();
    if (ns.length > 0) return ns;
  } catch {
    // Not in a pod.
  }
  return connection?.namespace ?? 'default';
}
