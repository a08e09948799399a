import t from 'tap';
import { send, sidecar, upstream, writeRegistry } from './helpers.ts';

t.test('inbound: any carrier becomes the plain header plus baggage for the app', async (t) => {
  const dir = t.testdir();
  const app = await upstream(t, 'app');
  const s = await sidecar(t, writeRegistry(dir, {}), { outbound: undefined, inbound: { port: 0, host: '127.0.0.1', appPort: app.port }, domains: ['example.com'] });
  const port = s.addresses.inbound!.port;
  const rows: Array<[string, Record<string, string>, string | undefined, string | undefined]> = [
    ['plain', { 'uber-ctx-key': 'feature1' }, 'feature1', 'uber-ctx-key=feature1'],
    ['baggage', { baggage: 'k=v,uber-ctx-key=feature1' }, 'feature1', 'k=v,uber-ctx-key=feature1'],
    ['jaeger', { 'uberctx-uber-ctx-key': 'feature1', baggage: 'k=v' }, 'feature1', 'k=v,uber-ctx-key=feature1'],
    ['host', { host: 'feature1.example.com' }, 'feature1', 'uber-ctx-key=feature1'],
    ['none', {}, undefined, undefined],
    ['invalid', { 'uber-ctx-key': 'x"; drop', baggage: 'k=v' }, undefined, 'k=v'],
  ];
  for (const [name, headers, key, baggage] of rows) {
    const reply = await send(port, { headers });
    const seen = reply.json()['headers'] as Record<string, string>;
    t.equal(seen['uber-ctx-key'], key, `${name}: plain header`);
    t.equal(seen['baggage'], baggage, `${name}: baggage`);
    t.equal(reply.headers['x-devstack-lane'], 'base', `${name}: lane header names this copy's lane`);
    t.equal(seen['x-devstack-hops'], undefined, `${name}: inbound is not a routing hop`);
  }
});

t.test('inbound in a feature copy: the default key is its lane and fills in a missing key', async (t) => {
  const dir = t.testdir();
  const app = await upstream(t, 'app');
  const s = await sidecar(t, writeRegistry(dir, {}), { outbound: undefined, inbound: { port: 0, host: '127.0.0.1', appPort: app.port }, defaultKey: 'feature1' });
  const reply = await send(s.addresses.inbound!.port);
  t.equal((reply.json()['headers'] as Record<string, string>)['uber-ctx-key'], 'feature1');
  t.equal(reply.headers['x-devstack-lane'], 'feature1');
});

t.test('inbound: a dead app is a 502 with a code', async (t) => {
  const dir = t.testdir();
  const s = await sidecar(t, writeRegistry(dir, {}), { outbound: undefined, inbound: { port: 0, host: '127.0.0.1', appPort: 1 } });
  const reply = await send(s.addresses.inbound!.port);
  t.equal(reply.status, 502);
  t.equal((reply.json()['error'] as Record<string, string>)['code'], 'DEVSTACK_UPSTREAM_UNREACHABLE');
});

t.test('edge: routes preview URLs by Host', async (t) => {
  const dir = t.testdir();
  const web = await upstream(t, 'web');
  const web1 = await upstream(t, 'web-feature1');
  const registry = writeRegistry(dir, { web: { base: web.origin, features: { feature1: web1.origin } } });
  const s = await sidecar(t, registry, { outbound: undefined, edge: { port: 0, host: '127.0.0.1', domains: ['example.localhost'], entry: 'web' } });
  const port = s.addresses.edge!.port;
  const rows: Array<[Record<string, string>, number, string | undefined, string | undefined]> = [
    [{ host: 'feature1.example.localhost:8080' }, 200, 'web-feature1', 'feature1'],
    [{ host: 'example.localhost:8080' }, 200, 'web', 'base'],
    [{ host: 'example.localhost', 'uber-ctx-key': 'feature1' }, 200, 'web-feature1', 'feature1'],
    [{ host: 'feature2.example.localhost' }, 200, 'web', 'base'],
    [{ host: 'a.b.example.localhost' }, 200, 'web', 'base'],
    [{ host: 'other.test' }, 404, undefined, 'none'],
  ];
  for (const [headers, status, name, lane] of rows) {
    const reply = await send(port, { headers });
    t.equal(reply.status, status, `${headers['host']}: status`);
    t.equal(reply.headers['x-devstack-lane'], lane, `${headers['host']}: lane`);
    if (name) {
      t.equal(reply.json()['name'], name, `${headers['host']}: upstream`);
      const seen = reply.json()['headers'] as Record<string, string>;
      t.equal(seen['host'], headers['host'], 'the preview Host reaches the app unchanged');
    } else {
      t.equal((reply.json()['error'] as Record<string, string>)['code'], 'DEVSTACK_UNKNOWN_HOST');
    }
  }
  const forwarded = (await send(port, { headers: { host: 'feature1.example.localhost' } })).json()['headers'] as Record<string, string>;
  t.equal(forwarded['uber-ctx-key'], 'feature1', 'the Host key is propagated as the plain header');
  t.equal(forwarded['baggage'], 'uber-ctx-key=feature1');
});

t.test('edge with untrusted clients: keys in client headers are dropped, only the Host decides', async (t) => {
  const dir = t.testdir();
  const web = await upstream(t, 'web');
  const web1 = await upstream(t, 'web-feature1');
  const registry = writeRegistry(dir, { web: { base: web.origin, features: { feature1: web1.origin } } });
  const s = await sidecar(t, registry, { outbound: undefined, edge: { port: 0, host: '127.0.0.1', domains: ['example.localhost'], entry: 'web', dropClientKeys: true } });
  const port = s.addresses.edge!.port;
  const sneaky = await send(port, { headers: { host: 'example.localhost', 'uber-ctx-key': 'feature1', baggage: 'uber-ctx-key=feature1,x=1' } });
  t.equal(sneaky.json()['name'], 'web');
  const seen = sneaky.json()['headers'] as Record<string, string>;
  t.equal(seen['uber-ctx-key'], undefined, 'the client key never reaches the app');
  t.equal(seen['baggage'], 'x=1');
  t.equal((await send(port, { headers: { host: 'feature1.example.localhost', 'uber-ctx-key': 'other' } })).json()['name'], 'web-feature1');
});
