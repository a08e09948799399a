/*
 * The Helm charts with the real helm: lint, render base and copy, plain and native sidecar, no
 * sidecar, Traefik v2 and v3; every rendered object validated against its schema; and every bad
 * value refused at render time.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parse } from 'yaml';
import { LIBRARY_CHART, ROOT, SERVICE_CHART, envOf, find, lint, podSpec, render, tools, validate, type K8sObject } from './helpers/charts.ts';

const run = promisify(execFile);

const IMAGE = { repository: 'registry.example/shop/web', tag: '1.4.2' };
const base = (devstack: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({ service: 'web', image: IMAGE, ...extra, devstack });

/** The pod resources the sidecar README recommends from its measured footprint. */
function footprint(): unknown {
  const readme = readFileSync(join(ROOT, 'packages/sidecar/README.md'), 'utf8');
  const block = /Pod resources for the sidecar container[^\n]*\n\n```yaml\n([\s\S]*?)```/.exec(readme);
  if (!block) throw new Error('the sidecar README has no "Pod resources" yaml block');
  return (parse(block[1]!) as { resources: unknown }).resources;
}

/** The schema failures of rendered objects: none expected. */
function invalid(objects: K8sObject[]): string[] {
  const failures: string[] = [];
  for (const o of objects) {
    try {
      validate(o);
    } catch (error) {
      failures.push((error as Error).message);
    }
  }
  return failures;
}

t.test('helm lint: the library and the app chart, base and copy', async (t) => {
  t.match(await lint(LIBRARY_CHART), /1 chart\(s\) linted, 0 chart\(s\) failed/, 'library chart');
  t.match(await lint(SERVICE_CHART, base()), /0 chart\(s\) failed/, 'app chart, base');
  t.match(await lint(SERVICE_CHART, base({ feature: 'feature1', ttl: '6h', sidecar: { native: true }, edge: { enabled: true } })), /0 chart\(s\) failed/, 'app chart, copy');
  const libraryChart = parse(readFileSync(join(LIBRARY_CHART, 'Chart.yaml'), 'utf8')) as { type: string };
  t.equal(libraryChart.type, 'library', 'charts/devstack is a library chart');
  const rendered = await render('lib', { chart: LIBRARY_CHART }).catch((e: Error) => e.message);
  t.match(rendered, /library charts are not installable/, 'and renders nothing by itself');
});

t.test('base with the sidecar watching the API server (registry: kubernetes): names, labels, the Service on the sidecar, the app through it', async (t) => {
  const objects = await render('web', { values: base({ registry: 'kubernetes', edge: { enabled: true } }, { port: 8080, env: [{ name: 'LOG_LEVEL', value: 'debug' }] }) });
  t.same(invalid(objects), [], `base: ${objects.length} objects valid against their schemas`);
  t.same(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
    'Deployment/web', 'IngressRoute/web', 'Role/web-devstack', 'RoleBinding/web-devstack', 'Service/web', 'ServiceAccount/web-devstack',
  ], 'every object is named after the service');
  for (const o of objects) {
    t.equal(o.metadata.labels?.['devstack.io/service'], 'web', `${o.kind} carries devstack.io/service`);
    t.notOk(o.metadata.labels?.['devstack.io/feature'], `${o.kind} has no feature label (base)`);
    t.notOk(o.metadata.annotations?.['janitor/ttl'], `${o.kind} has no TTL`);
  }
  const svc = find(objects, 'Service', 'web');
  t.same((svc.spec as { ports: unknown }).ports, [{ name: 'http', port: 80, targetPort: 'devstack-in', protocol: 'TCP' }], 'the Service targets the sidecar inbound port');
  const pod = podSpec(find(objects, 'Deployment', 'web'));
  t.same((svc.spec as { selector: unknown }).selector, { 'devstack.io/service': 'web', 'devstack.io/lane': 'base' }, 'the Service selects the base lane only');
  t.match((find(objects, 'Deployment', 'web').spec as { template: { metadata: { labels: unknown } } }).template.metadata.labels, { 'devstack.io/service': 'web', 'devstack.io/lane': 'base' }, 'which its pods carry');
  t.equal(pod.initContainers, undefined, 'no init container for a plain sidecar');
  const [app, sidecar] = pod.containers;
  t.equal(app!.image, 'registry.example/shop/web:1.4.2', 'the app image');
  t.match(envOf(app!), { HTTP_PROXY: 'http://127.0.0.1:15001', NODE_USE_ENV_PROXY: '1', LOG_LEVEL: 'debug' }, 'the app calls through the sidecar, and gets its own env');
  t.match(envOf(app!), { http_proxy: 'http://127.0.0.1:15001', NO_PROXY: 'localhost,127.0.0.1,::1', no_proxy: 'localhost,127.0.0.1,::1' }, 'in both cases, as grpc-js reads only the lower-case names');
  t.equal(sidecar!.name, 'devstack-sidecar', 'the sidecar is the second container');
  t.same(sidecar!.ports, [{ name: 'devstack-in', containerPort: 15000, protocol: 'TCP' }, { name: 'devstack-admin', containerPort: 15020, protocol: 'TCP' }], 'its ports');
  const env = envOf(sidecar!);
  t.match(env, {
    DEVSTACK_REGISTRY: 'k8s', DEVSTACK_NAMESPACE: 'shop', DEVSTACK_TARGETS: 'service', DEVSTACK_OUTBOUND_HOST: '127.0.0.1', DEVSTACK_OUTBOUND_PORT: '15001',
    DEVSTACK_INBOUND_PORT: '15000', DEVSTACK_APP_PORT: '8080', DEVSTACK_ADMIN_PORT: '15020', DEVSTACK_KEY_NAME: 'uber-ctx-key', DEVSTACK_STRICT: 'false',
    DEVSTACK_PASSTHROUGH: 'true', DEVSTACK_DOMAIN: 'example.com',
  }, 'registry k8s in its namespace, ports, key name, passthrough on, the edge domain');
  t.notOk('DEVSTACK_DEFAULT_KEY' in env, 'base has no default key');
  t.match(sidecar, {
    readinessProbe: { httpGet: { path: '/readyz', port: 'devstack-admin' } },
    livenessProbe: { httpGet: { path: '/healthz', port: 'devstack-admin' } },
    securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
  }, 'probes on the admin port, non-root, read-only, no privilege escalation');
  t.same(sidecar!['resources'], footprint(), 'resources: the footprint the sidecar README recommends');
  t.equal(pod['serviceAccountName'], 'web-devstack', 'the registry ServiceAccount');
  t.equal(pod['automountServiceAccountToken'], false, 'whose token is not mounted into the app');
  t.same(sidecar!['volumeMounts'], [{ name: 'devstack-kube-api', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }], 'only into the sidecar');
  t.same((find(objects, 'Role', 'web-devstack') as { rules?: unknown }).rules, [
    { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
  ], 'RBAC: exactly get, list, watch on services and endpointslices');
  t.match(find(objects, 'RoleBinding', 'web-devstack'), { roleRef: { kind: 'Role', name: 'web-devstack' }, subjects: [{ kind: 'ServiceAccount', name: 'web-devstack', namespace: 'shop' }] }, 'bound to the ServiceAccount');
});

t.test('a copy with a native sidecar: its own names, labels, TTL, default key and selector', async (t) => {
  const objects = await render('web-feature1', { values: base({ feature: 'feature1', ttl: '6h', registry: 'kubernetes', sidecar: { native: true, strict: true, targets: 'endpoints', resources: { requests: { cpu: '250m' } } }, edge: { enabled: true } }) });
  t.same(invalid(objects), [], `copy: ${objects.length} objects valid against their schemas`);
  t.same(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
    'Deployment/web-feature1', 'IngressRoute/web-feature1', 'Middleware/web-feature1-key', 'Role/web-feature1-devstack', 'RoleBinding/web-feature1-devstack',
    'Service/web-feature1', 'ServiceAccount/web-feature1-devstack',
  ], 'every object is named <service>-<feature>');
  for (const o of objects) {
    t.match(o.metadata.labels, { 'devstack.io/service': 'web', 'devstack.io/feature': 'feature1' }, `${o.kind} carries the service and feature labels`);
    t.equal(o.metadata.annotations?.['janitor/ttl'], '6h', `${o.kind} carries janitor/ttl`);
  }
  t.same((find(objects, 'Service', 'web-feature1').spec as { selector: unknown }).selector, { 'devstack.io/service': 'web', 'devstack.io/lane': 'feature1' }, 'the copy\'s Service selects the copy\'s pods only');
  const pod = podSpec(find(objects, 'Deployment', 'web-feature1'));
  t.same(pod.containers.map((c) => c.name), ['app'], 'a native sidecar is not among the containers');
  t.equal(pod.initContainers?.length, 1, 'but an init container');
  const sidecar = pod.initContainers![0]!;
  t.equal(sidecar.restartPolicy, 'Always', 'with restartPolicy: Always');
  t.match(sidecar, { startupProbe: { httpGet: { path: '/readyz' } } }, 'started (routes loaded) before the app');
  t.match(envOf(sidecar), { DEVSTACK_DEFAULT_KEY: 'feature1', DEVSTACK_STRICT: 'true', DEVSTACK_TARGETS: 'endpoints' }, 'the copy\'s key is its default key; strict and targets from values');
  t.same(sidecar['resources'], { requests: { cpu: '250m' } }, 'resources given replace the default');
});

t.test('the default, registry: relay: the sidecar follows the relay, no token, no RBAC, the relay-mode footprint', async (t) => {
  const objects = await render('web', { values: base({ edge: { enabled: true } }) });
  t.same(invalid(objects), [], `relay: ${objects.length} objects valid against their schemas`);
  t.same(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), ['Deployment/web', 'IngressRoute/web', 'Service/web'], 'no ServiceAccount, Role or RoleBinding');
  const pod = podSpec(find(objects, 'Deployment', 'web'));
  t.equal(pod['automountServiceAccountToken'], false, 'no API token in the pod');
  t.equal(pod['serviceAccountName'], undefined, 'the namespace\'s default ServiceAccount, unused');
  t.equal(pod['volumes'], undefined, 'no projected token volume');
  const [app, sidecar] = pod.containers;
  t.equal(sidecar!['volumeMounts'], undefined, 'nothing mounted into the sidecar');
  const env = sidecar!.env!;
  t.match(envOf(sidecar!), { DEVSTACK_REGISTRY: 'http://devstack-relay.devstack:7400', DEVSTACK_KEY_NAME: 'uber-ctx-key', DEVSTACK_DOMAIN: 'example.com' }, 'the relay\'s stream is the registry');
  t.same(env.find((e) => e.name === 'POD_NAMESPACE'), { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } }, 'its namespace from the downward API');
  for (const name of ['DEVSTACK_NAMESPACE', 'DEVSTACK_TARGETS', 'DEVSTACK_KUBECONFIG']) t.notOk(env.some((e) => e.name === name), `no ${name} (the Kubernetes source's flags, refused with a relay)`);
  t.same(sidecar!['resources'], { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } }, 'the relay-mode footprint (98-102 MiB idle, at most 121 MiB loaded)');
  t.notOk(envOf(app!)['DEVSTACK_REGISTRY'], 'a service\'s app gets no registry (its sidecar routes)');
  const custom = await render('web', { values: base({ relay: { url: 'https://relay.platform.svc:8443' }, sidecar: { native: true } }), kubeVersion: '1.30.0' });
  t.equal(envOf(podSpec(find(custom, 'Deployment', 'web')).initContainers![0]!)['DEVSTACK_REGISTRY'], 'https://relay.platform.svc:8443', 'relay.url, also for a native sidecar');
});

t.test('relay mode: a worker\'s SDK and a proxyless injected SDK follow the relay; a plain injected SDK only carries the key', async (t) => {
  const appEnv = (objects: K8sObject[], name: string) => podSpec(find(objects, 'Deployment', name)).containers.find((c) => c.name === 'app')!.env!;
  const namespaceRef = { name: 'DEVSTACK_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } };
  const [worker, proxyless, inject, k8sWorker] = await Promise.all([
    render('web-feature1', { values: base({ feature: 'feature1' }, { workload: 'worker' }) }),
    render('web', { values: base({ sdk: { inject: true, proxyless: true } }) }),
    render('web', { values: base({ sdk: { inject: true } }) }),
    render('web', { values: base({ registry: 'kubernetes' }, { workload: 'worker' }) }),
  ]);
  t.same(invalid([...worker, ...proxyless, ...inject, ...k8sWorker]), [], 'every object valid against its schema');
  for (const [objects, name, what] of [[worker, 'web-feature1', 'a worker'], [proxyless, 'web', 'a proxyless injected SDK']] as const) {
    const env = appEnv(objects, name);
    t.match(env, [{ name: 'HTTP_PROXY' }], `${what}: still through its sidecar`);
    t.same(env.find((e) => e.name === 'DEVSTACK_REGISTRY'), { name: 'DEVSTACK_REGISTRY', value: 'http://devstack-relay.devstack:7400' }, `${what}: DEVSTACK_REGISTRY is the relay`);
    t.same(env.find((e) => e.name === 'DEVSTACK_NAMESPACE'), namespaceRef, `${what}: DEVSTACK_NAMESPACE from the downward API`);
    t.equal(podSpec(find(objects, 'Deployment', name))['automountServiceAccountToken'], false, `${what}: and no API token`);
  }
  t.equal(envOf({ name: 'app', env: appEnv(worker, 'web-feature1') })['DEVSTACK_SERVICE'], 'web', 'the worker\'s service');
  t.notOk(appEnv(inject, 'web').some((e) => e.name === 'DEVSTACK_REGISTRY' || e.name === 'DEVSTACK_NAMESPACE'), 'sdk.inject without proxyless: no registry');
  t.notOk(appEnv(k8sWorker, 'web').some((e) => e.name === 'DEVSTACK_REGISTRY' || e.name === 'DEVSTACK_NAMESPACE'), 'registry: kubernetes: a worker\'s app gets no registry (it would need API credentials)');
});

t.test('sidecar off: no sidecar, no RBAC, the Service on the app, no proxy', async (t) => {
  const objects = await render('web', { values: base({ sidecar: { enabled: false } }) });
  t.same(invalid(objects), [], `no sidecar: ${objects.length} objects valid against their schemas`);
  t.same(objects.map((o) => o.kind).sort(), ['Deployment', 'Service'], 'a Deployment and a Service only');
  const pod = podSpec(find(objects, 'Deployment', 'web'));
  t.same(pod.containers.map((c) => c.name), ['app'], 'the app alone');
  t.same(envOf(pod.containers[0]!), {}, 'without HTTP_PROXY');
  t.equal(((find(objects, 'Service', 'web').spec as { ports: { targetPort: string }[] }).ports[0]!).targetPort, 'http', 'the Service targets the app');
});

t.test('passthrough off and OTEL by values', async (t) => {
  const objects = await render('web', { values: base({ sidecar: { passthrough: false, otelEndpoint: 'http://otel-collector:4318' } }) });
  const env = envOf(podSpec(find(objects, 'Deployment', 'web')).containers[1]!);
  t.equal(env['DEVSTACK_PASSTHROUGH'], 'false', 'passthrough off');
  t.match(env, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector:4318', OTEL_SERVICE_NAME: 'web-devstack-sidecar' }, 'the exporter endpoint turns tracing on');
});

t.test('Traefik v3, v2.10+ and v2 before 2.10: groups, matchers, auth, tls', async (t) => {
  const cases = [
    { traefik: 'v3', apiGroup: 'traefik.io', header: 'Header(`uber-ctx-key`, `feature1`)', wildcard: /^HostRegexp\(`\^\[a-z0-9\].*\\\.example\\\.com\$`\)$/ },
    { traefik: 'v2', apiGroup: 'traefik.io', header: 'Headers(`uber-ctx-key`, `feature1`)', wildcard: /^HostRegexp\(`\{key:\[a-z0-9\].*\}\.example\.com`\)$/ },
    { traefik: 'v2', apiGroup: 'traefik.containo.us', header: 'Headers(`uber-ctx-key`, `feature1`)', wildcard: /^HostRegexp\(`\{key:/ },
  ];
  for (const c of cases) {
    const edge = { enabled: true, traefik: c.traefik, apiGroup: c.apiGroup, entryPoints: ['websecure'], tls: { certResolver: 'le' }, previewAuth: { basicAuth: { secret: 'preview-users' } } };
    const [b, copy] = await Promise.all([render('web', { values: base({ edge }) }), render('web-feature1', { values: base({ feature: 'feature1', edge }) })]);
    const what = `${c.traefik} ${c.apiGroup}`;
    t.same(invalid([...b, ...copy]), [], `${what}: every object valid against its schema`);
    const baseRoute = find(b, 'IngressRoute', 'web');
    t.equal(baseRoute.apiVersion, `${c.apiGroup}/v1alpha1`, `${what}: the API group`);
    const baseSpec = baseRoute.spec as { entryPoints: string[]; tls: unknown; routes: { match: string; priority: number; middlewares?: { name: string }[] }[] };
    t.same(baseSpec.entryPoints, ['websecure'], `${what}: entry points`);
    t.same(baseSpec.tls, { certResolver: 'le' }, `${what}: tls as given`);
    t.equal(baseSpec.routes[0]!.match, 'Host(`example.com`)', `${what}: base Host`);
    t.match(baseSpec.routes[1]!.match, c.wildcard, `${what}: base wildcard preview route`);
    t.same(baseSpec.routes[1]!.middlewares, [{ name: 'web-preview-auth' }], `${what}: preview auth on the wildcard`);
    t.notOk(baseSpec.routes[0]!.middlewares, `${what}: not on the main host`);
    t.match(find(b, 'Middleware', 'web-preview-auth'), { apiVersion: `${c.apiGroup}/v1alpha1`, spec: { basicAuth: { secret: 'preview-users' } } }, `${what}: the basicAuth middleware`);
    const copySpec = find(copy, 'IngressRoute', 'web-feature1').spec as typeof baseSpec;
    t.same(copySpec.routes.map((r) => r.match), [`Host(\`example.com\`) && ${c.header}`, 'Host(`feature1.example.com`)'], `${what}: the copy's header and preview routes`);
    t.ok(copySpec.routes.every((r) => r.priority > Math.max(...baseSpec.routes.map((x) => x.priority))), `${what}: explicit priorities, every copy route above every base route`);
    t.match(find(copy, 'Middleware', 'web-feature1-key'), { spec: { headers: { customRequestHeaders: { 'uber-ctx-key': 'feature1' } } } }, `${what}: the copy's key header middleware`);
  }
  const forward = await render('web', { values: base({ edge: { enabled: true, previewAuth: { forwardAuth: { address: 'http://auth.shop/check' } } } }) });
  t.same(invalid(forward), [], `forwardAuth: ${forward.length} objects valid against their schemas`);
  t.match(find(forward, 'Middleware', 'web-preview-auth'), { spec: { forwardAuth: { address: 'http://auth.shop/check' } } }, 'forwardAuth preview middleware');
  const noEdge = await render('orders', { values: { service: 'orders', image: IMAGE } });
  t.notOk(noEdge.some((o) => o.kind === 'IngressRoute' || o.kind === 'Middleware'), 'no routes without edge.enabled');
});

t.test('appProtocol: the Service port, the sidecar\'s app protocol, Traefik\'s scheme', async (t) => {
  const cases = [
    { appProtocol: undefined, service: undefined, sidecar: 'http1', scheme: undefined },
    { appProtocol: 'http', service: undefined, sidecar: 'http1', scheme: undefined },
    { appProtocol: 'h2c', service: 'kubernetes.io/h2c', sidecar: 'h2c', scheme: 'h2c' },
    { appProtocol: 'grpc', service: 'grpc', sidecar: 'h2c', scheme: 'h2c' },
  ];
  const edges = [
    { traefik: 'v3', apiGroup: 'traefik.io' },
    { traefik: 'v2', apiGroup: 'traefik.containo.us' },
  ];
  for (const c of cases) {
    const extra = c.appProtocol === undefined ? {} : { appProtocol: c.appProtocol };
    for (const e of edges) {
      const edge = { enabled: true, ...e };
      const [b, copy, bare] = await Promise.all([
        render('web', { values: base({ edge }, extra) }),
        render('web-feature1', { values: base({ feature: 'feature1', edge, sidecar: { native: true } }, extra), kubeVersion: '1.29.0' }),
        render('web', { values: base({ edge, sidecar: { enabled: false } }, extra) }),
      ]);
      const what = `appProtocol ${c.appProtocol ?? '(unset)'}, ${e.traefik} ${e.apiGroup}`;
      t.same(invalid([...b, ...copy, ...bare]), [], `${what}: every object valid against its schema`);
      for (const [objects, name, lane] of [[b, 'web', 'base'], [copy, 'web-feature1', 'copy'], [bare, 'web', 'no sidecar']] as const) {
        const [port, ...more] = (find(objects, 'Service', name).spec as { ports: Record<string, unknown>[] }).ports;
        t.same(more, [], `${what}, ${lane}: one Service port`);
        t.match(port, { name: 'http', port: 80, protocol: 'TCP' }, `${what}, ${lane}: still named http, the port the registry routes to first`);
        t.equal(port!['appProtocol'], c.service, `${what}, ${lane}: the Service port's appProtocol is ${c.service ?? 'absent'}`);
        const routes = (find(objects, 'IngressRoute', name).spec as { routes: { services: Record<string, unknown>[] }[] }).routes;
        t.equal(routes.length, 2, `${what}, ${lane}: two routes`);
        for (const route of routes) {
          t.same(route.services, [{ name, port: 80, ...(c.scheme === undefined ? {} : { scheme: c.scheme }) }], `${what}, ${lane}: Traefik forwards with ${c.scheme ?? 'its default'} scheme`);
        }
      }
      const sidecars = [podSpec(find(b, 'Deployment', 'web')).containers[1]!, podSpec(find(copy, 'Deployment', 'web-feature1')).initContainers![0]!];
      for (const sidecar of sidecars) {
        t.equal(sidecar.name, 'devstack-sidecar', `${what}: the sidecar`);
        t.equal(envOf(sidecar)['DEVSTACK_APP_PROTOCOL'], c.sidecar, `${what}: the sidecar speaks ${c.sidecar} to the app`);
        t.match(sidecar, { readinessProbe: { httpGet: { path: '/readyz', port: 'devstack-admin' } } }, `${what}: its probes stay on its admin port`);
      }
      const app = podSpec(find(b, 'Deployment', 'web')).containers[0]!;
      t.same([app['readinessProbe'], app['livenessProbe'], app['startupProbe']], [undefined, undefined, undefined], `${what}: no app probe, so no HTTP probe against a gRPC server`);
    }
  }
});

t.test('appProtocol on a copy with a shared IngressRoute: its hook adds the rule with scheme h2c for h2c and grpc', async (t) => {
  const shared = { sharedIngressRoute: { enabled: true, name: 'web-shared', host: 'shop.example.com' } };
  const addArgs = ['ingressroute', 'add', '--name', 'web-shared', '--host', 'shop.example.com', '--key', 'feature1', '--service', 'web-feature1', '--port', '80', '--traefik', 'v3', '--api-group', 'traefik.io', '--key-name', 'uber-ctx-key'];
  const argsOf = (objects: K8sObject[], name: string) => (find(objects, 'Job', name).spec as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]!.args;
  const cases = [
    { appProtocol: undefined, scheme: [] },
    { appProtocol: 'http', scheme: [] },
    { appProtocol: 'h2c', scheme: ['--scheme', 'h2c'] },
    { appProtocol: 'grpc', scheme: ['--scheme', 'h2c'] },
  ];
  const rendered = await Promise.all(cases.map((c) => render('web-feature1', { values: base({ feature: 'feature1', hooks: shared }, c.appProtocol === undefined ? {} : { appProtocol: c.appProtocol }) })));
  const roleOf = (objects: K8sObject[]) => find(objects, 'Role', 'web-feature1-hooks')['rules'];
  for (const [i, c] of cases.entries()) {
    const objects = rendered[i]!;
    const what = `appProtocol ${c.appProtocol ?? '(unset)'}`;
    t.same(invalid(objects), [], `${what}: every object valid against its schema`);
    t.same(argsOf(objects, 'web-feature1-hooks-route'), [...addArgs, ...c.scheme, '--namespace', 'shop'], `${what}: ingressroute add ${c.scheme.length ? 'with --scheme h2c' : 'without --scheme'}`);
    t.same(argsOf(objects, 'web-feature1-hooks-route-delete'), ['ingressroute', 'remove', '--name', 'web-shared', '--key', 'feature1', '--api-group', 'traefik.io', '--namespace', 'shop'], `${what}: remove finds the route by its rule, whatever its scheme`);
    t.same(roleOf(objects), [{ apiGroups: ['traefik.io'], resourceNames: ['web-shared'], resources: ['ingressroutes'], verbs: ['get', 'update'] }], `${what}: the same RBAC`);
  }
  const sharedBase = await render('web', { values: base({ hooks: shared }, { appProtocol: 'grpc' }) });
  t.notOk(sharedBase.some((o) => o.kind === 'Job'), 'the same values on base: no hook');
});

t.test('bad values are refused at render time, with the value named', async (t) => {
  const refused = async (values: Record<string, unknown>, pattern: RegExp, what: string, kubeVersion?: string) => {
    const error = await render('x', { values, ...(kubeVersion ? { kubeVersion } : {}) }).then(() => 'rendered', (e: Error) => e.message);
    t.match(error, pattern, what);
  };
  await Promise.all([
    refused(base({ feature: 'Feature_1' }), /\/devstack\/feature/, 'a feature that is not a DNS-1123 label'),
    refused(base({ feature: '-x' }), /\/devstack\/feature/, 'a feature starting with a hyphen'),
    refused(base({ feature: 'a'.repeat(64) }), /\/devstack\/feature/, 'a feature of 64 characters'),
    refused(base({ feature: 'base' }), /\/devstack\/feature/, 'the reserved key base'),
    refused(base({ feature: 'f1', ttl: '6 hours' }), /\/devstack\/ttl/, 'a ttl kube-janitor cannot read'),
    refused(base({ feature: 'f1', ttl: '6H' }), /\/devstack\/ttl/, 'a ttl with an upper-case unit'),
    refused(base({ ttl: '6h' }), /\/devstack\/ttl/, 'a ttl on base'),
    refused(base({ sidecar: { bogus: true } }), /additional properties 'bogus' not allowed/, 'an unknown sidecar key'),
    refused(base({ edge: { enabeld: true } }), /additional properties 'enabeld' not allowed/, 'a misspelt edge key'),
    refused({ ...base(), replica: 2 }, /additional properties 'replica' not allowed/, 'an unknown top-level key'),
    refused({ image: IMAGE }, /service/, 'no service'),
    refused(base({ edge: { enabled: true, traefik: 'v4' } }), /\/devstack\/edge\/traefik/, 'an unknown Traefik version'),
    refused(base({ edge: { enabled: true, apiGroup: 'traefik.containo.us' } }), /Traefik v3 serves its CRDs under traefik.io only/, 'the v2 group with v3'),
    refused(base({ edge: { previewAuth: { basicAuth: { secret: 's' }, forwardAuth: { address: 'http://a' } } } }), /\/devstack\/edge\/previewAuth/, 'two preview auth methods'),
    refused(base({ sidecar: { native: true } }), /native sidecars .* need Kubernetes 1\.29 or newer; this cluster is v1\.28/, 'native without a Kubernetes that has it', '1.28.0'),
    refused({ service: 'a'.repeat(40), image: IMAGE, devstack: { feature: 'b'.repeat(30) } }, /longer than 63 characters/, 'a copy name too long for a Service'),
    refused({ ...base(), appProtocol: 'http2' }, /at '\/appProtocol': value must be one of 'http', 'h2c', 'grpc'/, 'an app protocol the chart does not know'),
    refused({ ...base(), appProtocol: 'GRPC' }, /at '\/appProtocol'/, 'an app protocol in the wrong case'),
    refused(base({ registry: 'k8s' }), /at '\/devstack\/registry': value must be one of 'relay', 'kubernetes'/, 'a registry mode the chart does not know'),
    refused(base({ relay: { url: 'http://relay:7400/v1' } }), /at '\/devstack\/relay\/url'/, 'a relay URL with a path'),
    refused(base({ relay: { url: 'http://user:pw@relay:7400' } }), /at '\/devstack\/relay\/url'/, 'a relay URL with credentials'),
    refused(base({ relay: { url: 'relay:7400' } }), /at '\/devstack\/relay\/url'/, 'a relay URL without a scheme'),
    refused(base({ relay: { url: 'http://relay:99999' } }), /devstack\.relay\.url: "http:\/\/relay:99999": the port must be from 1 to 65535/, 'a relay port out of range'),
    refused(base({ sidecar: { targets: 'endpoints' } }), /devstack\.sidecar\.targets: with devstack\.registry: relay the relay picks the targets/, 'targets with the relay (the relay\'s --targets decides)'),
    refused(base({ sdk: { proxyless: true } }), /devstack\.sdk\.proxyless: .* needs devstack\.sdk\.inject/, 'proxyless without the injected SDK'),
    refused(base({ registry: 'kubernetes', sdk: { inject: true, proxyless: true } }), /devstack\.sdk\.proxyless: the injected SDK follows the relay/, 'proxyless with the kubernetes registry (the app gets no API credentials)'),
  ]);
  const unchecked = await run(tools().helm, ['template', 'x', SERVICE_CHART, '--skip-schema-validation', '--set', 'service=web,image.repository=r,appProtocol=http2']).then(() => 'rendered', (e: { stderr: string }) => e.stderr);
  t.match(unchecked, /appProtocol: "http2" is not one of http, h2c, grpc/, 'without the schema (the library chart in another chart) the templates refuse an unknown app protocol');
  const native129 = await render('x', { values: base({ sidecar: { native: true } }), kubeVersion: '1.29.0' });
  t.equal(podSpec(find(native129, 'Deployment', 'web')).initContainers?.[0]?.restartPolicy, 'Always', 'native is fine on 1.29');
});
