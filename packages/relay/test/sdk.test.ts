/*
 * The SDK's proxyless mode through the relay: an app with `init({ registry: 'http://RELAY' })` and
 * its namespace from DEVSTACK_NAMESPACE routes a keyed call to the copy, and loads no Kubernetes
 * client.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { startFakeApiServer } from '@devstack/kube-fake';
import { NS, service, slice, startRelay } from './helpers.ts';

async function upstream(t: { teardown(fn: () => unknown): void }, name: string): Promise<number> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name, key: req.headers['uber-ctx-key'] ?? null }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as AddressInfo).port;
}

t.test('init({ registry: "http://RELAY" }) routes proxyless from the relay and loads no Kubernetes client', async (t) => {
  const api = await startFakeApiServer({ namespaces: [NS] });
  t.teardown(() => api.close());
  const [base, copy] = await Promise.all([upstream(t, 'web'), upstream(t, 'web-f1')]);
  api.create(service('web', 'web'));
  api.create({ ...slice('web', ['127.0.0.1']), ports: [{ name: 'http', port: base, protocol: 'TCP' }] });
  api.create(service('web-f1', 'web', 'f1'));
  api.create({ ...slice('web-f1', ['127.0.0.1']), ports: [{ name: 'http', port: copy, protocol: 'TCP' }] });
  const kubeconfig = await api.kubeconfig(`${t.testdirName}-kubeconfig`);
  const relay = await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS, '--targets', 'endpoints']);
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = [];
    registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); loaded.push(r.url); return r; } });
    const { init, withRoutingKey } = await import('@devstack/sdk');
    const sdk = init({ registry: 'http://127.0.0.1:${relay.port}' });
    const ready = await sdk.ready;
    const call = async () => (await (await fetch('http://web/')).json());
    const keyed = await withRoutingKey('f1', call);
    const plain = await call();
    await sdk.close();
    console.log(JSON.stringify({ ready, keyed, plain, loaded: loaded.filter((u) => /client-node|registry-/.test(u)) }));
  `;
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('..', import.meta.url)), env: { ...process.env, DEVSTACK_NAMESPACE: NS }, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`exit ${code}`))));
  });
  const result = JSON.parse(out) as { ready: boolean; keyed: unknown; plain: unknown; loaded: string[] };
  t.equal(result.ready, true, 'ready after the relay\'s snapshot');
  t.same(result.keyed, { name: 'web-f1', key: 'f1' }, 'a key with a copy: the copy');
  t.same(result.plain, { name: 'web', key: null }, 'no key: base');
  t.ok(result.loaded.some((u) => u.includes('registry-relay')), 'the relay source was loaded');
  t.notOk(result.loaded.some((u) => /client-node|registry-kubernetes/.test(u)), 'no Kubernetes source or client');
  t.ok(api.requests.every((r) => r.method === 'GET' && /\/namespaces\/shop\/(services|endpointslices)$/.test(r.path)), 'the API server saw only the relay');

  // Zero code: register with DEVSTACK_REGISTRY naming the relay and DEVSTACK_NAMESPACE.
  const app = `
    const { withRoutingKey } = await import('@devstack/sdk');
    let answer;
    // Bounded: the relay's first snapshot arrives while the app already runs.
    for (let i = 0; i < 500 && answer?.name !== 'web-f1'; i++) {
      answer = await withRoutingKey('f1', async () => (await fetch('http://web/')).json()).catch(() => undefined);
      if (answer?.name !== 'web-f1') await new Promise((r) => setTimeout(r, 10));
    }
    console.log(JSON.stringify(answer));
    process.exit(0);
  `;
  const registered = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', '@devstack/sdk/register', '--input-type=module', '-e', app], { cwd: fileURLToPath(new URL('..', import.meta.url)), env: { ...process.env, DEVSTACK_REGISTRY: `http://127.0.0.1:${relay.port}`, DEVSTACK_NAMESPACE: NS }, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`exit ${code}`))));
  });
  t.same(JSON.parse(registered), { name: 'web-f1', key: 'f1' }, 'register: DEVSTACK_REGISTRY=http://RELAY routes by the relay');
});
