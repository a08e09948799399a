/*
 * The app chart's hook Jobs with the real helm: every object valid against its schema, the hook
 * annotations and order, RBAC with only the rules of the hooks that are on, bad values refused.
 * Then the rendered Jobs' command lines run, as Helm would run them (by weight, stopping at the
 * first failure), with the real devstack-hooks against the fake API server and an SQS-protocol
 * server; every Kubernetes request they make must be allowed by the rendered Role, and every rule
 * of the Role must be used.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { startFakeApiServer, TRAEFIK_RESOURCES } from '@devstack/kube-fake';
import { ROOT, SERVICE_CHART, find, lint, render, validate, type Container, type K8sObject } from './helpers/charts.ts';
import type { Test } from './helpers/tap.ts';

const CLI = join(ROOT, 'packages/hooks/bin/devstack-hooks.cjs');
const NS = 'shop';
const IMAGE = { repository: 'registry.example/shop/web', tag: '1.4.2' };
const AWS_ENV = [{ name: 'AWS_ACCESS_KEY_ID', value: 'test' }, { name: 'AWS_SECRET_ACCESS_KEY', value: 'test' }, { name: 'AWS_REGION', value: 'us-east-1' }];
const values = (devstack: Record<string, unknown>) => ({ service: 'web', image: IMAGE, devstack });
const copy = (hooks: Record<string, unknown>, more: Record<string, unknown> = {}) => values({ feature: 'feature1', ttl: '6h', ...more, hooks });
// Each hook Job is a child process of the real command; a few dozen of them take a while.
t.setTimeout(180_000);

const EVERY_HOOK = {
  secrets: [{ from: 'web', set: { MODE: 'preview' } }, { from: 'payments', to: 'web-payments-feature1' }],
  queues: [{ name: 'orders.fifo', attributes: { VisibilityTimeout: 60 }, secret: 'web-feature1', secretKey: 'ORDERS_QUEUE_URL' }, { name: 'events' }],
  sharedIngressRoute: { enabled: true, name: 'edge', host: 'shop.example.com', priority: 300, create: true },
  env: AWS_ENV,
};

const hookOf = (o: K8sObject) => o.metadata.annotations?.['helm.sh/hook'];
const weightOf = (o: K8sObject) => Number(o.metadata.annotations?.['helm.sh/hook-weight']);
const hooks = (objects: K8sObject[]) => objects.filter((o) => hookOf(o) !== undefined);
type JobSpec = { backoffLimit: number; activeDeadlineSeconds: number; template: { metadata: { labels: Record<string, string> }; spec: { containers: Container[]; [f: string]: unknown } } };
const jobSpec = (job: K8sObject) => job.spec as unknown as JobSpec;
const containerOf = (job: K8sObject) => jobSpec(job).template.spec.containers[0]!;
const argsOf = (job: K8sObject) => containerOf(job)['args'] as string[];
/** The Jobs Helm runs for `event`, in its order: by weight, then by name. */
const jobsFor = (objects: K8sObject[], event: string) =>
  objects.filter((o) => o.kind === 'Job' && hookOf(o)!.split(',').includes(event)).sort((a, b) => weightOf(a) - weightOf(b) || a.metadata.name.localeCompare(b.metadata.name));

interface Run { name: string; code: number | null; stdout: string; stderr: string }
/** The real devstack-hooks in a child process, with `env` only (besides PATH and the like). */
function runCli(name: string, args: readonly string[], extra: Record<string, string>): Promise<Run> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(KUBECONFIG|DEVSTACK_|AWS_)/.test(k)));
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...inherited, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ name, code, stdout, stderr }));
  });
}
/** A rendered Job's container, run as its pod would: its args and env; a kubeconfig only where the token is mounted. */
function runJob(job: K8sObject, kubeconfig: string): Promise<Run> {
  const env: Record<string, string> = Object.fromEntries((containerOf(job).env ?? []).map((e) => [e.name, e.value ?? '']));
  if (jobSpec(job).template.spec['automountServiceAccountToken'] === true) env['KUBECONFIG'] = kubeconfig;
  return runCli(job.metadata.name, argsOf(job), env);
}

/** What Helm does for a hook event: each Job in order, one at a time; the first failure ends the event. */
async function helmEvent(objects: K8sObject[], event: string, kubeconfig: string): Promise<Run[]> {
  const runs: Run[] = [];
  for (const job of jobsFor(objects, event)) {
    const r = await runJob(job, kubeconfig);
    runs.push(r);
    if (r.code !== 0) break;
  }
  return runs;
}
/** `<job>: <exit code> <the done line's change, or the error's code>` per run. */
/** A fake API server with Traefik's CRDs and the namespace, closed at the end of the test, and a kubeconfig for it. */
async function cluster(t: Test) {
  const api = await startFakeApiServer({ customResources: [...TRAEFIK_RESOURCES], namespaces: [NS] });
  t.teardown(() => api.close());
  const kubeconfig = await api.kubeconfig(join(t.testdir(), 'kubeconfig'), { namespace: 'default' });
  return { api, kubeconfig };
}

const changes = (runs: Run[]) =>
  runs.map((r) => {
    const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const last = lines.find((l) => l['msg'] === 'done') ?? lines.find((l) => l['level'] === 'error');
    return `${r.name}: ${r.code} ${String(last?.['change'] ?? last?.['code'] ?? r.stderr.trim())}`;
  });

type Rule = { apiGroups: string[]; resources: string[]; resourceNames?: string[]; verbs: string[] };
const VERBS: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
/** A request to a namespaced resource as RBAC sees it: `verb group/resource[/name]`; other paths (discovery) are undefined. */
function asRbac(r: { method: string; path: string; watch: boolean }): string | undefined {
  const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)\/namespaces\/[^/]+\/([^/]+)(?:\/([^/]+))?$/.exec(r.path);
  if (!m) return undefined;
  const verb = VERBS[r.method] ?? (r.watch ? 'watch' : m[3] ? 'get' : 'list');
  return `${verb} ${m[1] ?? ''}/${m[2]}${m[3] ? `/${m[3]}` : ''}`;
}
/** Every `verb group/resource[/name]` a Role allows, names listed; a rule without names as `verb group/resource/*`. */
function grants(rules: Rule[]): string[] {
  return rules.flatMap((r) => r.verbs.flatMap((v) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => (r.resourceNames ?? ['*']).map((n) => `${v} ${g}/${res}/${n}`)))));
}
const allowedBy = (granted: string[], request: string) => granted.includes(request) || (/^create /.test(request) && granted.includes(`${request}/*`));

t.test('helm lint --strict with every hook, copy and base', async (t) => {
  t.match(await lint(SERVICE_CHART, copy(EVERY_HOOK, { edge: { enabled: true } })), /0 chart\(s\) failed/, 'copy');
  t.match(await lint(SERVICE_CHART, values({ hooks: EVERY_HOOK })), /0 chart\(s\) failed/, 'base with the same hook values');
});

t.test('a copy with every hook: valid objects, hook annotations, order, Job and pod spec', async (t) => {
  const objects = await render('web-feature1', { namespace: NS, values: copy(EVERY_HOOK) });
  for (const o of objects) t.doesNotThrow(() => validate(o), `${o.kind} ${o.metadata.name} is valid against its schema`);
  t.same(hooks(objects).map((o) => `${o.kind}/${o.metadata.name} ${hookOf(o)} ${weightOf(o)}`), [
    'ServiceAccount/web-feature1-hooks pre-install,pre-upgrade,pre-delete -10',
    'Role/web-feature1-hooks pre-install,pre-upgrade,pre-delete -10',
    'RoleBinding/web-feature1-hooks pre-install,pre-upgrade,pre-delete -10',
    'Job/web-feature1-hooks-secret-0 pre-install,pre-upgrade 0',
    'Job/web-feature1-hooks-secret-1 pre-install,pre-upgrade 0',
    'Job/web-feature1-hooks-sqs-0 pre-install,pre-upgrade 1',
    'Job/web-feature1-hooks-sqs-0-delete pre-delete 1',
    'Job/web-feature1-hooks-sqs-1 pre-install,pre-upgrade 1',
    'Job/web-feature1-hooks-sqs-1-delete pre-delete 1',
    'Job/web-feature1-hooks-route pre-install,pre-upgrade 2',
    'Job/web-feature1-hooks-route-delete pre-delete 0',
  ], 'RBAC first (-10); create: secrets, queues, then the route; delete: the route, then the queues');
  for (const o of hooks(objects)) {
    t.equal(o.metadata.annotations?.['helm.sh/hook-delete-policy'], 'before-hook-creation,hook-succeeded', `${o.kind} ${o.metadata.name}: removed after success, and before the next run`);
    t.equal(o.metadata.annotations?.['janitor/ttl'], '6h', `${o.kind} ${o.metadata.name}: the copy's TTL`);
  }
  t.same(jobsFor(objects, 'pre-install').map(argsOf), [
    ['secret', 'clone', '--from', 'web', '--to', 'web-feature1', '--key', 'feature1', '--service', 'web', '--ttl', '6h', '--set', 'MODE=preview', '--namespace', NS],
    ['secret', 'clone', '--from', 'payments', '--to', 'web-payments-feature1', '--key', 'feature1', '--service', 'web', '--ttl', '6h', '--namespace', NS],
    ['sqs', 'create', '--queue', 'orders.fifo', '--key', 'feature1', '--attributes', '{"VisibilityTimeout":60}', '--secret', 'web-feature1', '--secret-key', 'ORDERS_QUEUE_URL', '--namespace', NS],
    ['sqs', 'create', '--queue', 'events', '--key', 'feature1'],
    ['ingressroute', 'add', '--name', 'edge', '--host', 'shop.example.com', '--key', 'feature1', '--service', 'web-feature1', '--port', '80', '--traefik', 'v3', '--api-group', 'traefik.io', '--key-name', 'uber-ctx-key', '--priority', '300', '--create', '--namespace', NS],
  ], 'the create commands, in the order Helm runs them');
  const service = find(objects, 'Service', 'web-feature1').spec as { selector: Record<string, string> };
  for (const job of objects.filter((o) => o.kind === 'Job')) {
    const spec = jobSpec(job);
    const what = job.metadata.name;
    t.match(spec, { backoffLimit: 2, activeDeadlineSeconds: 120, template: { spec: { serviceAccountName: 'web-feature1-hooks', restartPolicy: 'Never' } } }, `${what}: limits, its ServiceAccount, no restarts`);
    t.equal(spec.template.spec['automountServiceAccountToken'], argsOf(job).includes('--namespace'), `${what}: the API token only for a command that talks to the API`);
    t.match(containerOf(job), {
      image: 'devstack-hooks:latest',
      securityContext: { runAsNonRoot: true, runAsUser: 1000, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
      resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } },
    }, `${what}: non-root, read-only, no privileges, bounded`);
    const labels = spec.template.metadata.labels;
    t.notOk(Object.entries(service.selector).every(([k, v]) => labels[k] === v), `${what}: its pod is not selected by the copy's Service`);
  }
  t.equal(find(objects, 'ServiceAccount', 'web-feature1-hooks')['automountServiceAccountToken'], false, 'the ServiceAccount mounts no token by default');
});

t.test('every flag of every rendered Job is one its command documents', async (t) => {
  // gRPC, so that the route's Job carries --scheme too.
  const objects = await render('web-feature1', { namespace: NS, values: { ...copy({ ...EVERY_HOOK, queues: [...EVERY_HOOK.queues, { name: 'q', endpoint: 'http://sqs:4566', region: 'eu-west-1' }] }), appProtocol: 'grpc' } });
  const flags = new Map<string, Set<string>>();
  for (const args of objects.filter((o) => o.kind === 'Job').map(argsOf)) {
    const command = args.slice(0, 2).join(' ');
    flags.set(command, new Set([...(flags.get(command) ?? []), ...args.filter((a) => a.startsWith('--'))]));
  }
  t.same([...flags.keys()].sort(), ['ingressroute add', 'ingressroute remove', 'secret clone', 'sqs create', 'sqs delete'], 'every command the chart runs');
  const helps = await Promise.all([...flags.keys()].map((command) => runCli(command, [...command.split(' '), '--help'], {})));
  for (const help of helps) {
    t.equal(help.code, 0, `${help.name} --help`);
    for (const flag of flags.get(help.name)!) t.match(help.stdout, new RegExp(`\\n  ${flag} `), `${help.name}: ${flag}`);
  }
  t.ok(flags.get('ingressroute add')!.has('--scheme'), 'the gRPC copy\'s route is added with --scheme');
});

t.test('base renders no hook, whatever the hook values', async (t) => {
  const [plain, hooked] = await Promise.all([render('web', { values: values({}) }), render('web', { values: values({ hooks: EVERY_HOOK }) })]);
  t.same(hooked.map((o) => `${o.kind}/${o.metadata.name}`), plain.map((o) => `${o.kind}/${o.metadata.name}`), 'the same objects as without hooks');
  t.same(hooks(hooked), [], 'no hook object');
});

t.test('RBAC: one Role, with the rules of the hooks that are on and nothing else', async (t) => {
  const roleOf = async (hookValues: Record<string, unknown>, more: Record<string, unknown> = {}) => {
    const objects = await render('web-feature1', { namespace: NS, values: copy(hookValues, more) });
    const role = objects.find((o) => o.kind === 'Role' && o.metadata.name === 'web-feature1-hooks');
    return { objects, rules: role?.['rules'] as Rule[] | undefined };
  };
  const secrets = await roleOf({ secrets: [{ from: 'web' }] });
  t.same(secrets.rules, [
    { apiGroups: [''], resourceNames: ['web', 'web-feature1'], resources: ['secrets'], verbs: ['get'] },
    { apiGroups: [''], resourceNames: ['web-feature1'], resources: ['secrets'], verbs: ['update'] },
    { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
  ], 'secret clone: get on the base and the copy, update on the copy, create');
  t.equal(hookOf(find(secrets.objects, 'Role', 'web-feature1-hooks')), 'pre-install,pre-upgrade', 'no pre-delete Job, so no RBAC at pre-delete');
  const queues = await roleOf({ queues: [{ name: 'orders' }] });
  t.equal(queues.rules, undefined, 'sqs without a secret: no Role at all');
  t.same(queues.objects.filter((o) => ['ServiceAccount', 'RoleBinding'].includes(o.kind) && o.metadata.name.endsWith('-hooks')).map((o) => o.kind), ['ServiceAccount'], 'only the ServiceAccount (which IRSA annotates)');
  const queueSecret = await roleOf({ queues: [{ name: 'orders', secret: 'orders-feature1' }] });
  t.same(grants(queueSecret.rules!), ['get /secrets/orders-feature1', 'update /secrets/orders-feature1', 'create /secrets/*'], 'sqs create --secret: get, update on that secret, create');
  const route = await roleOf({ sharedIngressRoute: { enabled: true, name: 'edge' } }, { edge: { traefik: 'v2', apiGroup: 'traefik.containo.us' } });
  t.same(route.rules, [{ apiGroups: ['traefik.containo.us'], resourceNames: ['edge'], resources: ['ingressroutes'], verbs: ['get', 'update'] }], 'ingressroute add/remove: get, update on the named route, in the edge API group');
  t.match(argsOf(find(route.objects, 'Job', 'web-feature1-hooks-route')), ['ingressroute', 'add', '--name', 'edge', '--host', 'example.com', '--key', 'feature1', '--service', 'web-feature1', '--port', '80', '--traefik', 'v2', '--api-group', 'traefik.containo.us'], 'host from devstack.edge, the release\'s Service');
  const sa = await render('web-feature1', { namespace: NS, values: copy({ queues: [{ name: 'q' }], serviceAccount: { annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/q' } } }) });
  t.match(find(sa, 'ServiceAccount', 'web-feature1-hooks').metadata.annotations, { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/q', 'helm.sh/hook-weight': '-10' }, 'IRSA annotation beside the hook annotations');
});

t.test('the rendered Jobs run as Helm runs them, with exactly the Role\'s permissions', async (t) => {
  const { api, kubeconfig } = await cluster(t);
  const sqs = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  t.teardown(() => sqs.stop());
  const client = new SQSClient({ endpoint: sqs.address, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  t.teardown(() => client.destroy());
  const queueNames = async () => ((await client.send(new ListQueuesCommand({}))).QueueUrls ?? []).map((u) => u.slice(u.lastIndexOf('/') + 1)).sort();
  sqs.createQueue('orders.fifo', { attributes: { FifoQueue: 'true' } });
  sqs.createQueue('events', {});
  for (const name of ['web', 'payments']) api.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: NS }, stringData: { DB_URL: `postgres://${name}`, MODE: 'base' } });
  const everyHook = { ...EVERY_HOOK, queues: EVERY_HOOK.queues.map((q) => ({ ...q, endpoint: sqs.address })) };
  const objects = await render('web-feature1', { namespace: NS, values: copy(everyHook) });

  const install = await helmEvent(objects, 'pre-install', kubeconfig);
  t.same(changes(install), ['web-feature1-hooks-secret-0: 0 created', 'web-feature1-hooks-secret-1: 0 created', 'web-feature1-hooks-sqs-0: 0 created', 'web-feature1-hooks-sqs-1: 0 created', 'web-feature1-hooks-route: 0 created'], 'pre-install: every Job succeeds');
  const secret = api.get({ apiVersion: 'v1', kind: 'Secret', name: 'web-feature1', namespace: NS }) as K8sObject & { data: Record<string, string> };
  const data = Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
  t.match(data, { DB_URL: 'postgres://web', MODE: 'preview', ORDERS_QUEUE_URL: /orders-feature1\.fifo$/ }, 'the clone, its override and the queue URL');
  t.match(secret.metadata, { labels: { 'devstack.io/feature': 'feature1', 'devstack.io/service': 'web' }, annotations: { 'janitor/ttl': '6h' } }, 'labelled as the copy\'s, with its TTL');
  t.same(await queueNames(), ['events', 'events-feature1', 'orders-feature1.fifo', 'orders.fifo'], 'the copy\'s queues');
  const route = api.get({ apiVersion: 'traefik.io/v1alpha1', kind: 'IngressRoute', name: 'edge', namespace: NS }) as K8sObject & { spec: { routes: unknown[] } };
  t.same(route.spec.routes, [{ kind: 'Rule', match: 'Host(`shop.example.com`) && Header(`uber-ctx-key`, `feature1`)', priority: 300, services: [{ name: 'web-feature1', port: 80 }] }], 'the copy\'s rule on the shared route');

  api.patch({ apiVersion: 'v1', kind: 'Secret', name: 'payments', namespace: NS }, { data: { MODE: Buffer.from('rotated').toString('base64') } });
  const upgrade = await helmEvent(objects, 'pre-upgrade', kubeconfig);
  t.same(changes(upgrade).map((c) => c.replace(/^\S+ /, '')), ['0 unchanged', '0 updated', '0 unchanged', '0 unchanged', '0 unchanged'], 'pre-upgrade: the same Jobs again bring the changed base secret\'s copy up to date, and change nothing else');
  const remove = await helmEvent(objects, 'pre-delete', kubeconfig);
  t.same(changes(remove), ['web-feature1-hooks-route-delete: 0 removed', 'web-feature1-hooks-sqs-0-delete: 0 deleted', 'web-feature1-hooks-sqs-1-delete: 0 deleted'], 'pre-delete: the route first, then the queues');
  t.same((api.get({ apiVersion: 'traefik.io/v1alpha1', kind: 'IngressRoute', name: 'edge', namespace: NS }) as typeof route).spec.routes, [], 'the rule is gone from the shared route');
  t.same(await queueNames(), ['events', 'orders.fifo'], 'the copy\'s queues are gone, the base\'s stay');

  const granted = grants(find(objects, 'Role', 'web-feature1-hooks')['rules'] as Rule[]);
  const made = [...new Set(api.requests.map(asRbac).filter((r): r is string => r !== undefined))];
  t.same(made.filter((r) => !allowedBy(granted, r)), [], 'every request is allowed by the Role');
  t.same(granted.filter((g) => !made.some((r) => r === g || `${r}/*` === g)), [], 'every permission of the Role is used');
});

t.test('a gRPC copy\'s rule on a shared IngressRoute: scheme h2c, valid, set on an upgrade from http, removed at uninstall', async (t) => {
  const { api, kubeconfig } = await cluster(t);
  const ref = { apiVersion: 'traefik.io/v1alpha1', kind: 'IngressRoute', name: 'edge', namespace: NS };
  const baseRoute = { kind: 'Rule', match: 'Host(`shop.example.com`)', services: [{ name: 'web', port: 80, scheme: 'h2c' }] };
  api.create({ apiVersion: 'traefik.io/v1alpha1', kind: 'IngressRoute', metadata: { name: 'edge', namespace: NS }, spec: { entryPoints: ['web'], routes: [baseRoute] } });
  const shared = { sharedIngressRoute: { enabled: true, name: 'edge', host: 'shop.example.com' } };
  const [grpc, before, other] = await Promise.all([
    render('web-feature1', { namespace: NS, values: { ...copy(shared), appProtocol: 'grpc' } }),
    render('web-feature1', { namespace: NS, values: copy(shared) }),
    render('web-feature2', { namespace: NS, values: values({ feature: 'feature2', hooks: shared }) }),
  ]);
  const edge = () => api.get(ref) as K8sObject & { spec: { routes: unknown[] } };
  const rule = (key: string) => `Host(\`shop.example.com\`) && Header(\`uber-ctx-key\`, \`${key}\`)`;
  const feature1 = (scheme?: string) => ({ kind: 'Rule', match: rule('feature1'), services: [{ name: 'web-feature1', port: 80, ...(scheme === undefined ? {} : { scheme }) }] });
  const feature2 = { kind: 'Rule', match: rule('feature2'), services: [{ name: 'web-feature2', port: 80 }] };

  t.same(changes(await helmEvent(before, 'pre-install', kubeconfig)), ['web-feature1-hooks-route: 0 added'], 'the copy installed while it still spoke HTTP/1.1');
  t.same(edge().spec.routes, [baseRoute, feature1()], 'its rule without a scheme');
  t.same(changes(await helmEvent(grpc, 'pre-upgrade', kubeconfig)), ['web-feature1-hooks-route: 0 updated'], 'upgraded to appProtocol grpc');
  t.same(edge().spec.routes, [baseRoute, feature1('h2c')], 'the same rule, in place, now with scheme h2c');
  t.same(changes(await helmEvent(grpc, 'pre-upgrade', kubeconfig)), ['web-feature1-hooks-route: 0 unchanged'], 'the same upgrade again changes nothing');
  t.same(changes(await helmEvent(other, 'pre-install', kubeconfig)), ['web-feature2-hooks-route: 0 added'], 'an HTTP/1.1 copy beside it');
  t.same(edge().spec.routes, [baseRoute, feature1('h2c'), feature2], 'each copy with its own scheme');
  t.doesNotThrow(() => validate(edge()), 'the shared IngressRoute is valid against Traefik\'s schema');
  t.same(JSON.parse(edge().metadata.annotations!['devstack.io/hook-routes']!), { feature1: rule('feature1'), feature2: rule('feature2') }, 'both rules recorded as the hook\'s');

  t.same(changes(await helmEvent(grpc, 'pre-delete', kubeconfig)), ['web-feature1-hooks-route-delete: 0 removed'], 'the gRPC copy uninstalled');
  t.same(edge().spec.routes, [baseRoute, feature2], 'its h2c rule is gone, base and the other copy stay');
  t.doesNotThrow(() => validate(edge()), 'still valid');

  const granted = grants(find(grpc, 'Role', 'web-feature1-hooks')['rules'] as Rule[]);
  t.same(grants(find(other, 'Role', 'web-feature2-hooks')['rules'] as Rule[]), granted, 'the same Role for an h2c and an HTTP/1.1 copy');
  const made = [...new Set(api.requests.map(asRbac).filter((r): r is string => r !== undefined))];
  t.same(made.filter((r) => !allowedBy(granted, r)), [], 'every request is allowed by that Role');
});

t.test('a failed pre-install hook leaves nothing behind', async (t) => {
  const { api, kubeconfig } = await cluster(t);
  const objects = await render('web-feature1', { namespace: NS, values: copy({ secrets: [{ from: 'web' }], sharedIngressRoute: { enabled: true, name: 'edge' } }) });
  const before = api.resourceVersion;
  const missingBase = await helmEvent(objects, 'pre-install', kubeconfig);
  t.same(missingBase.map((r) => [r.name, r.code]), [['web-feature1-hooks-secret-0', 1]], 'the clone fails (no base secret) and Helm runs nothing after it');
  t.equal(api.resourceVersion, before, 'nothing was written');
  api.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'web', namespace: NS }, stringData: { A: '1' } });
  const missingRoute = await helmEvent(objects, 'pre-install', kubeconfig);
  t.same(missingRoute.map((r) => [r.name, r.code]), [['web-feature1-hooks-secret-0', 0], ['web-feature1-hooks-route', 1]], 'the last hook, the route, fails (no shared route, no create)');
  t.equal(api.tryGet({ apiVersion: 'traefik.io/v1alpha1', kind: 'IngressRoute', name: 'edge', namespace: NS }), undefined, 'no route was made');
  const rollback = await helmEvent(objects, 'pre-delete', kubeconfig);
  t.same(changes(rollback), ['web-feature1-hooks-route-delete: 0 no-ingressroute'], 'the uninstall of the failed release succeeds');
  t.match((api.get({ apiVersion: 'v1', kind: 'Secret', name: 'web-feature1', namespace: NS }) as K8sObject).metadata.annotations, { 'janitor/ttl': '6h' }, 'the clone made before the failure carries the copy\'s TTL');
  const forever = await render('web-feature1', { namespace: NS, values: values({ feature: 'feature1', hooks: { secrets: [{ from: 'web' }] } }) });
  t.match(argsOf(find(forever, 'Job', 'web-feature1-hooks-secret-0')), ['secret', 'clone', '--from', 'web', '--to', 'web-feature1', '--key', 'feature1', '--service', 'web', '--ttl', 'forever'], 'a copy without TTL: its secrets live as long as it does');
});

t.test('bad hook values are refused at render time, with the value named', async (t) => {
  const refused = async (hookValues: Record<string, unknown>, pattern: RegExp, what: string, more: Record<string, unknown> = {}) => {
    const error = await render('x', { values: copy(hookValues, more) }).then(() => 'rendered', (e: Error) => e.message);
    t.match(error, pattern, what);
  };
  await Promise.all([
    refused({ bogus: 1 }, /additional properties 'bogus' not allowed/, 'an unknown hooks key'),
    refused({ secrets: [{ to: 'x' }] }, /\/devstack\/hooks\/secrets\/0.*from/s, 'a secret without from'),
    refused({ secrets: [{ from: 'Web_Secret' }] }, /\/devstack\/hooks\/secrets\/0\/from/, 'a base secret that is not a name'),
    refused({ secrets: [{ from: 'web', set: { 'a b': 'x' } }] }, /\/devstack\/hooks\/secrets\/0\/set.*'a b' not allowed/, 'a set key that is not a Secret key'),
    refused({ secrets: [{ from: 'web', set: { PORT: 5432 } }] }, /\/devstack\/hooks\/secrets\/0\/set\/PORT/, 'a set value that is not a string'),
    refused({ secrets: [{ from: 'web' }, { from: 'api', to: 'web' }] }, /secrets\[1\]\.to: "web" is a base secret/, 'a clone into a base secret'),
    refused({ secrets: [{ from: 'web' }, { from: 'api', to: 'web-feature1' }] }, /secrets\[1\]\.to: "web-feature1" is already the copy/, 'two clones into one secret'),
    refused({ queues: [{ name: 'orders`' }] }, /\/devstack\/hooks\/queues\/0\/name/, 'a queue name with a backtick'),
    refused({ queues: [{ name: 'q', attributes: { 'Bad-Name': '1' } }] }, /\/devstack\/hooks\/queues\/0\/attributes.*'Bad-Name' not allowed/, 'an attribute that is not an SQS attribute name'),
    refused({ queues: [{ name: 'q', secretKey: 'URL' }] }, /\/devstack\/hooks\/queues\/0/, 'a secretKey without a secret'),
    refused({ queues: [{ name: 'q', endpoint: 'localstack:4566' }] }, /\/devstack\/hooks\/queues\/0\/endpoint/, 'an endpoint that is not a URL'),
    refused({ queues: [{ name: 'q' }, { name: 'q' }] }, /queues\[1\]\.name: "q" is listed twice/, 'one queue twice'),
    refused({ secrets: [{ from: 'web' }], queues: [{ name: 'q', secret: 'web' }] }, /queues\[0\]\.secret: "web" is a base secret/, 'a queue URL into a base secret'),
    refused({ queues: [{ name: 'q'.repeat(75) }] }, /longer than SQS's 80 characters/, 'a copy queue name too long for SQS'),
    refused({ sharedIngressRoute: { enabled: true } }, /\/devstack\/hooks\/sharedIngressRoute/, 'a shared route without a name'),
    refused({ sharedIngressRoute: { enabled: true, name: 'web-feature1' } }, /is this release's own IngressRoute/, 'the release\'s own IngressRoute as the shared one', { edge: { enabled: true } }),
    refused({ sharedIngressRoute: { enabled: true, name: 'edge' } }, /Traefik v3 serves its CRDs under traefik.io only/, 'the v2 group with v3', { edge: { apiGroup: 'traefik.containo.us' } }),
    refused({ sharedIngressRoute: { enabled: true, name: 'edge', port: 0 } }, /\/devstack\/hooks\/sharedIngressRoute\/port/, 'port 0'),
    refused({ backoffLimit: -1 }, /\/devstack\/hooks\/backoffLimit/, 'a negative backoffLimit'),
    refused({ image: { repository: 'h', pullPolicy: 'Sometimes' } }, /\/devstack\/hooks\/image\/pullPolicy/, 'an unknown pull policy'),
  ]);
  const long = await render('x', { values: { service: 'a'.repeat(40), image: IMAGE, devstack: { feature: 'b'.repeat(22), hooks: { queues: [{ name: 'q' }] } } } });
  const names = long.filter((o) => o.kind === 'Job').map((o) => o.metadata.name);
  t.ok(names.length === 2 && names.every((n) => n.length <= 63) && new Set(names).size === 2, `long Job names are cut to 63 characters and stay distinct: ${names.join(', ')}`);
});
