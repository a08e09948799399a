import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeApiServer, TRAEFIK_RESOURCES } from '@devstack/kube-fake';
import { tools } from './tools.ts';

const SERVICE = `apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
  labels:
    devstack.io/service: orders
    {{- with .Values.feature }}
    devstack.io/feature: {{ . }}
    {{- end }}
spec:
  ports: [{ name: http, port: 80 }]
`;

const ROUTE = `apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: {{ .Release.Name }}
spec:
  routes: [{ match: "Host(\`orders.example.com\`)", kind: Rule, services: [{ name: {{ .Release.Name }}, port: 80 }] }]
`;

t.test('the real helm 4: install, upgrade, uninstall (release Secrets in protobuf, server-side apply)', async (t) => {
  const { helm } = await tools();
  const api = await startFakeApiServer({ customResources: [...TRAEFIK_RESOURCES] });
  const dir = await mkdtemp(join(tmpdir(), 'kube-fake-'));
  t.teardown(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  await mkdir(join(dir, 'chart', 'templates'), { recursive: true });
  await writeFile(join(dir, 'chart', 'Chart.yaml'), 'apiVersion: v2\nname: orders\nversion: 0.1.0\n');
  await writeFile(join(dir, 'chart', 'templates', 'service.yaml'), SERVICE);
  await writeFile(join(dir, 'chart', 'templates', 'route.yaml'), ROUTE);
  const env = { PATH: process.env.PATH ?? '', HOME: dir, KUBECONFIG: await api.kubeconfig(join(dir, 'kubeconfig')) };
  const h = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(helm, args, { env, cwd: dir, timeout: 60_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  const svc = { apiVersion: 'v1', kind: 'Service', namespace: 'default', name: 'orders-f1' };

  const installed = await h('install', 'orders-f1', './chart', '--set', 'feature=feature1');
  t.equal(installed.code, 0, installed.stderr);
  t.match(installed.stdout, /STATUS: deployed/);
  t.match(api.get(svc), { metadata: { labels: { 'devstack.io/service': 'orders', 'devstack.io/feature': 'feature1', 'app.kubernetes.io/managed-by': 'Helm' } } });
  t.ok(api.tryGet({ apiVersion: 'traefik.io/v1alpha1', kind: 'IngressRoute', name: 'orders-f1' }), 'the custom resource too');
  const release = api.list('v1', 'Secret', 'default');
  t.match(release, [{ type: 'helm.sh/release.v1', metadata: { name: 'sh.helm.release.v1.orders-f1.v1', labels: { owner: 'helm', status: 'deployed' } } }], 'the release, stored through protobuf');

  const listed = await h('list', '-o', 'json');
  t.match(JSON.parse(listed.stdout), [{ name: 'orders-f1', revision: '1', status: 'deployed' }]);

  const upgraded = await h('upgrade', 'orders-f1', './chart', '--reset-values');
  t.equal(upgraded.code, 0, upgraded.stderr);
  t.notOk('devstack.io/feature' in (api.get(svc).metadata?.labels ?? {}), 'a field helm no longer applies is removed');

  const uninstalled = await h('uninstall', 'orders-f1');
  t.equal(uninstalled.code, 0, uninstalled.stderr);
  t.equal(api.tryGet(svc), undefined);
  t.same(api.list('v1', 'Secret', 'default'), []);
});
