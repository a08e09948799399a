/*
 * The real sidecar routing from the real relay (`--registry http://RELAY`, the namespace from the
 * pod's environment): routing, the relay killed (the sidecar routes on and stays ready, stale),
 * and restarted (a copy deployed meanwhile is routed).
 */
import { spawn } from 'node:child_process';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { startFakeApiServer, type FakeApiServer } from '@devstack/kube-fake';
import { NS, get, service, slice, startRelay, until } from './helpers.ts';

const SIDECAR = fileURLToPath(new URL('../../sidecar/bin/devstack-sidecar.cjs', import.meta.url));

interface Tap {
  teardown(fn: () => unknown): void;
}

async function upstream(t: Tap, name: string): Promise<number> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name, key: req.headers['uber-ctx-key'] ?? null }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as AddressInfo).port;
}

function deploy(api: FakeApiServer, name: string, svc: string, port: number, key?: string): void {
  api.create(service(name, svc, key));
  api.create({ ...slice(name, ['127.0.0.1']), ports: [{ name: 'http', port, protocol: 'TCP' }] });
}

async function sidecar(t: Tap, registry: string, waitOutbound = true): Promise<{ outbound: number; admin: number }> {
  const proc = spawn(process.execPath, [SIDECAR, '--registry', registry, '--outbound-port', '0', '--admin-port', '0', '--admin-host', '127.0.0.1'], { env: { PATH: process.env['PATH'] ?? '', POD_NAMESPACE: NS }, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    return exited;
  });
  const ports: Record<string, number> = {};
  return new Promise((resolve, reject) => {
    let text = '';
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
      text += c;
      let nl: number;
      while ((nl = text.indexOf('\n')) >= 0) {
        const entry = JSON.parse(text.slice(0, nl)) as { msg?: string; listener?: string; port?: number };
        text = text.slice(nl + 1);
        if (entry.msg === 'listening' && entry.listener !== undefined) ports[entry.listener] = entry.port!;
        // The admin listener comes first; the outbound one once the registry has its first snapshot.
        if (ports['admin'] !== undefined && (ports['outbound'] !== undefined || !waitOutbound)) resolve({ outbound: ports['outbound'] ?? 0, admin: ports['admin'] });
      }
    });
    void exited.then((code) => reject(new Error(`sidecar exited ${String(code)}`)));
  });
}

function call(port: number, host: string, key?: string): Promise<{ name: string; key: string | null } | undefined> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { host };
    if (key !== undefined) headers['uber-ctx-key'] = key;
    request({ host: '127.0.0.1', port, path: '/', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as { name: string; key: string | null });
        } catch {
          resolve(undefined);
        }
      });
    })
      .on('error', () => resolve(undefined))
      .end();
  });
}

t.test('a relay-mode sidecar routes, stays ready without the relay, and takes what changed meanwhile', async (t) => {
  const api = await startFakeApiServer({ namespaces: [NS] });
  t.teardown(() => api.close());
  const [web, webF1, webF2] = await Promise.all([upstream(t, 'web'), upstream(t, 'web-f1'), upstream(t, 'web-f2')]);
  deploy(api, 'web', 'web', web);
  deploy(api, 'web-f1', 'web', webF1, 'f1');
  const kubeconfig = await api.kubeconfig(`${t.testdirName}-kubeconfig`);
  const relay = await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS, '--targets', 'endpoints']);
  const side = await sidecar(t, `http://127.0.0.1:${relay.port}`);
  await until(() => get(side.admin, '/readyz'), (r) => r.status === 200);
  t.same(await call(side.outbound, 'web', 'f1'), { name: 'web-f1', key: 'f1' }, 'a key with a copy: the copy');
  t.same(await call(side.outbound, 'web'), { name: 'web', key: null }, 'no key: base');

  relay.proc.kill('SIGKILL');
  await relay.exited;
  await until(() => get(side.admin, '/metrics'), (r) => /^devstack_registry_stale 1$/m.test(r.text));
  t.pass('stale without the relay');
  t.equal((await get(side.admin, '/readyz')).status, 200, 'still ready: it has a snapshot');
  t.same(await call(side.outbound, 'web', 'f1'), { name: 'web-f1', key: 'f1' }, 'routing goes on from the last snapshot');

  deploy(api, 'web-f2', 'web', webF2, 'f2');
  await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS, '--targets', 'endpoints', '--port', String(relay.port)]);
  await until(() => call(side.outbound, 'web', 'f2'), (r) => r?.name === 'web-f2');
  t.pass('a copy deployed while the relay was away is routed');
  await until(() => get(side.admin, '/metrics'), (r) => /^devstack_registry_stale 0$/m.test(r.text));
  t.ok(api.requests.every((r) => r.method === 'GET' && /\/namespaces\/shop\/(services|endpointslices)$/.test(r.path)), 'the API server saw only the relays');
});

t.test('a relay-mode sidecar that never had a snapshot is not ready', async (t) => {
  // A port nobody listens on (not one of the ports fetch refuses outright, such as 9).
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const side = await sidecar(t, `http://127.0.0.1:${port}`, false);
  const ready = await get(side.admin, '/readyz');
  t.not(ready.status, 200, 'not ready without a first snapshot');
});
