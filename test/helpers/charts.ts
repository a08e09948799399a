/*
 * The real helm and kubectl for the chart tests, rendering through `helm template`, and schema
 * validation of every rendered object with kubernetes-models.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import * as apps from 'kubernetes-models/apps/v1';
import * as batch from 'kubernetes-models/batch/v1';
import * as core from 'kubernetes-models/v1';
import * as rbac from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import * as discovery from 'kubernetes-models/discovery.k8s.io/v1';
import * as traefik from '@kubernetes-models/traefik/traefik.io/v1alpha1';

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SERVICE_CHART = join(ROOT, 'charts/devstack-service');
export const LIBRARY_CHART = join(ROOT, 'charts/devstack');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  [field: string]: unknown;
}

let cached: { helm: string; kubectl: string } | undefined;
/** Paths of the real tools (installed once by scripts/tools.sh); throws with its reason otherwise. */
export function tools(): { helm: string; kubectl: string } {
  if (cached) return cached;
  const out = execFileSync('bash', [join(ROOT, 'scripts/tools.sh')], { encoding: 'utf8' });
  const path = (name: string) => {
    const line = out.split('\n').find((l) => l.startsWith(`${name}=`));
    if (!line) throw new Error(`scripts/tools.sh printed no ${name} path:\n${out}`);
    return line.slice(name.length + 1);
  };
  cached = { helm: path('helm'), kubectl: path('kubectl') };
  return cached;
}

export interface RenderOptions {
  namespace?: string;
  /** Values as helm's -f would read them (written to a temporary file). */
  values?: Record<string, unknown>;
  /** More values files, in order, before `values`. */
  valuesFiles?: string[];
  kubeVersion?: string;
  chart?: string;
  /** More `helm template` arguments, e.g. `--skip-schema-validation`. */
  args?: string[];
}

/** `helm template`: the rendered objects; rejects with helm's stderr when it refuses. */
export async function render(release: string, options: RenderOptions = {}): Promise<K8sObject[]> {
  const dir = mkdtempSync(join(tmpdir(), 'devstack-chart-'));
  try {
    const args = ['template', release, options.chart ?? SERVICE_CHART, '--namespace', options.namespace ?? 'shop'];
    for (const file of options.valuesFiles ?? []) args.push('-f', file);
    if (options.values) {
      writeFileSync(join(dir, 'values.json'), JSON.stringify(options.values));
      args.push('-f', join(dir, 'values.json'));
    }
    if (options.kubeVersion) args.push('--kube-version', options.kubeVersion);
    args.push(...(options.args ?? []));
    let stdout: string;
    try {
      ({ stdout } = await run(tools().helm, args, { maxBuffer: 16 * 1024 * 1024 }));
    } catch (error) {
      const stderr = String((error as { stderr?: string }).stderr ?? '');
      throw new HelmError(stderr.split('\n').filter((l) => !l.startsWith('level=')).join('\n').trim(), { cause: error });
    }
    return parseManifests(stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export class HelmError extends Error {
  readonly code = 'DEVSTACK_HELM';
}

/** `helm lint` of a chart with values; resolves to its output, rejects when it fails. */
export async function lint(chart: string, values: Record<string, unknown> = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'devstack-lint-'));
  try {
    writeFileSync(join(dir, 'values.json'), JSON.stringify(values));
    const { stdout } = await run(tools().helm, ['lint', chart, '--strict', '-f', join(dir, 'values.json')]);
    return stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null && typeof o === 'object');
}

type Model = new (data: never) => { validate(): void };
const MODELS: Record<string, Model> = {
  'apps/v1/Deployment': apps.Deployment,
  'batch/v1/Job': batch.Job,
  'v1/Service': core.Service,
  'v1/ServiceAccount': core.ServiceAccount,
  'rbac.authorization.k8s.io/v1/Role': rbac.Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': rbac.RoleBinding,
  'discovery.k8s.io/v1/EndpointSlice': discovery.EndpointSlice,
  'traefik.io/v1alpha1/IngressRoute': traefik.IngressRoute,
  'traefik.io/v1alpha1/Middleware': traefik.Middleware,
};

/**
 * Validates an object against its Kubernetes or Traefik schema; throws naming the object. The
 * models carry Traefik's traefik.io CRDs only: the traefik.containo.us group of Traefik before
 * 2.10 has the same IngressRoute and Middleware fields for what the charts render, so those are
 * checked against them under that group.
 */
export function validate(object: K8sObject): void {
  const apiVersion = object.apiVersion.replace(/^traefik\.containo\.us\//, 'traefik.io/');
  const Model = MODELS[`${apiVersion}/${object.kind}`];
  if (!Model) throw new Error(`no schema for ${object.apiVersion} ${object.kind}`);
  try {
    new Model({ ...object, apiVersion } as never).validate();
  } catch (error) {
    throw new Error(`${object.kind} ${object.metadata.name}: ${(error as Error).message}`, { cause: error });
  }
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

export interface Container {
  name: string;
  image?: string;
  env?: { name: string; value?: string }[];
  ports?: { name?: string; containerPort: number }[];
  restartPolicy?: string;
  [field: string]: unknown;
}

/** A Deployment's pod spec, typed just enough for the tests. */
export function podSpec(deployment: K8sObject): { containers: Container[]; initContainers?: Container[]; [field: string]: unknown } {
  return (deployment.spec as { template: { spec: ReturnType<typeof podSpec> } }).template.spec;
}

export function envOf(container: Container): Record<string, string> {
  return Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? '']));
}
