import t from 'tap';
import { startFakeApiServer, type FakeApiServer, type FakeApiServerOptions } from '@devstack/kube-fake';
import { openWatch, service, summary, take } from './helpers.ts';

async function start(t: { teardown(fn: () => unknown): void }, options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const api = await startFakeApiServer(options);
  t.teardown(() => api.close());
  return api;
}

const SERVICES = '/api/v1/namespaces/default/services';
const ref = (name: string) => ({ apiVersion: 'v1', kind: 'Service', namespace: 'default', name });

t.test('no resourceVersion (or "0") starts with ADDED for the current state, then live events', async (t) => {
  const api = await start(t);
  api.create(service('a'));
  api.create(service('b'));
  for (const query of [{}, { resourceVersion: '0' }] as Array<Record<string, string>>) {
    const watch = await openWatch(api, SERVICES, query);
    t.equal(watch.status, 200);
    t.equal(watch.headers['content-type'], 'application/json');
    t.equal(watch.headers['transfer-encoding'], 'chunked');
    t.same(summary(await take(watch, 2)), ['ADDED a', 'ADDED b']);
    watch.close();
  }
  const watch = await openWatch(api, SERVICES);
  await take(watch, 2);
  api.patch(ref('a'), { metadata: { labels: { x: '1' } } });
  api.delete(ref('b'));
  const [modified, deleted] = await take(watch, 2);
  t.match(modified, { type: 'MODIFIED', object: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'a', labels: { x: '1' } } } });
  t.match(deleted, { type: 'DELETED', object: { kind: 'Service', metadata: { name: 'b', resourceVersion: api.resourceVersion } } });
});

t.test('from a resourceVersion: exactly the changes after it, in order', async (t) => {
  const api = await start(t);
  api.create(service('a'));
  const from = api.resourceVersion;
  api.create(service('b'));
  api.patch(ref('a'), { metadata: { labels: { x: '1' } } });
  api.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'other-kind', namespace: 'default' } });
  api.delete(ref('b'));
  const watch = await openWatch(api, SERVICES, { resourceVersion: from });
  const events = await take(watch, 3);
  t.same(summary(events), ['ADDED b', 'MODIFIED a', 'DELETED b']);
  const versions = events.map((e) => Number(e.object.metadata!.resourceVersion));
  t.ok(versions.every((v, i) => i === 0 || v > versions[i - 1]!), 'versions only grow');
  api.create(service('c'));
  t.same(summary([await watch.next()]), ['ADDED c']);
});

t.test('namespaced and cluster-wide watches', async (t) => {
  const api = await start(t, { namespaces: ['team-a'] });
  const all = await openWatch(api, '/api/v1/services', { resourceVersion: api.resourceVersion });
  const teamA = await openWatch(api, '/api/v1/namespaces/team-a/services', { resourceVersion: api.resourceVersion });
  api.create(service('d'));
  api.create(service('a', {}, 'team-a'));
  t.same(summary(await take(all, 2)), ['ADDED d', 'ADDED a']);
  t.same(summary(await take(teamA, 1)), ['ADDED a']);
});

t.test('selectors apply to watches: an object that stops matching is DELETED, one that starts is ADDED', async (t) => {
  const api = await start(t);
  api.create(service('a', { 'devstack.io/service': 'orders' }));
  const watch = await openWatch(api, SERVICES, { labelSelector: 'devstack.io/service=orders' });
  t.same(summary([await watch.next()]), ['ADDED a']);
  api.create(service('unrelated', { app: 'x' }));
  api.patch(ref('a'), { metadata: { labels: { 'devstack.io/service': 'payments' } } });
  const gone = await watch.next();
  t.equal(gone.type, 'DELETED');
  t.equal(gone.object.metadata!.labels!['devstack.io/service'], 'orders', 'DELETED carries the last matching state');
  t.equal(gone.object.metadata!.resourceVersion, api.resourceVersion, 'at the version of the change');
  api.patch(ref('unrelated'), { metadata: { labels: { 'devstack.io/service': 'orders' } } });
  t.same(summary([await watch.next()]), ['ADDED unrelated']);
  const byName = await openWatch(api, SERVICES, { fieldSelector: 'metadata.name=a', resourceVersion: api.resourceVersion });
  api.patch(ref('unrelated'), { metadata: { labels: { y: '1' } } });
  api.patch(ref('a'), { metadata: { labels: { y: '1' } } });
  t.same(summary([await byName.next()]), ['MODIFIED a']);
});

t.test('bookmarks: only when asked, carrying kind, apiVersion and the current version', async (t) => {
  const api = await start(t);
  const plain = await openWatch(api, SERVICES, { resourceVersion: api.resourceVersion });
  const marked = await openWatch(api, SERVICES, { resourceVersion: api.resourceVersion, allowWatchBookmarks: 'true' });
  api.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'default' } });
  api.sendBookmarks();
  api.create(service('a'));
  t.same(await marked.next(), { type: 'BOOKMARK', object: { kind: 'Service', apiVersion: 'v1', metadata: { resourceVersion: String(Number(api.resourceVersion) - 1) } } });
  t.same(summary([await marked.next()]), ['ADDED a']);
  t.same(summary([await plain.next()]), ['ADDED a'], 'no bookmark without allowWatchBookmarks');
});

t.test('bookmarks arrive on their own at the configured interval', async (t) => {
  const api = await start(t, { bookmarkIntervalMs: 10 });
  const watch = await openWatch(api, SERVICES, { resourceVersion: api.resourceVersion, allowWatchBookmarks: '1' });
  const [a, b] = await take(watch, 2);
  t.same([a!.type, b!.type], ['BOOKMARK', 'BOOKMARK']);
});

t.test('sendInitialEvents ends the initial ADDED events with an annotated bookmark', async (t) => {
  const api = await start(t);
  api.create(service('a'));
  const watch = await openWatch(api, SERVICES, { sendInitialEvents: 'true', allowWatchBookmarks: 'true', resourceVersionMatch: 'NotOlderThan' });
  const [added, end] = await take(watch, 2);
  t.equal(added!.type, 'ADDED');
  t.match(end, { type: 'BOOKMARK', object: { metadata: { annotations: { 'k8s.io/initial-events-end': 'true' }, resourceVersion: api.resourceVersion } } });
});

t.test('timeoutSeconds ends the stream cleanly', async (t) => {
  const api = await start(t);
  const watch = await openWatch(api, SERVICES, { resourceVersion: api.resourceVersion, timeoutSeconds: '1' });
  t.equal(api.watches.length, 1);
  await watch.ended;
  t.equal(api.watches.length, 0, 'the server closed it');
});

t.test('a compacted resourceVersion gets an ERROR event with a 410 Status (or HTTP 410)', async (t) => {
  const api = await start(t);
  api.create(service('a'));
  const old = api.resourceVersion;
  api.create(service('b'));
  api.compact();
  const watch = await openWatch(api, SERVICES, { resourceVersion: old });
  t.equal(watch.status, 200);
  t.same(await watch.next(), {
    type: 'ERROR',
    object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${old} (${Number(api.resourceVersion) + 1})`, reason: 'Expired', code: 410 },
  });
  await watch.ended;
  const current = await openWatch(api, SERVICES, { resourceVersion: api.resourceVersion });
  api.create(service('c'));
  t.same(summary([await current.next()]), ['ADDED c'], 'the compacted version itself is still watchable');
  api.expiredWatch = 'status';
  const refused = await openWatch(api, SERVICES, { resourceVersion: old });
  t.equal(refused.status, 410);
});

t.test('faults: close all watches, cleanly or abruptly', async (t) => {
  const api = await start(t);
  const a = await openWatch(api, SERVICES);
  const b = await openWatch(api, '/api/v1/services');
  t.equal(api.closeWatches(), 2);
  await Promise.all([a.ended, b.ended]);
  t.equal(api.watches.length, 0);
  const c = await openWatch(api, SERVICES);
  api.closeWatches({ abrupt: true });
  await c.ended;
  t.equal(api.watches.length, 0);
});

t.test('faults: a hung watch gets nothing more, while a new one does', async (t) => {
  const api = await start(t, { bookmarkIntervalMs: 5 });
  const hung = await openWatch(api, SERVICES, { resourceVersion: api.resourceVersion, allowWatchBookmarks: 'true' });
  t.equal(api.hangWatches(), 1);
  let got = 0;
  void hung.next().then(() => got++, () => undefined);
  api.create(service('a'));
  const fresh = await openWatch(api, SERVICES, { resourceVersion: api.resourceVersion, allowWatchBookmarks: 'true' });
  api.create(service('b'));
  t.same(summary([await fresh.next()]), ['ADDED b']);
  await fresh.next(); // a bookmark: several intervals have passed for the hung one too
  t.equal(got, 0, 'the hung watch received nothing, not even bookmarks');
  t.equal(api.watches.length, 2, 'its connection stays open');
  hung.close();
});

t.test('faults: failNext answers with Status errors, then serves again', async (t) => {
  const api = await start(t);
  api.failNext(1, 500);
  api.failNext(1, 403);
  api.failNext(1, 429);
  const codes: number[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${api.url}${SERVICES}`);
    codes.push(res.status);
    const body = (await res.json()) as { kind: string; code?: number };
    if (res.status === 429) t.equal(res.headers.get('retry-after'), '1');
    if (res.status !== 200) t.match(body, { kind: 'Status', status: 'Failure', code: res.status });
  }
  t.same(codes, [500, 403, 429, 200]);
  api.failNext(2, 503, { match: (r) => r.watch });
  t.equal((await fetch(`${api.url}${SERVICES}`)).status, 200, 'a list does not match the filter');
  t.equal((await openWatch(api, SERVICES)).status, 503);
  t.equal((await openWatch(api, SERVICES)).status, 503);
  t.equal((await openWatch(api, SERVICES)).status, 200);
  api.closeWatches();
  api.failNext(1, 'reset');
  await t.rejects(fetch(`${api.url}${SERVICES}`), { cause: { code: 'ECONNRESET' } }, "'reset' cuts the connection without an answer");
  t.equal((await fetch(`${api.url}${SERVICES}`)).status, 200);
});

t.test('faults: stop refuses connections; restart comes back on the same port with the same state', async (t) => {
  const api = await start(t);
  api.create(service('a'));
  const url = api.url;
  const watch = await openWatch(api, SERVICES);
  await watch.next();
  await api.stop();
  await watch.ended;
  await t.rejects(fetch(`${url}/api`), { cause: { code: 'ECONNREFUSED' } });
  await api.restart();
  t.equal(api.url, url);
  const res = await fetch(`${url}${SERVICES}`);
  t.same(((await res.json()) as { items: Array<{ metadata: { name: string } }> }).items.map((i) => i.metadata.name), ['a']);
});

t.test('the test can wait for a client to open a watch', async (t) => {
  const api = await start(t);
  const opened = api.waitForWatch((w) => w.labelSelector === 'a=b');
  const watch = await openWatch(api, SERVICES, { labelSelector: 'a=b', allowWatchBookmarks: 'true', timeoutSeconds: '300' });
  t.match(await opened, { kind: 'Service', namespace: 'default', labelSelector: 'a=b', allowWatchBookmarks: true, timeoutSeconds: 300 });
  t.match(api.requests.at(-1), { method: 'GET', path: SERVICES, watch: true, query: { labelSelector: 'a=b' } });
  watch.close();
});
