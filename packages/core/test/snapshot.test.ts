import t from 'tap';
import type { InvalidKeyError} from '@devstack/core';
import { buildSnapshot, updateSnapshot, resolve, routeStep, snapshotToJSON, RegistryValidationError, DevstackError, assertValidKey, describeUntrusted, createKeyCodec, type RouteFields, type Snapshot } from '@devstack/core';

t.test('a valid description becomes a frozen snapshot', async (t) => {
  const s = buildSnapshot(
    { services: { orders: { base: ['http://127.0.0.1:7002/', 'https://orders.internal'], features: { f: { url: 'http://127.0.0.1:7102', ready: false } } } } },
    { version: 3, source: 'test.yaml', createdAt: 0 },
  );
  t.equal(s.version, 3);
  t.equal(s.source, 'test.yaml');
  const orders = s.services.get('orders');
  t.same(orders?.base.targets, [{ origin: 'http://127.0.0.1:7002', ready: true, protocol: 'http1' }, { origin: 'https://orders.internal', ready: true, protocol: 'http1' }]);
  t.same(orders?.features.get('f')?.ready, []);
  t.ok(Object.isFrozen(s) && Object.isFrozen(orders) && Object.isFrozen(orders?.base.targets));
  t.same(snapshotToJSON(s), {
    version: 3,
    source: 'test.yaml',
    createdAt: '1970-01-01T00:00:00.000Z',
    services: { orders: { base: orders?.base.targets, features: { f: [{ origin: 'http://127.0.0.1:7102', ready: false, protocol: 'http1' }] } } },
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

/** The one target of `orders` base built from `target`, or the problems it was refused with. */
function parseOne(target: unknown): { protocol: string } | { problems: readonly string[] } {
  try {
    const t = buildSnapshot({ services: { orders: { base: target } } }).services.get('orders')!.base.targets[0]!;
    return { protocol: t.protocol };
  } catch (error) {
    if (error instanceof RegistryValidationError) return { problems: error.problems };
    throw error;
  }
}

t.test('a target\'s protocol: http1 by default, h2c when asked, nothing else', async (t) => {
  const cases: { name: string; target: unknown; expect: ReturnType<typeof parseOne> }[] = [
    { name: 'a bare URL', target: 'http://127.0.0.1:7002', expect: { protocol: 'http1' } },
    { name: 'an object without protocol', target: { url: 'http://127.0.0.1:7002' }, expect: { protocol: 'http1' } },
    { name: 'an https URL', target: 'https://orders.internal', expect: { protocol: 'http1' } },
    { name: 'http1 spelled out', target: { url: 'http://127.0.0.1:7002', protocol: 'http1' }, expect: { protocol: 'http1' } },
    { name: 'http1 over https', target: { url: 'https://orders.internal', protocol: 'http1' }, expect: { protocol: 'http1' } },
    { name: 'h2c', target: { url: 'http://127.0.0.1:50051', protocol: 'h2c' }, expect: { protocol: 'h2c' } },
    { name: 'h2c to IPv6, not ready', target: { url: 'http://[fd00::1]:50051', ready: false, protocol: 'h2c' }, expect: { protocol: 'h2c' } },
    {
      name: 'h2c with an https URL',
      target: { url: 'https://orders.internal:8443', protocol: 'h2c' },
      expect: { problems: ['services.orders.base: h2c is HTTP/2 over cleartext; an https target ("https://orders.internal:8443") cannot use it: give an http:// URL'] },
    },
    { name: 'upper case', target: { url: 'http://127.0.0.1:1', protocol: 'H2C' }, expect: { problems: ['services.orders.base.protocol: must be http1 or h2c, not "H2C"'] } },
    { name: 'http2', target: { url: 'http://127.0.0.1:1', protocol: 'http2' }, expect: { problems: ['services.orders.base.protocol: must be http1 or h2c, not "http2"'] } },
    { name: 'grpc', target: { url: 'http://127.0.0.1:1', protocol: 'grpc' }, expect: { problems: ['services.orders.base.protocol: must be http1 or h2c, not "grpc"'] } },
    { name: 'http/1.1', target: { url: 'http://127.0.0.1:1', protocol: 'http/1.1' }, expect: { problems: ['services.orders.base.protocol: must be http1 or h2c, not "http/1.1"'] } },
    { name: 'empty', target: { url: 'http://127.0.0.1:1', protocol: '' }, expect: { problems: ['services.orders.base.protocol: must be http1 or h2c, not ""'] } },
    { name: 'a number', target: { url: 'http://127.0.0.1:1', protocol: 2 }, expect: { problems: ['services.orders.base.protocol: must be http1 or h2c, not 2'] } },
    { name: 'null', target: { url: 'http://127.0.0.1:1', protocol: null }, expect: { problems: ['services.orders.base.protocol: must be http1 or h2c, not null'] } },
    { name: 'hostile', target: { url: 'http://127.0.0.1:1', protocol: 'h2c\r\nX: 1' }, expect: { problems: ['services.orders.base.protocol: must be http1 or h2c, not "h2c\\r\\nX: 1"'] } },
    { name: 'a misspelt field', target: { url: 'http://127.0.0.1:1', proto: 'h2c' }, expect: { problems: ['services.orders.base: unknown field "proto"'] } },
  ];
  for (const c of cases) t.same(parseOne(c.target), c.expect, c.name);
});

t.test('protocol problems carry their path and are reported with the others', async (t) => {
  const err = t.throws(() =>
    buildSnapshot({
      services: {
        api: {
          base: ['http://127.0.0.1:1', { url: 'http://127.0.0.1:2', protocol: 'spdy' }],
          features: { f: { url: 'https://api-f.internal', protocol: 'h2c' }, g: { url: 'http://127.0.0.1:3', ready: 'no', protocol: 'h2c' } },
        },
      },
    }),
  ) as RegistryValidationError;
  t.same(err.problems, [
    'services.api.base[1].protocol: must be http1 or h2c, not "spdy"',
    'services.api.features.f: h2c is HTTP/2 over cleartext; an https target ("https://api-f.internal") cannot use it: give an http:// URL',
    'services.api.features.g.ready: must be true or false',
  ]);
});

t.test('h2c targets are frozen, shown by snapshotToJSON and routed to like any other', async (t) => {
  const s = buildSnapshot({
    services: { greeter: { base: { url: 'http://127.0.0.1:50051', protocol: 'h2c' }, features: { f1: ['http://127.0.0.1:50052', { url: 'http://127.0.0.1:50053', protocol: 'h2c' }] } } },
  });
  const greeter = s.services.get('greeter')!;
  const target = greeter.base.targets[0]!;
  t.same(target, { origin: 'http://127.0.0.1:50051', ready: true, protocol: 'h2c' });
  t.ok(Object.isFrozen(target), 'the target is frozen');
  t.throws(() => {
    (target as { protocol: string }).protocol = 'http1';
  }, TypeError);
  t.equal(target.protocol, 'h2c');
  t.same(
    greeter.features.get('f1')!.targets.map((x) => x.protocol),
    ['http1', 'h2c'],
    'each target of a lane has its own protocol',
  );
  const json = snapshotToJSON(s) as { services: { greeter: { base: unknown[]; features: Record<string, unknown[]> } } };
  t.same(json.services.greeter.base, [{ origin: 'http://127.0.0.1:50051', ready: true, protocol: 'h2c' }]);
  t.same(JSON.parse(JSON.stringify(json)).services.greeter.features.f1[1], { origin: 'http://127.0.0.1:50053', ready: true, protocol: 'h2c' });
  t.equal(resolve(s, 'greeter', undefined).lane?.ready[0]?.protocol, 'h2c', 'resolve keeps the protocol');
  const out: RouteFields = { service: undefined, reading: undefined, key: undefined, decision: undefined, lane: 'none', target: undefined, refusal: undefined };
  routeStep(s, 'greeter', createKeyCodec().read({ 'uber-ctx-key': 'f1' }), {}, out);
  t.same(out.target, { origin: 'http://127.0.0.1:50052', ready: true, protocol: 'http1' }, 'the routing step hands on the target as built');
  routeStep(s, 'greeter', createKeyCodec().read({ 'uber-ctx-key': 'f1' }), {}, out);
  t.equal(out.target?.protocol, 'h2c', 'the next target of the lane, with its own protocol');
});

t.test('updateSnapshot keeps the protocol of kept and rebuilt services alike', async (t) => {
  const before = buildSnapshot(
    { services: { greeter: { base: { url: 'http://127.0.0.1:50051', protocol: 'h2c' } }, web: { base: 'http://127.0.0.1:8080' } } },
    { version: 1 },
  );
  const protocols = (s: Snapshot, name: string) => [...s.services.get(name)!.base.targets, ...[...s.services.get(name)!.features.values()].flatMap((l) => l.targets)].map((x) => x.protocol);

  const webChanged = updateSnapshot(before, new Map([['web', { base: 'http://127.0.0.1:8081', features: { f1: { url: 'http://127.0.0.1:50060', protocol: 'h2c' } } }]]), { version: 2 });
  t.equal(webChanged.services.get('greeter'), before.services.get('greeter'), 'an untouched service keeps its entry');
  t.same(protocols(webChanged, 'greeter'), ['h2c']);
  t.same(protocols(webChanged, 'web'), ['http1', 'h2c'], 'a rebuilt service gets the protocols of its new description');

  const rebuilt = updateSnapshot(webChanged, new Map([['greeter', { base: [{ url: 'http://127.0.0.1:50051', protocol: 'h2c' }, { url: 'http://127.0.0.1:50052', protocol: 'h2c' }] }]]), { version: 3 });
  t.not(rebuilt.services.get('greeter'), webChanged.services.get('greeter'));
  t.same(protocols(rebuilt, 'greeter'), ['h2c', 'h2c'], 'rebuilding an h2c service keeps it h2c');
  t.same(protocols(rebuilt, 'web'), ['http1', 'h2c']);

  const back = updateSnapshot(rebuilt, new Map([['greeter', { base: 'http://127.0.0.1:50051' }]]), { version: 4 });
  t.same(protocols(back, 'greeter'), ['http1'], 'a description without protocol is http1 again');

  const err = t.throws(() => updateSnapshot(back, new Map([['web', { base: { url: 'https://web.internal', protocol: 'h2c' } }]]), { version: 5 })) as RegistryValidationError;
  t.same(err.problems, ['services.web.base: h2c is HTTP/2 over cleartext; an https target ("https://web.internal") cannot use it: give an http:// URL'], 'validated like buildSnapshot');
  t.same(protocols(back, 'web'), ['http1', 'h2c'], 'a refused update changes nothing');
});
