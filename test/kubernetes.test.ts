/*
 * The sidecar routing from the Kubernetes registry, end to end: the real `devstack-sidecar`
 * command with `--registry k8s --targets endpoints`, a protocol-faithful API server on loopback
 * (@devstack/kube-fake), and EndpointSlices that point at real upstream servers on 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { startFakeApiServer, type FakeApiServer } from '@devstack/kube-fake';
import { listen, runSidecar, type RunningSidecar } from './helpers/pods.ts';

const NS = 'shop';

interface Tap {
  teardown(fn: () => unknown): void;
  testdir(): string;
}

function upstream(t: Tap, name: string): Promise<number> {
  return listen(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name, key: req.headers['uber-ctx-key'] ?? null }));
  });
}

function service(name: string, svc: string, key?: string) {
  const labels: Record<string, string> = { 'devstack.io/service': svc };
  if (key !== undefined) labels['devstack.io/feature'] = key;
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS, labels }, spec: { ports: [{ name: 'http', port: 80 }] } };
}

function slice(name: string, port: number, ready = true) {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${name}-abc`, namespace: NS, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready } }],
    ports: [{ name: 'http', port, protocol: 'TCP' }],
  };
}

const sliceRef = (name: string) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', name: `${name}-abc`, namespace: NS });
const serviceRef = (name: string) => ({ apiVersion: 'v1', kind: 'Service', name, namespace: NS });

/** Adds a Service and its slice to the fake: a base (no key) or a feature copy. */
function deploy(api: FakeApiServer, name: string, svc: string, port: number, key?: string): void {
  api.create(service(name, svc, key));
  api.create(slice(name, port));
}

type Sidecar = RunningSidecar;

/** The real command; resolves once its admin listener is up (before the registry has synced). */
function sidecar(t: Tap, kubeconfig: string, extra: string[] = []): Promise<Sidecar> {
  const args = ['--registry', 'k8s', '--kubeconfig', kubeconfig, '--namespace', NS, '--targets', 'endpoints', '--outbound-port', '0', '--admin-port', '0', '--admin-host', '127.0.0.1', ...extra];
  return runSidecar(t, args, process.env);
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; lane: string | undefined; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = { text };
        }
        resolve({ status: res.statusCode!, lane: res.headers['x-devstack-lane'] as string | undefined, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Who answers `host` with `key` through the sidecar: the upstream's name, or the error code. */
async function who(s: Sidecar, host: string, key?: string): Promise<string> {
  const reply = await get(s.ports['outbound']!, '/', key === undefined ? { host } : { host, 'uber-ctx-key': key });
  return String(reply.body['name'] ?? (reply.body['error'] as { code?: string } | undefined)?.code ?? reply.status);
}

/** Polls until `probe` gives `want` (a change reaches routing asynchronously); bounded. */
async function routedTo(probe: () => Promise<string>, want: string): Promise<string> {
  let got = await probe();
  for (let i = 0; i < 250 && got !== want; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    got = await probe();
  }
  return got;
}

async function fleet(t: Tap) {
  const api = await startFakeApiServer({ namespaces: [NS] });
  t.teardown(() => api.close());
  const ports = {
    web: await upstream(t, 'web'),
    webF1: await upstream(t, 'web-f1'),
    orders: await upstream(t, 'orders'),
    ordersF1: await upstream(t, 'orders-f1'),
  };
  deploy(api, 'web', 'web', ports.web);
  deploy(api, 'web-f1', 'web', ports.webF1, 'f1');
  deploy(api, 'orders', 'orders', ports.orders);
  return { api, ports, kubeconfig: await api.kubeconfig(`${t.testdir()}/kubeconfig`) };
}

t.test('not ready until the first sync; then the routing table, the chain rule and every change', async (t) => {
  const { api, ports, kubeconfig } = await fleet(t);
  await api.stop();
  const s = await sidecar(t, kubeconfig);
  const early = await get(s.ports['admin']!, '/readyz');
  t.equal(early.status, 503, '/readyz is 503 before the first sync');
  t.match(early.body, { status: 'no registry snapshot yet', registry: { synced: false } });
  await api.restart();
  await s.ready;
  const ready = await get(s.ports['admin']!, '/readyz');
  t.equal(ready.status, 200, 'ready after it');
  t.match(ready.body, { status: 'ready', registry: { synced: true, stale: false } });

  t.equal(await who(s, 'web', 'f1'), 'web-f1', 'a key with a copy: the copy');
  t.equal(await who(s, 'web.shop.svc.cluster.local'), 'web', 'no key: base, by its cluster DNS name');
  t.equal(await who(s, 'orders', 'f1'), 'orders', 'chain rule: no copy of orders, base');
  t.equal(await who(s, 'web', 'zzz'), 'web', 'unknown key: base');

  deploy(api, 'orders-f1', 'orders', ports.ordersF1, 'f1');
  t.equal(await routedTo(() => who(s, 'orders', 'f1'), 'orders-f1'), 'orders-f1', 'a new copy is routed');
  api.patch(sliceRef('orders-f1'), { endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: false } }] });
  t.equal(await routedTo(() => who(s, 'orders', 'f1'), 'orders'), 'orders', 'a copy turning unready falls back to base');
  api.patch(sliceRef('orders-f1'), { endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }] });
  t.equal(await routedTo(() => who(s, 'orders', 'f1'), 'orders-f1'), 'orders-f1', 'and ready again');
  api.delete(serviceRef('orders-f1'));
  t.equal(await routedTo(() => who(s, 'orders', 'f1'), 'orders'), 'orders', 'a deleted copy: base');

  const routes = await get(s.ports['admin']!, '/routes');
  t.match(routes.body, { source: 'kubernetes', registry: { namespaces: [NS], synced: true, resourceVersions: { 'services/shop': /^\d+$/ } } }, '/routes shows the source, namespaces, sync and versions');
});

t.test('410 after a compaction, and an API server away for a while: routing goes on, changes arrive after', async (t) => {
  const { api, ports, kubeconfig } = await fleet(t);
  const s = await sidecar(t, kubeconfig);
  await s.ready;
  await api.stop();
  t.equal(await who(s, 'web', 'f1'), 'web-f1', 'routed from the last snapshot while the API server is away');
  const staleness = async () => String(((await get(s.ports['admin']!, '/readyz')).body['registry'] as { stale?: boolean } | undefined)?.stale);
  const stale = await routedTo(staleness, 'true');
  t.equal(stale, 'true', '/readyz says the data is stale');
  t.equal((await get(s.ports['admin']!, '/readyz')).status, 200, 'and stays ready: stale is not wrong');
  const metrics = await new Promise<string>((resolve, reject) => {
    request({ host: '127.0.0.1', port: s.ports['admin']!, path: '/metrics', agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(text));
    })
      .on('error', reject)
      .end();
  });
  t.match(metrics, /^devstack_registry_stale 1$/m, 'the stale gauge');
  t.match(metrics, /^devstack_registry_watch_failures_total\{reason="[a-z]+"\} [1-9]/m, 'failures counted, by reason');
  t.match(metrics, /^devstack_registry_last_sync_seconds [1-9]/m, 'the last sync time');
  // Changed meanwhile, and the history compacted: the watches get 410 and relist.
  deploy(api, 'orders-f1', 'orders', ports.ordersF1, 'f1');
  api.delete(serviceRef('web-f1'));
  api.compact();
  await api.restart();
  t.equal(await routedTo(() => who(s, 'orders', 'f1'), 'orders-f1'), 'orders-f1', 'a copy added while away is routed once it is back');
  t.equal(await routedTo(() => who(s, 'web', 'f1'), 'web'), 'web', 'a copy deleted while away is gone');
});

t.test('a watch that goes silent is restarted after --watch-idle-timeout', async (t) => {
  const { api, ports, kubeconfig } = await fleet(t);
  const s = await sidecar(t, kubeconfig, ['--watch-idle-timeout', '1000']);
  await s.ready;
  await api.waitForWatch((w) => w.kind === 'Service');
  api.hangWatches();
  deploy(api, 'orders-f1', 'orders', ports.ordersF1, 'f1');
  t.equal(await routedTo(() => who(s, 'orders', 'f1'), 'orders-f1'), 'orders-f1', 'the change made during the silence is routed');
});

t.test('the SDK routes proxyless from the same source: init({ registry: "k8s" })', async (t) => {
  const { kubeconfig } = await fleet(t);
  const { init } = await import('@devstack/sdk');
  const { withRoutingKey } = await import('@devstack/sdk');
  const sdk = init({ registry: 'k8s', kubernetes: { kubeconfig, namespaces: [NS], targets: 'endpoints' } });
  t.teardown(() => sdk.close());
  t.equal(await sdk.ready, true, 'ready after the first sync');
  const call = async (host: string) => (await (await fetch(`http://${host}/`)).json()) as { name: string; key: string | null };
  t.same(await withRoutingKey('f1', () => call('web')), { name: 'web-f1', key: 'f1' }, 'a key with a copy: the copy');
  t.same(await withRoutingKey('f1', () => call('orders.shop.svc.cluster.local')), { name: 'orders', key: 'f1' }, 'chain rule, by cluster DNS name');
  t.same(await call('web'), { name: 'web', key: null }, 'no key: base');
});

t.test('an app that routes by a file never loads the Kubernetes client', async (t) => {
  const dir = t.testdir({ 'registry.yaml': 'services:\n  web: { base: http://127.0.0.1:9 }\n' });
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = [];
    registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); loaded.push(r.url); return r; } });
    const { init } = await import('@devstack/sdk');
    const sdk = init({ registry: ${JSON.stringify(`${dir}/registry.yaml`)} });
    await sdk.ready;
    await sdk.close();
    console.log(JSON.stringify(loaded.filter((u) => /client-node|registry-kubernetes|registry-file/.test(u))));
  `;
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`exit ${code}`))));
  });
  const urls = JSON.parse(out) as string[];
  t.ok(urls.some((u) => u.includes('registry-file')), 'the file source was loaded');
  t.notOk(urls.some((u) => /client-node|registry-kubernetes/.test(u)), 'the Kubernetes source and client were not');
});
