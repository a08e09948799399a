import t from 'tap';
import { buildSnapshot } from '@devstack/core';
import { appProtocolToTarget, buildModel, endpointReady, pickPort, type EndpointSliceObject, type ServiceObject } from '@devstack/registry-kubernetes';

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

t.test('the routed port: named http, else named grpc or h2c, else the only or first TCP port', async (t) => {
  t.same(pickPort({ spec: { ports: [{ name: 'metrics', port: 9090 }, { name: 'http', port: 8080 }] } }), { name: 'http', port: 8080, protocol: 'http1' });
  t.same(pickPort({ spec: { ports: [{ port: 80 }] } }), { name: '', port: 80, protocol: 'http1' });
  t.same(pickPort({ spec: { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'web', port: 81 }] } }), { name: 'web', port: 81, protocol: 'http1' });
  t.equal(pickPort({ spec: { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] } }), undefined);
  t.equal(pickPort({}), undefined);
  const cases: { name: string; ports: NonNullable<ServiceObject['spec']>['ports']; expect: ReturnType<typeof pickPort> }[] = [
    { name: 'grpc after metrics', ports: [{ name: 'metrics', port: 9090 }, { name: 'grpc', port: 50051, appProtocol: 'kubernetes.io/h2c' }], expect: { name: 'grpc', port: 50051, protocol: 'h2c' } },
    { name: 'h2c after metrics', ports: [{ name: 'metrics', port: 9090 }, { name: 'h2c', port: 8081, appProtocol: 'kubernetes.io/h2c' }], expect: { name: 'h2c', port: 8081, protocol: 'h2c' } },
    { name: 'the first of grpc and h2c', ports: [{ name: 'admin', port: 9000 }, { name: 'h2c', port: 8081 }, { name: 'grpc', port: 50051 }], expect: { name: 'h2c', port: 8081, protocol: 'http1' } },
    { name: 'http still wins over grpc', ports: [{ name: 'grpc', port: 50051, appProtocol: 'grpc' }, { name: 'http', port: 8080 }], expect: { name: 'http', port: 8080, protocol: 'http1' } },
    { name: 'a UDP port named grpc is not routed to', ports: [{ name: 'metrics', port: 9090 }, { name: 'grpc', port: 50051, protocol: 'UDP' }], expect: { name: 'metrics', port: 9090, protocol: 'http1' } },
    { name: 'a port named grpc without appProtocol stays http1', ports: [{ name: 'grpc', port: 50051 }], expect: { name: 'grpc', port: 50051, protocol: 'http1' } },
    { name: 'the protocol of the chosen port, not of another', ports: [{ name: 'http', port: 8080 }, { name: 'grpc', port: 50051, appProtocol: 'kubernetes.io/h2c' }], expect: { name: 'http', port: 8080, protocol: 'http1' } },
    { name: 'an http port that speaks h2c', ports: [{ name: 'http', port: 8080, appProtocol: 'kubernetes.io/h2c' }], expect: { name: 'http', port: 8080, protocol: 'h2c' } },
  ];
  for (const c of cases) t.same(pickPort({ spec: { ports: c.ports } }), c.expect, c.name);
});

t.test('appProtocol: h2c and grpc names are h2c, everything else http1', async (t) => {
  const cases: [string | null | undefined, 'http1' | 'h2c'][] = [
    ['kubernetes.io/h2c', 'h2c'],
    ['kubernetes.io/grpc', 'h2c'],
    ['h2c', 'h2c'],
    ['grpc', 'h2c'],
    ['GRPC', 'h2c'],
    ['Kubernetes.io/H2C', 'h2c'],
    [undefined, 'http1'],
    [null, 'http1'],
    ['', 'http1'],
    ['http', 'http1'],
    ['HTTP', 'http1'],
    ['https', 'http1'],
    ['http2', 'http1'],
    ['kubernetes.io/ws', 'http1'],
    ['kubernetes.io/wss', 'http1'],
    ['grpc-web', 'http1'],
    ['example.com/grpc', 'http1'],
    [' grpc', 'http1'],
  ];
  for (const [value, expect] of cases) t.equal(appProtocolToTarget(value), expect, `appProtocol ${JSON.stringify(value)}`);
});

const h2cPorts = (appProtocol: string | undefined) => ({ ports: [{ name: 'metrics', port: 9090 }, { name: 'grpc', port: 50051, ...(appProtocol === undefined ? {} : { appProtocol }) }] });
const grpcSlice = (service: string, addresses: string[], name?: string) =>
  slice(service, [{ addresses, conditions: ready }], { ...(name === undefined ? {} : { name }), ports: [{ name: 'metrics', port: 9091 }, { name: 'grpc', port: 50052 }] });

t.test('appProtocol makes the targets of a Service h2c, in service mode', async (t) => {
  for (const [appProtocol, protocol] of [['kubernetes.io/h2c', 'h2c'], ['grpc', 'h2c'], ['h2c', 'h2c'], ['kubernetes.io/ws', undefined], ['http', undefined], [undefined, undefined]] as const) {
    const model = buildModel(
      [svc('greeter', 'greeter', undefined, { spec: h2cPorts(appProtocol) }), svc('greeter-f1', 'greeter', 'f1', { spec: h2cPorts(appProtocol) }), svc('web', 'web')],
      [grpcSlice('greeter', ['10.0.0.1'])],
      { targets: 'service', clusterDomain: 'cluster.local' },
    );
    const what = `appProtocol ${appProtocol ?? 'absent'}`;
    t.same(model.problems, [], what);
    const p = protocol === undefined ? {} : { protocol };
    t.same(model.input.services['greeter'], {
      base: [{ url: 'http://greeter.shop.svc.cluster.local:50051', ready: true, ...p }],
      features: { f1: [{ url: 'http://greeter-f1.shop.svc.cluster.local:50051', ready: false, ...p }] },
    }, what);
    const snapshot = buildSnapshot(model.input);
    const greeter = snapshot.services.get('greeter')!;
    t.equal(greeter.base.targets[0]!.protocol, protocol ?? 'http1', `${what}: base target in the snapshot`);
    t.equal(greeter.features.get('f1')!.targets[0]!.protocol, protocol ?? 'http1', `${what}: copy target in the snapshot`);
    t.equal(snapshot.services.get('web')!.base.targets[0]!.protocol, 'http1', `${what}: another Service is untouched`);
  }
});

t.test('appProtocol makes the targets of a Service h2c, in endpoints mode', async (t) => {
  const model = buildModel(
    [svc('greeter', 'greeter', undefined, { spec: h2cPorts('kubernetes.io/h2c') }), svc('greeter-f1', 'greeter', 'f1', { spec: h2cPorts('grpc') }), svc('greeter-f2', 'greeter', 'f2', { spec: h2cPorts('kubernetes.io/ws') }), svc('greeter-f3', 'greeter', 'f3', { spec: h2cPorts('h2c') })],
    [
      grpcSlice('greeter', ['10.0.0.1', '10.0.0.2']),
      grpcSlice('greeter', ['fd00::1'], 'greeter-v6'),
      grpcSlice('greeter-f1', ['10.0.1.1']),
      grpcSlice('greeter-f2', ['10.0.2.1']),
    ],
    { targets: 'endpoints', clusterDomain: 'cluster.local' },
  );
  t.same(model.problems, []);
  t.same(model.input.services['greeter'], {
    base: [
      { url: 'http://10.0.0.1:50052', ready: true, protocol: 'h2c' },
      { url: 'http://10.0.0.2:50052', ready: true, protocol: 'h2c' },
      { url: 'http://[fd00::1]:50052', ready: true, protocol: 'h2c' },
    ],
    features: {
      f1: [{ url: 'http://10.0.1.1:50052', ready: true, protocol: 'h2c' }],
      f2: [{ url: 'http://10.0.2.1:50052', ready: true }],
      f3: [{ url: 'http://greeter-f3.shop.svc.cluster.local:50051', ready: false, protocol: 'h2c' }],
    },
  }, 'every endpoint on the chosen port, and the stand-in of a Service with none, carry its protocol');
  const greeter = buildSnapshot(model.input).services.get('greeter')!;
  t.same(greeter.base.ready.map((x) => x.protocol), ['h2c', 'h2c', 'h2c']);
  t.same(greeter.features.get('f2')!.targets.map((x) => x.protocol), ['http1'], 'kubernetes.io/ws stays http1');
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
