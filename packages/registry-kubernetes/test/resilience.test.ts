/*
 * The Kubernetes source against a protocol-faithful API server on loopback (@devstack/kube-fake)
 * that misbehaves: 410 storms at 10 000 Services and EndpointSlices, lists that are never
 * answered, silent watches, objects no real API server would accept. The source's clock is fake,
 * so timeouts and backoff move only when the test says; the HTTP traffic is real.
 */
import t from 'tap';
import { startFakeApiServer, type FakeApiServer, type KubeObject } from '@devstack/kube-fake';
import { KubernetesSource, kubeTransport, loadKubeConfig } from '@devstack/registry-kubernetes';
import { RegistryValidationError, type Snapshot } from '@devstack/core';
import { FakeClock } from './fakes.ts';

const NS = 'shop';

function service(name: string, svc: string, key?: string): KubeObject {
  const labels: Record<string, string> = { 'devstack.io/service': svc };
  if (key !== undefined) labels['devstack.io/feature'] = key;
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS, labels }, spec: { ports: [{ name: 'http', port: 80 }] } };
}

function slice(owner: string, ip: string, name = `${owner}-abc`): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: NS, labels: { 'kubernetes.io/service-name': owner } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [ip], conditions: { ready: true } }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

interface Tap {
  teardown(fn: () => unknown): void;
  testdir(): string;
}

async function server(t: Tap, seed: (api: FakeApiServer) => void): Promise<{ api: FakeApiServer; kubeconfig: string }> {
  const api = await startFakeApiServer({ namespaces: [NS] });
  t.teardown(() => api.close());
  seed(api);
  return { api, kubeconfig: await api.kubeconfig(`${t.testdir()}/kubeconfig`) };
}

function open(t: Tap, kubeconfig: string, clock?: FakeClock): KubernetesSource {
  const kc = loadKubeConfig({ kubeconfig });
  const source = new KubernetesSource({
    namespaces: [NS],
    targets: 'endpoints',
    ...(clock === undefined ? { backoff: { initialMs: 20, maxMs: 100 } } : { clock, random: () => 0.5 }),
    transport: (kind, ns, selector) => kubeTransport(kc, kind, ns, selector),
  });
  t.teardown(() => source.close());
  return source;
}

/** Real I/O finishing while the fake clock stands still: polled, bounded. */
async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (ok()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`never happened: ${what}`);
}

function snapshotWhere(source: KubernetesSource, ok: (s: Snapshot) => boolean): Promise<Snapshot> {
  const now = source.current();
  if (now !== undefined && ok(now)) return Promise.resolve(now);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (off(), reject(new Error('the expected snapshot never came'))), 10_000);
    const off = source.subscribe((s) => {
      if (!ok(s)) return;
      clearTimeout(timer);
      off();
      resolve(s);
    });
  });
}

const ready = (s: Snapshot, service: string, key?: string) => ((key === undefined ? s.services.get(service)?.base : s.services.get(service)?.features.get(key))?.ready.length ?? 0) > 0;

t.test('10 000 Services and EndpointSlices through a storm of 410s: one relist per 410, backing off, counted, stale, and the snapshot stays right', async (t) => {
  const N = 10_000;
  const { api, kubeconfig } = await server(t, (api) => {
    for (let i = 0; i < N; i++) {
      api.create(service(`svc-${i}`, `svc-${i}`));
      api.create(slice(`svc-${i}`, `10.1.${i >> 8}.${i & 255}`));
    }
  });
  // Relists: first pages (no continue token) of either kind.
  let relists = 0;
  let pages = 0;
  api.on('request', (r: { watch: boolean; query: Record<string, string> }) => {
    if (r.watch) return;
    pages++;
    if (r.query['continue'] === undefined) relists++;
  });
  api.failNext(Infinity, 'gone', { match: (r) => r.watch });
  const clock = new FakeClock();
  const source = open(t, kubeconfig, clock);
  const reports: Error[] = [];
  source.onError((e) => reports.push(e));
  const first = await source.start();
  t.equal(first.services.size, N, 'every Service routed');
  t.ok(pages >= 2 * (N / 500), 'read in pages of 500');
  // Each watch is answered 410: a relist at once, then the next 410 waits out a backoff.
  await until('both kinds wait out a backoff', () => source.status().failuresByReason.gone === 4);
  t.equal(relists, 4, 'the first 410 relisted at once, the second did not');
  t.equal(source.status().stale, true, 'stale while 410s keep coming');
  t.equal(source.status().failures, 4, 'every 410 counted');
  t.same(clock.pending(), [600, 600], 'both wait out the first backoff step');
  // Changes meanwhile arrive with the next relist.
  api.delete({ apiVersion: 'v1', kind: 'Service', name: 'svc-0', namespace: NS });
  api.create(service('svc-1-f1', 'svc-1', 'f1'));
  api.create(slice('svc-1-f1', '10.9.0.1'));
  let failures = 4;
  const waits: number[] = [];
  for (let round = 0; round < 5; round++) {
    const wait = Math.max(...clock.pending());
    waits.push(wait);
    await clock.advance(wait);
    failures += 2;
    await until(`round ${round} of the storm`, () => source.status().failures === failures);
  }
  t.same(waits, [600, 1200, 2400, 4800, 9600], 'the backoff grows with every 410');
  t.equal(relists, 4 + 2 * 5, 'one relist per kind per backoff step, never more');
  await clock.advance(5);
  const during = source.current()!;
  t.equal(during.services.size, N - 1, 'a Service deleted during the storm is gone');
  t.ok(ready(during, 'svc-1', 'f1'), 'a copy created during the storm is routed');
  t.ok(ready(during, 'svc-9999'), 'the others still are');
  t.equal(source.status().stale, true);
  t.equal(reports.filter((e) => (e as { code?: string }).code === 'DEVSTACK_REGISTRY_UNREACHABLE').length, 2, 'reported once per watch, not once per 410');
  // The storm ends: the next relist is followed by a watch that holds.
  api.clearFaults();
  await clock.advance(Math.max(...clock.pending()));
  await until('a watch that holds', () => api.watches.length === 2 && !source.status().stale);
  t.equal(source.status().failuresByReason.gone, failures, 'all of them 410s');
});

t.test('a list that is never answered, at start: abandoned after the request timeout, counted, stale, retried; readiness follows', async (t) => {
  const { api, kubeconfig } = await server(t, (api) => {
    api.create(service('orders', 'orders'));
    api.create(slice('orders', '10.0.0.1'));
  });
  api.failNext(1, 'hang', { match: (r) => !r.watch && r.path.endsWith('/services') });
  const clock = new FakeClock();
  const source = open(t, kubeconfig, clock);
  let started = false;
  const start = source.start().then((s) => ((started = true), s));
  await until('the list is held', () => api.heldRequests === 1);
  t.equal(source.status().synced, false);
  await clock.advance(30_000);
  await until('the timeout is counted', () => source.status().failuresByReason['list-timeout'] === 1);
  t.equal(source.status().stale, true, 'stale, not silently waiting');
  t.equal(started, false);
  await clock.advance(600);
  const first = await start;
  t.ok(ready(first, 'orders'), 'the retried list synced');
  t.equal(source.status().synced, true);
  t.equal(source.status().stale, false);
});

t.test('a list that is never answered, after a relist: stale and counted while it hangs, then retried, and routing follows the changes', async (t) => {
  const { api, kubeconfig } = await server(t, (api) => {
    api.create(service('orders', 'orders'));
    api.create(slice('orders', '10.0.0.1'));
  });
  const clock = new FakeClock();
  const source = open(t, kubeconfig, clock);
  await source.start();
  await until('watching', () => api.watches.length === 2);
  api.failNext(1, 'gone', { match: (r) => r.watch && r.path.endsWith('/services') });
  api.failNext(1, 'hang', { match: (r) => !r.watch && r.path.endsWith('/services') });
  api.create(service('orders-f1', 'orders', 'f1'));
  api.create(slice('orders-f1', '10.0.0.2'));
  // A healthy watch, then ended by the server: resumed, answered 410, relisted, and the list hangs.
  await clock.advance(2000);
  api.closeWatches();
  await until('the relist is held', () => api.heldRequests === 1);
  t.equal(source.status().stale, true, 'stale while the relist is not answered');
  await clock.advance(30_000);
  await until('the timeout is counted', () => source.status().failuresByReason['list-timeout'] === 1);
  t.equal(source.status().stale, true);
  await clock.advance(600);
  await until('current again', () => !source.status().stale && source.current() !== undefined && ready(source.current()!, 'orders', 'f1'));
  await clock.advance(5);
  t.ok(ready(source.current()!, 'orders', 'f1'), 'the copy created meanwhile is routed');
});

t.test('a silent watch: stale and counted when the watchdog restarts it, until the new watch sends something', async (t) => {
  const { api, kubeconfig } = await server(t, (api) => {
    api.create(service('orders', 'orders'));
    api.create(slice('orders', '10.0.0.1'));
  });
  const clock = new FakeClock();
  const source = open(t, kubeconfig, clock);
  const reports: string[] = [];
  source.onError((e) => reports.push(e.message));
  let opened = 0;
  api.on('watch', () => opened++);
  await source.start();
  await until('watching', () => opened === 2);
  api.hangWatches({ newWatches: true });
  await clock.advance(90_000);
  await until('both restarted', () => source.status().failuresByReason.idle === 2);
  t.equal(source.status().stale, true, 'stale: nothing proves the data current');
  t.match(reports.join('\n'), /watch of services in shop sent nothing for 90000 ms; restarted/, 'reported');
  await until('watching again', () => opened === 4);
  t.equal(source.status().stale, true, 'a new watch that sends nothing proves nothing');
  api.unhangWatches();
  await clock.advance(90_000);
  await until('restarted again', () => source.status().failuresByReason.idle === 4 && opened === 6);
  t.equal(source.status().stale, true, 'still nothing from the server');
  api.sendBookmarks();
  await until('current again', () => !source.status().stale);
  t.pass('a bookmark on the new watches made the source current');
});

const badService = (patch: Record<string, unknown>, name = 'orders-p1'): KubeObject => ({ ...service(name, 'orders', 'p1'), ...patch });
const badSlice = (patch: Record<string, unknown>): KubeObject => ({ ...slice('orders-f1', '10.0.0.9', 'orders-f1-bad'), ...patch });
const port = (value: unknown) => badService({ spec: { ports: [{ name: 'http', port: value }] } });

const POISON: Record<string, KubeObject> = {
  'a Service with spec.ports "80"': badService({ spec: { ports: '80' } }),
  'a Service with spec.ports {}': badService({ spec: { ports: {} } }),
  'a Service with port 99999': port(99999),
  'a Service with port 80.5': port(80.5),
  'a Service with port -1': port(-1),
  'a Service whose name has a space': badService({}, 'orders p1'),
  'a slice with endpoints {}': badSlice({ endpoints: {} }),
  'a slice with a null address': badSlice({ endpoints: [{ addresses: [null] }] }),
  'a slice with a malformed address': badSlice({ endpoints: [{ addresses: ['10.0.0.300'] }] }),
  'a slice with ports "http"': badSlice({ ports: 'http' }),
};

for (const [what, poison] of Object.entries(POISON)) {
  t.test(`${what}: reported and skipped, at start and later; the rest routes on`, async (t) => {
    const { api, kubeconfig } = await server(t, (api) => {
      api.create(service('orders', 'orders'));
      api.create(slice('orders', '10.0.0.1'));
      api.create(service('orders-f1', 'orders', 'f1'));
      api.create(slice('orders-f1', '10.0.0.2'));
      api.poison(poison);
    });
    const source = open(t, kubeconfig);
    const problems: string[] = [];
    source.onError((e) => {
      if (e instanceof RegistryValidationError) problems.push(...e.problems);
    });
    const first = await source.start();
    t.ok(ready(first, 'orders') && ready(first, 'orders', 'f1'), 'started, with everything else routed');
    t.notOk(first.services.get('orders')!.features.has('p1'), 'not the unusable copy');
    t.equal(source.status().unusableObjects, 1, 'counted');
    await until('reported', () => problems.some((p) => p.includes(poison.metadata!.name!) && p.endsWith('skipped')));
    // Later: a second copy of it while the fleet changes around it.
    const later = structuredClone(poison);
    later.metadata!.name = `${later.metadata!.name}-later`;
    api.poison(later);
    api.create(service('orders-f2', 'orders', 'f2'));
    api.create(slice('orders-f2', '10.0.0.3'));
    const next = await snapshotWhere(source, (s) => ready(s, 'orders', 'f2'));
    t.ok(ready(next, 'orders', 'f1'), 'an unrelated new copy is routed, the others stay');
    await until('the later one counted', () => source.status().unusableObjects === 2);
    // Fixed or deleted: no longer counted.
    api.delete({ apiVersion: poison.apiVersion!, kind: poison.kind!, name: later.metadata!.name!, namespace: NS });
    await until('the deleted one forgotten', () => source.status().unusableObjects === 1);
  });
}
