/*
 * examples/helmfile: every release rendered with the real `helm template` and the values helmfile
 * would pass, for base and for feature environments chosen by state values.
 */
import { join } from 'node:path';
import t from 'tap';
import { ROOT, envOf, find, podSpec, render, validate, type K8sObject } from './helpers/charts.ts';
import { installOrder, planHelmfile } from './helpers/helmfile.ts';

const HELMFILE = join(ROOT, 'examples/helmfile/helmfile.yaml');

async function renderAll(set: string, dir: string) {
  const plan = await planHelmfile(HELMFILE, set, dir);
  const rendered = new Map<string, K8sObject[]>();
  await Promise.all(plan.filter((r) => r.installed).map(async (r) => {
    rendered.set(r.name, await render(r.name, { chart: r.chart, namespace: r.namespace, valuesFiles: r.valuesFiles }));
  }));
  return { plan, rendered };
}

function schemaFailures(objects: K8sObject[]): string[] {
  return objects.flatMap((o) => {
    try {
      validate(o);
      return [];
    } catch (error) {
      return [(error as Error).message];
    }
  });
}

t.test('base: every service, in needs order, no feature labels', async (t) => {
  const { plan, rendered } = await renderAll('', t.testdir());
  t.same(plan.map((r) => [r.name, r.installed]), [['devstack-relay', true], ['payments', true], ['orders', true], ['web', true], ['worker', true]], 'the relay and four base releases');
  t.same(installOrder(plan).filter((n) => n !== 'worker'), ['devstack-relay', 'payments', 'orders', 'web'], 'the relay first, then payments, web last (needs)');
  t.ok(installOrder(plan).indexOf('worker') > 0, 'the worker after the relay');
  const relay = rendered.get('devstack-relay')!;
  t.equal(find(relay, 'Service', 'devstack-relay').metadata.namespace, 'devstack', 'the relay\'s Service is devstack-relay.devstack, the charts\' default relay.url');
  t.ok(relay.some((o) => o.kind === 'Role' && o.metadata.namespace === 'shop'), 'the relay may list and watch shop');
  for (const [name, objects] of rendered) {
    if (name === 'devstack-relay') continue;
    t.notOk(objects.some((o) => ['ServiceAccount', 'Role', 'RoleBinding'].includes(o.kind)), `${name}: no RBAC of its own (it follows the relay)`);
    t.same(schemaFailures(objects), [], `${name}: every object valid`);
    const deployment = find(objects, 'Deployment', name);
    t.notOk(deployment.metadata.labels?.['devstack.io/feature'], `${name}: base, no feature label`);
    const [app, sidecar] = podSpec(deployment).containers;
    t.same(app!['args'], [`examples/src/services/${name}.ts`], `${name}: the example image runs ${name}`);
    t.equal(app!.image, 'devstack-examples:latest', `${name}: the example image`);
    t.equal(envOf(app!)['DEVSTACK_LANE'], 'base', `${name}: lane base`);
    t.equal(sidecar!.image, 'devstack-sidecar:latest', `${name}: the sidecar image`);
  }
  t.ok(rendered.get('web')!.some((o) => o.kind === 'IngressRoute'), 'web is the entry service: its edge routes');
  t.notOk([...rendered.get('orders')!, ...rendered.get('payments')!].some((o) => o.kind === 'IngressRoute'), 'no routes for the others');
  t.match(find(rendered.get('worker')!, 'Service', 'worker').spec, { clusterIP: 'None' }, 'the worker: a headless Service');
  t.equal(envOf(podSpec(find(rendered.get('worker')!, 'Deployment', 'worker')).containers[0]!)['DEVSTACK_SERVICE'], 'worker', 'the worker: DEVSTACK_SERVICE for its lane decisions');
});

t.test('feature3 changes the worker: its copy, headless, in the copy\'s lane', async (t) => {
  const { plan, rendered } = await renderAll('feature3', t.testdir());
  t.same(plan.filter((r) => r.installed && r.name !== 'devstack-relay').map((r) => r.name), ['worker-feature3'], 'only the worker copy (and the relay, unchanged)');
  const objects = rendered.get('worker-feature3')!;
  t.same(schemaFailures(objects), [], 'every object valid');
  t.match(find(objects, 'Service', 'worker-feature3'), { metadata: { labels: { 'devstack.io/service': 'worker', 'devstack.io/feature': 'feature3' } }, spec: { clusterIP: 'None' } }, 'headless, labelled as the copy');
  t.match(envOf(podSpec(find(objects, 'Deployment', 'worker-feature3')).containers[0]!), { DEVSTACK_SERVICE: 'worker', DEVSTACK_DEFAULT_KEY: 'feature3', DEVSTACK_LANE: 'feature3', SQS_ENDPOINT: /^http:/ }, 'its service, lane and queue server');
});

t.test('feature1 with a TTL: copies of the services it changes, and only those', async (t) => {
  const { plan, rendered } = await renderAll('feature=feature1,ttl=6h', t.testdir());
  t.same(plan.map((r) => [r.name, r.installed]), [['devstack-relay', true], ['payments-feature1', true], ['orders-feature1', false], ['web-feature1', true], ['worker-feature1', false]], 'web and payments change; orders and the worker are not installed; the relay is the one shared release');
  t.notOk(plan.some((r) => ['web', 'orders', 'payments'].includes(r.name)), 'no base release is part of a feature run');
  t.same(installOrder(plan), ['devstack-relay', 'payments-feature1', 'web-feature1'], 'install order');
  for (const [name, objects] of rendered) {
    if (name === 'devstack-relay') continue;
    t.same(schemaFailures(objects), [], `${name}: every object valid`);
    for (const o of objects) {
      t.equal(o.metadata.labels?.['devstack.io/feature'], 'feature1', `${name}: ${o.kind} ${o.metadata.name} has the feature label`);
      t.equal(o.metadata.annotations?.['janitor/ttl'], '6h', `${name}: ${o.kind} ${o.metadata.name} has the TTL`);
    }
    const pod = podSpec(find(objects, 'Deployment', name));
    t.equal(envOf(pod.containers[0]!)['DEVSTACK_LANE'], 'feature1', `${name}: lane feature1`);
    t.equal(envOf(pod.containers[1]!)['DEVSTACK_DEFAULT_KEY'], 'feature1', `${name}: the sidecar's default key`);
  }
  const routes = find(rendered.get('web-feature1')!, 'IngressRoute', 'web-feature1').spec as { routes: { match: string }[] };
  t.same(routes.routes.map((r) => r.match), ['Host(`example.com`) && Header(`uber-ctx-key`, `feature1`)', 'Host(`feature1.example.com`)'], 'the copy\'s own edge routes');
});

t.test('feature2 changes orders only; an unlisted feature is refused with the reason', async (t) => {
  const { plan, rendered } = await renderAll('feature=feature2', t.testdir());
  t.same(plan.filter((r) => r.installed && r.name !== 'devstack-relay').map((r) => r.name), ['orders-feature2'], 'only the orders copy');
  t.notOk(find(rendered.get('orders-feature2')!, 'Service', 'orders-feature2').metadata.annotations?.['janitor/ttl'], 'no TTL given, none set');
  const refused = await planHelmfile(HELMFILE, 'feature=feature7', t.testdir()).then(() => 'planned', (e: Error) => e.message);
  t.match(refused, /feature feature7: list the services it changes in features\.yaml/, 'feature7 is not in features.yaml');
});
