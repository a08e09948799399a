/*
 * The part of helmfile that examples/helmfile uses, for a test without a helmfile binary:
 * environment values (inline maps and files) overridden by --state-values-set, releases whose
 * name, installedTemplate and needs are release templates, and values files (`.gotmpl` ones
 * rendered with the state values). Helmfile renders templates with Go's text/template and the
 * sprig functions; so does helm, whose engine renders them here (through a throwaway chart).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { render } from './charts.ts';

type Values = Record<string, unknown>;

interface ReleaseSpec {
  name: string;
  namespace?: string;
  chart: string;
  installedTemplate?: string;
  installed?: boolean;
  needs?: string[];
  values?: (string | Values)[];
}

export interface PlannedRelease {
  name: string;
  namespace: string;
  chart: string;
  installed: boolean;
  needs: string[];
  /** Values files as helm gets them, in order (`.gotmpl` ones rendered into `dir`). */
  valuesFiles: string[];
}

const isMap = (v: unknown): v is Values => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Maps merge key by key; anything else (lists included) is replaced, as helmfile merges values. */
function merge(into: Values, from: Values): Values {
  const out = { ...into };
  for (const [k, v] of Object.entries(from)) out[k] = isMap(v) && isMap(out[k]) ? merge(out[k], v) : v;
  return out;
}

/** `--state-values-set a=b,c.d=e`, as plain strings (all this example sets). */
function stateValuesSet(set: string): Values {
  let out: Values = {};
  for (const pair of set.split(',').filter(Boolean)) {
    const eq = pair.indexOf('=');
    const path = pair.slice(0, eq).split('.');
    const leaf: Values = {};
    let node = leaf;
    for (const key of path.slice(0, -1)) node = (node[key] = {}) as Values;
    node[path.at(-1)!] = pair.slice(eq + 1);
    out = merge(out, leaf);
  }
  return out;
}

/**
 * What helmfile would do with `file` and `--state-values-set set`: every release with its rendered
 * name, whether it is installed, its needs and its values files. `dir` receives rendered files.
 */
export async function planHelmfile(file: string, set: string, dir: string): Promise<PlannedRelease[]> {
  const base = dirname(file);
  const doc = parse(readFileSync(file, 'utf8')) as { environments?: { default?: { values?: (string | Values)[] } }; releases: ReleaseSpec[] };
  let state: Values = {};
  for (const entry of doc.environments?.default?.values ?? []) {
    state = merge(state, typeof entry === 'string' ? (parse(readFileSync(resolve(base, entry), 'utf8')) as Values) : entry);
  }
  state = merge(state, stateValuesSet(set));

  // Every template of every release, rendered in one helm call.
  const templates: string[] = [];
  const slot = (text: string) => templates.push(text) - 1;
  const plan = doc.releases.map((r) => ({
    r,
    name: slot(r.name),
    installed: r.installedTemplate === undefined ? -1 : slot(r.installedTemplate),
    needs: (r.needs ?? []).map(slot),
    values: (r.values ?? []).map((v) => (typeof v === 'string' && v.endsWith('.gotmpl') ? slot(readFileSync(resolve(base, v), 'utf8')) : -1)),
  }));
  const out = await renderTemplates(templates, state);

  return plan.map(({ r, name, installed, needs, values }) => {
    const releaseName = out[name]!.trim();
    const valuesFiles = (r.values ?? []).map((v, i) => {
      if (typeof v !== 'string') {
        const path = join(dir, `${releaseName}-inline-${i}.yaml`);
        writeFileSync(path, JSON.stringify(v));
        return path;
      }
      if (values[i] === -1) return resolve(base, v);
      const path = join(dir, `${releaseName}-${i}.yaml`);
      writeFileSync(path, out[values[i]!]!);
      return path;
    });
    return {
      name: releaseName,
      namespace: r.namespace ?? 'default',
      chart: resolve(base, r.chart),
      installed: installed === -1 ? r.installed ?? true : out[installed]!.trim() === 'true',
      needs: needs.map((n) => out[n]!.trim()),
      valuesFiles,
    };
  });
}

/** Renders Go templates with `.StateValues` (and its alias `.Values`) through helm's engine. */
async function renderTemplates(templates: string[], state: Values): Promise<string[]> {
  const chart = mkdtempSync(join(tmpdir(), 'devstack-helmfile-'));
  try {
    mkdirSync(join(chart, 'templates'));
    writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: helmfile-templates\nversion: 0.0.0\n');
    writeFileSync(join(chart, 'templates', '_t.tpl'), templates.map((text, i) => `{{- define "t${i}" -}}${text}{{- end -}}\n`).join(''));
    writeFileSync(join(chart, 'templates', 'out.yaml'), [
      '{{- $ctx := dict "StateValues" .Values.state "Values" .Values.state "Environment" (dict "Name" "default" "Values" .Values.state) }}',
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: { name: rendered }',
      'data:',
      ...templates.map((_, i) => `  t${i}: {{ include "t${i}" $ctx | toJson }}`),
    ].join('\n'));
    const [configMap] = await render('helmfile', { chart, values: { state } });
    const data = (configMap as unknown as { data: Record<string, string> }).data;
    return templates.map((_, i) => data[`t${i}`] ?? '');
  } finally {
    rmSync(chart, { recursive: true, force: true });
  }
}

/** Installed releases in helmfile's order: each after the releases it needs. */
export function installOrder(releases: PlannedRelease[]): string[] {
  const installed = releases.filter((r) => r.installed);
  const done: string[] = [];
  // A need is `name` (the same namespace) or `namespace/name`, as helmfile writes it.
  const is = (r: PlannedRelease, need: string) => need === r.name || need === `${r.namespace}/${r.name}`;
  while (done.length < installed.length) {
    const next = installed.find((r) => !done.includes(r.name) && r.needs.every((n) => installed.some((i) => is(i, n) && done.includes(i.name)) || !installed.some((i) => is(i, n))));
    if (!next) throw new Error('needs form a cycle');
    done.push(next.name);
  }
  return done;
}
