/*
 * The app chart's SNS and PostgreSQL hook Jobs (devstack.hooks.subscriptions, topics, databases)
 * and `workload: worker`. The rendered Jobs run as Helm runs them (by weight, stopping at the
 * first failure) with the real devstack-hooks against the fake API server, fauxqs and a real
 * PostgreSQL; the database Jobs get their admin connection from the Secret their envFrom names, as
 * the kubelet would give it. A worker's rendered Services go into the fake API server with the
 * EndpointSlices Kubernetes would make for them, and the Kubernetes registry source reads them.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { CreateTopicCommand, ListTopicsCommand, PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetQueueUrlCommand, ListQueuesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { resolve, type Snapshot } from '@devstack/core';
import { startFakeApiServer } from '@devstack/kube-fake';
import { createKubernetesSource } from '@devstack/registry-kubernetes';
import { ROOT, find, render, validate, type Container, type K8sObject } from './helpers/charts.ts';
import type { Test } from './helpers/tap.ts';

const CLI = join(ROOT, 'packages/hooks/bin/devstack-hooks.cjs');
const NS = 'shop';
const IMAGE = { repository: 'registry.example/shop/web', tag: '1.4.2' };
const AWS_ENV = [{ name: 'AWS_ACCESS_KEY_ID', value: 'test' }, { name: 'AWS_SECRET_ACCESS_KEY', value: 'test' }, { name: 'AWS_REGION', value: 'us-east-1' }];
const copy = (hooks: Record<string, unknown>, more: Record<string, unknown> = {}) => ({ service: 'web', image: IMAGE, ...more, devstack: { feature: 'feature-1', ttl: '6h', hooks } });
t.setTimeout(120_000);

// The PostgreSQL the hooks' own tests start; loaded by path (it lives in that package's tests).
interface Postgres { env: Record<string, string>; query(database: string, sql: string, values?: unknown[]): Promise<Record<string, unknown>[]> }
const pgServer = (await import(pathToFileURL(join(ROOT, 'packages/hooks/test/postgres-server.ts')).href)) as { postgresMissing(): string | undefined; startPostgres(t: Test): Promise<Postgres> };

const MESSAGE_HOOKS = (endpoint: string) => ({
  secrets: [{ from: 'web' }],
  subscriptions: [{ topic: 'events', queue: 'orders', secret: 'web-feature-1', endpoint }],
  topics: [{ topic: 'audit', secret: 'web-feature-1', secretKey: 'AUDIT_TOPIC_ARN', endpoint }],
  databases: [{ database: 'orders', template: 'orders_seed', secret: 'web-feature-1', adminSecret: 'orders-pg-admin' }],
  env: AWS_ENV,
});

const hookOf = (o: K8sObject) => o.metadata.annotations?.['helm.sh/hook'];
const weightOf = (o: K8sObject) => Number(o.metadata.annotations?.['helm.sh/hook-weight']);
type PodSpec = { containers: Container[]; automountServiceAccountToken?: boolean };
const podOf = (job: K8sObject) => (job.spec as { template: { spec: PodSpec } }).template.spec;
const containerOf = (job: K8sObject) => podOf(job).containers[0]! as Container & { envFrom?: { secretRef: { name: string } }[] };
const argsOf = (job: K8sObject) => containerOf(job)['args'] as string[];
const jobsFor = (objects: K8sObject[], event: string) =>
  objects.filter((o) => o.kind === 'Job' && hookOf(o)!.split(',').includes(event)).sort((a, b) => weightOf(a) - weightOf(b) || a.metadata.name.localeCompare(b.metadata.name));

interface Run { name: string; code: number | null; stdout: string; stderr: string }
function runCli(name: string, args: readonly string[], env: Record<string, string>): Promise<Run> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(KUBECONFIG|DEVSTACK_|AWS_|PG)/.test(k)));
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ name, code, stdout, stderr }));
  });
}
type Api = Awaited<ReturnType<typeof startFakeApiServer>>;
const secretData = (api: Api, name: string) => {
  const s = api.get({ apiVersion: 'v1', kind: 'Secret', name, namespace: NS }) as { data?: Record<string, string> };
  return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
};
/** A rendered Job's container as its pod runs it: env, then envFrom's Secrets (as the kubelet reads them), a kubeconfig only where the token is mounted. */
function runJob(api: Api, job: K8sObject, kubeconfig: string): Promise<Run> {
  const c = containerOf(job);
  const env: Record<string, string> = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? '']));
  for (const from of c.envFrom ?? []) Object.assign(env, secretData(api, from.secretRef.name));
  if (podOf(job).automountServiceAccountToken === true) env['KUBECONFIG'] = kubeconfig;
  return runCli(job.metadata.name, argsOf(job), env);
}
async function helmEvent(api: Api, objects: K8sObject[], event: string, kubeconfig: string): Promise<Run[]> {
  const runs: Run[] = [];
  for (const job of jobsFor(objects, event)) {
    const r = await runJob(api, job, kubeconfig);
    runs.push(r);
    if (r.code !== 0) break;
  }
  return runs;
}
const changes = (runs: Run[]) =>
  runs.map((r) => {
    const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const last = lines.find((l) => l['msg'] === 'done') ?? lines.find((l) => l['level'] === 'error');
    return `${r.name}: ${r.code} ${String(last?.['change'] ?? last?.['code'] ?? r.stderr.trim())}`;
  });

type Rule = { apiGroups: string[]; resources: string[]; resourceNames?: string[]; verbs: string[] };
const VERBS: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
function asRbac(r: { method: string; path: string; watch: boolean }): string | undefined {
  const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)\/namespaces\/[^/]+\/([^/]+)(?:\/([^/]+))?$/.exec(r.path);
  if (!m) return undefined;
  const verb = VERBS[r.method] ?? (r.watch ? 'watch' : m[3] ? 'get' : 'list');
  return `${verb} ${m[1] ?? ''}/${m[2]}${m[3] ? `/${m[3]}` : ''}`;
}
const grants = (rules: Rule[]) => rules.flatMap((r) => r.verbs.flatMap((v) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => (r.resourceNames ?? ['*']).map((n) => `${v} ${g}/${res}/${n}`)))));
const allowedBy = (granted: string[], request: string) => granted.includes(request) || (/^create /.test(request) && granted.includes(`${request}/*`));

t.test('subscriptions, topics and databases: valid Jobs, weights, pre-delete removal, the admin Secret, RBAC', async (t) => {
  const objects = await render('web-feature-1', { namespace: NS, values: copy(MESSAGE_HOOKS('http://sqs:4566')) });
  for (const o of objects) t.doesNotThrow(() => validate(o), `${o.kind} ${o.metadata.name} is valid against its schema`);
  t.same(objects.filter((o) => o.kind === 'Job').map((o) => `${o.metadata.name} ${hookOf(o)} ${weightOf(o)}`), [
    'web-feature-1-hooks-secret-0 pre-install,pre-upgrade 0',
    'web-feature-1-hooks-sns-0 pre-install,pre-upgrade 1',
    'web-feature-1-hooks-sns-0-delete pre-delete 1',
    'web-feature-1-hooks-topic-0 pre-install,pre-upgrade 1',
    'web-feature-1-hooks-topic-0-delete pre-delete 1',
    'web-feature-1-hooks-db-0 pre-install,pre-upgrade 1',
    'web-feature-1-hooks-db-0-delete pre-delete 1',
  ], 'the clone first (0), then the subscription, topic and database at the weight of the queues (1); each removed at pre-delete');
  const e = ['--endpoint', 'http://sqs:4566'];
  t.same(jobsFor(objects, 'pre-install').map(argsOf), [
    ['secret', 'clone', '--from', 'web', '--to', 'web-feature-1', '--key', 'feature-1', '--service', 'web', '--ttl', '6h', '--namespace', NS],
    ['postgres', 'create', '--database', 'orders', '--key', 'feature-1', '--template', 'orders_seed', '--secret', 'web-feature-1', '--secret-key', 'DATABASE_URL', '--namespace', NS],
    ['sns', 'subscribe', '--topic', 'events', '--queue', 'orders', '--key', 'feature-1', '--key-name', 'uber-ctx-key', ...e, '--secret', 'web-feature-1', '--secret-key', 'QUEUE_URL', '--namespace', NS],
    ['sns', 'create', '--topic', 'audit', '--key', 'feature-1', ...e, '--secret', 'web-feature-1', '--secret-key', 'AUDIT_TOPIC_ARN', '--namespace', NS],
  ], 'the create commands in Helm\'s order');
  t.same(jobsFor(objects, 'pre-delete').map(argsOf), [
    ['postgres', 'drop', '--database', 'orders', '--key', 'feature-1'],
    ['sns', 'unsubscribe', '--topic', 'events', '--queue', 'orders', '--key', 'feature-1', ...e],
    ['sns', 'delete', '--topic', 'audit', '--key', 'feature-1', ...e],
  ], 'the removals, with no Kubernetes access');
  for (const name of ['web-feature-1-hooks-db-0', 'web-feature-1-hooks-db-0-delete']) {
    t.same(containerOf(find(objects, 'Job', name)).envFrom, [{ secretRef: { name: 'orders-pg-admin' } }], `${name}: the admin connection from its Secret`);
    t.match(containerOf(find(objects, 'Job', name)), { resources: { requests: { memory: '64Mi' }, limits: { memory: '128Mi' } } }, `${name}: the hooks' footprint`);
  }
  t.notOk(objects.filter((o) => o.kind === 'Job' && !o.metadata.name.includes('-db-')).some((j) => containerOf(j).envFrom !== undefined), 'no other Job gets it');
  t.same(find(objects, 'Role', 'web-feature-1-hooks')['rules'], [
    { apiGroups: [''], resourceNames: ['web', 'web-feature-1'], resources: ['secrets'], verbs: ['get'] },
    { apiGroups: [''], resourceNames: ['web-feature-1'], resources: ['secrets'], verbs: ['update'] },
    { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
  ], 'the copy\'s secret: get, update, create (the clone and the sns --secret may create it)');
  const dbOnly = await render('web-feature-1', { namespace: NS, values: copy({ databases: [{ database: 'orders', secret: 'web-feature-1', adminSecret: 'a' }] }) });
  t.same(grants(find(dbOnly, 'Role', 'web-feature-1-hooks')['rules'] as Rule[]), ['get /secrets/web-feature-1', 'update /secrets/web-feature-1'], 'postgres create --secret alone: get and update, no create (the secret must exist)');
  const plain = await render('web-feature-1', { namespace: NS, values: copy({ databases: [{ database: 'orders', adminSecret: 'a' }], subscriptions: [{ topic: 'arn:aws:sns:eu-west-1:123456789012:events', queue: 'orders', keyName: 'Lane-Key' }] }) });
  t.equal(plain.find((o) => o.kind === 'Role' && o.metadata.name === 'web-feature-1-hooks'), undefined, 'without secrets: no Role');
  t.same(argsOf(find(plain, 'Job', 'web-feature-1-hooks-sns-0')), ['sns', 'subscribe', '--topic', 'arn:aws:sns:eu-west-1:123456789012:events', '--queue', 'orders', '--key', 'feature-1', '--key-name', 'Lane-Key'], 'a topic by ARN, a key attribute of its own');
  t.equal(podOf(find(plain, 'Job', 'web-feature-1-hooks-db-0')).automountServiceAccountToken, false, 'no token for a database Job without a secret');
  const base = await render('web', { namespace: NS, values: { service: 'web', image: IMAGE, devstack: { hooks: MESSAGE_HOOKS('http://sqs:4566') } } });
  t.same(base.filter((o) => hookOf(o) !== undefined), [], 'base renders none of them');
});

t.test('bad subscription, topic and database values are refused, by the schema and by the templates', async (t) => {
  const cases: [Record<string, unknown>, RegExp, RegExp, string][] = [
    [{ subscriptions: [{ topic: 'events' }] }, /subscriptions\/0.*queue/s, /subscriptions\[0\]\.queue: null is not an SQS queue name/, 'a subscription without a queue'],
    [{ subscriptions: [{ topic: 'ev"ents', queue: 'q' }] }, /subscriptions\/0\/topic/, /subscriptions\[0\]\.topic: "ev\\"ents" is not an SNS topic name/, 'a topic with a quote'],
    [{ subscriptions: [{ topic: 'e', queue: 'q', keyName: 'AWS.key' }] }, /subscriptions\/0\/keyName/, /subscriptions\[0\]\.keyName: "AWS.key" is not an SNS message attribute name/, 'a reserved key attribute'],
    [{ subscriptions: [{ topic: 'e', queue: 'q', secretKey: 'K' }] }, /subscriptions\/0/, /subscriptions\[0\]\.secretKey: only with secret/, 'a secretKey without a secret'],
    [{ topics: [{ topic: 'arn:aws:sns:eu-west-1:123456789012:events' }] }, /topics\/0\/topic/, /topics\[0\]\.topic: .* is not an SNS topic name/, 'a per-feature topic by ARN'],
    [{ topics: [{ topic: 't', attributes: { 'a-b': '1' } }] }, /topics\/0\/attributes/, /topics\[0\]\.attributes: "a-b" is not an SQS attribute name/, 'a bad attribute name'],
    [{ databases: [{ database: 'orders' }] }, /databases\/0.*adminSecret/s, /databases\[0\]\.adminSecret: the Secret of the admin connection .* is required/, 'a database without its admin Secret'],
    [{ databases: [{ database: 'orders"; DROP', adminSecret: 'a' }] }, /databases\/0\/database/, /databases\[0\]\.database: .* is not a PostgreSQL name/, 'a hostile database name'],
    [{ databases: [{ database: 'orders', owner: '1app', adminSecret: 'a' }] }, /databases\/0\/owner/, /databases\[0\]\.owner: "1app" is not a PostgreSQL name/, 'a bad owner'],
    [{ databases: [{ database: 'orders', adminSecret: 'Not_A_Name' }] }, /databases\/0\/adminSecret/, /databases\[0\]\.adminSecret: "Not_A_Name" is not a Kubernetes object name/, 'an admin Secret that is no name'],
  ];
  for (const [hooks, schema, template, what] of cases) {
    const bySchema = await render('x', { values: copy(hooks) }).then(() => 'rendered', (e: Error) => e.message);
    t.match(bySchema, schema, `schema: ${what}`);
    const byTemplate = await render('x', { values: copy(hooks), args: ['--skip-schema-validation'] }).then(() => 'rendered', (e: Error) => e.message);
    t.match(byTemplate, template, `templates: ${what}`);
  }
  const plan: [Record<string, unknown>, RegExp, string][] = [
    [{ subscriptions: [{ topic: 'e', queue: 'q' }, { topic: 'e', queue: 'q' }] }, /subscriptions\[1\]: the queue "q" is subscribed to the topic "e" twice/, 'one subscription twice'],
    [{ queues: [{ name: 'q' }], subscriptions: [{ topic: 'e', queue: 'q' }] }, /subscriptions\[0\]\.queue: "q" is also in devstack.hooks.queues/, 'a queue both created and subscribed'],
    [{ secrets: [{ from: 'web' }], databases: [{ database: 'orders', secret: 'web', adminSecret: 'a' }] }, /databases\[0\]\.secret: "web" is a base secret/, 'a base secret rewritten'],
    [{ databases: [{ database: 'd'.repeat(60), adminSecret: 'a' }] }, /longer than PostgreSQL's 63 characters/, 'a copy database name too long'],
    [{ databases: [{ database: 'orders', adminSecret: 'a' }, { database: 'orders', template: 'seed', adminSecret: 'a' }] }, /databases\[1\]\.database: the copy's database "orders_feature_1" is made by another entry too/, 'one copy database twice'],
  ];
  for (const [hooks, pattern, what] of plan) t.match(await render('x', { values: copy(hooks) }).then(() => 'rendered', (e: Error) => e.message), pattern, what);
  t.match(await render('x', { values: copy({}, { workload: 'cron' }), args: ['--skip-schema-validation'] }).then(() => 'rendered', (e: Error) => e.message), /workload: "cron" is not one of service, worker/, 'templates: an unknown workload');
  t.match(await render('x', { values: copy({}, { workload: 'cron' }) }).then(() => 'rendered', (e: Error) => e.message), /workload/, 'schema: an unknown workload');
});

// Without PostgreSQL this one fails in CI and is skipped, with the reason, elsewhere (as the hooks' own tests).
const pgSkip = process.env['CI'] === 'true' ? false : (pgServer.postgresMissing() ?? false);
t.test('the rendered subscription, topic and database Jobs run in weight order against fauxqs and PostgreSQL', { skip: pgSkip }, async (t) => {
  const pg = await pgServer.startPostgres(t);
  await pg.query('postgres', 'CREATE DATABASE orders_seed');
  await pg.query('orders_seed', 'CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, \'seed\')');
  await pg.query('postgres', 'CREATE DATABASE orders');

  const api = await startFakeApiServer({ namespaces: [NS] });
  t.teardown(() => api.close());
  const kubeconfig = await api.kubeconfig(join(t.testdir(), 'kubeconfig'), { namespace: 'default' });
  const aws = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  t.teardown(() => aws.stop());
  const config = { endpoint: aws.address, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
  const sqs = new SQSClient(config);
  const sns = new SNSClient(config);
  t.teardown(() => (sqs.destroy(), sns.destroy()));
  const eventsArn = (await sns.send(new CreateTopicCommand({ Name: 'events' }))).TopicArn!;
  await sns.send(new CreateTopicCommand({ Name: 'audit' }));
  aws.createQueue('orders', {});
  aws.subscribe({ topic: 'events', queue: 'orders', attributes: { RawMessageDelivery: 'true' } });
  const queues = async () => ((await sqs.send(new ListQueuesCommand({}))).QueueUrls ?? []).map((u) => u.slice(u.lastIndexOf('/') + 1)).sort();
  const topics = async () => ((await sns.send(new ListTopicsCommand({}))).Topics ?? []).map((x) => x.TopicArn!.split(':')[5]).sort();
  const databases = async () => (await pg.query('postgres', "SELECT datname FROM pg_database WHERE datname LIKE 'orders%' ORDER BY datname")).map((r) => r['datname']);

  api.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'web', namespace: NS }, stringData: { DATABASE_URL: `postgres://app:pw@${pg.env['PGHOST']}:${pg.env['PGPORT']}/orders?sslmode=disable` } });
  api.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'orders-pg-admin', namespace: NS }, stringData: { ...pg.env, PGSSLMODE: 'disable' } });
  const objects = await render('web-feature-1', { namespace: NS, values: copy(MESSAGE_HOOKS(aws.address)) });

  t.same(changes(await helmEvent(api, objects, 'pre-install', kubeconfig)), [
    'web-feature-1-hooks-secret-0: 0 created',
    'web-feature-1-hooks-db-0: 0 created',
    'web-feature-1-hooks-sns-0: 0 created',
    'web-feature-1-hooks-topic-0: 0 created',
  ], 'pre-install: the clone, then the database (its URL into the clone), the subscription and the topic');
  const data = secretData(api, 'web-feature-1');
  t.match(data, { DATABASE_URL: `postgres://app:pw@${pg.env['PGHOST']}:${pg.env['PGPORT']}/orders_feature_1?sslmode=disable`, QUEUE_URL: /\/orders-feature-1$/, AUDIT_TOPIC_ARN: /:audit-feature-1$/ }, 'the copy\'s secret: its database, its queue, its topic');
  t.same(await pg.query('orders_feature_1', 'SELECT id, name FROM items'), [{ id: 1, name: 'seed' }], 'the copy database has the template\'s rows');
  t.same(await queues(), ['orders', 'orders-feature-1'], 'the copy\'s queue');
  t.same(await topics(), ['audit', 'audit-feature-1', 'events'], 'the per-feature topic');
  const key = (k: string) => ({ 'uber-ctx-key': { DataType: 'String', StringValue: k } });
  await sns.send(new PublishCommand({ TopicArn: eventsArn, Message: 'other', MessageAttributes: key('feature-2') }));
  await sns.send(new PublishCommand({ TopicArn: eventsArn, Message: 'mine', MessageAttributes: key('feature-1') }));
  const url = (await sqs.send(new GetQueueUrlCommand({ QueueName: 'orders-feature-1' }))).QueueUrl!;
  const got = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }))).Messages ?? [];
  t.same(got.map((m) => m.Body), ['mine'], 'the copy\'s queue receives its key\'s messages only');

  t.same(changes(await helmEvent(api, objects, 'pre-upgrade', kubeconfig)).map((c) => c.replace(/^\S+ /, '')), ['0 updated', '0 unchanged', '0 unchanged', '0 unchanged'], 'pre-upgrade: the clone takes the base\'s database URL again, the rest is unchanged');
  t.same(secretData(api, 'web-feature-1'), data, 'and postgres create points it at the copy again: the secret as after the install');
  t.same(changes(await helmEvent(api, objects, 'pre-delete', kubeconfig)), [
    'web-feature-1-hooks-db-0-delete: 0 dropped',
    'web-feature-1-hooks-sns-0-delete: 0 deleted',
    'web-feature-1-hooks-topic-0-delete: 0 deleted',
  ], 'pre-delete: the database, the subscription and its queue, the topic');
  t.same(await databases(), ['orders', 'orders_seed'], 'the base and the template stay');
  t.same(await queues(), ['orders'], 'the base queue stays');
  t.same(await topics(), ['audit', 'events'], 'the base topics stay');

  const granted = grants(find(objects, 'Role', 'web-feature-1-hooks')['rules'] as Rule[]);
  const made = [...new Set(api.requests.map(asRbac).filter((r): r is string => r !== undefined && !r.includes('/orders-pg-admin')))];
  t.same(made.filter((r) => !allowedBy(granted, r)), [], 'every request of the Jobs is allowed by the Role');
  t.same(granted.filter((g) => !made.some((r) => r === g || `${r}/*` === g)), [], 'every permission of the Role is used');
});

/** Waits (bounded by the test's timeout) for the source's snapshot to satisfy `ok`. */
function snapshotWhere(source: ReturnType<typeof createKubernetesSource>, ok: (s: Snapshot) => boolean): Promise<Snapshot> {
  return new Promise((resolve) => {
    const now = source.current();
    if (now !== undefined && ok(now)) return resolve(now);
    const off = source.subscribe((s) => {
      if (!ok(s)) return;
      off();
      resolve(s);
    });
  });
}

t.test('workload: worker renders a headless Service in the registry, ready as its EndpointSlice says, and DEVSTACK_SERVICE', async (t) => {
  const worker = (feature: string) => ({ service: 'worker', image: IMAGE, workload: 'worker', devstack: { feature } });
  const [base, feature, service] = await Promise.all([render('worker', { namespace: NS, values: worker('') }), render('worker-feature-1', { namespace: NS, values: worker('feature-1') }), render('worker', { namespace: NS, values: { ...worker(''), workload: undefined } })]);
  const svc = find(feature, 'Service', 'worker-feature-1');
  t.doesNotThrow(() => validate(svc), 'valid');
  t.match(svc, { metadata: { labels: { 'devstack.io/service': 'worker', 'devstack.io/feature': 'feature-1' } }, spec: { clusterIP: 'None', ports: [{ name: 'http', port: 80, targetPort: 'devstack-in', protocol: 'TCP' }] } }, 'headless, with the devstack labels and one port');
  t.notOk('clusterIP' in (find(service, 'Service', 'worker').spec ?? {}), 'a service (the default) keeps its cluster IP');
  const appEnv = (objects: K8sObject[], name: string) => ((find(objects, 'Deployment', name).spec as { template: { spec: PodSpec } }).template.spec.containers[0]!.env ?? []).filter((e) => e.name.startsWith('DEVSTACK_'));
  // The SDK's registry (readiness for lane decisions) is the relay's stream, its namespace the pod's.
  const registry = [{ name: 'DEVSTACK_REGISTRY', value: 'http://devstack-relay.devstack:7400' }, { name: 'DEVSTACK_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } }];
  t.same(appEnv(feature, 'worker-feature-1'), [{ name: 'DEVSTACK_KEY_NAME', value: 'uber-ctx-key' }, { name: 'DEVSTACK_DEFAULT_KEY', value: 'feature-1' }, ...registry, { name: 'DEVSTACK_SERVICE', value: 'worker' }], 'the copy\'s app: its service, lane, key name and the relay for lane consumption');
  t.same(appEnv(base, 'worker'), [{ name: 'DEVSTACK_KEY_NAME', value: 'uber-ctx-key' }, ...registry, { name: 'DEVSTACK_SERVICE', value: 'worker' }], 'base: no default key');
  t.same(appEnv(service, 'worker'), [], 'a service gets none of them without sdk.inject');
  const own = await render('worker', { namespace: NS, values: { ...worker(''), env: [{ name: 'DEVSTACK_SERVICE', value: 'orders-worker' }] } });
  t.same(appEnv(own, 'worker'), [{ name: 'DEVSTACK_KEY_NAME', value: 'uber-ctx-key' }, ...registry, { name: 'DEVSTACK_SERVICE', value: 'orders-worker' }], 'an app\'s own DEVSTACK_SERVICE replaces the chart\'s');

  const api = await startFakeApiServer({ namespaces: [NS] });
  t.teardown(() => api.close());
  const kubeconfig = await api.kubeconfig(join(t.testdir(), 'kubeconfig'), { namespace: NS });
  // The EndpointSlice controller's slice for a Service: the Service port's name, the pod's port.
  const slice = (name: string, ready: boolean) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-x1`, namespace: NS, labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.7'], conditions: { ready } }], ports: [{ name: 'http', port: 15000, protocol: 'TCP' }] });
  for (const objects of [base, feature]) for (const o of objects.filter((x) => x.kind === 'Service')) api.create(o);
  api.create(slice('worker', true));
  api.create(slice('worker-feature-1', true));
  const source = createKubernetesSource({ kubeconfig, namespaces: [NS], targets: 'endpoints', debounceMs: 1 });
  t.teardown(() => source.close());
  await source.start();
  const lane = (s: Snapshot) => resolve(s, 'worker', 'feature-1').lane?.name;
  t.equal(lane(await snapshotWhere(source, (s) => lane(s) === 'feature-1')), 'feature-1', 'the ready copy is the key\'s lane');
  api.patch({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', name: 'worker-feature-1-x1', namespace: NS }, { endpoints: [{ addresses: ['10.0.0.7'], conditions: { ready: false } }] });
  const down = await snapshotWhere(source, (s) => lane(s) === 'base');
  t.match(resolve(down, 'worker', 'feature-1'), { outcome: 'base', lane: { name: 'base' } }, 'its pod not ready: the key falls back to base');
  api.patch({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', name: 'worker-feature-1-x1', namespace: NS }, { endpoints: [{ addresses: ['10.0.0.7'], conditions: { ready: true } }] });
  t.equal(lane(await snapshotWhere(source, (s) => lane(s) === 'feature-1')), 'feature-1', 'ready again: back to the copy');
  // Why the worker's Service keeps a port: the registry takes none without one.
  api.patch({ apiVersion: 'v1', kind: 'Service', name: 'worker-feature-1', namespace: NS }, { spec: { ports: null } });
  const portless = await snapshotWhere(source, (s) => lane(s) === 'base');
  t.match(resolve(portless, 'worker', 'feature-1'), { outcome: 'base' }, 'a Service with no port is not in the registry (no TCP port to route to)');
});
