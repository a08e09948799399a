import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startFakeApiServer, TRAEFIK_RESOURCES } from '@devstack/kube-fake';
import { tools } from './tools.ts';

const MANIFEST = `
apiVersion: v1
kind: Service
metadata:
  name: orders
  labels: { devstack.io/service: orders }
spec:
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata:
  name: orders-feature1
  labels: { devstack.io/service: orders, devstack.io/feature: feature1 }
spec:
  ports: [{ name: http, port: 80 }]
---
apiVersion: v1
kind: Service
metadata:
  name: orders-feature2
  labels: { devstack.io/service: orders, devstack.io/feature: feature2 }
spec:
  ports: [{ name: http, port: 80 }]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: orders
spec:
  entryPoints: [web]
  routes: [{ match: "Host(\`orders.example.com\`)", kind: Rule, services: [{ name: orders, port: 80 }] }]
---
apiVersion: traefik.containo.us/v1alpha1
kind: Middleware
metadata:
  name: orders-feature1
spec:
  headers: { customRequestHeaders: { uber-ctx-key: feature1 } }
`;

t.test('the real kubectl: create -f, get -l, get -w, patch --type merge, delete', async (t) => {
  const { kubectl } = await tools();
  const api = await startFakeApiServer({ customResources: [...TRAEFIK_RESOURCES] });
  const dir = await mkdtemp(join(tmpdir(), 'kube-fake-'));
  t.teardown(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  const env = { PATH: process.env.PATH ?? '', HOME: dir, KUBECONFIG: await api.kubeconfig(join(dir, 'kubeconfig')) };
  const k = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(kubectl, args, { env, timeout: 30_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  await writeFile(join(dir, 'fleet.yaml'), MANIFEST);
  const created = await k('create', '-f', join(dir, 'fleet.yaml'));
  t.equal(created.code, 0, created.stderr);
  t.same(created.stdout.trim().split('\n'), [
    'service/orders created',
    'service/orders-feature1 created',
    'service/orders-feature2 created',
    'ingressroute.traefik.io/orders created',
    'middleware.traefik.containo.us/orders-feature1 created',
  ]);
  t.match(api.get({ apiVersion: 'v1', kind: 'Service', namespace: 'default', name: 'orders' }), {
    metadata: { labels: { 'devstack.io/service': 'orders' } },
    spec: { ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }] },
  });

  const names = async (...args: string[]) => {
    const r = await k('get', 'services', '-o', 'name', ...args);
    t.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split('\n').filter(Boolean);
  };
  t.same(await names('-l', 'devstack.io/service=orders'), ['service/orders', 'service/orders-feature1', 'service/orders-feature2']);
  t.same(await names('-l', 'devstack.io/service==orders,devstack.io/feature=feature1'), ['service/orders-feature1']);
  t.same(await names('-l', 'devstack.io/service,!devstack.io/feature'), ['service/orders']);
  t.same(await names('-l', 'devstack.io/feature'), ['service/orders-feature1', 'service/orders-feature2']);
  t.same(await names('-l', 'devstack.io/feature in (feature2,feature3)'), ['service/orders-feature2']);
  t.same(await names('-l', 'devstack.io/service=orders,devstack.io/feature notin (feature2)'), ['service/orders', 'service/orders-feature1']);
  t.same(await names('-l', 'devstack.io/feature!=feature1', '-A'), ['service/orders', 'service/orders-feature2']);

  const table = await k('get', 'svc', 'orders');
  t.match(table.stdout, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\n^orders\s+ClusterIP\s+10\.96\.\S+\s+<none>\s+80\/TCP\s+/m, 'server-side printing, as kubectl expects');
  const routes = await k('get', 'ingressroutes.traefik.io,middlewares.traefik.containo.us', '-o', 'name');
  t.same(routes.stdout.trim().split('\n'), ['ingressroute.traefik.io/orders', 'middleware.traefik.containo.us/orders-feature1']);

  // get -w: the change made after the watch opened reaches kubectl.
  const watcher = spawn(kubectl, ['get', 'services', '-l', 'devstack.io/service=orders', '-w', '-o', 'name'], { env });
  t.teardown(() => watcher.kill());
  const lines = createInterface(watcher.stdout);
  const seen: string[] = [];
  const late = new Promise<void>((resolve) =>
    lines.on('line', (line) => {
      seen.push(line);
      if (line.includes('orders-feature3')) resolve();
    }),
  );
  await api.waitForWatch((w) => w.labelSelector === 'devstack.io/service=orders');
  api.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'orders-feature3', namespace: 'default', labels: { 'devstack.io/service': 'orders', 'devstack.io/feature': 'feature3' } } });
  await late;
  t.same(seen, ['service/orders', 'service/orders-feature1', 'service/orders-feature2', 'service/orders-feature3'], 'the list, then the change');
  watcher.kill();

  const patched = await k('patch', 'service', 'orders-feature1', '--type', 'merge', '-p', '{"metadata":{"labels":{"devstack.io/feature":"feature9"}}}');
  t.equal(patched.stdout.trim(), 'service/orders-feature1 patched');
  t.same(await names('-l', 'devstack.io/feature=feature9'), ['service/orders-feature1']);
  const strategic = await k('patch', 'service', 'orders', '-p', '{"metadata":{"annotations":{"janitor/ttl":"24h"}}}');
  t.equal(strategic.code, 0, strategic.stderr);
  t.match(api.get({ apiVersion: 'v1', kind: 'Service', namespace: 'default', name: 'orders' }), { metadata: { annotations: { 'janitor/ttl': '24h' } } });

  const deleted = await k('delete', 'service', 'orders-feature2');
  t.equal(deleted.stdout.trim(), 'service "orders-feature2" deleted');
  t.equal(api.tryGet({ apiVersion: 'v1', kind: 'Service', namespace: 'default', name: 'orders-feature2' }), undefined);
  const again = await k('delete', 'service', 'orders-feature2');
  t.equal(again.code, 1);
  t.equal(again.stderr.trim(), 'Error from server (NotFound): services "orders-feature2" not found');
  const conflict = await k('create', '-f', join(dir, 'fleet.yaml'));
  t.match(conflict.stderr, /Error from server \(AlreadyExists\).*services "orders" already exists/);
});
