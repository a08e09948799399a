import t from 'tap';
import type { InvalidKeyError} from '@devstack/core';
import { buildSnapshot, snapshotToJSON, RegistryValidationError, DevstackError, assertValidKey, describeUntrusted } from '@devstack/core';

t.test('a valid description becomes a frozen snapshot', async (t) => {
  const s = buildSnapshot(
    { services: { orders: { base: ['http://127.0.0.1:7002/', 'https://orders.internal'], features: { f: { url: 'http://127.0.0.1:7102', ready: false } } } } },
    { version: 3, source: 'test.yaml', createdAt: 0 },
  );
  t.equal(s.version, 3);
  t.equal(s.source, 'test.yaml');
  const orders = s.services.get('orders');
  t.same(orders?.base.targets, [{ origin: 'http://127.0.0.1:7002', ready: true }, { origin: 'https://orders.internal', ready: true }]);
  t.same(orders?.features.get('f')?.ready, []);
  t.ok(Object.isFrozen(s) && Object.isFrozen(orders) && Object.isFrozen(orders?.base.targets));
  t.same(snapshotToJSON(s), {
    version: 3,
    source: 'test.yaml',
    createdAt: '1970-01-01T00:00:00.000Z',
    services: { orders: { base: orders?.base.targets, features: { f: [{ origin: 'http://127.0.0.1:7102', ready: false }] } } },
  });
});

t.test('every problem is reported at once, with its path', async (t) => {
  const err = t.throws(() =>
    buildSnapshot(
      {
        services: {
          Orders: { base: 'http://127.0.0.1:1' },
          pay: { features: { 'Bad Key': 'http://x', ok: 'ftp://x', k2: 'http://h/path', k3: 12 } },
          web: 'nope',
          api: { base: { url: 'http://127.0.0.1:1', ready: 'yes' }, extra: 1 },
        },
        more: true,
      },
      { source: 'fleet.yaml' },
    ),
  ) as RegistryValidationError;
  t.type(err, RegistryValidationError);
  t.type(err, DevstackError);
  t.equal(err.code, 'DEVSTACK_INVALID_REGISTRY');
  t.same(err.problems, [
    'unknown top-level field "more"',
    "services.Orders: service name must be a DNS-1123 label (a-z, 0-9, '-', at most 63 characters)",
    'services.pay.base: required (one URL or a list)',
    "services.pay.features.Bad Key: routing key must be a DNS-1123 label (a-z, 0-9, '-', at most 63 characters)",
    'services.pay.features.ok: "ftp://x" must use http or https',
    'services.pay.features.k2: "http://h/path" must be an origin only (no path, query, credentials)',
    'services.pay.features.k3: expected a URL such as http://127.0.0.1:7002',
    'services.web: expected { base, features }',
    'services.api: unknown field "extra"',
    'services.api.base.ready: must be true or false',
  ]);
  t.match(err.message, /in fleet\.yaml: 10 problems/);
  t.throws(() => buildSnapshot(null), RegistryValidationError);
  t.throws(() => buildSnapshot({ services: [] }), RegistryValidationError);
});

t.test('hostile names never reach a message unescaped', async (t) => {
  const err = t.throws(() => buildSnapshot({ services: { 'a\r\nInjected: 1': { base: 'http://x' } } })) as RegistryValidationError;
  t.notMatch(err.message, /\r|\n {0}Injected/);
  t.match(err.problems[0], 'a\\r\\nInjected');
  t.equal(describeUntrusted('x'.repeat(100)), `"${'x'.repeat(64)}\\u2026"`, 'long values are cut');
  t.equal(describeUntrusted('a\u202eb'), '"a\\u202eb"');
});

t.test('assertValidKey', async (t) => {
  t.equal(assertValidKey('feature1'), 'feature1');
  const err = t.throws(() => assertValidKey('Bad\nKey')) as InvalidKeyError;
  t.equal(err.code, 'DEVSTACK_INVALID_KEY');
  t.match(err.message, '"Bad\\nKey"');
});

t.test('an empty base list and a copy keyed "base" are registry errors, with their paths', async (t) => {
  const cases: { name: string; services: Record<string, unknown>; problem: string | undefined }[] = [
    { name: 'empty base list', services: { orders: { base: [] } }, problem: 'services.orders.base: empty list: base needs at least one URL' },
    { name: 'empty base list beside a copy', services: { orders: { base: [], features: { f: 'http://127.0.0.1:1' } } }, problem: 'services.orders.base: empty list: base needs at least one URL' },
    { name: 'a copy keyed base', services: { orders: { base: 'http://127.0.0.1:1', features: { base: 'http://127.0.0.1:2' } } }, problem: 'services.orders.features.base: "base" is reserved: the lane header could not tell this copy from base' },
    { name: 'one base URL', services: { orders: { base: 'http://127.0.0.1:1' } }, problem: undefined },
    { name: 'a list of one', services: { orders: { base: ['http://127.0.0.1:1'] } }, problem: undefined },
    { name: 'a key that only starts with base', services: { orders: { base: 'http://127.0.0.1:1', features: { base2: 'http://127.0.0.1:2' } } }, problem: undefined },
  ];
  for (const c of cases) {
    if (c.problem === undefined) {
      t.doesNotThrow(() => buildSnapshot({ services: c.services }), c.name);
      continue;
    }
    const err = t.throws(() => buildSnapshot({ services: c.services }), c.name) as RegistryValidationError;
    t.same(err.problems, [c.problem], c.name);
  }
  const both = t.throws(() => buildSnapshot({ services: { a: { base: [] }, b: { base: 'http://127.0.0.1:1', features: { base: 'http://127.0.0.1:2' } } } })) as RegistryValidationError;
  t.equal(both.problems.length, 2, 'both problems are reported at once');
});
