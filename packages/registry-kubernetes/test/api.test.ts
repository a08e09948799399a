/*
 * The Kubernetes source through its public API against a protocol-faithful API server on loopback
 * (@devstack/kube-fake), with @kubernetes/client-node doing the requests, as in a cluster.
 */
import t from 'tap';
import { startFakeApiServer, type FakeApiServer } from '@devstack/kube-fake';
import { KubernetesSource, createKubernetesSource, kubeTransport, loadKubeConfig } from '@devstack/registry-kubernetes';
import { resolve, type Snapshot } from '@devstack/core';

function service(name: string, svc: string, key?: string) {
  const labels: Record<string, string> = { 'devstack.io/service': svc };
  if (key !== undefined) labels['devstack.io/feature'] = key;
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop', labels }, spec: { ports: [{ name: 'http', port: 80 }] } };
}

function slice(svc: string, ip: string, ready = true) {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${svc}-abc`, namespace: 'shop', labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [ip], conditions: { ready } }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

const sliceRef = (svc: string) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', name: `${svc}-abc`, namespace: 'shop' });

async function fleet(t: Tap): Promise<{ api: FakeApiServer; kubeconfig: string }> {
  const api = await startFakeApiServer({ namespaces: ['shop', 'other'] });
  t.teardown(() => api.close());
  api.create(service('orders', 'orders'));
  api.create(slice('orders', '10.0.0.1'));
  api.create(service('orders-f1', 'orders', 'f1'));
  api.create(slice('orders-f1', '10.0.0.2'));
  api.create({ ...service('unrelated', 'x'), metadata: { name: 'unrelated', namespace: 'shop' } });
  api.create({ ...service('elsewhere', 'elsewhere'), metadata: { ...service('elsewhere', 'elsewhere').metadata, namespace: 'other' } });
  return { api, kubeconfig: await api.kubeconfig(`${t.testdir()}/kubeconfig`) };
}

interface Tap {
  teardown(fn: () => unknown): void;
  testdir(): string;
}

/** The next snapshot for which `ok` holds (bounded: a missing change fails the test, not hangs it). */
function until(source: KubernetesSource, ok: (s: Snapshot) => boolean): Promise<Snapshot> {
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

const featureReady = (key: string) => (s: Snapshot) => (s.services.get('orders')?.features.get(key)?.ready.length ?? 0) > 0;

function open(kubeconfig: string, options: { idle?: number; namespaces?: string[] } = {}): KubernetesSource {
  const kc = loadKubeConfig({ kubeconfig });
  return new KubernetesSource({
    namespaces: options.namespaces ?? ['shop'],
    targets: 'endpoints',
    watchIdleTimeoutMs: options.idle ?? 60_000,
    backoff: { initialMs: 20, maxMs: 100 },
    transport: (kind, ns, selector) => kubeTransport(kc, kind, ns, selector),
  });
}

t.test('first full sync, then changes as they are watched; plain-http kubeconfig as written', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  const source = createKubernetesSource({ kubeconfig, namespaces: ['shop'], targets: 'endpoints' });
  t.teardown(() => source.close());
  const first = await source.start();
  t.same([...first.services.keys()], ['orders'], 'only labelled Services, only the watched namespace');
  t.same(first.services.get('orders')!.features.get('f1')!.ready.map((x) => x.origin), ['http://10.0.0.2:8080']);
  t.equal(source.status().synced, true);
  t.match(source.status().resourceVersions, { 'services/shop': /^\d+$/, 'endpointslices/shop': /^\d+$/ });
  await api.waitForWatch((w) => w.kind === 'Service');
  await api.waitForWatch((w) => w.kind === 'EndpointSlice');
  const watches = api.watches.filter((w) => w.allowWatchBookmarks);
  t.equal(watches.length, 2, 'both watches ask for bookmarks');
  t.ok(watches.every((w) => (w.timeoutSeconds ?? 0) >= 300 && (w.timeoutSeconds ?? 0) < 600), 'with a 5-10 minute timeout');
  api.create(service('orders-f2', 'orders', 'f2'));
  api.create(slice('orders-f2', '10.0.0.3'));
  await until(source, featureReady('f2'));
  api.patch(sliceRef('orders-f2'), { endpoints: [{ addresses: ['10.0.0.3'], conditions: { ready: false } }] });
  const unready = await until(source, (s) => !featureReady('f2')(s) && s.services.get('orders')!.features.has('f2'));
  t.equal(unready.services.get('orders')!.features.get('f2')!.ready.length, 0, 'a copy turning unready');
  api.delete({ apiVersion: 'v1', kind: 'Service', name: 'orders-f2', namespace: 'shop' });
  await until(source, (s) => !s.services.get('orders')!.features.has('f2'));
  t.pass('a deleted copy is gone');
});

t.test('a watch closed by the server resumes: nothing lost, nothing twice', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  const source = open(kubeconfig);
  t.teardown(() => source.close());
  await source.start();
  const before = source.status().resourceVersions;
  api.closeWatches();
  api.create(service('orders-f3', 'orders', 'f3'));
  api.create(slice('orders-f3', '10.0.0.4'));
  await until(source, featureReady('f3'));
  const lists = api.requests.filter((r) => !r.watch && r.path.endsWith('/services'));
  t.equal(lists.length, 1, 'resumed from the last resourceVersion, no relist');
  t.not(source.status().resourceVersions['services/shop'], before['services/shop']);
});

t.test('410 Gone relists, and what vanished meanwhile is removed', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  const source = open(kubeconfig);
  t.teardown(() => source.close());
  await source.start();
  await api.waitForWatch((w) => w.kind === 'Service');
  await api.stop();
  api.delete({ apiVersion: 'v1', kind: 'Service', name: 'orders-f1', namespace: 'shop' });
  api.create(service('orders-f4', 'orders', 'f4'));
  api.create(slice('orders-f4', '10.0.0.5'));
  api.compact();
  await api.restart();
  const after = await until(source, (s) => featureReady('f4')(s) && !s.services.get('orders')!.features.has('f1'));
  t.ok(after.services.get('orders')!.features.has('f4'));
  const lists = api.requests.filter((r) => !r.watch && r.path.endsWith('/services'));
  t.ok(lists.length >= 2, 'relisted');
});

t.test('errors back off and recover with nobody\'s help; the last snapshot serves meanwhile', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  const source = open(kubeconfig);
  t.teardown(() => source.close());
  const errors: string[] = [];
  source.onError((e) => errors.push(e.message));
  const first = await source.start();
  await api.waitForWatch((w) => w.kind === 'Service');
  api.failNext(4, 503);
  api.closeWatches({ abrupt: true });
  t.equal(source.current(), first, 'routing goes on from the last snapshot');
  api.create(service('orders-f5', 'orders', 'f5'));
  api.create(slice('orders-f5', '10.0.0.6'));
  await until(source, featureReady('f5'));
  t.ok(errors.length >= 1, 'the failure was reported');
  t.ok(source.status().failures >= 1, 'and counted');
  t.equal(source.status().stale, false, 'fresh again');
});

t.test('a silent watch is dropped and restarted by the watchdog', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  const source = open(kubeconfig, { idle: 300 });
  t.teardown(() => source.close());
  await source.start();
  await api.waitForWatch((w) => w.kind === 'Service');
  api.hangWatches();
  api.create(service('orders-f6', 'orders', 'f6'));
  api.create(slice('orders-f6', '10.0.0.7'));
  await until(source, featureReady('f6'));
  t.pass('the change made while the watch was silent arrived through a new watch');
});

t.test('the API server away at start: start() waits for the first sync', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  await api.stop();
  const source = open(kubeconfig);
  t.teardown(() => source.close());
  let started = false;
  const start = source.start().then(() => (started = true));
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.equal(started, false, 'not synced while unreachable');
  t.equal(source.status().synced, false);
  await api.restart();
  await start;
  t.equal(source.status().synced, true);
});

t.test('all namespaces: one cluster-wide watch per kind', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  const source = createKubernetesSource({ kubeconfig, allNamespaces: true, targets: 'service' });
  t.teardown(() => source.close());
  const first = await source.start();
  t.same([...first.services.keys()].sort(), ['elsewhere', 'orders'], 'labelled Services of every namespace');
  t.equal(first.services.get('elsewhere')!.base.targets[0]!.origin, 'http://elsewhere.other.svc.cluster.local', 'service targets carry their namespace');
  await api.waitForWatch((w) => w.kind === 'Service');
  await api.waitForWatch((w) => w.kind === 'EndpointSlice');
  const paths = api.requests.filter((r) => r.watch).map((r) => r.path).sort();
  t.same(paths, ['/api/v1/services', '/apis/discovery.k8s.io/v1/endpointslices'], 'cluster-wide paths');
  t.equal(source.status().namespaces, 'all');
});

t.test('devstack.io/stack-on on a copy\'s Services stacks its key, followed as it is edited', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  const stacked = (name: string, svc: string, key: string, parent: string) => {
    const o = service(name, svc, key);
    return { ...o, metadata: { ...o.metadata, annotations: { 'devstack.io/stack-on': parent, 'unrelated.io/x': 'y' } } };
  };
  api.create(service('web', 'web'));
  api.create(slice('web', '10.0.1.1'));
  api.create(stacked('web-f2', 'web', 'f2', 'f1'));
  api.create(slice('web-f2', '10.0.1.2'));
  const source = open(kubeconfig);
  t.teardown(() => source.close());
  const first = await source.start();
  t.same(Object.fromEntries(first.stacks), { f2: 'f1' });
  t.same([resolve(first, 'web', 'f2').lane?.name, resolve(first, 'orders', 'f2').lane?.name], ['f2', 'f1'], 'f2 has no orders copy: f1\'s serves');
  t.equal(resolve(first, 'orders', 'f2').reason, 'stacked');
  api.patch({ apiVersion: 'v1', kind: 'Service', name: 'web-f2', namespace: 'shop' }, { metadata: { annotations: { 'devstack.io/stack-on': null } } });
  const unstacked = await until(source, (s) => s.stacks.size === 0);
  t.same([resolve(unstacked, 'orders', 'f2').reason, resolve(unstacked, 'orders', 'f2').lane?.name], ['no-copy', 'base'], 'the annotation removed: base again');
});
