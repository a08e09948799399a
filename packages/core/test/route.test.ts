import t from 'tap';
import {
  buildSnapshot,
  createKeyCodec,
  nextTarget,
  pickTarget,
  routeStep,
  serviceForAuthority,
  upstreamFailure,
  NO_LANE,
  REFUSALS,
  type RouteFields,
} from '@devstack/core';

const snapshot = buildSnapshot({
  services: {
    orders: {
      base: 'http://127.0.0.1:7001',
      features: { f1: 'http://127.0.0.1:7101', parked: { url: 'http://127.0.0.1:7201', ready: false } },
    },
    'a-b': { base: 'http://127.0.0.1:7003', features: { f2: 'http://127.0.0.1:7102' } },
    pair: { base: ['http://127.0.0.1:7005', 'http://127.0.0.1:7006'] },
    empty: { base: { url: 'http://127.0.0.1:7004', ready: false } },
  },
});

t.test('serviceForAuthority: registry names and Kubernetes service names, nothing else', async (t) => {
  const rows: Array<[string, string | undefined]> = [
    ['orders', 'orders'],
    ['orders:8080', 'orders'],
    ['ORDERS.', 'orders'],
    ['orders.shop', 'orders'],
    ['orders.shop.svc', 'orders'],
    ['orders.shop.svc.cluster.local', 'orders'],
    ['orders.shop.svc.cluster.local:80', 'orders'],
    ['a-b.ns.svc', 'a-b'],
    ['orders.shop.svc.other.domain', undefined],
    ['orders.example.com', undefined],
    ['payments', undefined],
    ['payments.shop.svc.cluster.local', undefined],
    ['10.0.0.1', undefined],
    ['[::1]:80', undefined],
    ['orders:http', undefined],
    ['', undefined],
  ];
  for (const [host, service] of rows) t.equal(serviceForAuthority(snapshot, host), service, host);
  t.equal(serviceForAuthority(snapshot, 'orders.shop.svc.corp.internal', 'corp.internal'), 'orders', 'another cluster domain');
  t.equal(serviceForAuthority(snapshot, 'orders.shop.svc.cluster.local', 'corp.internal'), undefined, 'only the configured cluster domain');
});

function fields(): RouteFields {
  return { service: undefined, reading: undefined, key: undefined, decision: undefined, lane: NO_LANE, target: undefined, refusal: undefined };
}

t.test('routeStep: key, default key, lane, target and refusal in one table', async (t) => {
  const codec = createKeyCodec();
  // [name, service, headers, defaultKey, strict, forwarded, key, lane, reason, target or refusal]
  type Row = [string, string | undefined, Record<string, string>, string | undefined, boolean, boolean, string | undefined, string, string | undefined, string];
  const rows: Row[] = [
    ['no key', 'orders', {}, undefined, false, true, undefined, 'base', 'no-key', 'http://127.0.0.1:7001'],
    ['a copy', 'orders', { 'uber-ctx-key': 'f1' }, undefined, false, true, 'f1', 'f1', 'match', 'http://127.0.0.1:7101'],
    ['chain rule: no copy here', 'orders', { 'uber-ctx-key': 'f2' }, undefined, false, true, 'f2', 'base', 'no-copy', 'http://127.0.0.1:7001'],
    ['unknown key', 'orders', { 'uber-ctx-key': 'zzz' }, undefined, false, true, 'zzz', 'base', 'unknown-key', 'http://127.0.0.1:7001'],
    ['unknown key, strict', 'orders', { 'uber-ctx-key': 'zzz' }, undefined, true, false, 'zzz', NO_LANE, 'unknown-key', 'no-feature-copy'],
    ['not ready', 'orders', { 'uber-ctx-key': 'parked' }, undefined, false, true, 'parked', 'base', 'not-ready', 'http://127.0.0.1:7001'],
    ['not ready, strict', 'orders', { 'uber-ctx-key': 'parked' }, undefined, true, false, 'parked', 'parked', 'not-ready', 'no-feature-copy'],
    ['invalid key', 'orders', { 'uber-ctx-key': 'F1' }, undefined, false, true, undefined, 'base', 'invalid-key', 'http://127.0.0.1:7001'],
    ['conflicting key', 'orders', { 'uber-ctx-key': 'f1, f2' }, undefined, false, true, undefined, 'base', 'invalid-key', 'http://127.0.0.1:7001'],
    ['no key, default key', 'orders', {}, 'f1', false, true, 'f1', 'f1', 'match', 'http://127.0.0.1:7101'],
    ['invalid key, default key stands in', 'orders', { 'uber-ctx-key': 'F1' }, 'f1', false, true, 'f1', 'f1', 'match', 'http://127.0.0.1:7101'],
    ['a valid key beats the default key', 'orders', { baggage: 'uber-ctx-key=parked' }, 'f1', false, true, 'parked', 'base', 'not-ready', 'http://127.0.0.1:7001'],
    ['unknown service', undefined, { 'uber-ctx-key': 'f1' }, undefined, false, false, 'f1', NO_LANE, undefined, 'unknown-service'],
    ['no ready target', 'empty', {}, undefined, false, false, undefined, 'base', 'no-key', 'no-ready-target'],
  ];
  for (const [name, service, headers, defaultKey, strict, forwarded, key, lane, reason, where] of rows) {
    const out = fields();
    const ok = routeStep(snapshot, service, codec.read(headers), { defaultKey, strict }, out);
    t.equal(ok, forwarded, `${name}: forwarded`);
    t.equal(out.key, key, `${name}: key`);
    t.equal(out.lane, lane, `${name}: lane`);
    t.equal(out.decision?.reason, reason, `${name}: reason`);
    if (forwarded) t.equal(out.target?.origin, where, `${name}: target`);
    else t.equal(out.refusal, where, `${name}: refusal`);
    t.equal(out.service, service, `${name}: service`);
  }
});

t.test('refusals carry the status and code both the sidecar and the SDK report', async (t) => {
  t.same(REFUSALS['unknown-service'], { status: 404, code: 'DEVSTACK_UNKNOWN_SERVICE' });
  t.same(REFUSALS['no-feature-copy'], { status: 503, code: 'DEVSTACK_NO_FEATURE_COPY' });
  t.same(REFUSALS['no-ready-target'], { status: 503, code: 'DEVSTACK_NO_READY_UPSTREAM' });
});

t.test('pickTarget round-robins per lane; nextTarget skips the one that failed', async (t) => {
  const lane = snapshot.services.get('pair')!.base;
  const picked = [pickTarget(lane), pickTarget(lane), pickTarget(lane)].map((x) => x?.origin);
  t.equal(new Set(picked).size, 2, 'both targets used');
  t.not(picked[0], picked[1], 'alternates');
  t.equal(nextTarget(lane, lane.ready[0])?.origin, lane.ready[1]!.origin);
  t.equal(nextTarget(lane, lane.ready[1])?.origin, lane.ready[0]!.origin);
  t.equal(pickTarget(snapshot.services.get('empty')!.base), undefined, 'no ready target');
});

t.test('upstreamFailure maps error codes to one report', async (t) => {
  t.same(upstreamFailure({ code: 'ECONNREFUSED' }), { code: 'DEVSTACK_UPSTREAM_UNREACHABLE', status: 502, retry: true });
  t.same(upstreamFailure({ code: 'UND_ERR_CONNECT_TIMEOUT' }), { code: 'DEVSTACK_UPSTREAM_CONNECT_TIMEOUT', status: 504, retry: true });
  t.same(upstreamFailure({ code: 'UND_ERR_HEADERS_TIMEOUT' }), { code: 'DEVSTACK_UPSTREAM_TIMEOUT', status: 504, retry: false });
  t.same(upstreamFailure({ code: 'ECONNRESET' }), { code: 'DEVSTACK_UPSTREAM_RESET', status: 502, retry: false });
  for (const odd of [{ code: 'constructor' }, { code: '__proto__' }, { code: 5 }, null, undefined, new Error('x')]) {
    t.equal(upstreamFailure(odd).code, 'DEVSTACK_UPSTREAM_ERROR', `unknown: ${String((odd as { code?: unknown } | null)?.code)}`);
  }
});

t.test('the Host carrier is read from the authority the request is routed by', async (t) => {
  const codec = createKeyCodec({ domains: ['example.com'] });
  t.equal(codec.read({ host: 'f1.example.com' }).key, 'f1', 'Host header');
  t.equal(codec.read({ host: 'f1.example.com' }, 'example.com').key, undefined, 'the authority wins over Host');
  t.equal(codec.read({ host: 'example.com' }, 'f1.example.com').key, 'f1', 'absolute-form authority');
});

t.test('updateSnapshot: the change is rebuilt, the rest is kept as it was', async (t) => {
  const { updateSnapshot, RegistryValidationError } = await import('@devstack/core');
  const before = buildSnapshot({ services: { a: { base: 'http://127.0.0.1:1', features: { k1: 'http://127.0.0.1:2' } }, b: { base: 'http://127.0.0.1:3', features: { k2: 'http://127.0.0.1:4' } } } }, { version: 1 });
  const after = updateSnapshot(before, new Map([['a', { base: 'http://127.0.0.1:5' }], ['c', { base: 'http://127.0.0.1:6', features: { k3: 'http://127.0.0.1:7' } }]]), { version: 2 });
  t.equal(after.version, 2);
  t.equal(after.services.get('b'), before.services.get('b'), 'an untouched service keeps its entry');
  t.equal(after.services.get('a')!.base.ready[0]!.origin, 'http://127.0.0.1:5', 'a replaced one is rebuilt');
  t.same([...after.keys].sort(), ['k2', 'k3'], 'keys follow: k1 is gone with a\'s copy, k3 came with c');
  t.equal(resolveKeyReason(after, 'b', 'k1'), 'unknown-key', 'and resolution sees it');
  const removed = updateSnapshot(after, new Map([['b', undefined]]), { version: 3 });
  t.same([...removed.services.keys()].sort(), ['a', 'c']);
  t.same([...removed.keys], ['k3']);
  t.throws(() => updateSnapshot(removed, new Map([['a', { base: [] }]])), RegistryValidationError, 'validated like buildSnapshot');
  t.equal(removed.services.get('a')!.base.ready.length, 1, 'a refused update changes nothing');
});

function resolveKeyReason(snapshot: ReturnType<typeof buildSnapshot>, service: string, key: string): string {
  const out = { service: undefined, reading: undefined, key: undefined, decision: undefined, lane: NO_LANE, target: undefined, refusal: undefined } as RouteFields;
  routeStep(snapshot, service, createKeyCodec().read({ 'uber-ctx-key': key }), {}, out);
  return out.decision!.reason;
}
