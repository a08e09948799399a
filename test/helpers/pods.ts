/*
 * Pods of rendered releases, run on loopback: the real `devstack-sidecar` started with the
 * environment its rendered container spec gives it, and a small app beside it.
 */
import { spawn } from 'node:child_process';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ROOT, podSpec, type Container, type K8sObject } from './charts.ts';

const CLI = join(ROOT, 'packages/sidecar/bin/devstack-sidecar.cjs');

export interface Tap {
  teardown(fn: () => unknown): void;
}

export interface RunningSidecar {
  ports: Record<string, number>;
  ready: Promise<void>;
  log: string[];
}

/** The sidecar container of a rendered Deployment (plain or native). */
export function sidecarContainer(deployment: K8sObject): Container {
  const pod = podSpec(deployment);
  const found = [...(pod.initContainers ?? []), ...pod.containers].find((c) => c.name === 'devstack-sidecar');
  if (!found) throw new Error(`Deployment ${deployment.metadata.name} has no sidecar`);
  return found;
}

/**
 * A container's env as the kubelet gives it: its values, and the downward API's
 * metadata.namespace as `namespace` (any other valueFrom is an error here).
 */
export function podEnv(container: Container, namespace: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of (container.env ?? []) as { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath?: string } } }[]) {
    if (entry.valueFrom === undefined) env[entry.name] = entry.value ?? '';
    else if (entry.valueFrom.fieldRef?.fieldPath === 'metadata.namespace') env[entry.name] = namespace;
    else throw new Error(`${container.name}: ${entry.name} comes from ${JSON.stringify(entry.valueFrom)}, which these tests do not provide`);
  }
  return env;
}

export interface StartSidecarOptions {
  /** The pod's namespace, for the downward API (default shop). */
  namespace?: string;
  /** More variables of the process (e.g. a KUBECONFIG the sidecar must not use). */
  env?: Record<string, string>;
  /** The inbound listener's port, where a slice made before the sidecar points (default 0). */
  inboundPort?: number;
}

/**
 * Starts the sidecar with the container's env. Only what a pod gives for free is replaced: ports
 * become 0 (many pods share this machine's loopback), the pod-network listeners bind loopback, the
 * app is at `appPort`, and the credentials, when given, are a kubeconfig instead of a service
 * account (a sidecar that follows a relay gets none).
 */
export async function startSidecar(t: Tap, container: Container, appPort: number, kubeconfig: string | undefined, options: StartSidecarOptions = {}): Promise<RunningSidecar> {
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    ...options.env,
    ...podEnv(container, options.namespace ?? 'shop'),
    DEVSTACK_OUTBOUND_PORT: '0',
    DEVSTACK_INBOUND_PORT: String(options.inboundPort ?? 0),
    DEVSTACK_ADMIN_PORT: '0',
    DEVSTACK_INBOUND_HOST: '127.0.0.1',
    DEVSTACK_ADMIN_HOST: '127.0.0.1',
    DEVSTACK_APP_PORT: String(appPort),
    ...(kubeconfig === undefined ? {} : { DEVSTACK_KUBECONFIG: kubeconfig }),
  };
  return runSidecar(t, [], env);
}

/**
 * The real `devstack-sidecar` command with `args` and exactly `env`; resolves once its admin
 * listener is up (before the registry has synced: `ready` follows), killed at teardown.
 */
export async function runSidecar(t: Tap, args: readonly string[], env: NodeJS.ProcessEnv): Promise<RunningSidecar> {
  const proc = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    return exited;
  });
  const ports: Record<string, number> = {};
  const log: string[] = [];
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        log.push(line);
        const entry = JSON.parse(line) as { msg: string; listener?: string; port?: number };
        if (entry.msg === 'listening' && entry.listener) ports[entry.listener] = entry.port!;
        if (entry.listener === 'admin') resolve();
        if (entry.msg === 'ready') markReady();
      }
    });
    void exited.then(() => reject(new Error(`the sidecar exited: ${stderr}`)));
  });
  return { ports, ready, log };
}

export async function listen(t: Tap, handler: Parameters<typeof createServer>[1]): Promise<number> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as AddressInfo).port;
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** One request to 127.0.0.1:port; `path` may be absolute-form (a proxy request). */
export function send(port: number, path: string, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let body: Record<string, unknown>;
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = { text };
        }
        resolve({ status: res.statusCode!, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}
