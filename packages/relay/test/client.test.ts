/*
 * The relay source (`--registry http://RELAY`) through core's factory, against the real relay
 * command: a relay killed and restarted, and what the client process loads.
 */
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { createRegistrySource, registryKind, resolve, type Snapshot } from '@devstack/core';
import type { RelayStatus } from '@devstack/registry-relay';
import { NS, deploy, fleet, service, serviceRef, slice, startRelay, until } from './helpers.ts';

const lanes = (s: Snapshot | undefined, service: string) => [...(s?.services.get(service)?.features.keys() ?? [])].sort();

t.test('the relay killed: routing goes on from the last snapshot, stale; restarted: a change made meanwhile arrives', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  const args = ['--kubeconfig', kubeconfig, '--namespace', NS];
  const first = await startRelay(t, args);
  t.equal(registryKind(`http://127.0.0.1:${first.port}`), 'relay');
  const source = await createRegistrySource({ registry: `http://127.0.0.1:${first.port}`, kubernetes: { namespaces: [NS] }, relay: { backoff: { initialMs: 20, maxMs: 100 } } });
  t.teardown(() => source.close());
  t.equal(source.kind, 'relay');
  const snapshot = await source.start();
  t.same([...snapshot.services.keys()].sort(), ['orders', 'web']);
  const status = () => source.status!() as RelayStatus;
  await until(async () => status(), (s) => s.connected);
  t.equal(status().stale, false);

  first.proc.kill('SIGKILL');
  await first.exited;
  await until(async () => status(), (s) => s.failures > 0);
  t.equal(status().stale, true, 'stale without the relay');
  t.equal(source.current(), snapshot, 'the last snapshot kept');

  deploy(api, 'web-f3', 'web', '10.0.3.1', 'f3');
  const second = await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS, '--port', String(first.port)]);
  t.equal(second.port, first.port);
  await until(async () => source.current(), (s) => lanes(s, 'web').includes('f3'));
  t.pass('the change made while the relay was away arrived');
  await until(async () => status(), (s) => !s.stale);
  t.not(status().epoch, undefined);
  t.ok(status().failuresByReason.connect > 0, 'refused connections counted');
});

t.test('a relay-mode app loads no Kubernetes client', async (t) => {
  const { kubeconfig } = await fleet(t);
  const relay = await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS]);
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = [];
    registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); loaded.push(r.url); return r; } });
    const { createRegistrySource } = await import('@devstack/core');
    const source = await createRegistrySource({ registry: 'http://127.0.0.1:${relay.port}', relay: { namespace: '${NS}' } }, (name) => import(name));
    const snapshot = await source.start();
    await source.close();
    console.log(JSON.stringify({ services: [...snapshot.services.keys()].sort(), loaded: loaded.filter((u) => /client-node|registry-/.test(u)) }));
  `;
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`exit ${code}`))));
  });
  const { services, loaded } = JSON.parse(out) as { services: string[]; loaded: string[] };
  t.same(services, ['orders', 'web'], 'routed from the relay');
  t.ok(loaded.some((u) => u.includes('registry-relay')), 'the relay source was loaded');
  t.notOk(loaded.some((u) => /client-node|registry-kubernetes|registry-file/.test(u)), 'no Kubernetes source or client, no file source');
});

t.test('over TLS: --tls-cert and --tls-key, followed with --registry https://', async (t) => {
  const { kubeconfig } = await fleet(t);
  const dir = t.testdir({});
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=devstack-relay', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`], { stdio: 'ignore' });
  const relay = await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS, '--tls-cert', `${dir}/cert.pem`, '--tls-key', `${dir}/key.pem`]);
  const script = `
    const { createRegistrySource } = await import('@devstack/core');
    const source = await createRegistrySource({ registry: 'https://127.0.0.1:${relay.port}', relay: { namespace: '${NS}' } }, (name) => import(name));
    const snapshot = await source.start();
    await source.close();
    console.log(JSON.stringify([...snapshot.services.keys()].sort()));
  `;
  const out = await new Promise<string>((resolve, reject) => {
    // The relay's certificate is trusted as a cluster's CA would be, through NODE_EXTRA_CA_CERTS.
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('..', import.meta.url)), env: { ...process.env, NODE_EXTRA_CA_CERTS: `${dir}/cert.pem` }, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`exit ${code}`))));
  });
  t.same(JSON.parse(out), ['orders', 'web'], 'the snapshot over TLS');
  const plain = await fetch(`http://127.0.0.1:${relay.port}/v1/namespaces/${NS}/stream`).then((r) => r.status, () => 'refused');
  t.not(plain, 200, 'no plain HTTP on a TLS port');
  t.equal(relay.proc.exitCode, null, 'the relay runs on');
});

t.test('stacks ride the relay: in the snapshot on connect and in a change, so a follower routes by them', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  deploy(api, 'orders-f1', 'orders', '10.0.1.1', 'f1');
  const copy = service('web-f2', 'web', 'f2');
  api.create({ ...copy, metadata: { ...copy.metadata, annotations: { 'devstack.io/stack-on': 'f1' } } });
  api.create(slice('web-f2', ['10.0.2.1']));
  const relay = await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS, '--targets', 'endpoints']);
  const source = await createRegistrySource({ registry: `http://127.0.0.1:${relay.port}`, relay: { namespace: NS } });
  t.teardown(() => source.close());
  await source.start();
  const first = await until(async () => source.current(), (s) => s?.stacks.get('f2') === 'f1');
  t.same([resolve(first!, 'orders', 'f2').lane?.name, resolve(first!, 'web', 'f2').lane?.name], ['f1', 'f2'], 'f2 has no orders copy: f1\'s serves');
  // A change of the stacks alone is a delta with the stacks and no service.
  api.patch(serviceRef('web-f2'), { metadata: { annotations: { 'devstack.io/stack-on': null } } });
  const second = await until(async () => source.current(), (s) => s?.stacks.size === 0);
  t.equal(resolve(second!, 'orders', 'f2').lane?.name, 'base', 'unstacked: base');
});
