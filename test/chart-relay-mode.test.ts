/*
 * devstack-service in relay mode (the default), from chart to routed request: the releases are
 * rendered with the real helm (relay.url: a real `devstack-relay` on loopback, in front of the fake
 * API server) and created with the real `kubectl create -f`; every pod is the real
 * `devstack-sidecar` started with the environment its rendered container gives it (the namespace
 * from the downward API), beside a small app. The sidecars learn the routes from the relay's
 * stream only: the fake API server's request log shows nothing from them, although each process
 * has a KUBECONFIG that would reach it.
 */
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, get, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { stringify } from 'yaml';
import { startFakeApiServer } from '@devstack/kube-fake';
import { ROOT, find, podSpec, render, tools, type K8sObject } from './helpers/charts.ts';
import { listen, podEnv, send, sidecarContainer, startSidecar, type RunningSidecar, type Tap } from './helpers/pods.ts';

const run = promisify(execFile);
const RELAY_CLI = join(ROOT, 'packages/relay/bin/devstack-relay.cjs');
const NS = 'shop';
const KEY = 'uber-ctx-key';
const RELEASES = [
  { service: 'web', feature: '' },
  { service: 'orders', feature: '' },
  { service: 'orders', feature: 'feature1' },
];
const nameOf = (r: { service: string; feature: string }) => (r.feature ? `${r.service}-${r.feature}` : r.service);

/** The real `devstack-relay` on loopback ports; resolves once it listens, killed at teardown. */
async function startRelay(t: Tap, args: string[]): Promise<{ port: number; adminPort: number }> {
  const proc = spawn(process.execPath, [RELAY_CLI, '--admin-port', '0', '--host', '127.0.0.1', '--admin-host', '127.0.0.1', ...args], {
    env: { PATH: process.env['PATH'] ?? '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    return exited;
  });
  return new Promise((resolve, reject) => {
    let text = '';
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      for (const line of text.split('\n').slice(0, -1)) {
        const entry = JSON.parse(line) as { msg?: string; port?: number; adminPort?: number };
        if (entry.msg === 'listening') resolve({ port: entry.port!, adminPort: entry.adminPort! });
      }
    });
    void exited.then((code) => reject(new Error(`devstack-relay exited (${String(code)}):\n${text}`)));
  });
}

/** A loopback port free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Polls `check` (bounded: 500 times, 20 ms apart) until it holds; resolves whether it did. */
async function until(check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 500; i++) {
    if (await check().catch(() => false)) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

/** A pod's app: orders answers; web calls orders through its sidecar's outbound listener. */
function app(name: string, outbound: () => number) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const key = req.headers[KEY] as string | undefined;
    const reply = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (name.startsWith('orders')) return reply({ service: name });
    send(outbound(), 'http://orders/', { host: 'orders', ...(key === undefined ? {} : { [KEY]: key }) }).then(
      (down) => reply({ service: name, downstream: down.body['service'] ?? down.body }),
      (error: Error) => reply({ service: name, error: error.message }),
    );
  };
}

t.test('relay mode: rendered sidecars route through a real relay, and the API server sees none of them', async (t) => {
  const { kubectl } = tools();
  const api = await startFakeApiServer({ namespaces: [NS] });
  t.teardown(() => api.close());
  const dir = t.testdir();
  const kubeconfig = await api.kubeconfig(join(dir, 'kubeconfig'), { namespace: NS });
  // The relay's port, known before the releases are rendered with it (it starts last).
  const relayPort = await freePort();
  const url = `http://127.0.0.1:${relayPort}`;
  const rendered = await Promise.all(RELEASES.map(async (r) => ({
    ...r,
    name: nameOf(r),
    objects: await render(nameOf(r), { namespace: NS, values: { service: r.service, image: { repository: 'devstack-examples' }, devstack: { feature: r.feature, relay: { url } } } }),
  })));
  const all = rendered.flatMap((r) => r.objects);
  t.same([...new Set(all.map((o) => o.kind))].sort(), ['Deployment', 'Service'], 'no ServiceAccount, Role or RoleBinding in relay mode');
  for (const r of rendered) {
    const pod = podSpec(find(r.objects, 'Deployment', r.name));
    t.equal(pod['automountServiceAccountToken'], false, `${r.name}: no API token in the pod`);
    t.match(podEnv(sidecarContainer(find(r.objects, 'Deployment', r.name)), NS), { DEVSTACK_REGISTRY: url, POD_NAMESPACE: NS }, `${r.name}: the sidecar follows the relay, in the pod's namespace`);
  }
  const manifest = join(dir, 'fleet.yaml');
  writeFileSync(manifest, all.map((o) => stringify(o)).join('---\n'));
  const created = await run(kubectl, ['--kubeconfig', kubeconfig, 'create', '-f', manifest]);
  t.equal(created.stdout.trim().split('\n').length, all.length, 'kubectl created every rendered object');

  // The endpoint controller's part: each Service's slice, on its pod's sidecar inbound port.
  const inbound = new Map<string, number>();
  for (const r of rendered) inbound.set(r.name, await freePort());
  const slice = (r: { name: string }, ready: boolean): K8sObject => ({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: `${r.name}-x1`, namespace: NS, labels: { 'kubernetes.io/service-name': r.name } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready } }],
    ports: [{ name: 'http', port: inbound.get(r.name)!, protocol: 'TCP' }],
  });
  for (const r of rendered) api.create(slice(r, true));

  // The relay's first list has every slice (a burst of watch events can leave its published state
  // behind its Kubernetes source: see the relay package).
  const relay = await startRelay(t, ['--port', String(relayPort), '--namespace', NS, '--targets', 'endpoints', '--kubeconfig', kubeconfig]);
  t.ok(await until(async () => (await send(relay.adminPort, '/readyz', {})).status === 200), 'the relay synced with the API server');
  t.ok(await until(async () => api.watches.length === 2), 'the relay watches Services and EndpointSlices (once each)');
  // From here on, every request the API server gets is recorded: the relay's watches stay open
  // (300-600 s), so any request is a sidecar's.
  const late: unknown[] = [];
  api.on('request', (info: unknown) => late.push(info));

  const pods = new Map<string, RunningSidecar>();
  await Promise.all(rendered.map(async (r) => {
    const container = sidecarContainer(find(r.objects, 'Deployment', r.name));
    const appPort = await listen(t, app(r.name, () => pods.get(r.name)!.ports['outbound']!));
    // A KUBECONFIG the sidecar could reach the API server with: it must not use it.
    pods.set(r.name, await startSidecar(t, container, appPort, undefined, { namespace: NS, env: { KUBECONFIG: kubeconfig }, inboundPort: inbound.get(r.name)! }));
  }));
  const web = pods.get('web')!;
  /** web's sidecar's answer for a call to `service` with `key`: the lane it picks, if it has a ready target there. */
  const lane = async (service: string, key?: string) => {
    const { body } = await send(web.ports['admin']!, `/resolve?service=${service}${key === undefined ? '' : `&key=${key}`}`, {});
    return (body['targets'] as unknown[] | undefined)?.length === 1 ? String(body['lane']) : 'none';
  };
  for (const r of rendered) {
    const want = r.feature || 'base';
    t.ok(await until(async () => (await lane(r.service, r.feature || undefined)) === want), `${r.name}: web's sidecar routes its lane, from the relay`);
  }
  for (const [name, pod] of pods) t.equal((await send(pod.ports['admin']!, '/readyz', {})).status, 200, `${name}: its sidecar is ready`);

  const call = async (headers: Record<string, string>) => (await send(web.ports['inbound']!, '/', { host: 'web', ...headers })).body;
  t.same(await call({ [KEY]: 'feature1' }), { service: 'web', downstream: 'orders-feature1' }, 'with the key feature1: web, then the orders copy');
  t.same(await call({}), { service: 'web', downstream: 'orders' }, 'without a key: base orders');

  // A change in the API server reaches the sidecars through the relay: the copy goes unready.
  api.apply(slice(rendered[2]!, false));
  t.ok(await until(async () => (await lane('orders', 'feature1')) === 'base'), 'the copy going unready is seen through the relay');
  t.same(await call({ [KEY]: 'feature1' }), { service: 'web', downstream: 'orders' }, 'and the key feature1 falls back to base orders');

  const metrics = await new Promise<string>((resolve, reject) => {
    get({ host: '127.0.0.1', port: relay.adminPort, path: '/metrics' }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve(text));
    }).on('error', reject);
  });
  t.match(metrics, /devstack_relay_subscribers\{namespace="shop"\} 3/, 'the relay streams to the three sidecars');
  t.same(late, [], 'the API server got no request while the sidecars started, synced and routed');
});
