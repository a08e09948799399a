/*
 * From chart to routed request. Base and feature releases of three services (web, the entry service
 * behind the Traefik edge, orders, and greeter, a gRPC server: `appProtocol: grpc`) are rendered
 * with the real helm and created in the fake API server with the real `kubectl create -f`; the
 * EndpointSlices a cluster's endpoint controller would add point at each pod's sidecar inbound
 * listener; every pod is the real `devstack-sidecar` started with the environment its rendered
 * container gives it, beside a small app. Requests enter as the rendered IngressRoutes route them
 * (test/helpers/traefik.ts) and must follow the routing table (README.md) and the chain rule; gRPC
 * calls made as a pod's app makes them (grpc-js, through the rendered `http_proxy`) reach greeter's
 * lanes over h2c.
 *
 * The fake stores Deployments, ServiceAccounts, Roles and RoleBindings (no controllers run them).
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { stringify } from 'yaml';
import { startFakeApiServer, TRAEFIK_RESOURCES } from '@devstack/kube-fake';
import { envOf, find, podSpec, render, tools, type K8sObject } from './helpers/charts.ts';
import { listen, send, sidecarContainer, startSidecar, type RunningSidecar, type Tap } from './helpers/pods.ts';
import { routeEdge } from './helpers/traefik.ts';

const run = promisify(execFile);
const NS = 'shop';
const KEY = 'uber-ctx-key';
const RELEASES = [
  { service: 'web', feature: '' },
  { service: 'web', feature: 'feature1' },
  { service: 'web', feature: 'feature2' },
  { service: 'orders', feature: '' },
  { service: 'orders', feature: 'feature1' },
  { service: 'orders', feature: 'feature3' },
  { service: 'greeter', feature: '' },
  { service: 'greeter', feature: 'feature1' },
];
const nameOf = (r: { service: string; feature: string }) => (r.feature ? `${r.service}-${r.feature}` : r.service);

/** greeter's one RPC, with JSON messages (no .proto): it answers which pod served it and the key it got. */
const HELLO = {
  hello: {
    path: '/devstack.e2e.Greeter/Hello',
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
    requestDeserialize: (buffer: Buffer): unknown => JSON.parse(buffer.toString('utf8')),
    responseSerialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
    responseDeserialize: (buffer: Buffer): unknown => JSON.parse(buffer.toString('utf8')),
  },
} satisfies grpc.ServiceDefinition;
const GreeterClient = grpc.makeGenericClientConstructor(HELLO, 'Greeter');

/** A greeter pod's app: a gRPC server, which speaks HTTP/2 only (prior knowledge over cleartext). */
async function greeterApp(t: Tap, name: string): Promise<number> {
  const server = new grpc.Server();
  server.addService(HELLO, {
    hello: (call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => done(null, { service: name, key: call.metadata.get(KEY).map(String)[0] ?? null }),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))));
  t.teardown(() => server.forceShutdown());
  return port;
}

/** What a pod's app does with a request: orders answers; web calls orders and reports both hops. */
function app(name: string, outbound: () => number, external: number) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const key = req.headers[KEY] as string | undefined;
    const url = new URL(req.url ?? '/', 'http://app');
    const reply = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (name.startsWith('orders')) return reply({ service: name, key: key ?? null });
    // As the SDK does, the key is propagated; `drop` plays an app that does not propagate it.
    const headers: Record<string, string> = {};
    if (key !== undefined && !url.searchParams.has('drop')) headers[KEY] = key;
    // The app's plain-HTTP calls go to HTTP_PROXY (the sidecar's outbound listener), in absolute form.
    const target = url.searchParams.has('external') ? `http://127.0.0.1:${external}/metadata` : 'http://orders/';
    send(outbound(), target, { ...headers, host: new URL(target).host }).then(
      (down) => reply({ service: name, key: key ?? null, downstream: down.body, downstreamLane: down.headers['x-devstack-lane'] ?? null }),
      (error: Error) => reply({ service: name, error: error.message }),
    );
  };
}

t.test('charts to routed requests: the routing table and the chain rule through rendered pods', async (t) => {
  const { kubectl } = tools();
  const api = await startFakeApiServer({
    namespaces: [NS],
    customResources: [...TRAEFIK_RESOURCES],
  });
  t.teardown(() => api.close());
  const dir = t.testdir();
  const kubeconfig = await api.kubeconfig(join(dir, 'kubeconfig'), { namespace: NS });

  // Render: endpoints targets (no cluster DNS here); web is the entry service.
  const rendered = await Promise.all(RELEASES.map(async (r) => ({
    ...r,
    name: nameOf(r),
    objects: await render(nameOf(r), {
      namespace: NS,
      values: {
        service: r.service, image: { repository: 'devstack-examples' }, ...(r.service === 'greeter' ? { appProtocol: 'grpc' } : {}),
        // Each sidecar watches the API server itself here (test/chart-relay-mode.test.ts follows a relay).
        devstack: { feature: r.feature, registry: 'kubernetes', ...(r.service === 'web' ? { edge: { enabled: true, host: 'example.com' } } : {}), sidecar: { targets: 'endpoints' } },
      },
    }),
  })));
  const all = rendered.flatMap((r) => r.objects);
  const manifest = join(dir, 'fleet.yaml');
  writeFileSync(manifest, all.map((o) => stringify(o)).join('---\n'));
  const created = await run(kubectl, ['--kubeconfig', kubeconfig, 'create', '-f', manifest]);
  t.equal(created.stdout.trim().split('\n').length, all.length, 'kubectl created every rendered object');
  t.equal(api.list('v1', 'ServiceAccount', NS).length, RELEASES.length, 'a ServiceAccount per release');
  t.equal(api.list('v1', 'Service', NS).length, RELEASES.length, 'a Service per release');
  t.equal(api.list('traefik.io/v1alpha1', 'IngressRoute', NS).length, 3, 'an IngressRoute per web release');

  // A stand-in for a host outside the fleet: it records what reached it.
  let seenOutside: Record<string, unknown> | undefined;
  const externalPort = await listen(t, (req, res) => {
    seenOutside = { ...req.headers };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ service: 'outside' }));
  });

  // Pods: an app and the sidecar, with the env the rendered containers have.
  const pods = new Map<string, RunningSidecar>();
  await Promise.all(rendered.map(async (r) => {
    const deployment = find(r.objects, 'Deployment', r.name);
    const container = sidecarContainer(deployment);
    const appEnv = envOf(podSpec(deployment).containers.find((c) => c.name === 'app')!);
    t.equal(appEnv['HTTP_PROXY'], `http://127.0.0.1:${envOf(container)['DEVSTACK_OUTBOUND_PORT']}`, `${r.name}: the app's HTTP_PROXY is its sidecar's outbound listener`);
    const appPort = r.service === 'greeter' ? await greeterApp(t, r.name) : await listen(t, app(r.name, () => pods.get(r.name)!.ports['outbound']!, externalPort));
    pods.set(r.name, await startSidecar(t, container, appPort, kubeconfig));
    await pods.get(r.name)!.ready;
  }));
  t.equal(pods.size, RELEASES.length, 'every sidecar synced with the API server and opened its listeners');

  // The endpoint controller's part: each Service's slice, on its pod's sidecar inbound port.
  for (const r of rendered) {
    const [port] = (find(r.objects, 'Service', r.name).spec as { ports: { name: string; appProtocol?: string }[] }).ports;
    api.create({
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: `${r.name}-x1`, namespace: NS, labels: { 'kubernetes.io/service-name': r.name } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
      // The controller copies the Service port's name and appProtocol into the slice.
      ports: [{ name: port!.name, port: pods.get(r.name)!.ports['inbound']!, protocol: 'TCP', ...(port!.appProtocol === undefined ? {} : { appProtocol: port!.appProtocol }) }],
    });
  }

  const ingress = all.filter((o): o is K8sObject => o.kind === 'IngressRoute' || o.kind === 'Middleware');
  /** A request as Traefik routes it: to the chosen Service's endpoint, headers as its middlewares leave them. */
  const edge = async (host: string, headers: Record<string, string> = {}, path = '/') => {
    const route = routeEdge(ingress, 'v3', { host, headers });
    if (!route) return { path: 'no route' };
    const reply = await send(pods.get(route.service.name)!.ports['inbound']!, path, { ...route.headers, host });
    const body = reply.body as { service?: string; downstream?: { service?: string; error?: { code: string } } };
    return { path: `${body.service} -> ${body.downstream?.service ?? body.downstream?.error?.code}`, lane: reply.headers['x-devstack-lane'], body: reply.body };
  };
  // Slices reach each sidecar through its own watches: wait (bounded) until every sidecar has a
  // ready target for every lane, as its admin /resolve tells.
  const converged = async (sidecar: RunningSidecar) => {
    for (const r of RELEASES) {
      const q = `/resolve?service=${r.service}${r.feature ? `&key=${r.feature}` : ''}`;
      const { body } = await send(sidecar.ports['admin']!, q, {});
      if ((body['targets'] as unknown[] | undefined)?.length !== 1 || (r.feature && body['reason'] !== 'match')) return false;
    }
    return true;
  };
  for (const [name, sidecar] of pods) {
    let ok = await converged(sidecar);
    for (let i = 0; i < 500 && !ok; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      ok = await converged(sidecar);
    }
    t.ok(ok, `${name}: its sidecar routes every lane`);
  }

  const first = await edge('example.com', { [KEY]: 'feature3' });
  t.equal(first.path, 'web -> orders-feature3', 'header feature3: base web (no copy), then the orders copy');

  const table: [string, Record<string, string>, string, string][] = [
    ['feature1.example.com', {}, 'web-feature1 -> orders-feature1', 'feature1'],
    ['example.com', { [KEY]: 'feature1' }, 'web-feature1 -> orders-feature1', 'feature1'],
    ['example.com', { [KEY]: 'feature2' }, 'web-feature2 -> orders', 'feature2'],
    ['example.com', {}, 'web -> orders', 'base'],
    ['feature3.example.com', {}, 'web -> orders-feature3', 'base'],
    ['example.com', { [KEY]: 'nope' }, 'web -> orders', 'base'],
  ];
  for (const [host, headers, path, lane] of table) {
    const got = await edge(host, headers);
    const what = `${host}${headers[KEY] ? ` with ${KEY}: ${headers[KEY]}` : ''}`;
    t.equal(got.path, path, `${what}: ${path}`);
    t.equal(got.lane, lane, `${what}: the entry pod answers with x-devstack-lane ${lane}`);
  }
  const preview = await edge('feature3.example.com');
  t.match(preview.body, { key: 'feature3', downstream: { key: 'feature3' } }, 'the wildcard preview URL: the base sidecar read the key from the Host and the app got it as a header');
  const f2 = await edge('example.com', { [KEY]: 'feature2' });
  t.match(f2.body, { downstreamLane: 'base', downstream: { key: 'feature2' } }, 'chain rule: orders has no feature2 copy, so base orders, with the key still carried');

  const dropped = await edge('feature1.example.com', {}, '/?drop=1');
  t.equal(dropped.path, 'web-feature1 -> orders-feature1', 'an app that drops the key: the copy\'s default key keeps the chain in its lane');
  t.equal((await edge('example.com', {}, '/?drop=1')).path, 'web -> orders', 'and base stays base');

  const outside = await edge('feature1.example.com', {}, '/?external=1');
  t.equal(outside.path, 'web-feature1 -> outside', 'passthrough: a host outside the registry is reached through the sidecar');
  t.ok(seenOutside !== undefined && !(KEY in seenOutside) && !('baggage' in seenOutside), 'and the key did not leave the fleet');

  // The Service's appProtocol is all the registry reads: greeter's lanes are h2c, the others HTTP/1.1.
  const { body: routes } = await send(pods.get('web')!.ports['admin']!, '/routes', {});
  type Lane = { url: string; protocol: string }[];
  const services = routes['services'] as Record<string, { base: Lane; features: Record<string, Lane> }>;
  const protocols = (service: string) => [...services[service]!.base, ...Object.values(services[service]!.features).flat()].map((target) => target.protocol);
  t.same(protocols('greeter'), ['h2c', 'h2c'], 'the web sidecar\'s routes: greeter\'s base and feature1 targets are h2c');
  t.same(protocols('orders'), ['http1', 'http1', 'http1'], 'and orders\' (no appProtocol) HTTP/1.1');

  /** A gRPC call from a pod's app: grpc-js reads `http_proxy` as the rendered container has it. */
  const hello = (from: string, key?: string) => {
    const appEnv = envOf(podSpec(find(all, 'Deployment', from)).containers.find((c) => c.name === 'app')!);
    const proxy = new URL(appEnv['http_proxy']!);
    proxy.port = String(pods.get(from)!.ports['outbound']!);
    const saved = process.env['http_proxy'];
    process.env['http_proxy'] = proxy.href;
    let client: grpc.Client;
    try {
      client = new GreeterClient('greeter:80', grpc.credentials.createInsecure());
    } finally {
      if (saved === undefined) delete process.env['http_proxy'];
      else process.env['http_proxy'] = saved;
    }
    const metadata = new grpc.Metadata();
    if (key !== undefined) metadata.set(KEY, key);
    return new Promise<{ reply?: unknown; lane?: string; error?: string }>((resolve) => {
      let lane: string | undefined;
      const call = (client as unknown as Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>)['hello']!({}, metadata, (error: grpc.ServiceError | null, reply: unknown) => {
        client.close();
        resolve(error ? { error: `${grpc.status[error.code]}: ${error.details}`, ...(lane === undefined ? {} : { lane }) } : { reply, ...(lane === undefined ? {} : { lane }) });
      });
      call.on('metadata', (headers: grpc.Metadata) => (lane = headers.get('x-devstack-lane').map(String)[0]));
    });
  };
  t.match(await hello('web', 'feature1'), { reply: { service: 'greeter-feature1', key: 'feature1' }, lane: 'feature1' }, 'gRPC with the key feature1: the greeter copy, through both sidecars over h2c');
  t.match(await hello('web'), { reply: { service: 'greeter', key: null }, lane: 'base' }, 'gRPC without a key: base greeter');
  t.match(await hello('web-feature2'), { reply: { service: 'greeter', key: 'feature2' }, lane: 'base' }, 'gRPC from a copy: its default key, and base greeter (no feature2 copy) with the key carried');
});
