import t from 'tap';
import { snapshotToJSON } from '@devstack/core';
import { Fleet, type EndpointSliceObject, type ServiceObject } from '@devstack/registry-kubernetes';

const options = { targets: 'endpoints' as const, clusterDomain: 'cluster.local' };

function svc(name: string, logical: string, key?: string): ServiceObject {
  const labels: Record<string, string> = { 'devstack.io/service': logical };
  if (key !== undefined) labels['devstack.io/feature'] = key;
  return { metadata: { name, namespace: 'ns', labels, creationTimestamp: `2026-01-01T00:00:0${name.length % 10}Z` }, spec: { ports: [{ name: 'http', port: 80 }] } };
}

function slice(owner: string, ip: string, ready: boolean): EndpointSliceObject {
  return {
    metadata: { name: `${owner}-s`, namespace: 'ns', labels: { 'kubernetes.io/service-name': owner } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [ip], conditions: { ready } }],
    ports: [{ name: 'http', port: 8080 }],
  };
}

const view = (s: ReturnType<Fleet['build']>) => {
  const json = snapshotToJSON(s.snapshot) as { services: unknown };
  return { services: json.services, keys: [...s.snapshot.keys].sort(), problems: s.problems };
};

t.test('a stream of watch events: the incremental snapshot always equals a full rebuild', async (t) => {
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >>> 8) % n;
  const services = new Map<string, ServiceObject>();
  const slices = new Map<string, EndpointSliceObject>();
  const fleet = new Fleet(options);
  fleet.reset([], []);
  let incremental = fleet.build(undefined, { version: 1 });
  for (let step = 0; step < 400; step++) {
    const logical = `s${rand(4)}`;
    const key = rand(3) === 0 ? undefined : `k${rand(3)}`;
    const name = key === undefined ? logical : `${logical}-${key}`;
    const op = rand(6);
    if (op < 2) {
      // A Service added, or relabelled (a copy moving to another logical service or key).
      const object = rand(5) === 0 ? svc(name, `s${rand(4)}`, `k${rand(3)}`) : svc(name, logical, key);
      const previous = services.get(`ns/${name}`);
      services.set(`ns/${name}`, object);
      fleet.service({ full: false, object, previous });
    } else if (op === 2) {
      const previous = services.get(`ns/${name}`);
      if (previous === undefined) continue;
      services.delete(`ns/${name}`);
      fleet.service({ full: false, object: undefined, previous });
    } else if (op < 5) {
      const object = slice(name, `10.0.${rand(3)}.${rand(3)}`, rand(3) !== 0);
      const previous = slices.get(`ns/${name}-s`);
      slices.set(`ns/${name}-s`, object);
      fleet.slice({ full: false, object, previous });
    } else {
      const previous = slices.get(`ns/${name}-s`);
      if (previous === undefined) continue;
      slices.delete(`ns/${name}-s`);
      fleet.slice({ full: false, object: undefined, previous });
    }
    incremental = fleet.build(incremental.snapshot, { version: step + 2 });
    const full = new Fleet(options);
    full.reset(services.values(), slices.values());
    const expected = full.build(undefined, { version: step + 2 });
    t.same(view(incremental), view(expected), `step ${step}`, { diagnostic: false });
  }
  t.ok(incremental.snapshot.services.size > 0, 'the fleet was not empty at the end');
});

t.test('an untouched service keeps its snapshot entry across a change elsewhere', async (t) => {
  const fleet = new Fleet(options);
  fleet.reset([svc('a', 'a'), svc('b', 'b')], [slice('a', '10.0.0.1', true), slice('b', '10.0.0.2', true)]);
  const first = fleet.build(undefined, { version: 1 });
  fleet.slice({ full: false, object: slice('b', '10.0.0.3', true), previous: slice('b', '10.0.0.2', true) });
  t.equal(fleet.pending, true);
  const second = fleet.build(first.snapshot, { version: 2 });
  t.equal(second.snapshot.services.get('a'), first.snapshot.services.get('a'), 'a was not rebuilt');
  t.not(second.snapshot.services.get('b'), first.snapshot.services.get('b'), 'b was');
  t.equal(fleet.pending, false, 'nothing left to build');
});

t.test('incremental builds follow a Service port\'s appProtocol and keep it across other changes', async (t) => {
  const h2c = (name: string, logical: string, appProtocol: string | undefined, key?: string): ServiceObject => {
    const object = svc(name, logical, key);
    object.spec = { ports: [{ name: 'http', port: 80, ...(appProtocol === undefined ? {} : { appProtocol }) }] };
    return object;
  };
  const protocols = (s: ReturnType<Fleet['build']>, name: string) => {
    const entry = s.snapshot.services.get(name)!;
    return [...entry.base.targets, ...[...entry.features.values()].flatMap((l) => l.targets)].map((x) => x.protocol);
  };
  const fleet = new Fleet(options);
  fleet.reset([h2c('greeter', 'greeter', 'kubernetes.io/h2c'), svc('web', 'web')], [slice('greeter', '10.0.0.1', true), slice('web', '10.0.0.2', true)]);
  const first = fleet.build(undefined, { version: 1 });
  t.same(protocols(first, 'greeter'), ['h2c']);
  t.same(protocols(first, 'web'), ['http1']);

  fleet.slice({ full: false, object: slice('web', '10.0.0.3', true), previous: slice('web', '10.0.0.2', true) });
  const second = fleet.build(first.snapshot, { version: 2 });
  t.equal(second.snapshot.services.get('greeter'), first.snapshot.services.get('greeter'), 'the h2c service was not rebuilt');
  t.same(protocols(second, 'greeter'), ['h2c']);

  fleet.slice({ full: false, object: slice('greeter', '10.0.0.4', true), previous: slice('greeter', '10.0.0.1', true) });
  fleet.service({ full: false, object: h2c('greeter-f1', 'greeter', 'grpc', 'f1'), previous: undefined });
  const third = fleet.build(second.snapshot, { version: 3 });
  t.same(protocols(third, 'greeter'), ['h2c', 'h2c'], 'rebuilt from new endpoints and a new copy, still h2c');

  fleet.service({ full: false, object: h2c('web', 'web', 'kubernetes.io/h2c'), previous: svc('web', 'web') });
  fleet.service({ full: false, object: h2c('greeter', 'greeter', undefined), previous: h2c('greeter', 'greeter', 'kubernetes.io/h2c') });
  const fourth = fleet.build(third.snapshot, { version: 4 });
  t.same(protocols(fourth, 'web'), ['h2c'], 'appProtocol set on a watched Service');
  t.same(protocols(fourth, 'greeter'), ['http1', 'h2c'], 'appProtocol removed from base, the copy keeps its own');
});
