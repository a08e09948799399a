import t from 'tap';
import { KubernetesSource, type EndpointSliceObject, type ServiceObject, type Transport } from '@devstack/registry-kubernetes';
import { FakeClock, FakeTransport, httpError } from './fakes.ts';

function service(name: string, svc: string, key?: string, rv = 1): ServiceObject & { metadata: { resourceVersion: string } } {
  const labels: Record<string, string> = { 'devstack.io/service': svc };
  if (key) labels['devstack.io/feature'] = key;
  return { metadata: { name, namespace: 'shop', labels, resourceVersion: String(rv), creationTimestamp: '2026-01-01T00:00:00Z' }, spec: { ports: [{ name: 'http', port: 80 }] } } as never;
}

function slice(svc: string, ip: string, ready: boolean, rv = 1): EndpointSliceObject & { metadata: { resourceVersion: string } } {
  return {
    metadata: { name: `${svc}-x`, namespace: 'shop', labels: { 'kubernetes.io/service-name': svc }, resourceVersion: String(rv) },
    addressType: 'IPv4',
    endpoints: [{ addresses: [ip], conditions: { ready } }],
    ports: [{ name: 'http', port: 8080 }],
  } as never;
}

function setup(t: { teardown(fn: () => unknown): void }) {
  const clock = new FakeClock();
  const transports = { services: new FakeTransport(), endpointslices: new FakeTransport() };
  const asked: string[] = [];
  const source = new KubernetesSource({
    namespaces: ['shop'],
    targets: 'endpoints',
    clock,
    random: () => 0.5,
    debounceMs: 5,
    transport: (kind, namespace, selector) => {
      asked.push(`${kind} ${namespace} ${selector}`);
      return transports[kind] as unknown as Transport<ServiceObject | EndpointSliceObject>;
    },
  });
  t.teardown(() => source.close());
  return { clock, transports, source, asked };
}

t.test('start() resolves after the first full sync of both kinds, with the routing snapshot', async (t) => {
  const { clock, transports, source, asked } = setup(t);
  t.same(asked, ['services shop devstack.io/service', 'endpointslices shop kubernetes.io/service-name'], 'selective lists and watches');
  transports.services.items = [service('orders', 'orders') as never, service('orders-f1', 'orders', 'f1') as never];
  transports.endpointslices.listFailures = [httpError(503)];
  let started = false;
  const start = source.start().then((s) => ((started = true), s));
  await clock.advance(0);
  t.equal(started, false, 'not before the slices are listed');
  t.equal(source.current(), undefined);
  transports.endpointslices.items = [slice('orders', '10.0.0.1', true) as never, slice('orders-f1', '10.0.0.2', true) as never];
  await clock.advance(1000);
  const snapshot = await start;
  t.equal(snapshot.source, 'kubernetes');
  t.same(snapshot.services.get('orders')!.features.get('f1')!.ready.map((x) => x.origin), ['http://10.0.0.2:8080']);
  t.equal(source.status().synced, true);
});

t.test('bursts of events become few snapshots; a copy turning unready falls back', async (t) => {
  const { clock, transports, source } = setup(t);
  transports.services.items = [service('orders', 'orders') as never];
  transports.endpointslices.items = [slice('orders', '10.0.0.1', true) as never];
  const published: number[] = [];
  source.subscribe((s) => published.push(s.version));
  source.start();
  await clock.advance(0);
  const before = published.length;
  transports.services.last.emit({ type: 'ADDED', object: service('orders-f1', 'orders', 'f1', 11) });
  transports.endpointslices.last.emit({ type: 'ADDED', object: slice('orders-f1', '10.0.0.2', true, 12) });
  transports.endpointslices.last.emit({ type: 'MODIFIED', object: slice('orders', '10.0.0.3', true, 13) });
  await clock.advance(5);
  t.equal(published.length, before + 1, 'three events, one snapshot');
  t.equal(source.current()!.services.get('orders')!.features.get('f1')!.ready.length, 1);
  transports.endpointslices.last.emit({ type: 'MODIFIED', object: slice('orders-f1', '10.0.0.2', false, 14) });
  await clock.advance(5);
  t.equal(source.current()!.services.get('orders')!.features.get('f1')!.ready.length, 0, 'not ready: routing falls back to base');
  transports.services.last.emit({ type: 'DELETED', object: service('orders-f1', 'orders', 'f1', 15) });
  await clock.advance(5);
  t.equal(source.current()!.services.get('orders')!.features.has('f1'), false, 'a deleted copy is gone');
});

t.test('a steady stream of events: a snapshot at least every maxDelayMs, not only when it stops', async (t) => {
  const { clock, transports, source } = setup(t);
  transports.services.items = [service('orders', 'orders') as never];
  transports.endpointslices.items = [slice('orders', '10.0.0.1', true) as never];
  const published: number[] = [];
  source.subscribe((s) => published.push(s.createdAt));
  source.start();
  await clock.advance(0);
  const from = clock.now();
  // One change every 3 ms for 1 s: never 5 ms of quiet.
  const changed: number[] = [];
  for (let i = 0; i < 333; i++) {
    changed.push(clock.now());
    transports.endpointslices.last.emit({ type: 'MODIFIED', object: slice('orders', `10.0.${i >> 8}.${i & 255}`, true, 100 + i) });
    await clock.advance(3);
  }
  const during = published.filter((at) => at > from && at <= from + 999);
  t.ok(during.length >= 9, `snapshots while the stream lasts (${during.length})`);
  const waited = changed.filter((at) => at <= during[during.length - 1]!).map((at) => during.find((p) => p >= at)! - at);
  t.ok(Math.max(...waited) <= 100, 'no change waits more than 100 ms for its snapshot');
  t.ok(during.length <= 12, 'and not one per event');
  await clock.advance(5);
  t.equal(source.current()!.services.get('orders')!.base.ready[0]!.origin, 'http://10.0.1.76:8080', 'the last change is in the last snapshot');
});

t.test('an unreachable API server: last snapshot kept, stale status, one report per state change', async (t) => {
  const { clock, transports, source } = setup(t);
  transports.services.items = [service('orders', 'orders') as never];
  const errors: string[] = [];
  source.onError((e) => errors.push(e.message));
  const first = await (async () => {
    const p = source.start();
    await clock.advance(0);
    return p;
  })();
  transports.services.watchFailures = [httpError(500), httpError(500), httpError(500)];
  transports.services.last.close(httpError(500));
  await clock.advance(0);
  await clock.advance(60_000);
  t.equal(source.current(), first, 'routing goes on from the last snapshot');
  t.equal(errors.length, 1, 'reported once, not per retry');
  t.match(errors[0], /watch of services in shop failed: HTTP 500; retrying/);
  t.ok(source.status().failures >= 3, 'every failure counted');
  t.equal(source.status().stale, false, 'fresh again once a watch is back');
  t.equal(transports.services.watches.length, 2, 'watching again');
  transports.services.last.close(httpError(500));
  await clock.advance(0);
  t.equal(source.status().stale, true, 'stale while it fails');
  t.equal(errors.length, 2, 'a new failure after recovery is reported again');
});

t.test('duplicate claims are reported once, and routing goes on with the older Service', async (t) => {
  const { clock, transports, source } = setup(t);
  const older = service('orders-f1', 'orders', 'f1');
  const newer = { ...service('orders-f1-b', 'orders', 'f1'), metadata: { ...service('orders-f1-b', 'orders', 'f1').metadata, creationTimestamp: '2026-05-01T00:00:00Z' } };
  transports.services.items = [service('orders', 'orders') as never, newer as never, older as never];
  transports.endpointslices.items = [slice('orders-f1', '10.0.0.2', true) as never, slice('orders-f1-b', '10.0.0.9', true) as never];
  const errors: string[] = [];
  source.onError((e) => errors.push(e.message));
  const p = source.start();
  await clock.advance(0);
  const snapshot = await p;
  t.same(snapshot.services.get('orders')!.features.get('f1')!.ready.map((x) => x.origin), ['http://10.0.0.2:8080']);
  t.equal(errors.length, 1);
  t.match(errors[0], /shop\/orders-f1 and shop\/orders-f1-b both claim service orders, key f1/);
  transports.services.last.emit({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '99' } } });
  transports.endpointslices.last.emit({ type: 'MODIFIED', object: slice('orders', '10.0.0.1', true, 100) });
  await clock.advance(5);
  t.equal(errors.length, 1, 'the same problem is not reported again with every snapshot');
});

t.test('no credentials at all: a ConfigError at once, not requests to nowhere', async (t) => {
  const { createKubernetesSource } = await import('@devstack/registry-kubernetes');
  const { ConfigError } = await import('@devstack/core');
  t.throws(() => createKubernetesSource({ env: {} }), ConfigError);
  t.throws(() => createKubernetesSource({ env: {} }), /no kubeconfig given and not in a pod/);
  t.throws(() => createKubernetesSource({ namespaces: ['Bad_NS'], env: {} }), /namespace "Bad_NS" is not a DNS-1123 label/);
});

t.test('copies of a key disagreeing on devstack.io/stack-on: reported, the oldest wins', async (t) => {
  const { clock, transports, source } = setup(t);
  const annotated = (name: string, svc: string, key: string, parent: string, at: string) => {
    const o = service(name, svc, key);
    return { ...o, metadata: { ...o.metadata, creationTimestamp: at, annotations: { 'devstack.io/stack-on': parent } } };
  };
  transports.services.items = [
    service('orders', 'orders') as never,
    service('orders-f1', 'orders', 'f1') as never,
    service('web', 'web') as never,
    annotated('web-f2', 'web', 'f2', 'other', '2026-05-01T00:00:00Z') as never,
    annotated('api-f2', 'api', 'f2', 'f1', '2026-02-01T00:00:00Z') as never,
    service('api', 'api') as never,
    annotated('api-f3', 'api', 'f3', 'Not A Key', '2026-02-01T00:00:00Z') as never,
  ];
  transports.endpointslices.items = [slice('orders-f1', '10.0.0.2', true) as never];
  const errors: string[] = [];
  source.onError((e) => errors.push(e.message));
  const p = source.start();
  await clock.advance(0);
  const snapshot = await p;
  t.same(Object.fromEntries(snapshot.stacks), { f2: 'f1' }, 'the older copy (api-f2) decides');
  t.equal(snapshot.services.get('orders')!.decisions.byKey.get('f2')?.lane?.name, 'f1');
  t.equal(errors.length, 1);
  t.match(errors[0], /copies of key f2 disagree on devstack\.io\/stack-on: shop\/api-f2 says f1, shop\/web-f2 says other; shop\/api-f2 \(the oldest\) is used/);
  t.match(errors[0], /shop\/api-f3: annotation devstack\.io\/stack-on="Not A Key" is not a routing key/);
});

t.test('a cycle of annotations is reported and its keys resolve unstacked', async (t) => {
  const { clock, transports, source } = setup(t);
  const annotated = (name: string, key: string, parent: string) => {
    const o = service(name, 'orders', key);
    return { ...o, metadata: { ...o.metadata, annotations: { 'devstack.io/stack-on': parent } } };
  };
  transports.services.items = [service('orders', 'orders') as never, annotated('orders-a', 'a', 'b') as never, annotated('orders-b', 'b', 'a') as never];
  transports.endpointslices.items = [];
  const errors: string[] = [];
  source.onError((e) => errors.push(e.message));
  const p = source.start();
  await clock.advance(0);
  const snapshot = await p;
  t.same(snapshot.stackProblems.map((x) => x.problem), ['cycle', 'cycle']);
  t.match(errors[0], /key a: stack a -> b -> a is a cycle: not stacked/);
});
