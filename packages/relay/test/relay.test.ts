/*
 * The real `devstack-relay` command against the fake API server: what every subscriber sees, what
 * the API server sees, resuming, and the namespaces it does not serve.
 */
import t from 'tap';
import type { DeltaMessage, RelayMessage, SnapshotMessage } from '@devstack/registry-relay';
import { NS, Stream, deploy, fleet, get, replay, serviceRef, slice, sliceRef, startRelay, until } from './helpers.ts';

const isSnapshot = (m: RelayMessage): m is SnapshotMessage => m.type === 'snapshot';

t.test('a copy added, going unready and deleted reaches every subscriber; the API server sees only the relay', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  const relay = await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS, '--targets', 'endpoints']);
  await until(() => get(relay.adminPort, '/readyz'), (r) => r.status === 200);
  const streams = await Promise.all([1, 2, 3, 4, 5].map(() => Stream.open(relay.port, NS)));
  t.teardown(() => streams.forEach((s) => s.close()));
  const firsts = await Promise.all(streams.map((s) => s.next()));
  for (const first of firsts) {
    t.equal(first.type, 'snapshot', 'a full snapshot on connect');
    t.same(Object.keys((first as SnapshotMessage).services).sort(), ['orders', 'web'], 'only the namespace served');
  }
  const at = firsts[0]!.version;
  t.ok(firsts.every((f) => f.version === at && f.epoch === firsts[0]!.epoch), 'one version for all');

  const seenByAll = async (what: string, check: (state: Record<string, unknown>) => boolean) => {
    for (const s of streams) {
      await s.next(() => check(replay(s.messages)));
    }
    t.pass(what);
  };
  deploy(api, 'web-f1', 'web', '10.0.1.1', 'f1');
  await seenByAll('a copy added', (s) => JSON.stringify((s['web'] as { features: unknown }).features) === JSON.stringify({ f1: ['http://10.0.1.1:8080'] }));
  const delta = streams[0]!.messages.find((m): m is DeltaMessage => m.type === 'delta')!;
  t.same(Object.keys(delta.services), ['web'], 'a change carries only the service it touched');
  t.ok(delta.version > at && delta.from === at, 'on top of the version held');

  api.update({ ...slice('web-f1', ['10.0.1.1'], false), metadata: { ...slice('web-f1', ['10.0.1.1']).metadata, resourceVersion: (api.get(sliceRef('web-f1')) as { metadata: { resourceVersion: string } }).metadata.resourceVersion } });
  await seenByAll('the copy going unready', (s) => JSON.stringify((s['web'] as { features: unknown }).features) === JSON.stringify({ f1: [{ url: 'http://10.0.1.1:8080', ready: false }] }));
  api.delete(serviceRef('web-f1'));
  await seenByAll('the copy deleted', (s) => JSON.stringify((s['web'] as { features: unknown }).features) === '{}');
  api.delete(serviceRef('orders'));
  await seenByAll('a service deleted', (s) => !('orders' in s));

  const allowed = [/^\/api\/v1\/namespaces\/shop\/services$/, /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/shop\/endpointslices$/];
  const requests = api.requests.filter((r) => !(r.method !== 'GET' && !r.watch && /services|endpointslices/.test(r.path) && r.query['labelSelector'] === undefined));
  const reads = requests.filter((r) => r.method === 'GET');
  t.ok(reads.length > 0 && reads.every((r) => allowed.some((p) => p.test(r.path))), 'every read is one of the relay\'s lists and watches of the namespace served');
  t.equal(reads.filter((r) => !r.watch).length, 2, 'one list of each kind, whatever the number of subscribers');
  t.equal(reads.filter((r) => r.watch).length, 2, 'one watch of each kind');

  const metrics = await get(relay.adminPort, '/metrics');
  t.match(metrics.text, /devstack_relay_subscribers\{namespace="shop"\} 5/, 'subscribers counted');
  t.match(metrics.text, /devstack_relay_messages_total\{type="delta"\} \d+/);
  t.match(metrics.text, /devstack_registry_stale\{namespace="shop"\} 0/);
});

t.test('resume: a current version resends nothing, a known one gets a change, an unknown one a snapshot', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  const relay = await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS]);
  const first = await Stream.open(relay.port, NS);
  const snap = await first.next();
  first.close();
  const current = await Stream.open(relay.port, NS, `?epoch=${snap.epoch}&since=${snap.version}`);
  t.teardown(() => current.close());
  const resumed = await current.next();
  t.equal(resumed.type, 'resumed', 'current: no snapshot');
  t.equal(resumed.version, snap.version);

  deploy(api, 'web-f2', 'web', '10.0.2.1', 'f2');
  const change = await current.next((m) => m.type === 'delta');
  t.equal((change as DeltaMessage).from, snap.version, 'changes follow the resumed version');

  const known = await Stream.open(relay.port, NS, `?epoch=${snap.epoch}&since=${snap.version}`);
  t.teardown(() => known.close());
  const caughtUp = await known.next();
  t.equal(caughtUp.type, 'delta', 'a version in the history: only what changed since');
  t.same(Object.keys((caughtUp as DeltaMessage).services), ['web']);

  for (const query of [`?epoch=${snap.epoch}&since=999999`, `?epoch=another&since=${snap.version}`]) {
    const unknown = await Stream.open(relay.port, NS, query);
    const m = await unknown.next();
    unknown.close();
    t.equal(m.type, 'snapshot', `unknown version (${query}): a full snapshot`);
    t.ok(isSnapshot(m) && 'web' in m.services);
  }
  const bad = await get(relay.port, `/v1/namespaces/${NS}/stream?since=abc`);
  t.equal(bad.status, 400);
  t.equal((bad.body['error'] as { code: string }).code, 'DEVSTACK_RELAY_BAD_REQUEST');
});

t.test('a namespace not served is one answer that tells nothing', async (t) => {
  const { kubeconfig } = await fleet(t);
  const relay = await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS]);
  const answers = await Promise.all(['other', 'nope', 'Not_A_Name', '%ff', 'shop%2F..'].map((ns) => get(relay.port, `/v1/namespaces/${ns}/stream`)));
  for (const a of answers) {
    t.equal(a.status, 404);
    t.same(a.body, { error: { code: 'DEVSTACK_RELAY_NAMESPACE_NOT_SERVED', message: 'this relay does not serve that namespace' } });
  }
  t.equal(new Set(answers.map((a) => a.text)).size, 1, 'an existing namespace and a missing one get the same bytes');
  const other = await get(relay.port, '/api/v1/services');
  t.equal(other.status, 404);
  t.equal((other.body['error'] as { code: string }).code, 'DEVSTACK_RELAY_NOT_FOUND');
  const post = await fetch(`http://127.0.0.1:${relay.port}/v1/namespaces/${NS}/stream`, { method: 'POST' });
  t.equal(post.status, 405);
  await post.text();
});

t.test('with all namespaces, each is watched from its first request', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  const relay = await startRelay(t, ['--kubeconfig', kubeconfig, '--all-namespaces', '--max-namespaces', '2']);
  const other = await Stream.open(relay.port, 'other');
  t.teardown(() => other.close());
  const m = await other.next();
  t.same(Object.keys((m as SnapshotMessage).services), ['secret']);
  t.ok(api.requests.every((r) => !r.path.includes('/namespaces/shop/')), 'a namespace nobody asked for is not watched');
  const shop = await Stream.open(relay.port, NS);
  t.teardown(() => shop.close());
  t.same(Object.keys(((await shop.next()) as SnapshotMessage).services).sort(), ['orders', 'web']);
  const third = await get(relay.port, '/v1/namespaces/default/stream');
  t.equal(third.status, 404, 'past --max-namespaces: not served');
});

t.test('the API server lost behind the relay: the last snapshot, marked stale, then current again', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  const relay = await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS, '--heartbeat-interval', '100']);
  const s = await Stream.open(relay.port, NS);
  t.teardown(() => s.close());
  const first = await s.next();
  t.equal(first.stale, false);
  await api.stop();
  const stale = await s.next((m) => m.stale);
  t.equal(stale.type, 'heartbeat', 'told at once, without a resend');
  t.equal(stale.version, first.version, 'the same snapshot');
  const late = await Stream.open(relay.port, NS);
  t.teardown(() => late.close());
  const served = await late.next();
  t.ok(served.type === 'snapshot' && served.stale && 'web' in served.services, 'a new subscriber gets the last snapshot, marked stale');
  t.equal((await get(relay.adminPort, '/readyz')).status, 200, 'still ready: it has a snapshot to serve');
  await api.restart();
  const back = await s.next((m) => !m.stale, s.messages.indexOf(stale) + 1);
  t.equal(back.stale, false, 'current again');
});
