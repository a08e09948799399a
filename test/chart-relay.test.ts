/*
 * charts/devstack-relay rendered with the real helm: the objects (RBAC verbs exactly, spread
 * replicas, the PodDisruptionBudget, probes, resources, the locked-down container), every value
 * refused by the schema and, with --skip-schema-validation, by the templates; then the rendered
 * relay container run for real (its args and env, with the real `devstack-relay`) against the
 * fake API server, into which kubectl created the rendered objects it stores.
 */
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { stringify } from 'yaml';
import * as networking from 'kubernetes-models/networking.k8s.io/v1';
import * as policy from 'kubernetes-models/policy/v1';
import * as rbac from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { startFakeApiServer } from '@devstack/kube-fake';
import { HelmError, ROOT, envOf, find, podSpec, render, tools, validate, type Container, type K8sObject } from './helpers/charts.ts';

const run = promisify(execFile);
const CHART = join(ROOT, 'charts/devstack-relay');
const CLI = join(ROOT, 'packages/relay/bin/devstack-relay.cjs');
const HOME = 'devstack';
const SERVED = ['shop', 'payments'];

const relay = (values: Record<string, unknown>, args?: string[]) => render('relay', { chart: CHART, namespace: HOME, values, ...(args ? { args } : {}) });

/** The shared helper's models, and the kinds only this chart renders. */
function check(object: K8sObject): void {
  const own: Record<string, new (data: never) => { validate(): void }> = {
    PodDisruptionBudget: policy.PodDisruptionBudget,
    NetworkPolicy: networking.NetworkPolicy,
    ClusterRole: rbac.ClusterRole,
    ClusterRoleBinding: rbac.ClusterRoleBinding,
  };
  const Model = own[object.kind];
  if (Model) new Model(object as never).validate();
  else validate(object);
}

const container = (objects: K8sObject[]): Container => podSpec(find(objects, 'Deployment', 'relay')).containers.find((c) => c.name === 'devstack-relay')!;
const RULES = [
  { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
];

t.test('served namespaces: a Role and RoleBinding in each, two spread replicas, a PDB, probes, resources', async (t) => {
  const objects = await relay({ namespaces: SERVED, networkPolicy: { enabled: true } });
  for (const object of objects) check(object);
  t.same(objects.map((o) => o.kind).sort(), ['Deployment', 'NetworkPolicy', 'PodDisruptionBudget', 'Role', 'Role', 'RoleBinding', 'RoleBinding', 'Service', 'ServiceAccount'], 'the objects, no cluster-wide one');

  const roles = objects.filter((o) => o.kind === 'Role');
  t.same(roles.map((r) => r.metadata.namespace).sort(), [...SERVED].sort(), 'a Role in each served namespace');
  for (const role of roles) t.same(role['rules'], RULES, `${role.metadata.namespace}: exactly get, list and watch on services and endpointslices`);
  for (const binding of objects.filter((o) => o.kind === 'RoleBinding')) {
    t.same(binding['subjects'], [{ kind: 'ServiceAccount', name: 'relay', namespace: HOME }], `${binding.metadata.namespace}: bound to the relay's ServiceAccount in its own namespace`);
    t.match(binding['roleRef'], { kind: 'Role', name: roles[0]!.metadata.name }, 'to the Role');
  }

  const deployment = find(objects, 'Deployment', 'relay');
  const spec = deployment.spec as { replicas: number; strategy: unknown; selector: { matchLabels: Record<string, string> } };
  t.equal(spec.replicas, 2, 'two replicas');
  t.match(spec.strategy, { rollingUpdate: { maxUnavailable: 0 } }, 'a rollout keeps one serving');
  const pod = podSpec(deployment) as Record<string, unknown>;
  t.equal(pod['serviceAccountName'], 'relay');
  const spread = pod['topologySpreadConstraints'] as { topologyKey: string; labelSelector: { matchLabels: unknown } }[];
  t.same(spread.map((c) => c.topologyKey), ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'], 'spread over nodes and zones');
  for (const c of spread) t.same(c.labelSelector.matchLabels, spec.selector.matchLabels, 'over the release\'s own pods');
  t.match(pod['affinity'], { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: spec.selector.matchLabels } } }] } }, 'and kept off each other\'s node');
  t.match(pod['securityContext'], { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });

  const pdb = find(objects, 'PodDisruptionBudget', 'relay');
  t.same(pdb.spec, { maxUnavailable: 1, selector: { matchLabels: spec.selector.matchLabels } }, 'one replica evicted at a time');

  const c = container(objects);
  t.same(c['args'], ['--namespace', 'shop', '--namespace', 'payments', '--targets', 'service', '--cluster-domain', 'cluster.local'], 'a --namespace per served namespace');
  t.match(envOf(c), { DEVSTACK_PORT: '7400', DEVSTACK_ADMIN_PORT: '7401', NODE_OPTIONS: '--max-old-space-size=384' });
  t.match(c['livenessProbe'], { httpGet: { path: '/healthz', port: 'admin' } }, 'liveness: /healthz on the admin port');
  t.match(c['readinessProbe'], { httpGet: { path: '/readyz', port: 'admin' } }, 'readiness: /readyz on the admin port');
  t.same(c.ports, [{ name: 'stream', containerPort: 7400, protocol: 'TCP' }, { name: 'admin', containerPort: 7401, protocol: 'TCP' }]);
  t.same(c['resources'], { requests: { cpu: '50m', memory: '192Mi' }, limits: { memory: '512Mi' } }, 'resources from the measurement (README)');
  t.same(c['securityContext'], { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] } }, 'no privilege, read-only root, every capability dropped');

  const service = find(objects, 'Service', 'relay');
  t.same((service.spec as { ports: unknown[] }).ports.map((p) => (p as { name: string; port: number }).port), [7400, 7401], 'the Service: stream 7400, admin 7401');

  const np = find(objects, 'NetworkPolicy', 'relay').spec as { ingress: { ports: { port: string }[]; from?: { podSelector: unknown; namespaceSelector: { matchExpressions: { values: string[] }[] } }[] }[] };
  const stream = np.ingress.find((rule) => rule.ports[0]!.port === 'stream')!;
  t.same(stream.from![0]!.podSelector, { matchLabels: { 'devstack.io/relay-client': 'true' } }, 'the NetworkPolicy: only labelled pods on the stream port');
  t.same(stream.from![0]!.namespaceSelector.matchExpressions[0]!.values, [...SERVED, HOME], 'from the served namespaces and its own');
  t.notOk(np.ingress.find((rule) => rule.ports[0]!.port === 'admin')!.from, 'the admin port open to probes and scrapers');

  t.notOk((await relay({ namespaces: SERVED })).some((o) => o.kind === 'NetworkPolicy'), 'no NetworkPolicy by default');
  t.notOk((await relay({ namespaces: SERVED, podDisruptionBudget: { enabled: false, maxUnavailable: 1 } })).some((o) => o.kind === 'PodDisruptionBudget'), 'the PDB can be turned off');
});

t.test('allNamespaces: a ClusterRole and ClusterRoleBinding, --all-namespaces, no Role', async (t) => {
  const objects = await relay({ allNamespaces: true, maxNamespaces: 50, networkPolicy: { enabled: true } });
  for (const object of objects) check(object);
  t.notOk(objects.some((o) => o.kind === 'Role' || o.kind === 'RoleBinding'), 'no namespaced Role');
  const role = objects.find((o) => o.kind === 'ClusterRole')!;
  t.same(role['rules'], RULES, 'exactly get, list and watch on services and endpointslices, cluster-wide');
  const binding = objects.find((o) => o.kind === 'ClusterRoleBinding')!;
  t.same(binding['roleRef'], { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
  t.same(binding['subjects'], [{ kind: 'ServiceAccount', name: 'relay', namespace: HOME }]);
  t.match(role.metadata.name, new RegExp(`${HOME}.*relay`), 'a cluster-scoped name that carries the release\'s namespace');
  t.same(container(objects)['args'], ['--all-namespaces', '--max-namespaces', '50', '--targets', 'service', '--cluster-domain', 'cluster.local']);
  const np = find(objects, 'NetworkPolicy', 'relay').spec as { ingress: { from?: { namespaceSelector: unknown }[] }[] };
  t.same(np.ingress[0]!.from![0]!.namespaceSelector, {}, 'the NetworkPolicy admits labelled clients from every namespace');
});

t.test('bad values are refused by the schema and, without it, by the templates', async (t) => {
  const ok = { namespaces: ['shop'] };
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['no namespace', {}, /namespaces/],
    ['namespaces and allNamespaces', { namespaces: ['shop'], allNamespaces: true }, /allNamespaces/],
    ['a namespace that is not a DNS label', { namespaces: ['Shop'] }, /namespaces\[0\]/],
    ['a namespace with a newline', { namespaces: ['shop\n- --all-namespaces'] }, /namespaces\[0\]/],
    ['a namespace twice', { namespaces: ['shop', 'shop'] }, /namespaces/],
    ['allNamespaces as a string', { allNamespaces: 'true' }, /allNamespaces/],
    ['replicas 0', { ...ok, replicas: 0 }, /replicas/],
    ['replicas as a string', { ...ok, replicas: '2' }, /replicas/],
    ['targets', { ...ok, targets: 'pods' }, /targets/],
    ['a port out of range', { ...ok, ports: { stream: 70000, admin: 7401 } }, /ports\.stream/],
    ['an admin port as a string', { ...ok, ports: { stream: 7400, admin: '7401' } }, /ports\.admin/],
    ['the same port twice', { ...ok, ports: { stream: 7400, admin: 7400 } }, /port/],
    ['logLevel', { ...ok, logLevel: 'trace' }, /logLevel/],
    ['a bad image repository', { ...ok, image: { repository: 'x y', tag: '', pullPolicy: 'Always' } }, /image\.repository/],
    ['a bad pull policy', { ...ok, image: { repository: 'devstack-relay', tag: '', pullPolicy: 'Sometimes' } }, /pullPolicy/],
    ['a bad quantity', { ...ok, resources: { requests: { memory: 'lots' }, limits: { memory: '512Mi' } } }, /resources\.requests\.memory/],
    ['no memory limit', { ...ok, resources: { requests: { memory: '192Mi' }, limits: null } }, /resources\.limits|limits/],
    ['a heap too small', { ...ok, heapMiB: 8 }, /heapMiB/],
    ['maxNamespaces 0', { allNamespaces: true, maxNamespaces: 0 }, /maxNamespaces/],
    ['a bad clusterDomain', { ...ok, clusterDomain: 'cluster local' }, /clusterDomain/],
    ['the PDB maxUnavailable 0', { ...ok, podDisruptionBudget: { enabled: true, maxUnavailable: 0 } }, /maxUnavailable/],
    ['no client selector', { ...ok, networkPolicy: { enabled: true, clientLabels: null } }, /clientLabels/],
    ['a bad client label value', { ...ok, networkPolicy: { enabled: true, clientLabels: { app: 'a b' } } }, /clientLabels/],
    ['a bad nodeSelector', { ...ok, nodeSelector: 'linux' }, /nodeSelector/],
    ['a toleration field that is not one', { ...ok, tolerations: [{ key: 'a', securityContext: {} }] }, /tolerations/],
  ];
  await Promise.all(cases.map(async ([what, values, message]) => {
    const refuse = (args?: string[]) => relay(values, args).then(() => undefined, (error: unknown) => error as Error);
    t.ok((await refuse()) instanceof HelmError, `${what}: refused by the schema`);
    const refused = await refuse(['--skip-schema-validation']);
    t.ok(refused instanceof HelmError, `${what}: refused by the templates without the schema`);
    t.match(refused?.message ?? '', message, `${what}: the message names the value`);
  }));
  await t.resolves(relay(ok, ['--skip-schema-validation']), 'good values render without the schema too');
});

t.test('the rendered relay container, run for real against the fake API server', async (t) => {
  const { kubectl } = tools();
  const api = await startFakeApiServer({ namespaces: [HOME, ...SERVED, 'other'] });
  t.teardown(() => api.close());
  const dir = t.testdir();
  const kubeconfig = await api.kubeconfig(join(dir, 'kubeconfig'));

  const objects = await relay({ namespaces: SERVED, targets: 'endpoints' });
  // What the fake stores (no PDB): kubectl creates it as a cluster would.
  const stored = objects.filter((o) => ['ServiceAccount', 'Role', 'RoleBinding', 'Service', 'Deployment'].includes(o.kind));
  const manifest = join(dir, 'relay.yaml');
  writeFileSync(manifest, stored.map((o) => stringify(o)).join('---\n'));
  const created = await run(kubectl, ['--kubeconfig', kubeconfig, 'create', '-f', manifest]);
  t.equal(created.stdout.trim().split('\n').length, stored.length, 'kubectl created the rendered objects');
  t.equal(api.list('rbac.authorization.k8s.io/v1', 'Role', 'payments').length, 1, 'the payments Role is in payments');

  // A fleet: web in shop, orders in payments, and one in a namespace the relay does not serve.
  const fleet: [string, string, string][] = [['shop', 'web', '10.0.0.1'], ['payments', 'orders', '10.0.0.2'], ['other', 'secret', '10.9.9.9']];
  for (const [ns, name, address] of fleet) {
    api.create({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns, labels: { 'devstack.io/service': name } }, spec: { ports: [{ name: 'http', port: 80 }] } });
    api.create({
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: `${name}-x1`, namespace: ns, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4', endpoints: [{ addresses: [address], conditions: { ready: true } }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
  }

  // The container's args and env; only what a pod gives for free is replaced: ports 0 and
  // loopback (many processes share this machine), a kubeconfig instead of the service account.
  const c = container(objects);
  const env = { PATH: process.env['PATH'] ?? '', ...envOf(c), DEVSTACK_PORT: '0', DEVSTACK_ADMIN_PORT: '0', DEVSTACK_HOST: '127.0.0.1', DEVSTACK_ADMIN_HOST: '127.0.0.1', DEVSTACK_KUBECONFIG: kubeconfig };
  const proc = spawn(process.execPath, [CLI, ...(c['args'] as string[])], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    return exited;
  });
  const { port, adminPort } = await new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
    let text = '';
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      const line = text.split('\n').find((l) => l.includes('"msg":"listening"'));
      if (line) resolve(JSON.parse(line) as { port: number; adminPort: number });
    });
    void exited.then((code) => reject(new Error(`the relay exited ${code}: ${text}`)));
  });

  const fetchText = async (url: string) => {
    const res = await fetch(url);
    return { status: res.status, body: await res.text() };
  };
  const probe = (name: string) => `http://127.0.0.1:${adminPort}${(c[name] as { httpGet: { path: string } }).httpGet.path}`;
  t.equal((await fetchText(probe('livenessProbe'))).status, 200, 'the liveness probe\'s path answers 200');
  let ready = await fetchText(probe('readinessProbe'));
  for (let i = 0; i < 300 && ready.status !== 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    ready = await fetchText(probe('readinessProbe'));
  }
  t.equal(ready.status, 200, 'the readiness probe\'s path: 200 once both served namespaces synced');

  /** The first line of a namespace's stream (the snapshot), or the status and body of a refusal. */
  const first = (ns: string) => new Promise<{ status: number; line: Record<string, unknown> }>((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: `/v1/namespaces/${ns}/stream`, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        const nl = text.indexOf('\n');
        if (nl >= 0) {
          req.destroy();
          resolve({ status: res.statusCode!, line: JSON.parse(text.slice(0, nl)) as Record<string, unknown> });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode!, line: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
  });
  const shop = await first('shop');
  t.equal(shop.status, 200);
  t.match(shop.line, { type: 'snapshot', stale: false, services: { web: { base: ['http://10.0.0.1:8080'] } } }, 'shop\'s stream: a snapshot with web at its ready endpoint (--targets endpoints, as rendered)');
  t.same(Object.keys(shop.line['services'] as object), ['web'], 'and nothing of another namespace');
  t.match((await first('payments')).line, { type: 'snapshot', services: { orders: { base: ['http://10.0.0.2:8080'] } } }, 'payments\' stream: orders');
  t.match(await first('other'), { status: 404, line: { error: { code: 'DEVSTACK_RELAY_NAMESPACE_NOT_SERVED' } } }, 'a namespace not in the chart\'s list is not served');

  proc.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: the relay exits 0, as the pod\'s termination expects');
});
