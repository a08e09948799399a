import t from 'tap';
import { startFakeApiServer, TRAEFIK_RESOURCES, type FakeApiServer } from '@devstack/kube-fake';
import { call, service } from './helpers.ts';

async function start(t: { teardown(fn: () => unknown): void }): Promise<FakeApiServer> {
  const api = await startFakeApiServer({ customResources: [...TRAEFIK_RESOURCES], namespaces: ['team-a'] });
  t.teardown(() => api.close());
  return api;
}

const names = (body: { items?: Array<{ metadata?: { name?: string } }> }) => (body.items ?? []).map((i) => i.metadata?.name);

t.test('discovery documents name every kind, built-in and custom', async (t) => {
  const api = await start(t);
  t.match((await call(api, 'GET', '/api')).body, { kind: 'APIVersions', versions: ['v1'] });
  const groups = (await call(api, 'GET', '/apis')).body;
  t.same(
    (groups.groups as Array<{ name: string }>).map((g) => g.name).sort(),
    ['apps', 'discovery.k8s.io', 'rbac.authorization.k8s.io', 'traefik.containo.us', 'traefik.io'],
  );
  const core = (await call(api, 'GET', '/api/v1')).body;
  t.same(
    (core.resources as Array<{ name: string }>).map((r) => r.name),
    ['configmaps', 'namespaces', 'secrets', 'serviceaccounts', 'services'],
  );
  t.match(core, { resources: [{}, { name: 'namespaces', namespaced: false, shortNames: ['ns'] }, {}, { name: 'serviceaccounts', kind: 'ServiceAccount', shortNames: ['sa'] }, { name: 'services', kind: 'Service', shortNames: ['svc'] }] });
  t.match((await call(api, 'GET', '/apis/traefik.containo.us/v1alpha1')).body, {
    groupVersion: 'traefik.containo.us/v1alpha1',
    resources: [{ name: 'ingressroutes', kind: 'IngressRoute', namespaced: true }, { name: 'middlewares', kind: 'Middleware' }],
  });
  const missing = await call(api, 'GET', '/apis/example.com/v1');
  t.equal(missing.status, 404);
  t.match(missing.body, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
  t.match((await call(api, 'GET', '/version')).body, { major: '1', minor: '33' });
});

t.test('create sets server-side fields and defaults; errors are Status objects', async (t) => {
  const api = await start(t);
  const created = await call(api, 'POST', '/api/v1/namespaces/team-a/services', { ...service('orders'), metadata: { name: 'orders' } });
  t.equal(created.status, 201);
  t.match(created.body, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'orders', namespace: 'team-a', uid: /^[0-9a-f-]{36}$/, resourceVersion: /^\d+$/, generation: 1, creationTimestamp: /Z$/ },
    spec: { type: 'ClusterIP', clusterIP: /^10\.96\./, ports: [{ port: 80, targetPort: 80, protocol: 'TCP' }] },
  });
  const again = await call(api, 'POST', '/api/v1/namespaces/team-a/services', service('orders', {}, 'team-a'));
  t.equal(again.status, 409);
  t.same(again.body, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'services "orders" already exists',
    reason: 'AlreadyExists',
    details: { name: 'orders', kind: 'services' },
    code: 409,
  });
  const elsewhere = await call(api, 'POST', '/api/v1/namespaces/team-a/services', service('x', {}, 'team-b'));
  t.match(elsewhere, { status: 400, body: { reason: 'BadRequest', message: /does not match the namespace/ } });
  const noNamespace = await call(api, 'POST', '/api/v1/namespaces/nowhere/services', service('x', {}, 'nowhere'));
  t.match(noNamespace, { status: 404, body: { reason: 'NotFound', message: 'namespaces "nowhere" not found' } });
  const unnamed = await call(api, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: {} });
  t.match(unnamed, { status: 422, body: { reason: 'Invalid', message: /metadata.name: Required value/ } });
  const generated = await call(api, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { generateName: 'cfg-' } });
  t.match(generated.body, { metadata: { name: /^cfg-[a-z0-9]{5}$/ } });
  const secret = api.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'default' }, stringData: { a: 'b' } });
  t.match(secret, { type: 'Opaque', data: { a: Buffer.from('b').toString('base64') } });
  t.notOk('stringData' in secret, 'stringData is folded into data');
  const gone = await call(api, 'GET', '/api/v1/namespaces/default/services/none');
  t.match(gone, { status: 404, body: { kind: 'Status', reason: 'NotFound', message: 'services "none" not found', details: { name: 'none', kind: 'services' } } });
});

t.test('one global resourceVersion orders every change', async (t) => {
  const api = await start(t);
  const a = api.create(service('a'));
  const b = api.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'b', namespace: 'default' } });
  t.equal(Number(b.metadata?.resourceVersion), Number(a.metadata?.resourceVersion) + 1);
  const listed = await call(api, 'GET', '/api/v1/services');
  t.equal(listed.body.metadata!.resourceVersion, api.resourceVersion, 'a list carries the current version');
  t.equal(listed.body.kind, 'ServiceList');
  t.notOk('kind' in listed.body.items![0]!, 'typed built-in list items leave kind to the list, as the real server');
  api.create({ apiVersion: 'traefik.io/v1alpha1', kind: 'Middleware', metadata: { name: 'm', namespace: 'default' } });
  const custom = await call(api, 'GET', '/apis/traefik.io/v1alpha1/middlewares');
  t.match(custom.body.items, [{ apiVersion: 'traefik.io/v1alpha1', kind: 'Middleware' }], 'custom resource items keep kind');
});

t.test('label selectors: equality, inequality, set and existence forms', async (t) => {
  const api = await start(t);
  api.create(service('base', { 'devstack.io/service': 'orders' }));
  api.create(service('f1', { 'devstack.io/service': 'orders', 'devstack.io/feature': 'feature1' }));
  api.create(service('f2', { 'devstack.io/service': 'orders', 'devstack.io/feature': 'feature2' }));
  api.create(service('other', { app: 'x' }));
  const select = async (selector: string) => names((await call(api, 'GET', `/api/v1/namespaces/default/services?labelSelector=${encodeURIComponent(selector)}`)).body);
  t.same(await select('devstack.io/service=orders'), ['base', 'f1', 'f2']);
  t.same(await select('devstack.io/service==orders,devstack.io/feature=feature1'), ['f1']);
  t.same(await select('devstack.io/feature!=feature1'), ['base', 'f2', 'other'], '!= also matches objects without the label');
  t.same(await select('devstack.io/feature in (feature1, feature2)'), ['f1', 'f2']);
  t.same(await select('devstack.io/feature notin (feature1)'), ['base', 'f2', 'other']);
  t.same(await select('devstack.io/service,!devstack.io/feature'), ['base']);
  t.same(await select('devstack.io/feature'), ['f1', 'f2']);
  t.same(await select(''), ['base', 'f1', 'f2', 'other']);
  const bad = await call(api, 'GET', '/api/v1/services?labelSelector=' + encodeURIComponent('a in (b'));
  t.match(bad, { status: 400, body: { kind: 'Status', reason: 'BadRequest', message: /unable to parse requirement/ } });
});

t.test('field selectors the clients send, and cluster-wide paths', async (t) => {
  const api = await start(t);
  api.create(service('a'));
  api.create(service('a', {}, 'team-a'));
  api.create(service('b', {}, 'team-a'));
  const all = (await call(api, 'GET', '/api/v1/services')).body;
  t.same(all.items!.map((i) => `${i.metadata?.namespace}/${i.metadata?.name}`), ['default/a', 'team-a/a', 'team-a/b']);
  t.same(names((await call(api, 'GET', '/api/v1/services?fieldSelector=metadata.name%3Da')).body), ['a', 'a']);
  t.same(names((await call(api, 'GET', '/api/v1/services?fieldSelector=metadata.namespace%3D%3Dteam-a,metadata.name!%3Da')).body), ['b']);
  t.same(names((await call(api, 'GET', '/api/v1/namespaces/team-a/services?fieldSelector=metadata.name%3Da')).body), ['a']);
  const bad = await call(api, 'GET', '/api/v1/services?fieldSelector=spec.type%3DClusterIP');
  t.match(bad, { status: 400, body: { reason: 'BadRequest', message: 'field label not supported: spec.type' } });
  t.equal((await call(api, 'GET', '/api/v1/services/a')).status, 404, 'a namespaced object has no cluster-wide item path');
  t.equal((await call(api, 'GET', '/api/v1/namespaces/team-a')).body.kind, 'Namespace');
});

t.test('limit/continue pages through one consistent snapshot', async (t) => {
  const api = await start(t);
  for (const name of ['a', 'b', 'c', 'd', 'e']) api.create(service(name));
  const first = (await call(api, 'GET', '/api/v1/namespaces/default/services?limit=2')).body;
  t.same(names(first), ['a', 'b']);
  t.equal(first.metadata!.remainingItemCount, 3);
  api.delete({ apiVersion: 'v1', kind: 'Service', namespace: 'default', name: 'c' });
  api.create(service('bb'));
  const token = encodeURIComponent(first.metadata!.continue!);
  const second = (await call(api, 'GET', `/api/v1/namespaces/default/services?limit=2&continue=${token}`)).body;
  t.same(names(second), ['c', 'd'], 'changes after the first page are not seen');
  t.equal(second.metadata!.resourceVersion, first.metadata!.resourceVersion);
  const third = (await call(api, 'GET', `/api/v1/namespaces/default/services?limit=2&continue=${encodeURIComponent(second.metadata!.continue!)}`)).body;
  t.same(names(third), ['e']);
  t.notOk(third.metadata!.continue, 'the last page has no continue token');
  api.compact();
  const expired = await call(api, 'GET', `/api/v1/namespaces/default/services?limit=2&continue=${token}`);
  t.match(expired, { status: 410, body: { kind: 'Status', reason: 'Expired', code: 410 } });
});

t.test('list at an exact resourceVersion, and 410 once compacted', async (t) => {
  const api = await start(t);
  api.create(service('a'));
  const before = api.resourceVersion;
  api.create(service('b'));
  const exact = await call(api, 'GET', `/api/v1/namespaces/default/services?resourceVersion=${before}&resourceVersionMatch=Exact`);
  t.same(names(exact.body), ['a']);
  t.equal(exact.body.metadata!.resourceVersion, before);
  api.compact();
  const old = await call(api, 'GET', `/api/v1/namespaces/default/services?resourceVersion=${before}&resourceVersionMatch=Exact`);
  t.match(old, { status: 410, body: { reason: 'Expired', message: `too old resource version: ${before} (${Number(api.resourceVersion) + 1})` } });
});

t.test('update: 409 Conflict on a stale resourceVersion; no-op writes change nothing', async (t) => {
  const api = await start(t);
  const v1 = api.create(service('a'));
  const path = '/api/v1/namespaces/default/services/a';
  const v2 = await call(api, 'PUT', path, { ...v1, metadata: { ...v1.metadata, labels: { x: '1' } } });
  t.equal(v2.status, 200);
  t.equal(v2.body.metadata!.generation, 1, 'a metadata change does not bump generation');
  const stale = await call(api, 'PUT', path, { ...v1, spec: { ports: [{ port: 81 }] } });
  t.equal(stale.status, 409);
  t.match(stale.body, {
    kind: 'Status',
    status: 'Failure',
    reason: 'Conflict',
    code: 409,
    message: 'Operation cannot be fulfilled on services "a": the object has been modified; please apply your changes to the latest version and try again',
  });
  const spec = await call(api, 'PUT', path, { ...v2.body, spec: { ...(v2.body.spec as object), ports: [{ port: 81 }] } });
  t.equal(spec.body.metadata!.generation, 2, 'a spec change bumps generation');
  t.equal((spec.body.spec as { clusterIP: string }).clusterIP, (v1.spec as { clusterIP: string }).clusterIP, 'the cluster IP stays');
  const same = await call(api, 'PUT', path, spec.body);
  t.equal(same.body.metadata!.resourceVersion, spec.body.metadata!.resourceVersion, 'an identical write is not a change');
  t.throws(() => api.update(v1), { code: 'DEVSTACK_KUBE_API', status: { reason: 'Conflict' } }, 'the seeding helper checks too');
});

t.test('merge, JSON and strategic merge patches', async (t) => {
  const api = await start(t);
  api.create({ ...service('a', { keep: '1', drop: '1' }), spec: { ports: [{ port: 80 }], selector: { app: 'a' } } });
  const path = '/api/v1/namespaces/default/services/a';
  const merged = await call(api, 'PATCH', path, { metadata: { labels: { drop: null, added: '1' } } }, 'application/merge-patch+json');
  t.same(merged.body.metadata!.labels, { keep: '1', added: '1' });
  const json = await call(
    api,
    'PATCH',
    path,
    [
      { op: 'test', path: '/metadata/labels/keep', value: '1' },
      { op: 'add', path: '/spec/ports/-', value: { name: 'grpc', port: 9090 } },
      { op: 'replace', path: '/spec/selector/app', value: 'b' },
      { op: 'copy', from: '/spec/selector/app', path: '/metadata/labels/app' },
      { op: 'move', from: '/metadata/labels/added', path: '/metadata/labels/moved' },
      { op: 'remove', path: '/metadata/labels/keep' },
    ],
    'application/json-patch+json',
  );
  t.equal(json.status, 200);
  t.same(json.body.metadata!.labels, { app: 'b', moved: '1' });
  t.match(json.body.spec, { ports: [{ port: 80 }, { name: 'grpc', port: 9090, protocol: 'TCP', targetPort: 9090 }], selector: { app: 'b' } });
  const failed = await call(api, 'PATCH', path, [{ op: 'test', path: '/metadata/labels/app', value: 'z' }], 'application/json-patch+json');
  t.match(failed, { status: 422, body: { kind: 'Status', reason: 'Invalid' } });
  const strategic = await call(api, 'PATCH', path, { metadata: { labels: { s: '1' } } }, 'application/strategic-merge-patch+json');
  t.same(strategic.body.metadata!.labels, { app: 'b', moved: '1', s: '1' });
  const stale = await call(api, 'PATCH', path, { metadata: { resourceVersion: '1', labels: { x: '1' } } }, 'application/merge-patch+json');
  t.match(stale, { status: 409, body: { reason: 'Conflict' } });
  const unknown = await call(api, 'PATCH', path, 'x: 1', 'application/yaml');
  t.match(unknown, { status: 415, body: { reason: 'UnsupportedMediaType' } });
  const missing = await call(api, 'PATCH', '/api/v1/namespaces/default/services/none', {}, 'application/merge-patch+json');
  t.equal(missing.status, 404);
});

t.test('delete answers with the object or a Success Status, as each kind does', async (t) => {
  const api = await start(t);
  api.create(service('a'));
  api.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'default' } });
  const svc = await call(api, 'DELETE', '/api/v1/namespaces/default/services/a');
  t.match(svc, { status: 200, body: { kind: 'Service', metadata: { name: 'a' } } });
  const cm = await call(api, 'DELETE', '/api/v1/namespaces/default/configmaps/c');
  t.match(cm, { status: 200, body: { kind: 'Status', status: 'Success', details: { name: 'c', kind: 'configmaps' } } });
  const again = await call(api, 'DELETE', '/api/v1/namespaces/default/services/a');
  t.match(again, { status: 404, body: { kind: 'Status', reason: 'NotFound', message: 'services "a" not found' } });
  api.create(service('a2'));
  api.create({ ...service('held'), metadata: { name: 'held', namespace: 'default', finalizers: ['example.com/hold'] } });
  const held = await call(api, 'DELETE', '/api/v1/namespaces/default/services/held');
  t.match(held.body, { metadata: { deletionTimestamp: /Z$/ } }, 'a finalizer holds the object, marked');
  const sneaky = await call(api, 'PATCH', '/api/v1/namespaces/default/services/a2', { metadata: { deletionTimestamp: '2020-01-01T00:00:00Z' } }, 'application/merge-patch+json');
  t.match(sneaky, { status: 200, body: { metadata: { name: 'a2' } } }, 'a client cannot delete by writing deletionTimestamp');
  t.notOk(sneaky.body.metadata!.deletionTimestamp);
  await call(api, 'PATCH', '/api/v1/namespaces/default/services/held', { metadata: { finalizers: null } }, 'application/merge-patch+json');
  t.equal((await call(api, 'GET', '/api/v1/namespaces/default/services/held')).status, 404, 'gone once the finalizer is removed');
});

t.test('one storage per group: traefik.io and traefik.containo.us are separate kinds', async (t) => {
  const api = await start(t);
  const route = { kind: 'IngressRoute', metadata: { name: 'r', namespace: 'default' }, spec: { routes: [] } };
  api.create({ apiVersion: 'traefik.io/v1alpha1', ...route });
  t.equal((await call(api, 'GET', '/apis/traefik.io/v1alpha1/namespaces/default/ingressroutes/r')).status, 200);
  t.equal((await call(api, 'GET', '/apis/traefik.containo.us/v1alpha1/namespaces/default/ingressroutes/r')).status, 404);
  const wrong = await call(api, 'POST', '/apis/traefik.containo.us/v1alpha1/namespaces/default/ingressroutes', { apiVersion: 'traefik.io/v1alpha1', ...route });
  t.match(wrong, { status: 400, body: { reason: 'BadRequest', message: /does not match the expected API version/ } });
});

t.test('deletecollection with a selector, and dryRun writes nothing', async (t) => {
  const api = await start(t);
  api.create(service('a', { tier: 'web' }));
  api.create(service('b', { tier: 'web' }));
  api.create(service('c'));
  const before = api.resourceVersion;
  const dry = await call(api, 'POST', '/api/v1/namespaces/default/services?dryRun=All', service('d'));
  t.equal(dry.status, 201);
  t.equal((await call(api, 'DELETE', '/api/v1/namespaces/default/services/a?dryRun=All')).status, 200);
  t.equal(api.resourceVersion, before, 'nothing changed');
  t.equal(api.tryGet({ apiVersion: 'v1', kind: 'Service', name: 'd' }), undefined);
  const gone = await call(api, 'DELETE', '/api/v1/namespaces/default/services?labelSelector=tier%3Dweb');
  t.match(gone, { status: 200, body: { kind: 'ServiceList' } });
  t.same(names(gone.body), ['a', 'b']);
  t.same(api.list('v1', 'Service', 'default').map((s) => s.metadata?.name), ['c']);
});

t.test('server-side apply: creates, merges, and drops what the same manager stopped applying', async (t) => {
  const api = await start(t);
  const path = '/api/v1/namespaces/default/configmaps/cfg';
  const yaml = (data: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n${data}`;
  const created = await call(api, 'PATCH', `${path}?fieldManager=a`, yaml('  x: "1"\n  y: "2"\n'), 'application/apply-patch+yaml');
  t.match(created, { status: 200, body: { kind: 'ConfigMap', data: { x: '1', y: '2' } } });
  await call(api, 'PATCH', `${path}?fieldManager=b`, yaml('  z: "3"\n'), 'application/apply-patch+yaml');
  const again = await call(api, 'PATCH', `${path}?fieldManager=a`, yaml('  x: "1"\n'), 'application/apply-patch+yaml');
  t.same(again.body.data, { x: '1', z: '3' }, 'y was a\'s and is gone; z is b\'s and stays');
  const anonymous = await call(api, 'PATCH', path, yaml('  x: "1"\n'), 'application/apply-patch+yaml');
  t.match(anonymous, { status: 400, body: { message: /fieldManager is required/ } });
});
