import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeApiServer, TRAEFIK_RESOURCES, type FakeApiServer } from '@devstack/kube-fake';
import { loadKubeConfig } from '@devstack/registry-kubernetes';
import type { KubeConfig } from '@kubernetes/client-node';
import { main } from '@devstack/hooks';

export const CLI = fileURLToPath(new URL('../bin/devstack-hooks.cjs', import.meta.url));
export const NS = 'team-a';

export interface Tap {
  teardown(fn: () => unknown): void;
}

export interface Fake {
  api: FakeApiServer;
  kubeconfig: string;
  kc: KubeConfig;
}

/** A fake API server with the Traefik kinds and namespace `team-a`, and a kubeconfig for it. */
export async function fake(t: Tap): Promise<Fake> {
  const api = await startFakeApiServer({ customResources: [...TRAEFIK_RESOURCES], namespaces: [NS] });
  t.teardown(() => api.close());
  // Its own folder, not tap's fixture folder: that one is shared by every run of this file.
  const dir = mkdtempSync(join(tmpdir(), 'devstack-hooks-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = await api.kubeconfig(join(dir, 'kubeconfig'), { namespace: NS });
  return { api, kubeconfig, kc: loadKubeConfig({ kubeconfig, env: {} }) };
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr JSON lines, in their order per stream (stdout first). */
  lines: Record<string, unknown>[];
}

function parse(stdout: string, stderr: string): Run['lines'] {
  return `${stdout}${stderr}`
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The real command in a child process, as a Job runs it; no inherited KUBECONFIG, DEVSTACK_* or AWS_*. */
export function spawnCli(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(KUBECONFIG|DEVSTACK_|AWS_)/.test(k)));
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, lines: parse(stdout, stderr) }));
  });
}

/**
 * The same command in this process (`main`, which the bin runs), with only `env` as its
 * environment: a child process per case would make the suite slow.
 */
export async function run(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { env, out: (text) => (stdout += text), err: (text) => (stderr += text) });
  return { code, stdout, stderr, lines: parse(stdout, stderr) };
}

/** The `done` line's fields. */
export function done(result: Run): Record<string, unknown> | undefined {
  return result.lines.find((l) => l['msg'] === 'done');
}

/** Writes, for asserting that nothing was sent. */
export function writes(api: FakeApiServer): string[] {
  return api.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`);
}

export const ROUTE_REF = { apiVersion: 'traefik.io/v1alpha1', kind: 'IngressRoute', name: 'edge', namespace: NS };

/** A shared IngressRoute with one route another team owns. */
export function sharedRoute(api: FakeApiServer, apiVersion = 'traefik.io/v1alpha1'): void {
  api.create({
    apiVersion,
    kind: 'IngressRoute',
    metadata: { name: 'edge', namespace: NS },
    spec: { entryPoints: ['web'], routes: [{ kind: 'Rule', match: 'Host(`shop.example.com`)', services: [{ name: 'web', port: 80 }] }] },
  });
}

export type Routes = { match: string; priority?: number; services: { name: string; port: number | string; scheme?: string }[] }[];

export function routesOf(api: FakeApiServer, ref = ROUTE_REF): Routes {
  return (api.get(ref) as { spec: { routes: Routes } }).spec.routes;
}
