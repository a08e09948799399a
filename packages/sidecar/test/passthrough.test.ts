import t from 'tap';
import { connect } from 'node:net';
import { ConfigError } from '@devstack/core';
import { FileSource } from '@devstack/registry-file';
import { Sidecar, createLogger, isLoopbackBind, parseConfig } from '@devstack/sidecar';
import { raw, send, sidecar, upstream, writeRegistry } from './helpers.ts';

t.test('passthrough: a host outside the registry gets the call unchanged, without the key', async (t) => {
  const dir = t.testdir();
  const inside = await upstream(t, 'orders');
  const outside = await upstream(t, 'outside');
  const s = await sidecar(t, writeRegistry(dir, { orders: { base: inside.origin } }), { passthrough: true, defaultKey: 'f1' });
  const port = s.addresses.outbound!.port;
  const reply = await send(port, {
    path: '/v1/thing?x=1',
    headers: { host: `127.0.0.1:${outside.port}`, 'uber-ctx-key': 'f1', baggage: 'a=1,uber-ctx-key=f1', 'uberctx-uber-ctx-key': 'f1', 'x-devstack-hops': '2', 'x-app': 'kept' },
  });
  t.equal(reply.status, 200);
  const seen = reply.json() as { name: string; url: string; headers: Record<string, string> };
  t.equal(seen.name, 'outside', 'sent to the host the request names');
  t.equal(seen.url, '/v1/thing?x=1');
  t.equal(seen.headers['host'], `127.0.0.1:${outside.port}`, 'Host unchanged');
  t.equal(seen.headers['x-app'], 'kept');
  t.equal(seen.headers['uber-ctx-key'], undefined, 'the plain key header is stripped');
  t.equal(seen.headers['uberctx-uber-ctx-key'], undefined, 'the Jaeger carrier is stripped');
  t.equal(seen.headers['baggage'], 'a=1', 'the key leaves baggage, other entries stay');
  t.equal(seen.headers['x-devstack-hops'], undefined, 'the hop count stays inside');
  t.equal(seen.headers['x-forwarded-for'], undefined, 'no forwarding headers added');
  t.equal(reply.headers['x-devstack-lane'], 'passthrough', 'the lane header says so');
  const counted = await s.metrics.registry.getSingleMetricAsString('devstack_requests_total');
  t.match(counted, /devstack_requests_total\{direction="outbound",service="none",lane="passthrough",status="200"\} 1/, 'counted under its own lane, no host as a label');
  // Absolute-form, as HTTP_PROXY clients send it, and registry services still routed as before.
  const absolute = await raw(port, `GET http://127.0.0.1:${outside.port}/abs HTTP/1.1\r\nHost: 127.0.0.1:${outside.port}\r\nConnection: close\r\n\r\n`);
  t.match(absolute, /"name":"outside","method":"GET","url":"\/abs"/);
  const routed = await send(port, { headers: { host: 'orders', 'uber-ctx-key': 'f1' } });
  t.equal((routed.json() as { name: string }).name, 'orders');
  t.equal((routed.json() as { headers: Record<string, string> }).headers['uber-ctx-key'], 'f1', 'registry calls keep the key');
});

t.test('passthrough through a CONNECT tunnel (undici ProxyAgent, NODE_USE_ENV_PROXY)', async (t) => {
  const dir = t.testdir();
  const outside = await upstream(t, 'outside');
  const s = await sidecar(t, writeRegistry(dir, { orders: { base: outside.origin } }), { passthrough: true });
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(s.addresses.outbound!.port, '127.0.0.1', () => socket.write(`CONNECT 127.0.0.1:${outside.port} HTTP/1.1\r\nHost: 127.0.0.1:${outside.port}\r\n\r\n`));
    let got = '';
    let sent = false;
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => {
      got += c;
      if (sent || !got.includes('\r\n\r\n')) return;
      sent = true;
      if (got.startsWith('HTTP/1.1 200')) socket.write(`GET /t HTTP/1.1\r\nHost: 127.0.0.1:${outside.port}\r\nuber-ctx-key: f1\r\nConnection: close\r\n\r\n`);
    });
    socket.on('close', () => resolve(got));
    socket.on('error', reject);
  });
  t.match(answer, /^HTTP\/1\.1 200 Connection Established/);
  t.match(answer, /"name":"outside"/, 'the inner request reached the host');
  t.notMatch(answer, /"uber-ctx-key"/, 'without the key');
});

t.test('passthrough refuses what names no host: a malformed CONNECT target, a Host that is not host[:port]', async (t) => {
  const dir = t.testdir();
  const s = await sidecar(t, writeRegistry(dir, { orders: { base: 'http://127.0.0.1:9' } }), { passthrough: true });
  const port = s.addresses.outbound!.port;
  for (const authority of ['[', '[::1', 'x@127.0.0.1', 'localhost:99999']) {
    const tunnel = await raw(port, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    t.match(tunnel, /^HTTP\/1\.1 404 .*DEVSTACK_UNKNOWN_SERVICE/s, `CONNECT ${authority}: refused, no tunnel`);
    const plain = await raw(port, `GET / HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
    t.match(plain, /^HTTP\/1\.1 400 .*DEVSTACK_BAD_REQUEST/s, `Host ${authority}: 400`);
  }
  t.equal(s.ready(), true, 'still serving');
});

t.test('without passthrough (the default) a host outside the registry is refused', async (t) => {
  const dir = t.testdir();
  const outside = await upstream(t, 'outside');
  const s = await sidecar(t, writeRegistry(dir, { orders: { base: outside.origin } }));
  const reply = await send(s.addresses.outbound!.port, { headers: { host: `127.0.0.1:${outside.port}` } });
  t.equal(reply.status, 404);
  t.equal(outside.hits, 0);
});

t.test('passthrough only on a loopback outbound listener: never an open proxy', async (t) => {
  const rows: Array<[string, boolean]> = [['127.0.0.1', true], ['127.1.2.3', true], ['::1', true], ['[::1]', true], ['localhost', true], ['0.0.0.0', false], ['::', false], ['10.0.0.5', false], ['', false]];
  for (const [host, ok] of rows) t.equal(isLoopbackBind(host), ok, `bind ${JSON.stringify(host)}`);
  const dir = t.testdir();
  const source = new FileSource({ path: writeRegistry(dir, {}) });
  t.throws(() => new Sidecar({ source, outbound: { port: 0, host: '0.0.0.0' }, passthrough: true, logger: createLogger('silent') }), ConfigError);
  t.throws(() => new Sidecar({ source, inbound: { port: 0, appPort: 1 }, passthrough: true, logger: createLogger('silent') }), ConfigError, 'no outbound listener');
  const cli = parseConfig(['--registry', 'r.yaml', '--outbound-port', '0', '--outbound-host', '0.0.0.0', '--passthrough'], {});
  t.same(cli, { kind: 'error', problems: ['--passthrough (DEVSTACK_PASSTHROUGH): needs --outbound-host on loopback (127.0.0.1 or ::1), not "0.0.0.0": the sidecar is never an open proxy'] });
  const env = parseConfig(['--registry', 'r.yaml', '--outbound-port', '0'], { DEVSTACK_PASSTHROUGH: 'true' });
  t.equal(env.kind === 'config' && env.config.passthrough, true, 'DEVSTACK_PASSTHROUGH turns it on');
  const off = parseConfig(['--registry', 'r.yaml', '--outbound-port', '0'], {});
  t.equal(off.kind === 'config' && off.config.passthrough, undefined, 'off by default');
});
