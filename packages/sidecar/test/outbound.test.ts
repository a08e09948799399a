import t from 'tap';
import { ProxyAgent, request } from 'undici';
import { raw, send, sidecar, upstream, writeRegistry } from './helpers.ts';

t.test('DESIGN.md routing table and chain rule through the outbound listener', async (t) => {
  const dir = t.testdir();
  const ex = await upstream(t, 'example');
  const ex1 = await upstream(t, 'example-feature1');
  const ex2 = await upstream(t, 'example-feature2');
  const ex2base = await upstream(t, 'example2');
  const ex2f1 = await upstream(t, 'example2-feature1');
  const registry = writeRegistry(dir, {
    example: { base: ex.origin, features: { feature1: ex1.origin, feature2: ex2.origin } },
    example2: { base: ex2base.origin, features: { feature1: ex2f1.origin } },
  });
  const s = await sidecar(t, registry);
  const port = s.addresses.outbound!.port;
  const rows: Array<[string, Record<string, string>, string, string]> = [
    ['uber-ctx-key: feature1', { host: 'example', 'uber-ctx-key': 'feature1' }, 'example-feature1', 'feature1'],
    ['uber-ctx-key: feature2', { host: 'example', 'uber-ctx-key': 'feature2' }, 'example-feature2', 'feature2'],
    ['no key', { host: 'example' }, 'example', 'base'],
    ['baggage', { host: 'example', baggage: 'a=1,uber-ctx-key=feature1' }, 'example-feature1', 'feature1'],
    ['jaeger', { host: 'example', 'uberctx-uber-ctx-key': 'feature2' }, 'example-feature2', 'feature2'],
    ['unknown key', { host: 'example', 'uber-ctx-key': 'feature9' }, 'example', 'base'],
    ['invalid key', { host: 'example', 'uber-ctx-key': 'Feature1' }, 'example', 'base'],
    ['conflicting key', { host: 'example', 'uber-ctx-key': 'feature1, feature2' }, 'example', 'base'],
    ['chain: feature1 copy of example2', { host: 'example2', 'uber-ctx-key': 'feature1' }, 'example2-feature1', 'feature1'],
    ['chain: no feature2 copy of example2', { host: 'example2', 'uber-ctx-key': 'feature2' }, 'example2', 'base'],
    ['namespaced host', { host: 'example2.shop.svc.cluster.local:8080', 'uber-ctx-key': 'feature1' }, 'example2-feature1', 'feature1'],
    ['host with port', { host: 'example:80', 'uber-ctx-key': 'feature2' }, 'example-feature2', 'feature2'],
  ];
  for (const [name, headers, upstreamName, lane] of rows) {
    const reply = await send(port, { headers });
    t.equal(reply.status, 200, `${name}: status`);
    t.equal(reply.json()['name'], upstreamName, `${name}: upstream`);
    t.equal(reply.headers['x-devstack-lane'], lane, `${name}: lane header`);
  }
});

t.test('the key is propagated in every carrier; invalid keys are not passed on', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const af = await upstream(t, 'a-f');
  const s = await sidecar(t, writeRegistry(dir, { a: { base: a.origin, features: { f: af.origin } } }));
  const port = s.addresses.outbound!.port;

  const fromBaggage = (await send(port, { headers: { host: 'a', baggage: 'x=1, uber-ctx-key=f;p=v, y=2' } })).json()['headers'] as Record<string, string>;
  t.equal(fromBaggage['uber-ctx-key'], 'f');
  t.equal(fromBaggage['baggage'], 'x=1, uber-ctx-key=f, y=2', 'baggage merged in place, others kept');

  const invalid = (await send(port, { headers: { host: 'a', 'uber-ctx-key': 'bad\tkey', baggage: 'x=1,uber-ctx-key=bad%20key' } })).json()['headers'] as Record<string, string>;
  t.equal(invalid['uber-ctx-key'], undefined, 'an invalid key is stripped, not forwarded');
  t.equal(invalid['baggage'], 'x=1');

  const metrics = await send(s.addresses.admin!.port, { path: '/metrics' });
  t.match(metrics.body, /devstack_invalid_keys_total\{direction="outbound",carrier="header",problem="malformed"\} 1/);
});

t.test('absolute-form requests (HTTP_PROXY clients) route by service name', async (t) => {
  const dir = t.testdir();
  const orders = await upstream(t, 'orders');
  const ordersF = await upstream(t, 'orders-f2');
  const s = await sidecar(t, writeRegistry(dir, { orders: { base: orders.origin, features: { feature2: ordersF.origin } } }));
  const reply = await send(s.addresses.outbound!.port, { path: 'http://orders:8080/list?x=1', headers: { host: 'orders:8080', 'uber-ctx-key': 'feature2' } });
  t.equal(reply.json()['name'], 'orders-f2');
  t.equal(reply.json()['url'], '/list?x=1', 'origin-form path upstream');
  const headers = reply.json()['headers'] as Record<string, string>;
  t.equal(headers['host'], 'orders:8080', 'Host passed unchanged');
  t.equal(headers['x-forwarded-host'], 'orders:8080');
});

t.test('never an open proxy: unknown services get a clear error, no connection', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const s = await sidecar(t, writeRegistry(dir, { a: { base: a.origin } }));
  const port = s.addresses.outbound!.port;
  for (const [path, host] of [
    ['/', `127.0.0.1:${a.port}`],
    [`http://127.0.0.1:${a.port}/`, `127.0.0.1:${a.port}`],
    ['http://example.org/', 'example.org'],
    ['/', 'a.example.org'],
  ] as const) {
    const reply = await send(port, { path, headers: { host } });
    t.equal(reply.status, 404, `${path} ${host}`);
    t.equal(reply.json()['error'] && (reply.json()['error'] as Record<string, string>)['code'], 'DEVSTACK_UNKNOWN_SERVICE');
  }
  t.equal(a.hits, 0, 'the upstream was never contacted');
  const metrics = (await send(s.addresses.admin!.port, { path: '/metrics' })).body;
  t.notMatch(metrics, /example\.org/, 'request hosts never become metric labels');
  const connect = await raw(port, 'CONNECT example.org:80 HTTP/1.1\r\nHost: example.org:80\r\n\r\n');
  t.match(connect, /^HTTP\/1\.1 404 /, 'a tunnel to a host outside the registry is refused');
  t.match(connect, /"code":"DEVSTACK_UNKNOWN_SERVICE"/);
  const tls = await raw(port, 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n');
  t.match(tls, /^HTTP\/1\.1 405 /, 'TLS tunnels cannot be routed and are refused');
  t.match(tls, /"code":"DEVSTACK_METHOD_NOT_ALLOWED"/);
});

t.test('default key, strict mode and readiness of feature copies', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const af = await upstream(t, 'a-f');
  const b = await upstream(t, 'b');
  const registry = writeRegistry(dir, {
    a: { base: a.origin, features: { f: af.origin, parked: { url: af.origin, ready: false } } },
    b: { base: b.origin, features: { g: b.origin } },
  });
  const lane = await sidecar(t, registry, { defaultKey: 'f' });
  const p = lane.addresses.outbound!.port;
  t.equal((await send(p, { headers: { host: 'a' } })).json()['name'], 'a-f', 'default key applies without a key');
  t.equal((await send(p, { headers: { host: 'a' } })).json()['headers'] && ((await send(p, { headers: { host: 'a' } })).json()['headers'] as Record<string, string>)['uber-ctx-key'], 'f', 'and is propagated');
  t.equal((await send(p, { headers: { host: 'a', 'uber-ctx-key': 'g' } })).json()['name'], 'a', 'a request key wins over the default');

  const strict = await sidecar(t, registry, { strict: true });
  const sp = strict.addresses.outbound!.port;
  const unknown = await send(sp, { headers: { host: 'a', 'uber-ctx-key': 'nobody' } });
  t.equal(unknown.status, 503);
  t.equal((unknown.json()['error'] as Record<string, string>)['code'], 'DEVSTACK_NO_FEATURE_COPY');
  const parked = await send(sp, { headers: { host: 'a', 'uber-ctx-key': 'parked' } });
  t.equal(parked.status, 503);
  t.equal(parked.headers['x-devstack-lane'], 'parked');
  const chain = await send(sp, { headers: { host: 'a', 'uber-ctx-key': 'g' } });
  t.equal(chain.json()['name'], 'a', 'strict mode keeps the chain rule: no copy here means base');
  const lenient = await send(p, { headers: { host: 'a', 'uber-ctx-key': 'parked' } });
  t.equal(lenient.json()['name'], 'a', 'a copy with no ready target falls back to base');
});

t.test('clients that tunnel plain HTTP through CONNECT are routed like any other', async (t) => {
  const dir = t.testdir();
  const orders = await upstream(t, 'orders');
  const ordersF = await upstream(t, 'orders-f2');
  const s = await sidecar(t, writeRegistry(dir, { orders: { base: orders.origin, features: { feature2: ordersF.origin } } }));
  const agent = new ProxyAgent({ uri: `http://127.0.0.1:${s.addresses.outbound!.port}`, proxyTunnel: true });
  t.teardown(() => agent.close());
  const keyed = await request('http://orders/list', { dispatcher: agent, headers: { 'uber-ctx-key': 'feature2' } });
  t.equal(((await keyed.body.json()) as Record<string, string>)['name'], 'orders-f2');
  t.equal(keyed.headers['x-devstack-lane'], 'feature2');
  const plain = await request('http://orders/list', { dispatcher: agent });
  t.equal(((await plain.body.json()) as Record<string, string>)['name'], 'orders');
});

t.test('the lane header is this hop\'s, not appended to the one before', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a', (_req, res) => {
    res.writeHead(200, { 'x-devstack-lane': 'base' });
    res.end('{}');
  });
  const s = await sidecar(t, writeRegistry(dir, { a: { base: a.origin, features: { f: a.origin } } }));
  const reply = await send(s.addresses.outbound!.port, { headers: { host: 'a', 'uber-ctx-key': 'f' } });
  t.equal(reply.headers['x-devstack-lane'], 'f');
});

t.test('a configured key name is read and written in every carrier', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const af = await upstream(t, 'a-alice');
  const s = await sidecar(t, writeRegistry(dir, { a: { base: a.origin, features: { alice: af.origin } } }), { keyName: 'dev-serve-user' });
  const port = s.addresses.outbound!.port;
  const jaeger = await send(port, { headers: { host: 'a', 'uberctx-dev-serve-user': 'alice' } });
  t.equal(jaeger.json()['name'], 'a-alice');
  const seen = jaeger.json()['headers'] as Record<string, string>;
  t.equal(seen['dev-serve-user'], 'alice');
  t.equal(seen['baggage'], 'dev-serve-user=alice');
  t.equal((await send(port, { headers: { host: 'a', 'uber-ctx-key': 'alice' } })).json()['name'], 'a', 'the default name is not a carrier then');
});
