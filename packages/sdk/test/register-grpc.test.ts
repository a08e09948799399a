/*
 * `@devstack/sdk/register` in unchanged CommonJS apps that talk gRPC: shop (Express, a grpc-js client
 * made for `inventory:50051`, routed proxyless from DEVSTACK_REGISTRY) -> inventory (a grpc-js
 * server, base and a feature1 copy, calling on with fetch) -> echo (node:http). Without
 * OpenTelemetry, and under auto-instrumentations-node/register (its grpc instrumentation runs
 * handlers in a context it extracts itself).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { baggageValues } from '@devstack/core';
import { QUIET_OTEL, getJson, startApp, stopApp, type Answer, type App } from './apps.ts';

const SDK = '@devstack/sdk/register';
const OTEL = '@opentelemetry/auto-instrumentations-node/register';

interface Checked {
  service: string;
  metadata: Record<string, string[]>;
  next: Answer;
}

const rows: Array<{ name: string; headers: Record<string, string>; inventory: string; key: string | undefined; baggage?: string }> = [
  { name: 'plain header', headers: { 'uber-ctx-key': 'feature1' }, inventory: 'inventory-feature1', key: 'feature1' },
  { name: 'baggage, other entries kept', headers: { baggage: 'team=pay;p=1,uber-ctx-key=feature1' }, inventory: 'inventory-feature1', key: 'feature1', baggage: 'team=pay;p=1,uber-ctx-key=feature1' },
  { name: 'Jaeger header', headers: { 'uberctx-uber-ctx-key': 'feature1' }, inventory: 'inventory-feature1', key: 'feature1' },
  { name: 'plain header over baggage', headers: { 'uber-ctx-key': 'feature1', baggage: 'uber-ctx-key=nope' }, inventory: 'inventory-feature1', key: 'feature1' },
  { name: 'an invalid plain header decides', headers: { 'uber-ctx-key': 'Feature_1', baggage: 'uber-ctx-key=feature1' }, inventory: 'inventory', key: undefined },
  { name: 'no key', headers: {}, inventory: 'inventory', key: undefined },
];

for (const [config, args, env] of [
  ['no OpenTelemetry', ['--require', SDK], {}],
  ['auto-instrumentations-node', ['--require', SDK, '--require', OTEL], QUIET_OTEL],
] as const) {
  t.test(config, async (t) => {
    const apps: App[] = [];
    t.teardown(() => Promise.all(apps.map(stopApp)));
    const start = async (file: string, preloads: readonly string[], extra: Record<string, string>) => {
      const app = await startApp(file, preloads, { ...env, ...extra });
      apps.push(app);
      return app;
    };
    const echo = await start('echo.cjs', ['--require', SDK], { SERVICE: 'echo' });
    const [base, f1] = await Promise.all(['inventory', 'inventory-feature1'].map((name) => start('inventory.cjs', args, { SERVICE: name, NEXT_URL: echo.url })));
    const registry = join(t.testdir({}), 'registry.yaml');
    await writeFile(registry, `services:\n  inventory:\n    base: { url: http://127.0.0.1:${base!.port}, protocol: h2c }\n    features:\n      feature1: { url: http://127.0.0.1:${f1!.port}, protocol: h2c }\n`);
    const shop = await start('shop.cjs', args, { SERVICE: 'shop', DEVSTACK_REGISTRY: registry });
    for (const row of rows) {
      const { status, body } = await getJson(shop.url, row.headers);
      const answer = (body as unknown as { next?: Checked; error?: string }).next;
      t.equal(status, 200, `${row.name}: answered ${JSON.stringify(body).slice(0, 200)}`);
      t.equal(answer?.service, row.inventory, `${row.name}: inventory copy`);
      t.same(answer?.metadata['uber-ctx-key'], row.key === undefined ? [] : [row.key], `${row.name}: plain metadata`);
      const leaf = answer?.next.headers;
      t.equal(leaf?.['uber-ctx-key'], row.key, `${row.name}: carried on to echo`);
      t.same([...baggageValues(leaf?.['baggage'], 'uber-ctx-key')], row.key === undefined ? [] : [row.key], `${row.name}: in echo's baggage`);
      if (row.baggage !== undefined) {
        if (env === QUIET_OTEL) t.same([...baggageValues(leaf?.['baggage'], 'team')], ['pay'], `${row.name}: team kept`);
        else t.equal(leaf?.['baggage'], row.baggage, `${row.name}: every other entry byte for byte`);
      }
    }
    for (const app of apps) t.notMatch(app.stderr(), /devstack|Error|duplicate/i, 'nothing on stderr');
  });
}
