import t from 'tap';
import { buildSnapshot } from '@devstack/core';
import { buildModel, endpointReady, pickPort, type EndpointSliceObject, type ServiceObject } from '@devstack/registry-kubernetes';

function svc(name: string, service: string, key?: string, extra: Partial<ServiceObject> & { namespace?: string; created?: string } = {}): ServiceObject {
  const labels: Record<string, string> = { 'devstack.io/service': service };
  if (key !== undefined) labels['devstack.io/feature'] = key;
  return {
    metadata: { name, namespace: extra.namespace ?? 'shop', labels, creationTimestamp: extra.created ?? '2026-01-01T00:00:00Z' },
    spec: extra.spec ?? { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
  };
}

function slice(service: string, endpoints: EndpointSliceObject['endpoints'], extra: Partial<EndpointSliceObject> & { namespace?: string; name?: string } = {}): EndpointSliceObject {
  return {
    metadata: { name: extra.name ?? `${service}-abc`, namespace: extra.namespace ?? 'shop', labels: { 'kubernetes.io/service-name': service } },
    addressType: extra.addressType ?? 'IPv4',
    endpoints,
    ports: extra.ports ?? [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

const ready = { ready: true, serving: true, terminating: false };

t.test('endpoint readiness from EndpointSlice conditions', async (t) => {
  t.equal(endpointReady({ ready: true }), true, 'ready');
  t.equal(endpointReady(undefined), true, 'unset counts as ready');
  t.equal(endpointReady({ ready: null }), true, 'null counts as ready');
  t.equal(endpointReady({ ready: false }), false, 'not ready');
  t.equal(endpointReady({ ready: false, serving: true, terminating: true } as never), false, 'serving but terminating gets no new requests');
  t.equal(endpointReady({ ready: true, terminating: true }), false, 'terminating');
});

t.test('the routed port: named http, else the only or first TCP port', async (t) => {
  t.same(pickPort({ spec: { ports: [{ name: 'metrics', port: 9090 }, { name: 'http', port: 8080 }] } }), { name: 'http', port: 8080 });
  t.same(pickPort({ spec: { ports: [{ port: 80 }] } }), { name: '', port: 80 });
  t.same(pickPort({ spec: { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'web', port: 81 }] } }), { name: 'web', port: 81 });
  t.equal(pickPort({ spec: { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] } }), undefined);
  t.equal(pickPort({}), undefined);
});

t.test('service mode: one cluster DNS target per Service, ready from its slices', async (t) => {
  const model = buildModel(
    [svc('orders', 'orders'), svc('orders-f1', 'orders', 'f1'), svc('orders-f2', 'orders', 'f2'), svc('web', 'web')],
    [slice('orders', [{ addresses: ['10.0.0.1'], conditions: ready }]), slice('orders-f1', [{ addresses: ['10.0.0.2'], conditions: { ready: false } }])],
    { targets: 'service', clusterDomain: 'cluster.local' },
  );
  t.same(model.problems, []);
  t.same(model.input.services['orders'], {
    base: [{ url: 'http://orders.shop.svc.cluster.local:80', ready: true }],
    features: {
      f1: [{ url: 'http://orders-f1.shop.svc.cluster.local:80', ready: false }],
      f2: [{ url: 'http://orders-f2.shop.svc.cluster.local:80', ready: false }],
    },
  }, 'a copy with unready endpoints, or no slice at all, is not ready');
  t.same(model.input.services['web'], { base: [{ url: 'http://web.shop.svc.cluster.local:80', ready: false }], features: {} });
  t.ok(buildSnapshot(model.input), 'the description makes a snapshot');
});

t.test('endpoints mode: ready pod addresses of every slice, IPv6 bracketed, named ports', async (t) => {
  const model = buildModel(
    [svc('orders', 'orders', undefined, { spec: { ports: [{ name: 'grpc', port: 9000 }, { name: 'http', port: 80 }] } })],
    [
      slice('orders', [{ addresses: ['10.0.0.1'], conditions: ready }, { addresses: ['10.0.0.9'], conditions: { ready: false, serving: true, terminating: true } }], {
        ports: [{ name: 'grpc', port: 9001 }, { name: 'http', port: 8080 }],
      }),
      slice('orders', [{ addresses: ['fd00::1'], conditions: ready }], { name: 'orders-v6', addressType: 'IPv6', ports: [{ name: 'http', port: 8080 }] }),
      slice('orders', [{ addresses: ['10.0.0.5'], conditions: ready }], { name: 'orders-other-port', ports: [{ name: 'grpc', port: 9001 }] }),
      slice('orders', [{ addresses: ['10.0.0.6'], conditions: ready }], { name: 'orders-elsewhere', namespace: 'other' }),
    ],
    { targets: 'endpoints', clusterDomain: 'cluster.local' },
  );
  t.same(model.input.services['orders']!.base, [
    { url: 'http://10.0.0.1:8080', ready: true },
    { url: 'http://10.0.0.9:8080', ready: false },
    { url: 'http://[fd00::1]:8080', ready: true },
  ]);
  t.ok(buildSnapshot(model.input).services.get('orders')!.base.ready.length === 2, 'two ready targets');
});

t.test('endpoints mode: a Service with no endpoint is a lane that is not ready', async (t) => {
  const model = buildModel([svc('orders', 'orders'), svc('orders-f1', 'orders', 'f1')], [], { targets: 'endpoints', clusterDomain: 'corp.internal' });
  t.same(model.input.services['orders']!.features!['f1'], [{ url: 'http://orders-f1.shop.svc.corp.internal:80', ready: false }]);
  const snapshot = buildSnapshot(model.input);
  t.equal(snapshot.services.get('orders')!.features.get('f1')!.ready.length, 0);
});

t.test('duplicate claims: the older Service wins, the problem names both', async (t) => {
  const model = buildModel(
    [svc('orders-f1-new', 'orders', 'f1', { created: '2026-03-01T00:00:00Z' }), svc('orders', 'orders'), svc('orders-f1', 'orders', 'f1', { created: '2026-02-01T00:00:00Z' })],
    [],
    { targets: 'service', clusterDomain: 'cluster.local' },
  );
  t.same(model.input.services['orders']!.features!['f1'], [{ url: 'http://orders-f1.shop.svc.cluster.local:80', ready: false }]);
  t.equal(model.problems.length, 1);
  t.match(model.problems[0], /shop\/orders-f1 and shop\/orders-f1-new both claim service orders, key f1: shop\/orders-f1 \(the older\) is used/);
});

t.test('bad labels, no base, no port: reported, never routed, never in a label', async (t) => {
  const model = buildModel(
    [
      svc('a', 'Bad_Name'),
      svc('b', 'orders', 'Bad Key'),
      svc('c', 'orders', 'base'),
      svc('d', 'payments', 'f1'),
      svc('e', 'dns', undefined, { spec: { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] } }),
      { metadata: { name: 'unlabelled', namespace: 'shop' } },
    ],
    [],
    { targets: 'service', clusterDomain: 'cluster.local' },
  );
  t.same(Object.keys(model.input.services), []);
  t.equal(model.problems.length, 5);
  t.match(model.problems.join('\n'), /"shop\/a": label devstack.io\/service="Bad_Name"/);
  t.match(model.problems.join('\n'), /"shop\/c": label devstack.io\/feature="base" is not a routing key/);
  t.match(model.problems.join('\n'), /service payments: feature copies \(f1\) but no base Service/);
  t.match(model.problems.join('\n'), /Service shop\/e: no TCP port/);
});
