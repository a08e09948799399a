import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, CoreV1Api, DiscoveryV1Api, KubeConfig, Watch, type V1Service } from '@kubernetes/client-node';
import { startFakeApiServer, type FakeApiServer } from '@devstack/kube-fake';
import { service } from './helpers.ts';

/**
 * @kubernetes/client-node 2 refuses an `http://` server unless its cluster has skipTLSVerify
 * ("HTTP protocol is not allowed when skipTLSVerify is not set or false"). Setting it on plain
 * http clusters after loading the kubeconfig is the way through; it changes nothing else, since
 * no TLS is involved on such a cluster.
 */
function allowPlainHttp(kc: KubeConfig): KubeConfig {
  const fixed = new KubeConfig();
  fixed.loadFromOptions({
    clusters: kc.clusters.map((c) => (c.server.startsWith('http:') ? { ...c, skipTLSVerify: true } : c)),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  return fixed;
}

async function setup(t: { teardown(fn: () => unknown): void }): Promise<{ api: FakeApiServer; kc: KubeConfig }> {
  const api = await startFakeApiServer();
  const dir = await mkdtemp(join(tmpdir(), 'kube-fake-'));
  t.teardown(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  const kc = new KubeConfig();
  kc.loadFromFile(await api.kubeconfig(join(dir, 'kubeconfig')));
  return { api, kc };
}

interface Seen {
  phase: string;
  object: { metadata?: { name?: string; resourceVersion?: string }; code?: number; reason?: string };
}

/** A client-node watch whose events and end the test awaits one by one. */
async function watch(kc: KubeConfig, path: string, query: Record<string, string | boolean>) {
  const events: Seen[] = [];
  const waiters: Array<() => void> = [];
  let ended: (error: unknown) => void = () => undefined;
  const done = new Promise<unknown>((resolve) => (ended = resolve));
  const controller = await new Watch(kc).watch(
    path,
    query,
    (phase, object) => {
      events.push({ phase, object });
      waiters.shift()?.();
    },
    (error) => ended(error),
  );
  return {
    done,
    abort: () => controller.abort(),
    async next(): Promise<Seen> {
      if (events.length === 0) await new Promise<void>((resolve) => waiters.push(resolve));
      return events.shift()!;
    },
  };
}

t.test('client-node 2 refuses a plain http kubeconfig as written, and works once told', async (t) => {
  const { api, kc } = await setup(t);
  t.equal(kc.getCurrentCluster()?.server, api.url);
  await t.rejects(kc.makeApiClient(CoreV1Api).listNamespacedService({ namespace: 'default' }), /HTTP protocol is not allowed when skipTLSVerify is not set/);
  const list = await allowPlainHttp(kc).makeApiClient(CoreV1Api).listNamespacedService({ namespace: 'default' });
  t.same(list.items, []);
  t.equal(list.metadata?.resourceVersion, api.resourceVersion);
});

t.test('list with selectors and paging, services and endpointslices', async (t) => {
  const { api, kc } = await setup(t);
  const core = allowPlainHttp(kc).makeApiClient(CoreV1Api);
  api.create(service('orders', { 'devstack.io/service': 'orders' }));
  api.create(service('orders-f1', { 'devstack.io/service': 'orders', 'devstack.io/feature': 'f1' }));
  api.create(service('other'));
  api.create({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'orders-abc', namespace: 'default', labels: { 'kubernetes.io/service-name': 'orders' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
    ports: [{ name: 'http', port: 8080 }],
  });
  const selected = await core.listServiceForAllNamespaces({ labelSelector: 'devstack.io/service=orders,!devstack.io/feature' });
  t.same(selected.items.map((s) => s.metadata?.name), ['orders']);
  t.equal(selected.items[0]?.spec?.ports?.[0]?.protocol, 'TCP');
  const page = await core.listNamespacedService({ namespace: 'default', limit: 2 });
  t.equal(page.items.length, 2);
  const rest = await core.listNamespacedService({ namespace: 'default', limit: 2, _continue: page.metadata!._continue! });
  t.same(rest.items.map((s) => s.metadata?.name), ['other']);
  const slices = await allowPlainHttp(kc).makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({ namespace: 'default', labelSelector: 'kubernetes.io/service-name=orders' });
  t.match(slices.items, [{ addressType: 'IPv4', endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }], ports: [{ port: 8080, protocol: 'TCP' }] }]);
});

t.test('watch from the list resourceVersion: changes, bookmarks, and the server closing it', async (t) => {
  const { api, kc } = await setup(t);
  const fixed = allowPlainHttp(kc);
  api.create(service('a'));
  const list = await fixed.makeApiClient(CoreV1Api).listNamespacedService({ namespace: 'default' });
  api.create(service('b'));
  const w = await watch(fixed, '/api/v1/namespaces/default/services', { resourceVersion: list.metadata!.resourceVersion!, allowWatchBookmarks: true });
  const added = await w.next();
  t.same([added.phase, added.object.metadata?.name], ['ADDED', 'b'], 'only what changed after the list');
  await api.waitForWatch();
  api.sendBookmarks();
  t.match(await w.next(), { phase: 'BOOKMARK', object: { metadata: { resourceVersion: api.resourceVersion } } });
  api.closeWatches();
  t.equal(await w.done, null, 'a clean end reaches done() without an error');
});

t.test('410: an ERROR event with the Status, or an HTTP 410 error', async (t) => {
  const { api, kc } = await setup(t);
  const fixed = allowPlainHttp(kc);
  const old = api.resourceVersion;
  api.create(service('a'));
  api.compact();
  const w = await watch(fixed, '/api/v1/services', { resourceVersion: old });
  t.match(await w.next(), { phase: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
  t.equal(await w.done, null);
  api.expiredWatch = 'status';
  const refused = await watch(fixed, '/api/v1/services', { resourceVersion: old });
  t.match(await refused.done, { statusCode: 410 });
});

t.test('409 Conflict on an update from a stale copy', async (t) => {
  const { api, kc } = await setup(t);
  const core = allowPlainHttp(kc).makeApiClient(CoreV1Api);
  const stale = (await core.readNamespacedService({ name: 'a', namespace: 'default' }).catch(() => undefined)) ?? (api.create(service('a')) as V1Service);
  api.patch({ apiVersion: 'v1', kind: 'Service', namespace: 'default', name: 'a' }, { metadata: { labels: { changed: 'yes' } } });
  const error = await core.replaceNamespacedService({ name: 'a', namespace: 'default', body: stale }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(error instanceof ApiException, 'an ApiException');
  t.equal((error as ApiException<unknown>).code, 409);
  const body = (error as ApiException<unknown>).body;
  t.match(typeof body === 'string' ? JSON.parse(body) : body, { kind: 'Status', reason: 'Conflict', code: 409 });
  const fresh = await core.readNamespacedService({ name: 'a', namespace: 'default' });
  fresh.metadata!.labels = { ...fresh.metadata!.labels, second: 'write' };
  const ok = await core.replaceNamespacedService({ name: 'a', namespace: 'default', body: fresh });
  t.same(ok.metadata?.labels, { changed: 'yes', second: 'write' });
});
