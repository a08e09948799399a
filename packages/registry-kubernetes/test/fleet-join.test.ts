/*
 * The fleet's incremental join of Services and EndpointSlices against a rebuild from scratch: any
 * order of changes (a slice before its Service, a Service relabelled or deleted under its slices,
 * a slice moving to another Service), built at any points in between, ends in the snapshot a
 * relist would give.
 */
import t from 'tap';
import { snapshotToJSON, type Snapshot } from '@devstack/core';
import { Fleet, type EndpointSliceObject, type ServiceObject } from '@devstack/registry-kubernetes';

const options = { targets: 'endpoints' as const, clusterDomain: 'cluster.local' };
const NAMES = ['web', 'orders', 'orders-f1', 'orders-f2', 'pay', 'pay-f1'];
const LOGICAL = ['web', 'orders', 'pay'];

function svc(name: string, logical: string, key: string | undefined): ServiceObject {
  const labels: Record<string, string> = { 'devstack.io/service': logical };
  if (key !== undefined) labels['devstack.io/feature'] = key;
  return { metadata: { name, namespace: 'ns', labels, creationTimestamp: '2026-01-01T00:00:00Z' }, spec: { ports: [{ name: 'http', port: 80 }] } };
}

function slice(name: string, owner: string, ip: string, ready: boolean): EndpointSliceObject {
  return {
    metadata: { name, namespace: 'ns', labels: { 'kubernetes.io/service-name': owner } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [ip], conditions: { ready } }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

/** A seeded generator (mulberry32): the same sequences on every run. */
function generator(seed: number): (n: number) => number {
  let s = seed;
  return (n) => {
    s = (s + 0x6d2b79f5) | 0;
    let x = Math.imul(s ^ (s >>> 15), 1 | s);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) % n;
  };
}

/** A snapshot's routing, without the order of services and targets (which follows arrival). */
const routing = (s: Snapshot) =>
  JSON.stringify({ ...snapshotToJSON(s), version: 0, createdAt: 0 }, (_k, v: unknown) =>
    Array.isArray(v) ? [...v].map((x) => JSON.stringify(x)).sort().map((x) => JSON.parse(x) as unknown) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );

t.test('incremental changes end where a rebuild from the same objects does', async (t) => {
  const rnd = generator(1);
  const differ: string[] = [];
  let routed = 0;
  for (let trial = 0; trial < 500; trial++) {
    const fleet = new Fleet(options);
    const services = new Map<string, ServiceObject>();
    const slices = new Map<string, EndpointSliceObject>();
    let snapshot = fleet.build(undefined, { version: 1 }).snapshot;
    for (let step = 0; step < 40; step++) {
      const remove = rnd(4) === 0;
      if (rnd(2) === 0) {
        const name = NAMES[rnd(NAMES.length)]!;
        const previous = services.get(name);
        const object = remove ? undefined : svc(name, LOGICAL[rnd(LOGICAL.length)]!, rnd(2) === 0 ? undefined : ['f1', 'f2'][rnd(2)]);
        if (object === undefined) services.delete(name);
        else services.set(name, object);
        if (previous !== undefined || object !== undefined) fleet.service({ full: false, object, previous });
      } else {
        const name = `s${rnd(8)}`;
        const previous = slices.get(name);
        const object = remove ? undefined : slice(name, NAMES[rnd(NAMES.length)]!, `10.0.0.${rnd(5)}`, rnd(3) !== 0);
        if (object === undefined) slices.delete(name);
        else slices.set(name, object);
        if (previous !== undefined || object !== undefined) fleet.slice({ full: false, object, previous });
      }
      if (rnd(3) === 0) snapshot = fleet.build(snapshot, { version: step + 2 }).snapshot;
    }
    snapshot = fleet.build(snapshot, { version: 99 }).snapshot;
    const rebuilt = new Fleet(options);
    rebuilt.reset(services.values(), slices.values());
    const want = routing(rebuilt.build(undefined, { version: 99 }).snapshot);
    if (want.includes('10.0.0.')) routed++;
    if (routing(snapshot) !== want) differ.push(`trial ${trial}`);
  }
  t.same(differ, [], 'no sequence of changes leaves the fleet behind its objects');
  t.ok(routed > 250, 'most sequences end with pod targets routed (the check is not vacuous)');
});
