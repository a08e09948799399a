/*
 * The edge routing table (README.md) over the IngressRoutes the chart renders for a base and two copies
 * of the entry service, evaluated with Traefik's documented matching (priority, then rule length),
 * for Traefik v3 and v2.
 */
import t from 'tap';
import { envOf, find, podSpec, render, type K8sObject } from './helpers/charts.ts';
import { compileRule, routeEdge, type TraefikVersion } from './helpers/traefik.ts';

const IMAGE = { repository: 'devstack-examples', tag: 'latest' };

async function entryReleases(traefik: TraefikVersion, extra: Record<string, unknown> = {}): Promise<K8sObject[]> {
  const edge = { enabled: true, host: 'example.com', traefik };
  const lanes = await Promise.all(['', 'feature1', 'feature2'].map((feature) =>
    render(feature ? `web-${feature}` : 'web', { values: { service: 'web', image: IMAGE, ...extra, devstack: { feature, edge } } })));
  return lanes.flat();
}

for (const version of ['v3', 'v2'] as const) {
  t.test(`Traefik ${version}: the routing table`, async (t) => {
    const objects = await entryReleases(version);
    const route = (host: string, headers: Record<string, string> = {}) => routeEdge(objects, version, { host, headers });
    const to = (host: string, headers: Record<string, string> = {}) => {
      const r = route(host, headers);
      return r === null ? 'no route' : `${r.service.name}:${r.service.port} key=${r.headers['uber-ctx-key'] ?? '-'}`;
    };
    t.equal(to('feature1.example.com'), 'web-feature1:80 key=feature1', 'curl http://feature1.example.com: the feature1 copy, with the key header set');
    t.equal(to('example.com', { 'uber-ctx-key': 'feature1' }), 'web-feature1:80 key=feature1', 'curl -H uber-ctx-key: feature1 http://example.com: the feature1 copy');
    t.equal(to('example.com', { 'uber-ctx-key': 'feature2' }), 'web-feature2:80 key=feature2', 'the same with feature2: the feature2 copy');
    t.equal(to('example.com'), 'web:80 key=-', 'curl http://example.com: base');
    t.equal(to('feature3.example.com'), 'web:80 key=-', 'a preview URL for a key without a copy of the entry service: base, by the wildcard route');
    t.equal(to('feature2.example.com'), 'web-feature2:80 key=feature2', 'the feature2 preview URL');
    t.equal(to('Feature1.Example.com:80'), 'web-feature1:80 key=feature1', 'hosts match without case and port');
    t.equal(to('feature1.example.com', { 'uber-ctx-key': 'feature2' }), 'web-feature1:80 key=feature1', 'the preview URL decides: its key replaces a client\'s');
    t.equal(to('example.com', { 'uber-ctx-key': 'feature9' }), 'web:80 key=feature9', 'an unknown key: base (its sidecar falls back)');
    t.equal(to('a.b.example.com'), 'no route', 'two labels deep is not a preview URL');
    t.equal(to('example.org'), 'no route', 'another host: not routed');

    const env = envOf(podSpec(find(objects, 'Deployment', 'web')).containers[1]!);
    t.equal(env['DEVSTACK_DOMAIN'], 'example.com', 'the base sidecar behind the wildcard reads the key from <key>.example.com');

    // Traefik's default priority is the rule's length: without the explicit priorities the base
    // wildcard (a long regexp) would win over a copy's short Host rule.
    const unprioritised = objects.map((o) => o.kind !== 'IngressRoute' ? o : {
      ...o, spec: { ...o.spec, routes: (o.spec as { routes: Record<string, unknown>[] }).routes.map(({ priority: _p, ...r }) => r) },
    });
    t.equal(routeEdge(unprioritised, version, { host: 'feature1.example.com' })?.service.name, 'web', 'without priorities the wildcard takes the preview URL: the priorities are needed');
  });
}

for (const version of ['v3', 'v2'] as const) {
  t.test(`Traefik ${version}: a gRPC entry service is reached over h2c on every route`, async (t) => {
    const [grpc, http] = await Promise.all([entryReleases(version, { appProtocol: 'grpc' }), entryReleases(version)]);
    const requests: [string, Record<string, string>, string][] = [
      ['example.com', {}, 'web'],
      ['feature3.example.com', {}, 'web'],
      ['example.com', { 'uber-ctx-key': 'feature1' }, 'web-feature1'],
      ['feature2.example.com', {}, 'web-feature2'],
    ];
    for (const [host, headers, service] of requests) {
      const what = `${host}${headers['uber-ctx-key'] ? ` with uber-ctx-key: ${headers['uber-ctx-key']}` : ''}`;
      t.same(routeEdge(grpc, version, { host, headers })?.service, { name: service, port: 80, scheme: 'h2c' }, `${what}: ${service} with scheme h2c`);
      t.same(routeEdge(http, version, { host, headers })?.service, { name: service, port: 80 }, `${what}: an HTTP/1.1 service keeps Traefik's default scheme`);
    }
  });
}

t.test('the evaluator holds each version to its own matchers', async (t) => {
  t.throws(() => compileRule('Host(`example.com`) && Headers(`k`, `v`)', 'v3'), /Headers is not a Traefik v3 matcher/, 'Headers is v2 only');
  t.throws(() => compileRule('Header(`k`, `v`)', 'v2'), /Header is not a Traefik v2 matcher/, 'Header is v3 only');
  t.throws(() => compileRule('Host(`a`, `b`)', 'v3'), /takes 1 argument/, 'v3 Host takes one domain');
  t.ok(compileRule('HostRegexp(`{k:[a-z]+}.example.com`)', 'v2')({ host: 'ab.example.com', path: '/', headers: {}, entryPoint: 'web' }), 'a v2 host template matches');
  t.notOk(compileRule('HostRegexp(`{k:[a-z]+}.example.com`)', 'v2')({ host: 'abxexample.com', path: '/', headers: {}, entryPoint: 'web' }), 'its dots are literal');
});
