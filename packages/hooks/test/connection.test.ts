/* Credentials: the pod's service account, a kubeconfig read as YAML, and client-node for the rest. */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inClusterConnection, kubeconfigConnection } from '@devstack/hooks';
import { load } from 'js-yaml';
import { badServer } from './bad-server.ts';
import { run } from './helpers.ts';

const dir = (t: { teardown(fn: () => unknown): void }) => {
  const d = mkdtempSync(join(tmpdir(), 'devstack-hooks-conn-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
};
const NOT_FOUND = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'secrets "orders" not found', reason: 'NotFound', code: 404 });

t.test('in a pod: the service account token and CA, https to KUBERNETES_SERVICE_HOST', async (t) => {
  const d = dir(t);
  writeFileSync(join(d, 'token'), 'tok-123\n');
  writeFileSync(join(d, 'ca.crt'), 'CA PEM');
  const c = inClusterConnection({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '6443' }, undefined, d);
  t.match(c, { server: 'https://10.96.0.1:6443', headers: { authorization: 'Bearer tok-123' }, rejectUnauthorized: true });
  t.equal(String(c.ca), 'CA PEM');
  t.equal(inClusterConnection({ KUBERNETES_SERVICE_HOST: 'fd00::1' }, undefined, d).server, 'https://[fd00::1]:443');
});

t.test('a kubeconfig: files relative to it, data inline, anything else left to client-node', async (t) => {
  const d = dir(t);
  writeFileSync(join(d, 'token'), 'file-token\n');
  const config = (user: string, cluster = 'server: https://api.example:6443\n    certificate-authority-data: Q0E=') =>
    `apiVersion: v1\nclusters:\n- name: c\n  cluster:\n    ${cluster}\ncontexts:\n- name: x\n  context: {cluster: c, user: u, namespace: team-b}\ncurrent-context: x\nusers:\n- name: u\n  user: ${user}\n`;
  const path = join(d, 'kubeconfig');
  t.match(kubeconfigConnection(path, config('{tokenFile: token}'), undefined, load), { server: 'https://api.example:6443', headers: { authorization: 'Bearer file-token' }, namespace: 'team-b', rejectUnauthorized: true });
  t.equal(String(kubeconfigConnection(path, config('{}'), undefined, load)!.ca), 'CA');
  t.match(kubeconfigConnection(path, config('{username: a, password: b}'), undefined, load), { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
  t.equal(kubeconfigConnection(path, config('{exec: {command: x}}'), undefined, load), undefined);
  t.equal(kubeconfigConnection(path, config('{}', 'server: https://a\n    proxy-url: http://p'), undefined, load), undefined);
  t.equal(kubeconfigConnection(path, 'null', undefined, load), undefined);
});

t.test('the token of a kubeconfig is sent; an exec plugin goes through client-node and works too', async (t) => {
  const seen: (string | undefined)[] = [];
  const server = await badServer(t, (req, res) => {
    seen.push(req.headers.authorization);
    res.writeHead(404, { 'content-type': 'application/json' }).end(NOT_FOUND);
  });
  const d = dir(t);
  const withUser = (user: string) => {
    const path = join(d, `kubeconfig-${seen.length}`);
    writeFileSync(path, `apiVersion: v1\nclusters:\n- name: c\n  cluster: {server: '${server.url}'}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\nusers:\n- name: u\n  user: ${user}\n`);
    return path;
  };
  const update = (kubeconfig: string) => run(['secret', 'update', '--kubeconfig', kubeconfig, '--name', 'orders', '--set', 'A=1']);
  const token = await update(withUser('{token: lean-token}'));
  t.match(token.lines.find((l) => l['level'] === 'error'), { code: 'DEVSTACK_HOOK_NOT_FOUND' });
  const plugin = join(d, 'plugin.cjs');
  writeFileSync(plugin, `process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'exec-token' } }));`);
  const exec = await update(withUser(`{exec: {apiVersion: client.authentication.k8s.io/v1, command: '${process.execPath}', args: ['${plugin}'], interactiveMode: Never}}`));
  t.match(exec.lines.find((l) => l['level'] === 'error'), { code: 'DEVSTACK_HOOK_NOT_FOUND' }, exec.stderr);
  t.same(seen, ['Bearer lean-token', 'Bearer exec-token']);
});

t.test('a kubeconfig that is not YAML: its reason and position, never its lines', async (t) => {
  const d = dir(t);
  const path = join(d, 'kubeconfig');
  writeFileSync(path, 'users:\n- name: u\n  user: {token: Hunter2Leak\n    bad: [\n');
  const r = await run(['secret', 'update', '--kubeconfig', path, '--name', 'orders', '--set', 'A=1']);
  t.equal(r.code, 1);
  t.match(r.lines.find((l) => l['level'] === 'error'), { code: 'DEVSTACK_HOOK_NO_CREDENTIALS', error: /the kubeconfig is not YAML \(.* at line 4, column \d+\)/ });
  t.notMatch(r.stdout + r.stderr, /Hunter2Leak/);
});
