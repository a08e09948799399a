/*
 * `devstack-hooks ingressroute add|remove` against the fake Kubernetes API server: the real
 * command for exit codes and output, the library functions for concurrency.
 */
import t from 'tap';
import { addIngressRoute, addRoute, removeIngressRoute, ROUTES_ANNOTATION, RetriesExhaustedError, type KubeObject } from '@devstack/hooks';
import { done, fake, NS, ROUTE_REF, routesOf, run, sharedRoute, spawnCli, writes } from './helpers.ts';

const HOST = 'shop.example.com';
const add = (kubeconfig: string, key: string, extra: string[] = [], cli = run, env: Record<string, string> = {}) =>
  cli(['ingressroute', 'add', '--kubeconfig', kubeconfig, '--namespace', NS, '--name', 'edge', '--host', HOST, '--key', key, '--service', `web-${key}`, ...extra], env);
const remove = (kubeconfig: string, key: string) => run(['ingressroute', 'remove', '--kubeconfig', kubeconfig, '--namespace', NS, '--name', 'edge', '--key', key]);
const FAST = { baseMs: 1, capMs: 20 };

t.test('add puts one header route in the shared IngressRoute; a rerun changes nothing', async (t) => {
  const { api, kubeconfig } = await fake(t);
  sharedRoute(api);
  const first = await add(kubeconfig, 'feature1', ['--port', '8080', '--priority', '100'], spawnCli);
  t.equal(first.code, 0, first.stderr);
  t.match(done(first), { command: 'ingressroute add', change: 'added', namespace: NS });
  t.same(routesOf(api), [
    { kind: 'Rule', match: 'Host(`shop.example.com`)', services: [{ name: 'web', port: 80 }] },
    { kind: 'Rule', match: 'Host(`shop.example.com`) && Header(`uber-ctx-key`, `feature1`)', priority: 100, services: [{ name: 'web-feature1', port: 8080 }] },
  ]);
  const version = (api.get(ROUTE_REF) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
  const before = writes(api).length;
  const second = await add(kubeconfig, 'feature1', ['--port', '8080', '--priority', '100']);
  t.equal(second.code, 0);
  t.match(done(second), { change: 'unchanged' });
  t.equal(writes(api).length, before, 'the rerun wrote nothing');
  t.equal((api.get(ROUTE_REF) as { metadata: { resourceVersion: string } }).metadata.resourceVersion, version);
});

t.test('remove takes out only its own routes; a rerun is a no-op', async (t) => {
  const { api, kubeconfig } = await fake(t);
  sharedRoute(api);
  // Another team's route with the very same rule shape, written by hand: never ours to remove.
  const hand = { kind: 'Rule', match: 'Host(`shop.example.com`) && Header(`uber-ctx-key`, `feature9`)', services: [{ name: 'web-feature9', port: 80 }] };
  const obj = api.get(ROUTE_REF) as { spec: { routes: unknown[] } };
  api.update({ ...obj, spec: { ...obj.spec, routes: [...obj.spec.routes, hand] } });
  for (const key of ['feature1', 'feature2']) t.equal((await add(kubeconfig, key)).code, 0);
  t.equal(routesOf(api).length, 4);

  const removed = await remove(kubeconfig, 'feature1');
  t.equal(removed.code, 0, removed.stderr);
  t.match(done(removed), { change: 'removed', removed: 1 });
  t.same(routesOf(api).map((r) => r.match), ['Host(`shop.example.com`)', hand.match, 'Host(`shop.example.com`) && Header(`uber-ctx-key`, `feature2`)']);
  t.same(JSON.parse((api.get(ROUTE_REF) as { metadata: { annotations: Record<string, string> } }).metadata.annotations[ROUTES_ANNOTATION]!), { feature2: 'Host(`shop.example.com`) && Header(`uber-ctx-key`, `feature2`)' });

  const again = await remove(kubeconfig, 'feature1');
  t.equal(again.code, 0);
  t.match(done(again), { change: 'absent', removed: 0 });
  const handRemoved = await remove(kubeconfig, 'feature9');
  t.match(done(handRemoved), { change: 'absent' }, 'a route it did not add is not removed');
  t.equal(routesOf(api).length, 3);

  const conflict = await add(kubeconfig, 'feature9');
  t.equal(conflict.code, 1, 'adding over a hand-written route with the same rule is refused');
  t.match(conflict.lines.find((l) => l['level'] === 'error'), { code: 'DEVSTACK_HOOK_NOT_OWNED' });
  t.equal(routesOf(api).length, 3);
});

t.test('--scheme goes into the route\'s service entry; the same scheme again changes nothing, another one updates it in place', async (t) => {
  const { api, kubeconfig } = await fake(t);
  sharedRoute(api);
  const rule = 'Host(`shop.example.com`) && Header(`uber-ctx-key`, `feature1`)';
  const annotation = () => (api.get(ROUTE_REF) as { metadata: { annotations: Record<string, string> } }).metadata.annotations[ROUTES_ANNOTATION];
  const version = () => (api.get(ROUTE_REF) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;

  const added = await add(kubeconfig, 'feature1', ['--scheme', 'h2c'], spawnCli);
  t.equal(added.code, 0, added.stderr);
  t.match(done(added), { change: 'added' });
  t.same(routesOf(api)[1], { kind: 'Rule', match: rule, services: [{ name: 'web-feature1', port: 80, scheme: 'h2c' }] });
  t.same(JSON.parse(annotation()!), { feature1: rule }, 'the rule is the route\'s identity; the scheme is not recorded');

  const before = { writes: writes(api).length, version: version() };
  t.match(done(await add(kubeconfig, 'feature1', ['--scheme', 'h2c'])), { change: 'unchanged' });
  t.same({ writes: writes(api).length, version: version() }, before, 'the rerun wrote nothing');

  t.match(done(await add(kubeconfig, 'feature1', ['--scheme', 'https'])), { change: 'updated' });
  t.same(routesOf(api).map((r) => r.services), [[{ name: 'web', port: 80 }], [{ name: 'web-feature1', port: 80, scheme: 'https' }]], 'updated in place, not beside it');
  t.match(done(await add(kubeconfig, 'feature1', ['--scheme', 'http'])), { change: 'updated' }, 'an explicit http is written too');
  t.same(routesOf(api)[1]!.services, [{ name: 'web-feature1', port: 80, scheme: 'http' }]);
  t.match(done(await add(kubeconfig, 'feature1')), { change: 'updated' }, 'without --scheme the route has none');
  t.same(routesOf(api)[1]!.services, [{ name: 'web-feature1', port: 80 }]);
  t.match(done(await add(kubeconfig, 'feature1', [], spawnCli)), { change: 'unchanged' });
  t.match(done(await add(kubeconfig, 'feature1', [], spawnCli, { DEVSTACK_SCHEME: 'h2c' })), { change: 'updated' }, 'DEVSTACK_SCHEME sets it like the flag');
  t.same(routesOf(api)[1]!.services, [{ name: 'web-feature1', port: 80, scheme: 'h2c' }]);
  t.same(JSON.parse(annotation()!), { feature1: rule }, 'the recorded rule never changed');

  t.equal((await add(kubeconfig, 'feature2', ['--scheme', 'h2c'])).code, 0);
  const removed = await remove(kubeconfig, 'feature1');
  t.match(done(removed), { change: 'removed', removed: 1 });
  t.same(routesOf(api), [
    { kind: 'Rule', match: 'Host(`shop.example.com`)', services: [{ name: 'web', port: 80 }] },
    { kind: 'Rule', match: 'Host(`shop.example.com`) && Header(`uber-ctx-key`, `feature2`)', services: [{ name: 'web-feature2', port: 80, scheme: 'h2c' }] },
  ], 'the h2c route it added is gone, the others stay');
  t.match(done(await remove(kubeconfig, 'feature2')), { change: 'removed', removed: 1 });
  t.same(routesOf(api).length, 1);
  t.equal(annotation(), undefined);
});

t.test('a route recorded before --scheme existed gets a scheme in place, and remove still finds it', (t) => {
  const rule = 'Host(`shop.example.com`) && Header(`uber-ctx-key`, `feature1`)';
  const old: KubeObject = {
    apiVersion: 'traefik.io/v1alpha1',
    kind: 'IngressRoute',
    metadata: { name: 'edge', namespace: NS, annotations: { [ROUTES_ANNOTATION]: JSON.stringify({ feature1: rule }) } },
    spec: { routes: [{ kind: 'Rule', match: rule, services: [{ name: 'web-feature1', port: 80 }] }, { kind: 'Rule', match: 'Host(`shop.example.com`)', services: [{ name: 'web', port: 80 }] }] },
  };
  const spec = { host: HOST, key: 'feature1', keyName: 'uber-ctx-key', service: 'web-feature1', port: 80, syntax: 'v3' as const };
  t.match(addRoute(old, spec), { change: 'unchanged', object: old }, 'the same flags without a scheme: nothing to do');
  const next = addRoute(old, { ...spec, scheme: 'h2c' });
  if (!('object' in next)) throw new Error('refused');
  t.equal(next.change, 'updated');
  t.same((next.object['spec'] as { routes: unknown[] }).routes, [
    { kind: 'Rule', match: rule, services: [{ name: 'web-feature1', port: 80, scheme: 'h2c' }] },
    { kind: 'Rule', match: 'Host(`shop.example.com`)', services: [{ name: 'web', port: 80 }] },
  ], 'in its place, with the scheme');
  t.equal(next.object.metadata?.annotations?.[ROUTES_ANNOTATION], old.metadata?.annotations?.[ROUTES_ANNOTATION], 'the annotation text is unchanged');
  t.match(addRoute(next.object, { ...spec, scheme: 'h2c' }), { change: 'unchanged' });
  t.end();
});

t.test('twenty concurrent adds for different keys end with exactly twenty routes', async (t) => {
  const { api, kc } = await fake(t);
  sharedRoute(api);
  const keys = Array.from({ length: 20 }, (_, i) => `feature${i}`);
  const outcomes = await Promise.all(keys.map((key) => addIngressRoute(kc, { name: 'edge', namespace: NS, host: HOST, key, service: `web-${key}`, retry: FAST })));
  t.same(outcomes.map((o) => o.change), keys.map(() => 'added'));
  t.ok(outcomes.some((o) => o.attempts > 1), 'writers collided and retried');
  const routes = routesOf(api);
  t.equal(routes.length, 21);
  t.same(routes.slice(1).map((r) => r.match).sort(), keys.map((k) => `Host(\`${HOST}\`) && Header(\`uber-ctx-key\`, \`${k}\`)`).sort(), 'each key once, none lost');

  // And twenty concurrent removes of half of them leave exactly the other half.
  await Promise.all(keys.filter((_, i) => i % 2 === 0).map((key) => removeIngressRoute(kc, { name: 'edge', namespace: NS, key, retry: FAST })));
  t.same(routesOf(api).slice(1).map((r) => r.services[0]!.name).sort(), keys.filter((_, i) => i % 2 === 1).map((k) => `web-${k}`).sort());
});

t.test('a 409 storm and 500s from the API are retried and survived', async (t) => {
  const { api, kubeconfig, kc } = await fake(t);
  sharedRoute(api);
  api.failNext(6, 409, { match: (r) => r.method === 'PUT' });
  api.failNext(2, 500, { match: (r) => r.method === 'GET' });
  const outcome = await addIngressRoute(kc, { name: 'edge', namespace: NS, host: HOST, key: 'feature1', service: 'web-feature1', retry: FAST });
  t.same(outcome, { change: 'added', attempts: 9 });
  t.equal(routesOf(api).length, 2);

  api.failNext(1, 500);
  const cli = await add(kubeconfig, 'feature2');
  t.equal(cli.code, 0, cli.stderr);
  t.match(cli.lines.find((l) => l['msg'] === 'retrying'), { level: 'warn', reason: 'HTTP 500', attempt: 1 });
  t.equal(routesOf(api).length, 3);

  api.failNext(50, 409, { match: (r) => r.method === 'PUT' });
  const error = await addIngressRoute(kc, { name: 'edge', namespace: NS, host: HOST, key: 'feature3', service: 'web-feature3', retry: { ...FAST, attempts: 4 } }).catch((e: unknown) => e);
  t.ok(error instanceof RetriesExhaustedError, 'bounded: a clear error after the last attempt');
  t.match(error, { code: 'DEVSTACK_HOOK_RETRIES_EXHAUSTED', attempts: 4, message: /gave up after 4 attempts: .*HTTP 409/ });
  t.equal(routesOf(api).length, 3);
});

t.test('a missing IngressRoute is exit 1 with a clear error, or created with --create', async (t) => {
  const { api, kubeconfig } = await fake(t);
  const missing = await add(kubeconfig, 'feature1', [], spawnCli);
  t.equal(missing.code, 1);
  t.match(missing.lines.find((l) => l['level'] === 'error'), { code: 'DEVSTACK_HOOK_NOT_FOUND', error: /IngressRoute team-a\/edge .*does not exist \(pass --create/ });
  t.same(writes(api), []);

  const created = await add(kubeconfig, 'feature1', ['--create']);
  t.equal(created.code, 0, created.stderr);
  t.match(done(created), { change: 'created' });
  t.same(routesOf(api).map((r) => r.match), ['Host(`shop.example.com`) && Header(`uber-ctx-key`, `feature1`)']);
  t.match(done(await add(kubeconfig, 'feature1', ['--create'])), { change: 'unchanged' });
  t.match(done(await remove(kubeconfig, 'feature1')), { change: 'removed' });
  t.same(routesOf(api), []);
});

t.test('--traefik v2, --api-group traefik.containo.us and --key-name shape the rule', async (t) => {
  const { api, kubeconfig } = await fake(t);
  sharedRoute(api, 'traefik.containo.us/v1alpha1');
  const r = await add(kubeconfig, 'feature1', ['--traefik', 'v2', '--api-group', 'traefik.containo.us', '--key-name', 'dev-serve-user', '--port', 'http']);
  t.equal(r.code, 0, r.stderr);
  t.ok(api.requests.some((q) => q.method === 'PUT' && q.path.startsWith('/apis/traefik.containo.us/v1alpha1/')), 'written through the older group');
  t.same(routesOf(api, { ...ROUTE_REF, apiVersion: 'traefik.containo.us/v1alpha1' })[1], { kind: 'Rule', match: 'Host(`shop.example.com`) && Headers(`dev-serve-user`, `feature1`)', services: [{ name: 'web-feature1', port: 'http' }] });
  // The same key again with the v3 syntax replaces its own route rather than adding a second one.
  const v3 = await add(kubeconfig, 'feature1', ['--api-group', 'traefik.containo.us', '--key-name', 'dev-serve-user']);
  t.match(done(v3), { change: 'updated' });
  t.same(routesOf(api, { ...ROUTE_REF, apiVersion: 'traefik.containo.us/v1alpha1' }).map((x) => x.match), ['Host(`shop.example.com`)', 'Host(`shop.example.com`) && Header(`dev-serve-user`, `feature1`)']);
});

t.test('a bad key or value is refused with exit 2 before any request', async (t) => {
  const { api, kubeconfig } = await fake(t);
  sharedRoute(api);
  const seen = api.requests.length;
  for (const [args, problem] of [
    [['--key', 'feat`ure'], /--key: "feat`ure" is not a routing key/],
    [['--key', 'base'], /--key: "base" is not a routing key/],
    [['--key', 'Feature1'], /not a routing key/],
    [['--key', 'ok', '--host', 'a.com`) || Host(`b.com'], /--host: .* is not a DNS-1123 subdomain/],
    [['--key', 'ok', '--key-name', 'x`y'], /--key-name: .* is not a lower-case header name/],
    [['--key', 'ok', '--priority=-1'], /--priority: expected a whole number/],
    [['--key', 'ok', '--traefik', 'v4'], /--traefik: expected v3 or v2/],
    [['--key', 'ok', '--scheme', 'grpc'], /--scheme: "grpc" is not one of http, https, h2c/],
    [['--key', 'ok', '--scheme', 'H2C'], /--scheme: "H2C" is not one of http, https, h2c/],
    [['--key', 'ok', '--scheme', 'h2c://'], /--scheme: .* is not one of/],
  ] as const) {
    const r = await run(['ingressroute', 'add', '--kubeconfig', kubeconfig, '--name', 'edge', '--host', HOST, '--service', 'web', ...args]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, problem);
    t.same(r.lines, [], 'no log lines: nothing was attempted');
  }
  const rm = await spawnCli(['ingressroute', 'remove', '--kubeconfig', kubeconfig, '--name', 'edge', '--key', 'a`b']);
  t.equal(rm.code, 2);
  t.equal(api.requests.length, seen, 'not one request reached the API server');
});
