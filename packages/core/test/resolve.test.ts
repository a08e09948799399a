import t from 'tap';
import { buildSnapshot, resolve, INVALID_KEY, type Reason } from '@devstack/core';

// Two services, as in DESIGN.md: example.com calls example2.com.
const snapshot = buildSnapshot({
  services: {
    example: {
      base: 'http://127.0.0.1:7001',
      features: {
        feature1: 'http://127.0.0.1:7101',
        feature2: ['http://127.0.0.1:7201', 'http://127.0.0.1:7202'],
        parked: { url: 'http://127.0.0.1:7301', ready: false },
      },
    },
    example2: {
      base: 'http://127.0.0.1:7002',
      features: { feature1: 'http://127.0.0.1:7102' },
    },
  },
});

t.test('DESIGN.md routing table', async (t) => {
  const rows: Array<[string, string | undefined, string, string]> = [
    ['feature1.example.com (host carrier gives feature1)', 'feature1', 'feature1', 'http://127.0.0.1:7101'],
    ['uber-ctx-key: feature1', 'feature1', 'feature1', 'http://127.0.0.1:7101'],
    ['uber-ctx-key: feature2', 'feature2', 'feature2', 'http://127.0.0.1:7201'],
    ['no key', undefined, 'base', 'http://127.0.0.1:7001'],
  ];
  for (const [name, key, lane, origin] of rows) {
    const d = resolve(snapshot, 'example', key);
    t.equal(d.lane?.name, lane, `${name}: lane`);
    t.equal(d.lane?.ready[0]?.origin, origin, `${name}: target`);
  }
});

t.test('chain rule: feature copy where one exists, base elsewhere, at every hop', async (t) => {
  const chain = (key: string | undefined) => ['example', 'example2'].map((s) => resolve(snapshot, s, key).lane?.name);
  t.same(chain('feature1'), ['feature1', 'feature1']);
  t.same(chain('feature2'), ['feature2', 'base']);
  t.same(chain(undefined), ['base', 'base']);
});

t.test('every reason', async (t) => {
  const rows: Array<[string, string | undefined, boolean, 'feature' | 'base' | 'reject', Reason, string | undefined]> = [
    ['example', 'feature1', false, 'feature', 'match', 'feature1'],
    ['example', undefined, false, 'base', 'no-key', 'base'],
    ['example', INVALID_KEY, false, 'base', 'invalid-key', 'base'],
    ['example', 'Feature1', false, 'base', 'invalid-key', 'base'],
    ['example', 'x'.repeat(64), false, 'base', 'invalid-key', 'base'],
    ['example', 'nobody-has-this', false, 'base', 'unknown-key', 'base'],
    ['example2', 'feature2', false, 'base', 'no-copy', 'base'],
    ['example', 'parked', false, 'base', 'not-ready', 'base'],
    ['missing', 'feature1', false, 'reject', 'unknown-service', undefined],
    // strict mode
    ['example', 'feature1', true, 'feature', 'match', 'feature1'],
    ['example', undefined, true, 'base', 'no-key', 'base'],
    ['example', INVALID_KEY, true, 'base', 'invalid-key', 'base'],
    ['example', 'nobody-has-this', true, 'reject', 'unknown-key', undefined],
    ['example', 'parked', true, 'reject', 'not-ready', 'parked'],
    ['example2', 'feature2', true, 'base', 'no-copy', 'base'],
    ['missing', undefined, true, 'reject', 'unknown-service', undefined],
  ];
  for (const [service, key, strict, outcome, reason, lane] of rows) {
    const d = resolve(snapshot, service, key, { strict });
    const name = `${service} ${JSON.stringify(key)} strict=${strict}`;
    t.equal(d.outcome, outcome, `${name}: outcome`);
    t.equal(d.reason, reason, `${name}: reason`);
    t.equal(d.lane?.name, lane, `${name}: lane`);
    t.equal(d.service, service, `${name}: service`);
  }
});

t.test('a ready feature copy only sends to its ready targets', async (t) => {
  const s = buildSnapshot({
    services: { a: { base: 'http://127.0.0.1:1', features: { k: [{ url: 'http://127.0.0.1:2', ready: false }, 'http://127.0.0.1:3'] } } },
  });
  const d = resolve(s, 'a', 'k');
  t.equal(d.outcome, 'feature');
  t.same(d.lane?.ready.map((x) => x.origin), ['http://127.0.0.1:3']);
  t.equal(d.lane?.targets.length, 2);
});

t.test('decisions are made once: resolving returns the same frozen object', async (t) => {
  t.equal(resolve(snapshot, 'example', 'feature1'), resolve(snapshot, 'example', 'feature1'));
  t.equal(resolve(snapshot, 'example', undefined), resolve(snapshot, 'example', undefined));
  t.ok(Object.isFrozen(resolve(snapshot, 'example', 'feature1')));
});

t.test('a large snapshot resolves every entry correctly', async (t) => {
  const services: Record<string, { base: string; features: Record<string, string> }> = {};
  for (let s = 0; s < 200; s++) {
    const features: Record<string, string> = {};
    for (let k = 0; k < 50; k++) features[`k${k}`] = `http://127.0.0.1:${10000 + k}`;
    services[`svc${s}`] = { base: 'http://127.0.0.1:9999', features };
  }
  const big = buildSnapshot({ services });
  t.equal(big.services.size, 200);
  t.equal(big.keys.size, 50);
  t.equal(resolve(big, 'svc199', 'k49').lane?.ready[0]?.origin, 'http://127.0.0.1:10049');
  t.equal(resolve(big, 'svc0', 'k50').reason, 'unknown-key');
});
