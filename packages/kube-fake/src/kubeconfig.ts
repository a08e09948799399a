import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface KubeconfigOptions {
  /** The context's namespace (default `default`). */
  namespace?: string;
  /** Names the cluster, user and context (default `devstack-fake`). */
  name?: string;
  /**
   * Adds `insecure-skip-tls-verify: true` to the cluster. Off by default: the file is what
   * `kubectl proxy` users write. @kubernetes/client-node 2 refuses an `http://` server without it.
   */
  insecureSkipTlsVerify?: boolean;
  /** A bearer token for the user (the fake accepts any credentials). */
  token?: string;
}

/** A kubeconfig whose only cluster is `server`, over plain http, with no TLS settings. */
export function kubeconfigYaml(server: string, options: KubeconfigOptions = {}): string {
  const name = options.name ?? 'devstack-fake';
  const insecure = options.insecureSkipTlsVerify ? '\n    insecure-skip-tls-verify: true' : '';
  const user = options.token ? `\n    token: ${JSON.stringify(options.token)}` : ' {}';
  return `apiVersion: v1
kind: Config
clusters:
- name: ${name}
  cluster:
    server: ${server}${insecure}
contexts:
- name: ${name}
  context:
    cluster: ${name}
    user: ${name}
    namespace: ${options.namespace ?? 'default'}
current-context: ${name}
users:
- name: ${name}
  user:${user}
preferences: {}
`;
}

export async function writeKubeconfig(path: string, server: string, options: KubeconfigOptions = {}): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, kubeconfigYaml(server, options), { mode: 0o600 });
  return path;
}
