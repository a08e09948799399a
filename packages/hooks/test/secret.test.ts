/* `devstack-hooks secret clone|update` against the fake Kubernetes API server. */
import t from 'tap';
import { updateSecret } from '@devstack/hooks';
import { done, fake, NS, run, spawnCli, writes } from './helpers.ts';
import type { FakeApiServer } from '@devstack/kube-fake';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const ref = (name: string) => ({ apiVersion: 'v1', kind: 'Secret', name, namespace: NS });
type Secret = { type: string; data: Record<string, string>; metadata: { labels: Record<string, string>; annotations?: Record<string, string>; resourceVersion: string } };
const secret = (api: FakeApiServer, name: string) => api.get(ref(name)) as unknown as Secret;

function base(api: FakeApiServer): void {
  api.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'orders', namespace: NS }, type: 'Opaque', data: { DB_URL: b64('postgres://base'), API_TOKEN: b64('tok-base-SECRET') } });
}

const clone = (kubeconfig: string, extra: string[] = [], cli = run) =>
  cli(['secret', 'clone', '--kubeconfig', kubeconfig, '--namespace', NS, '--from', 'orders', '--to', 'orders-feature1', '--key', 'feature1', '--set', 'DB_URL=postgres://feature1-SECRET', ...extra]);

t.test('clone copies the data with labels and janitor/ttl, applies --set, and a rerun changes nothing', async (t) => {
  const { api, kubeconfig } = await fake(t);
  base(api);
  const first = await clone(kubeconfig, ['--service', 'orders', '--ttl', '2d'], spawnCli);
  t.equal(first.code, 0, first.stderr);
  t.match(done(first), { command: 'secret clone', change: 'created', secret: 'orders-feature1', keys: ['API_TOKEN', 'DB_URL'] });
  const copy = secret(api, 'orders-feature1');
  t.same(copy.data, { DB_URL: b64('postgres://feature1-SECRET'), API_TOKEN: b64('tok-base-SECRET') });
  t.same(copy.metadata.labels, { 'app.kubernetes.io/managed-by': 'devstack-hooks', 'devstack.io/feature': 'feature1', 'devstack.io/service': 'orders' });
  t.same(copy.metadata.annotations, { 'janitor/ttl': '2d' });
  t.equal(copy.type, 'Opaque');
  t.notMatch(first.stdout + first.stderr, /SECRET|postgres|tok-base|cG9zdGdyZXM/, 'no value in the logs, plain or base64');

  const count = writes(api).length;
  const second = await clone(kubeconfig, ['--service', 'orders', '--ttl', '2d']);
  t.equal(second.code, 0);
  t.match(done(second), { change: 'unchanged' });
  t.equal(writes(api).length, count, 'the rerun wrote nothing');
  t.equal(secret(api, 'orders-feature1').metadata.resourceVersion, copy.metadata.resourceVersion);
});

t.test('a rerun keeps keys added since and follows the base', async (t) => {
  const { api, kubeconfig } = await fake(t);
  base(api);
  t.equal((await clone(kubeconfig)).code, 0);
  t.equal(secret(api, 'orders-feature1').metadata.annotations!['janitor/ttl'], '6h', 'default TTL');
  const update = await run(['secret', 'update', '--kubeconfig', kubeconfig, '--namespace', NS, '--name', 'orders-feature1', '--set', 'QUEUE_URL=http://q', '--set', 'EMPTY=']);
  t.equal(update.code, 0, update.stderr);
  t.match(done(update), { change: 'updated', keys: ['EMPTY', 'QUEUE_URL'] });
  t.match(done(await run(['secret', 'update', '--kubeconfig', kubeconfig, '--namespace', NS, '--name', 'orders-feature1', '--set', 'QUEUE_URL=http://q', '--set', 'EMPTY='])), { change: 'unchanged' });
  const obj = api.get(ref('orders')) as Record<string, unknown> & { data: Record<string, string> };
  api.update({ ...obj, data: { ...obj.data, NEW_KEY: b64('n') } });
  const rerun = await clone(kubeconfig);
  t.match(done(rerun), { change: 'updated' });
  t.same(Object.keys(secret(api, 'orders-feature1').data).sort(), ['API_TOKEN', 'DB_URL', 'EMPTY', 'NEW_KEY', 'QUEUE_URL']);
  t.equal(secret(api, 'orders-feature1').data['EMPTY'], '');
});

t.test('a missing source secret, a missing secret to update, and a secret it did not make: exit 1', async (t) => {
  const { api, kubeconfig } = await fake(t);
  const missing = await clone(kubeconfig, [], spawnCli);
  t.equal(missing.code, 1);
  t.match(missing.lines.find((l) => l['level'] === 'error'), { code: 'DEVSTACK_HOOK_NOT_FOUND', error: /Secret team-a\/orders does not exist: nothing to clone/ });
  const update = await run(['secret', 'update', '--kubeconfig', kubeconfig, '--namespace', NS, '--name', 'nope', '--set', 'A=1']);
  t.equal(update.code, 1);
  t.match(update.lines.find((l) => l['level'] === 'error'), { code: 'DEVSTACK_HOOK_NOT_FOUND', error: /Secret team-a\/nope does not exist/ });
  t.same(writes(api), []);

  base(api);
  api.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'orders-feature1', namespace: NS }, data: { MINE: b64('x') } });
  const foreign = await clone(kubeconfig);
  t.equal(foreign.code, 1);
  t.match(foreign.lines.find((l) => l['level'] === 'error'), { code: 'DEVSTACK_HOOK_NOT_OWNED' });
  t.same(secret(api, 'orders-feature1').data, { MINE: b64('x') }, 'left alone');
});

t.test('update is a read-modify-write: conflicts and 500s are retried', async (t) => {
  const { api, kc } = await fake(t);
  base(api);
  api.failNext(3, 409, { match: (r) => r.method === 'PUT' });
  api.failNext(1, 500, { match: (r) => r.method === 'GET' });
  const outcome = await updateSecret(kc, { namespace: NS, name: 'orders', set: { A: '1' }, retry: { baseMs: 1, capMs: 5 } });
  t.same(outcome, { change: 'updated', keys: ['A'], attempts: 5 });
  t.equal(secret(api, 'orders').data['A'], b64('1'));
  // Concurrent updates of different keys all land.
  await Promise.all(['B', 'C', 'D', 'E', 'F'].map((k) => updateSecret(kc, { namespace: NS, name: 'orders', set: { [k]: k }, retry: { baseMs: 1, capMs: 5 } })));
  t.same(Object.keys(secret(api, 'orders').data).sort(), ['A', 'API_TOKEN', 'B', 'C', 'D', 'DB_URL', 'E', 'F']);
});

t.test('bad names and keys are refused before any request', async (t) => {
  const { api, kubeconfig } = await fake(t);
  const seen = api.requests.length;
  const r = await run(['secret', 'clone', '--kubeconfig', kubeconfig, '--from', 'orders', '--to', 'Orders_1', '--key', 'a`b', '--ttl', 'soon', '--set', 'bad key=1']);
  t.equal(r.code, 2);
  t.same(r.stderr.trim().split('\n').slice(0, -1).map((l) => l.replace(/:.*/, '')), ['devstack-hooks', 'devstack-hooks', 'devstack-hooks', 'devstack-hooks']);
  t.match(r.stderr, /--key: "a`b" is not a routing key/);
  t.match(r.stderr, /--to: "Orders_1" is not a DNS-1123 subdomain/);
  t.match(r.stderr, /--ttl: "soon" is not a TTL/);
  t.match(r.stderr, /--set #1: its KEY is not a Secret key/);
  t.notMatch(r.stderr, /bad key/);
  const same = await run(['secret', 'clone', '--kubeconfig', kubeconfig, '--from', 'orders', '--to', 'orders', '--key', 'f1']);
  t.equal(same.code, 2);
  t.match(same.stderr, /--to: must name another secret than --from/);
  t.equal(api.requests.length, seen, 'no request was made');
});
