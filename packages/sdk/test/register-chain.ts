/*
 * One fleet of unchanged apps under `@devstack/sdk/register`, and the table of carriers run through
 * it: web (Express, fetch) -> api (node:http, http.get) -> echo (node:http), proxyless from
 * DEVSTACK_REGISTRY. api has a feature2 copy (DEVSTACK_DEFAULT_KEY=feature2), echo a feature1 copy.
 * Started once per configuration; every row is one request through all of it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Test } from 'tap';
import { baggageValues } from '@devstack/core';
import { getJson, startApp, stopApp, type App } from './apps.ts';

export interface ChainConfig {
  /** mjs apps (ES modules) or cjs apps (CommonJS). */
  readonly ext: 'mjs' | 'cjs';
  /** The node flags before web and api: the preloads. */
  readonly args: readonly string[];
  /** The preloads of the echo leaves (default: those of the others). */
  readonly leafArgs?: readonly string[];
  /** The front end's app (default `web`, Express). */
  readonly web?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** OpenTelemetry's own baggage propagator re-serialises other entries: compared by value, not bytes. */
  readonly otel: boolean;
}

interface Row {
  readonly name: string;
  readonly headers: Record<string, string>;
  /** Which echo copy answered. */
  readonly echo: string;
  /** The plain header echo received (undefined: none). */
  readonly plain: string | undefined;
  /** The values of the key's baggage entries echo received. */
  readonly entries: readonly string[];
  /** Which api copy answered (default base). */
  readonly api?: string;
  /** Other baggage entries echo must have received: exactly this header without OpenTelemetry. */
  readonly baggage?: string;
}

const ROWS: readonly Row[] = [
  { name: 'plain header', headers: { 'uber-ctx-key': 'feature1' }, echo: 'echo-feature1', plain: 'feature1', entries: ['feature1'] },
  { name: 'baggage, other entries kept', headers: { baggage: 'other=x;p=1,uber-ctx-key=feature1, third=%20y' }, echo: 'echo-feature1', plain: 'feature1', entries: ['feature1'], baggage: 'other=x;p=1,uber-ctx-key=feature1, third=%20y' },
  { name: 'Jaeger header', headers: { 'uberctx-uber-ctx-key': 'feature1' }, echo: 'echo-feature1', plain: 'feature1', entries: ['feature1'] },
  { name: 'plain header over a disagreeing baggage entry', headers: { 'uber-ctx-key': 'feature1', baggage: 'uber-ctx-key=nope,other=x' }, echo: 'echo-feature1', plain: 'feature1', entries: ['feature1'], baggage: 'uber-ctx-key=feature1,other=x' },
  { name: 'baggage over Jaeger', headers: { baggage: 'uber-ctx-key=feature1', 'uberctx-uber-ctx-key': 'nope' }, echo: 'echo-feature1', plain: 'feature1', entries: ['feature1'] },
  { name: 'an invalid plain header decides: no key', headers: { 'uber-ctx-key': 'Feature_1', baggage: 'uber-ctx-key=feature1' }, echo: 'echo', plain: undefined, entries: [] },
  { name: 'conflicting plain values: no key', headers: { 'uber-ctx-key': 'feature1, feature3' }, echo: 'echo', plain: undefined, entries: [] },
  { name: 'conflicting baggage entries: no key', headers: { baggage: 'uber-ctx-key=feature1,uber-ctx-key=feature3' }, echo: 'echo', plain: undefined, entries: [] },
  { name: 'a key with no copy goes to base and is carried on', headers: { 'uber-ctx-key': 'feature9' }, echo: 'echo', plain: 'feature9', entries: ['feature9'] },
  { name: 'no key', headers: {}, echo: 'echo', plain: undefined, entries: [] },
  { name: 'a key routes the first hop too', headers: { 'uber-ctx-key': 'feature2' }, api: 'api-feature2', echo: 'echo', plain: 'feature2', entries: ['feature2'] },
];

function entriesOf(header: string | undefined, name: string): string[] {
  return [...baggageValues(header, name)];
}

export async function runChain(t: Test, config: ChainConfig): Promise<void> {
  const apps: App[] = [];
  t.teardown(() => Promise.all(apps.map(stopApp)));
  const dir = t.testdir({});
  const start = async (file: string, env: Record<string, string>): Promise<App> => {
    const app = await startApp(`${file}.${config.ext}`, file === 'echo' ? (config.leafArgs ?? config.args) : config.args, { ...config.env, ...env });
    apps.push(app);
    return app;
  };
  const echoFile = join(dir, 'echo.yaml');
  const fleetFile = join(dir, 'fleet.yaml');
  const [echo, echoF1] = await Promise.all([start('echo', { SERVICE: 'echo' }), start('echo', { SERVICE: 'echo-feature1' })]);
  const echoYaml = `services:\n  echo:\n    base: ${echo!.url}\n    features:\n      feature1: ${echoF1!.url}\n`;
  await writeFile(echoFile, echoYaml);
  const api = { SERVICE: 'api', NEXT_URL: 'http://echo/', DEVSTACK_REGISTRY: echoFile };
  const [apiBase, apiF2] = await Promise.all([start('api', api), start('api', { ...api, SERVICE: 'api-feature2', DEVSTACK_DEFAULT_KEY: 'feature2' })]);
  await writeFile(fleetFile, `${echoYaml}  api:\n    base: ${apiBase!.url}\n    features:\n      feature2: ${apiF2!.url}\n`);
  const web = await start(config.web ?? 'web', { SERVICE: 'web', NEXT_URL: 'http://api/', DEVSTACK_REGISTRY: fleetFile });

  for (const row of ROWS) {
    const { status, lane, body } = await getJson(web.url, row.headers);
    const got = body.next?.next;
    t.equal(status, 200, `${row.name}: answered`);
    t.equal(lane, 'base', `${row.name}: web says its lane`);
    t.equal(body.next?.service, row.api ?? 'api', `${row.name}: api copy`);
    t.equal(body.nextLane, row.api === undefined ? 'base' : row.api.slice('api-'.length), `${row.name}: web saw api's lane`);
    t.equal(got?.service, row.echo, `${row.name}: echo copy${body.next?.error === undefined ? '' : ` (api: ${body.next.error})`}`);
    t.equal(body.next?.nextLane, row.echo === 'echo' ? 'base' : row.echo.slice('echo-'.length), `${row.name}: api saw echo's lane`);
    t.equal(got?.headers['uber-ctx-key'], row.plain, `${row.name}: plain header at echo`);
    t.same(entriesOf(got?.headers['baggage'], 'uber-ctx-key'), row.entries, `${row.name}: key entries at echo (${String(got?.headers['baggage'])})`);
    t.equal(got?.headers['uberctx-uber-ctx-key'], undefined, `${row.name}: no Jaeger header (the apps forward nothing)`);
    if (row.baggage !== undefined) {
      if (config.otel) {
        for (const [name] of row.baggage.split(',').map((e) => e.trim().split('='))) {
          if (name !== 'uber-ctx-key') t.same(entriesOf(got?.headers['baggage'], name!), entriesOf(row.baggage, name!), `${row.name}: ${name} kept`);
        }
      } else {
        t.equal(got?.headers['baggage'], row.baggage, `${row.name}: every other entry byte for byte`);
      }
    }
  }

  // A feature copy's own key for a call that came in with none (DEVSTACK_DEFAULT_KEY).
  const direct = await getJson(apiF2!.url);
  t.equal(direct.lane, 'feature2', 'the copy says its lane');
  t.equal(direct.body.next?.service, 'echo', 'default key: no echo copy, base');
  t.equal(direct.body.next?.headers['uber-ctx-key'], 'feature2', 'default key carried on');
  t.same(entriesOf(direct.body.next?.headers['baggage'], 'uber-ctx-key'), ['feature2'], 'default key in baggage');
  for (const app of apps) t.notMatch(app.stderr(), /devstack|Error|duplicate/i, 'nothing on stderr');
}
