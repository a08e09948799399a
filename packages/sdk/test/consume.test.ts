/*
 * The lane decision of a message (`shouldConsume`): the lane `resolve` picks for the consumer's own
 * service, through every reason, for base and for a copy, from options and from `init()`.
 */
import t from 'tap';
import { buildSnapshot, StaticSource, type RegistryInput } from '@devstack/core';
import { consumeDecision, fanOutConsume, init, laneGroupId, shouldConsume, type ConsumeDecision } from '@devstack/sdk';
import { optionsFromEnv } from '../src/env.ts';

const URL = 'http://127.0.0.1:1';
const fleet = (workerCopy: { ready: boolean } | undefined): RegistryInput => ({
  services: {
    worker: { base: URL, features: workerCopy === undefined ? {} : { feature1: { url: URL, ready: workerCopy.ready } } },
    // feature2 has a copy of another service only: the chain rule sends worker's messages to base.
    orders: { base: URL, features: { feature2: URL } },
  },
});
const ready = new StaticSource(buildSnapshot(fleet({ ready: true })));
const unready = new StaticSource(buildSnapshot(fleet({ ready: false })));

type Row = [name: string, key: string | undefined, registry: StaticSource, reason: string, owner: string | undefined];
const rows: Row[] = [
  ['match', 'feature1', ready, 'match', 'feature1'],
  ['no key', undefined, ready, 'no-key', 'base'],
  ['invalid key', 'Feature_1', ready, 'invalid-key', 'base'],
  ['empty key', '', ready, 'invalid-key', 'base'],
  ['unknown key', 'feature9', ready, 'unknown-key', 'base'],
  ['no copy of this service', 'feature2', ready, 'no-copy', 'base'],
  ['copy not ready', 'feature1', unready, 'not-ready', 'base'],
];

t.test('every reason, for base and for the copy', async (t) => {
  for (const [name, key, registry, reason, owner] of rows) {
    for (const lane of ['base', 'feature1']) {
      const d = consumeDecision(key, { service: 'worker', lane, registry });
      t.match(d, { reason, owner, lane, service: 'worker' }, `${name}, ${lane}`);
      t.equal(d.consume, owner === lane, `${name}: ${lane} ${owner === lane ? 'consumes' : 'leaves it'}`);
      t.equal(shouldConsume(key, { service: 'worker', lane, registry }), owner === lane);
    }
  }
});

t.test('a key reading with a problem is an invalid key', async (t) => {
  const d = consumeDecision({ key: undefined, carrier: 'header', problem: 'malformed' }, { service: 'worker', registry: ready });
  t.match(d, { reason: 'invalid-key', owner: 'base', consume: true, key: undefined });
  t.match(consumeDecision({ key: undefined, carrier: undefined, problem: undefined }, { service: 'worker', registry: ready }), { reason: 'no-key' });
});

t.test('strict: a key with no ready copy is no lane\'s', async (t) => {
  for (const [registry, key, reason] of [[unready, 'feature1', 'not-ready'], [ready, 'feature9', 'unknown-key']] as const) {
    for (const lane of ['base', 'feature1']) {
      t.match(consumeDecision(key, { service: 'worker', lane, registry, strict: true }), { reason, owner: undefined, consume: false }, `${reason} ${lane}`);
    }
  }
  t.match(consumeDecision('feature2', { service: 'worker', registry: ready, strict: true }), { reason: 'no-copy', owner: 'base', consume: true }, 'the chain rule stays');
});

t.test('when the registry cannot tell: a copy takes its own key, base what carries none', async (t) => {
  const empty = new StaticSource(buildSnapshot({ services: {} }));
  const cases: Array<[string, Parameters<typeof consumeDecision>[1], string]> = [
    ['no snapshot', { service: 'worker', registry: { ...ready, current: () => undefined, kind: 'static' } as never }, 'no-registry'],
    ['no service given', { registry: ready }, 'unknown-service'],
    ['service not in the registry', { service: 'worker', registry: empty }, 'unknown-service'],
  ];
  for (const [name, options, reason] of cases) {
    const base = (key: string | undefined) => consumeDecision(key, { ...options, lane: 'base' });
    const copy = (key: string | undefined) => consumeDecision(key, { ...options, lane: 'feature1' });
    t.match(copy('feature1'), { consume: true, owner: 'feature1', reason }, `${name}: the copy's own key`);
    t.match(base('feature1'), { consume: false, owner: undefined, reason }, `${name}: base leaves a key`);
    t.match(base(undefined), { consume: true, owner: 'base', reason: 'no-key' }, `${name}: base takes no key`);
    t.match(base('Bad'), { consume: true, owner: 'base', reason: 'invalid-key' }, `${name}: base takes an invalid key`);
    t.match(copy('feature3'), { consume: false, owner: undefined }, `${name}: the copy leaves another key`);
  }
});

t.test('the fan-out rule', async (t) => {
  const d = (key: string | undefined, lane: string, registry = ready): ConsumeDecision => consumeDecision(key, { service: 'worker', lane, registry });
  t.equal(fanOutConsume(d('feature1', 'base')), false, 'base drops what a ready copy processes');
  t.equal(fanOutConsume(d('feature1', 'feature1')), true);
  t.equal(fanOutConsume(d(undefined, 'base')), true);
  t.equal(fanOutConsume(d(undefined, 'feature1')), false, 'a copy drops what base processes');
  t.equal(fanOutConsume(d('feature1', 'base', unready)), true, 'base processes a not-ready copy\'s key');
  t.equal(fanOutConsume(d('feature1', 'feature1', unready)), true, 'and so does the copy: base may have dropped it before');
  t.equal(fanOutConsume(consumeDecision('feature1', { lane: 'base' })), true, 'base with no registry processes');
  t.equal(laneGroupId('orders-worker', { lane: 'base' }), 'orders-worker');
  t.equal(laneGroupId('orders-worker', { lane: 'feature1' }), 'orders-worker-feature1');
});

t.test('from init(): the service, lane, registry and strictness the SDK holds', async (t) => {
  const source = new StaticSource(buildSnapshot(fleet({ ready: true })));
  const sdk = init({ service: 'worker', lane: 'feature1', registry: source });
  t.teardown(() => sdk.close());
  await sdk.ready;
  t.equal(shouldConsume('feature1'), true);
  t.equal(shouldConsume(undefined), false);
  t.equal(laneGroupId('g'), 'g-feature1');
  source.publish(buildSnapshot(fleet({ ready: false }), { version: 2 }));
  t.equal(shouldConsume('feature1'), false, 'a new snapshot is used at once');
  t.equal(shouldConsume('feature1', { lane: 'base' }), true, 'base takes it');
  source.publish(buildSnapshot(fleet({ ready: true }), { version: 3 }));
  t.equal(shouldConsume('feature1'), true, 'and the copy gets it back');
  t.throws(() => init({ service: 'Not A Service' } as never), { code: 'DEVSTACK_INVALID_CONFIG' });
});

t.test('DEVSTACK_SERVICE', async (t) => {
  t.same(optionsFromEnv({ DEVSTACK_SERVICE: 'worker' }), { options: { service: 'worker' }, problems: [] });
  const bad = optionsFromEnv({ DEVSTACK_SERVICE: 'Worker\n1' });
  t.equal(bad.problems.length, 1);
  t.match(bad.problems[0], /^DEVSTACK_SERVICE: "Worker\\n1" is not a registry service name/);
});

t.test('the main entry and register load no AWS SDK; @devstack/sdk/sqs does', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const loads = (entry: string): string[] => {
    const script = `
      import { registerHooks } from 'node:module';
      const seen = [];
      registerHooks({ resolve(specifier, context, next) { if (specifier.startsWith('@aws-sdk/')) seen.push(specifier); return next(specifier, context); } });
      await import(${JSON.stringify(entry)});
      process.stdout.write(JSON.stringify([...new Set(seen)]));`;
    return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: import.meta.dirname, env: { ...process.env, DEVSTACK_SERVICE: 'worker' } }).toString()) as string[];
  };
  t.same(loads('@devstack/sdk'), []);
  t.same(loads('@devstack/sdk/register'), []);
  t.ok(loads('@devstack/sdk/sqs').includes('@aws-sdk/client-sqs'));
});

t.test('register: DEVSTACK_SERVICE, DEVSTACK_DEFAULT_KEY and a registry file decide for a worker started with no code', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'devstack-consume-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'registry.yaml');
  writeFileSync(file, `services:\n  worker:\n    base: ${URL}\n    features:\n      feature1: ${URL}\n`);
  const script = `
    import { shouldConsume } from '@devstack/sdk';
    process.stdout.write(JSON.stringify([shouldConsume('feature1'), shouldConsume(undefined), shouldConsume('feature9')]));`;
  const run = (env: Record<string, string>) =>
    JSON.parse(execFileSync(process.execPath, ['--import', '@devstack/sdk/register', '--input-type=module', '-e', script], { cwd: import.meta.dirname, env: { ...process.env, DEVSTACK_REGISTRY: file, ...env } }).toString()) as boolean[];
  t.same(run({ DEVSTACK_SERVICE: 'worker', DEVSTACK_DEFAULT_KEY: 'feature1' }), [true, false, false], 'the copy');
  t.same(run({ DEVSTACK_SERVICE: 'worker' }), [false, true, true], 'base');
  t.same(run({ DEVSTACK_DEFAULT_KEY: 'feature1' }), [true, false, false], 'no service: the copy takes only its own key');
});
