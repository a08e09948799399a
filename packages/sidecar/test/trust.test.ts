import t from 'tap';
import { raw, send, sidecar, upstream, writeRegistry } from './helpers.ts';

t.test('a hop count that is not a non-negative integer is refused before it is forwarded once', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const s = await sidecar(t, writeRegistry(dir, { a: { base: a.origin } }), {
    edge: { port: 0, host: '127.0.0.1', domains: ['example.com'], entry: 'a' },
  });
  const listeners: Array<[string, number, string]> = [
    ['outbound', s.addresses.outbound!.port, 'a'],
    ['edge', s.addresses.edge!.port, 'example.com'],
  ];
  for (const [listener, port, host] of listeners) {
    for (const hops of ['-1000', '-1', '+3', '1.5', 'abc', '0x10', '99999999999999999999']) {
      const reply = await send(port, { headers: { host, 'x-devstack-hops': hops } });
      t.equal(reply.status, 400, `${listener}, hops ${hops}: 400`);
      t.equal((reply.json()['error'] as { code: string }).code, 'DEVSTACK_INVALID_HOPS', `${listener}, hops ${hops}: code`);
      t.equal(reply.headers['x-devstack-lane'], 'none', `${listener}, hops ${hops}: lane header`);
    }
    // Two hop headers arrive joined: as untrustworthy as a negative one.
    const twice = await raw(port, `GET / HTTP/1.1\r\nHost: ${host}\r\nx-devstack-hops: 1\r\nx-devstack-hops: -5\r\nConnection: close\r\n\r\n`);
    t.match(twice, /^HTTP\/1\.1 400 .*"code":"DEVSTACK_INVALID_HOPS"/s, `${listener}: repeated hop headers`);
  }
  t.equal(a.hits, 0, 'nothing was forwarded');
  const fine = await send(s.addresses.outbound!.port, { headers: { host: 'a', 'x-devstack-hops': '3' } });
  t.equal((fine.json()['headers'] as Record<string, string>)['x-devstack-hops'], '4', 'a valid count is counted on');
  const looped = await send(s.addresses.outbound!.port, { headers: { host: 'a', 'x-devstack-hops': '16' } });
  t.equal(looped.status, 508, 'the loop limit still holds');
});

t.test('the edge sets X-Forwarded-* itself; inner listeners append', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const s = await sidecar(t, writeRegistry(dir, { a: { base: a.origin } }), {
    edge: { port: 0, host: '127.0.0.1', domains: ['example.com'], entry: 'a' },
  });
  const forged = { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', forwarded: 'for=6.6.6.6' };
  const edge = await send(s.addresses.edge!.port, { headers: { host: 'example.com', ...forged } });
  const atEdge = edge.json()['headers'] as Record<string, string>;
  t.equal(atEdge['x-forwarded-for'], '127.0.0.1', 'edge: the client address only');
  t.equal(atEdge['x-forwarded-host'], 'example.com', 'edge: the Host the client asked for');
  t.equal(atEdge['x-forwarded-proto'], 'http', 'edge: the protocol of this connection');
  t.equal(atEdge['forwarded'], undefined, 'edge: a forged Forwarded is dropped');
  const inner = await send(s.addresses.outbound!.port, { headers: { host: 'a', 'x-forwarded-for': '10.1.2.3', 'x-forwarded-host': 'example.com', 'x-forwarded-proto': 'https' } });
  const atInner = inner.json()['headers'] as Record<string, string>;
  t.equal(atInner['x-forwarded-for'], '10.1.2.3, 127.0.0.1', 'outbound: appended');
  t.equal(atInner['x-forwarded-host'], 'example.com', 'outbound: kept');
  t.equal(atInner['x-forwarded-proto'], 'https', 'outbound: kept');
});

t.test('absolute-form: the key and the route come from the same authority', async (t) => {
  const dir = t.testdir();
  const base = await upstream(t, 'base');
  const f1 = await upstream(t, 'f1');
  const registry = writeRegistry(dir, { web: { base: base.origin, features: { f1: f1.origin } } });
  const s = await sidecar(t, registry, { edge: { port: 0, host: '127.0.0.1', domains: ['example.com'], entry: 'web' } });
  const port = s.addresses.edge!.port;
  const viaUrl = await raw(port, 'GET http://f1.example.com/x HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n');
  t.match(viaUrl, /x-devstack-lane: f1/i, 'the target authority f1.example.com decides, not the Host header');
  t.match(viaUrl, /"name":"f1"/, 'served by the f1 copy');
  const hostOnly = await raw(port, 'GET http://example.com/x HTTP/1.1\r\nHost: f1.example.com\r\nConnection: close\r\n\r\n');
  t.match(hostOnly, /x-devstack-lane: base/i, 'a Host header that disagrees with the target is ignored');
  t.match(hostOnly, /"host":"example.com"/, 'the upstream sees the authority it was routed by as Host');
});

t.test('an invalid key: counted, never forwarded; the default key stands in for it', async (t) => {
  const dir = t.testdir();
  const base = await upstream(t, 'base');
  const f1 = await upstream(t, 'f1');
  const s = await sidecar(t, writeRegistry(dir, { b: { base: base.origin, features: { f1: f1.origin } } }), { defaultKey: 'f1' });
  const reply = await send(s.addresses.outbound!.port, { headers: { host: 'b', 'uber-ctx-key': 'Bad Key', baggage: 'x=1,uber-ctx-key=Bad%20Key' } });
  t.equal(reply.headers['x-devstack-lane'], 'f1', 'in the copy\'s lane');
  const seen = reply.json()['headers'] as Record<string, string>;
  t.equal(seen['uber-ctx-key'], 'f1', 'the default key replaces the invalid one');
  t.equal(seen['baggage'], 'x=1,uber-ctx-key=f1', 'in baggage too, other entries kept');
  const metrics = await s.metrics.registry.getSingleMetricAsString('devstack_invalid_keys_total');
  t.match(metrics, /devstack_invalid_keys_total\{direction="outbound",carrier="header",problem="malformed"\} 1/, 'counted');
});
