/*
 * Proxyless through a devstack-relay: `init({ registry: 'http://...' })` and `DEVSTACK_REGISTRY=
 * http://...` under register, the namespace from DEVSTACK_NAMESPACE, against a relay stand-in on
 * 127.0.0.1 that streams one snapshot. The app loads no Kubernetes client. Each app is a child
 * process (the SDK patches globals).
 */
import t from 'tap';
import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFile } from 'node:child_process';

async function listen(t: Tap, server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Tap {
  teardown(fn: () => unknown): void;
}

const copy = (name: string) => http.createServer((req, res) => req.resume().on('end', () => res.end(JSON.stringify({ name, key: req.headers['uber-ctx-key'] ?? null }))));

const base = await listen(t, copy('orders'));
const feature = await listen(t, copy('orders-feature1'));
const streams: string[] = [];
const open: ServerResponse[] = [];
const relay = await listen(
  t,
  http.createServer((req, res) => {
    streams.push(req.url ?? '');
    if (!(req.url ?? '').startsWith('/v1/namespaces/shop/stream')) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"DEVSTACK_RELAY_NAMESPACE_NOT_SERVED"}');
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(`${JSON.stringify({ type: 'snapshot', epoch: 'e1', version: 1, stale: false, lastSync: 1, services: { orders: { base: [base], features: { feature1: [feature] } } } })}\n`);
    open.push(res);
  }),
);

// The app: which @kubernetes/client-node it resolved (none, it must be), then a keyed and an unkeyed call.
const APP = `
  import { registerHooks } from 'node:module';
  const seen = [];
  registerHooks({ resolve(specifier, context, next) { if (specifier.includes('client-node') || specifier.includes('registry-kubernetes')) seen.push(specifier); return next(specifier, context); } });
  const { init, withRoutingKey } = await import('@devstack/sdk');
  const sdk = init(process.env.INIT === undefined ? undefined : JSON.parse(process.env.INIT));
  await sdk.ready;
  const call = async () => (await fetch('http://orders/')).json();
  const keyed = await withRoutingKey('feature1', call);
  const unkeyed = await call();
  await sdk.close();
  process.stdout.write(JSON.stringify({ seen, keyed, unkeyed }));`;

function run(args: string[], env: Record<string, string>): Promise<{ seen: string[]; keyed: unknown; unkeyed: unknown }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...args, '--input-type=module', '-e', APP], { cwd: import.meta.dirname, env: { ...process.env, DEVSTACK_NAMESPACE: 'shop', ...env }, timeout: 20_000 }, (error, stdout, stderr) =>
      error === null ? resolve(JSON.parse(stdout) as never) : reject(new Error(`${error.message}\n${stderr}`)),
    );
  });
}

const WANT = { seen: [], keyed: { name: 'orders-feature1', key: 'feature1' }, unkeyed: { name: 'orders', key: null } };

t.test("init({ registry: 'http://...' }) with DEVSTACK_NAMESPACE and the relay source's options", async (t) => {
  const before = streams.length;
  t.same(await run([], { INIT: JSON.stringify({ registry: relay, relay: { idleTimeoutMs: 60_000, connectTimeoutMs: 5000 } }) }), WANT);
  t.match(streams.slice(before), [/^\/v1\/namespaces\/shop\/stream/], 'the namespace from DEVSTACK_NAMESPACE');
});

t.test('register: DEVSTACK_REGISTRY=http://... with DEVSTACK_NAMESPACE', async (t) => {
  const before = streams.length;
  t.same(await run(['--import', '@devstack/sdk/register'], { DEVSTACK_REGISTRY: relay }), WANT);
  t.match(streams.slice(before), [/^\/v1\/namespaces\/shop\/stream/]);
});

t.test("the Kubernetes source's hardened options pass init's check", async (t) => {
  const { init } = await import('@devstack/sdk');
  const sdk = init({ kubernetes: { requestTimeoutMs: 30_000, pageSize: 500, maxDelayMs: 100, reportIntervalMs: 30_000 } });
  t.equal(sdk.proxyless, false);
  await sdk.close();
});
