/*
 * What HTTP/2 clients can make the sidecar hold is bounded: streams per connection (SETTINGS),
 * requests in flight for the whole sidecar (the next are shed: 503 or REFUSED_STREAM, counted),
 * and upstream connections per origin, on the outbound and edge listeners and inside CONNECT.
 */
import t from 'tap';
import { connect as h2Connect, constants, type ClientHttp2Session } from 'node:http2';
import { DEFAULT_LIMITS } from '@devstack/sidecar';
import { raw, send, sidecar, spawnSidecar, writeRegistry } from './helpers.ts';
import { h2Client } from './h2-helpers.ts';
import { headersFrame, rawH2, REFUSED_STREAM, tunnel } from './h2-raw.ts';
import { heldUpstream, metric } from './held.ts';

/** Opens a stream and resolves with its status, or with the RST_STREAM code it was closed by. */
function h2Get(session: ClientHttp2Session, authority: string): Promise<{ status?: number; rstCode?: number }> {
  return new Promise((resolve) => {
    const stream = session.request({ ':authority': authority, ':path': '/' });
    let status: number | undefined;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('error', () => undefined);
    stream.resume();
    stream.once('close', () => resolve(status !== undefined && stream.rstCode === constants.NGHTTP2_NO_ERROR ? { status } : { rstCode: stream.rstCode }));
  });
}

t.test('a client connection is told how many streams it may open, and streams over that are refused', async (t) => {
  const orders = await heldUpstream(t);
  const registry = writeRegistry(t.testdir(), { orders: { base: orders.origin } });
  const s = await sidecar(t, registry);
  const session = h2Client(t, s.addresses.outbound!.port);
  const settings = await new Promise<{ maxConcurrentStreams?: number }>((resolve) => session.once('remoteSettings', resolve));
  t.equal(settings.maxConcurrentStreams, DEFAULT_LIMITS.maxConcurrentStreams, 'the default limit is in SETTINGS');
  t.ok(DEFAULT_LIMITS.maxConcurrentStreams <= 128, 'and as low as nginx and Envoy have it');

  const small = await sidecar(t, registry, { maxConcurrentStreams: 3 });
  // Without acknowledging SETTINGS the limit is still pending: a stream over it is refused alone.
  const client = await rawH2(small.addresses.outbound!.port, { ack: false });
  t.teardown(() => client.socket.destroy());
  client.socket.write(Buffer.concat([1, 3, 5, 7, 9].map((id) => headersFrame(id, 'orders'))));
  await client.until(() => client.resets.size >= 2);
  t.same([...client.resets], [[7, REFUSED_STREAM], [9, REFUSED_STREAM]], 'the fourth and fifth streams are refused');
  await orders.arrived(3);
  t.equal(orders.hits, 3, 'three reached the upstream');
  orders.release();
  await client.until(() => client.answered.size >= 3);
  t.same([...client.answered].sort(), [1, 3, 5], 'and were answered');
});

t.test('past --max-in-flight every listener sheds: 503 DEVSTACK_OVERLOADED or REFUSED_STREAM, counted', async (t) => {
  const orders = await heldUpstream(t);
  const registry = writeRegistry(t.testdir(), { orders: { base: orders.origin } });
  const s = await sidecar(t, registry, { maxInFlight: 3, edge: { port: 0, domains: ['example.test'], entry: 'orders' } });
  const out = s.addresses.outbound!.port;
  const edge = s.addresses.edge!.port;
  const admin = s.addresses.admin!.port;
  const held = [send(out, { headers: { host: 'orders' } }), send(edge, { headers: { host: 'example.test' } }), send(out, { headers: { host: 'orders' } })];
  await orders.arrived(3);
  t.equal(await metric(admin, 'devstack_in_flight', {}), 3, 'three in flight');

  for (const [name, port, host] of [['outbound', out, 'orders'], ['edge', edge, 'example.test']] as const) {
    const shed = await send(port, { headers: { host } });
    t.equal(shed.status, 503, `${name}, HTTP/1.1: 503`);
    t.equal(shed.json()['error'] && (shed.json()['error'] as { code: string }).code, 'DEVSTACK_OVERLOADED');
    t.equal(shed.headers['x-devstack-lane'], 'none', 'with the lane header');
    const session = h2Client(t, port);
    t.same(await h2Get(session, host), { rstCode: REFUSED_STREAM }, `${name}, HTTP/2: REFUSED_STREAM`);
  }
  // Inside CONNECT tunnels: an HTTP/1.1 request, and an HTTP/2 session.
  const h1Tunnel = await tunnel(out, 'orders:80');
  t.teardown(() => h1Tunnel.destroy());
  h1Tunnel.resume();
  const answer = await new Promise<string>((resolve) => {
    let got = '';
    h1Tunnel.on('data', (c: Buffer) => {
      got += c.toString();
      if (got.includes('}}')) resolve(got);
    });
    h1Tunnel.write('GET / HTTP/1.1\r\nHost: orders\r\n\r\n');
  });
  t.match(answer, /^HTTP\/1\.1 503 [^]*DEVSTACK_OVERLOADED/, 'CONNECT, HTTP/1.1: 503');
  const h2Tunnel = await rawH2(await tunnel(out, 'orders:80'));
  t.teardown(() => h2Tunnel.socket.destroy());
  h2Tunnel.socket.write(headersFrame(1, 'orders'));
  await h2Tunnel.until(() => h2Tunnel.resets.has(1));
  t.equal(h2Tunnel.resets.get(1), REFUSED_STREAM, 'CONNECT, HTTP/2: REFUSED_STREAM');

  t.equal(orders.hits, 3, 'nothing shed reached the upstream');
  t.equal(await metric(admin, 'devstack_overload_shed_total', { direction: 'outbound', protocol: 'http1' }), 2);
  t.equal(await metric(admin, 'devstack_overload_shed_total', { direction: 'outbound', protocol: 'h2' }), 2);
  t.equal(await metric(admin, 'devstack_overload_shed_total', { direction: 'edge', protocol: 'http1' }), 1);
  t.equal(await metric(admin, 'devstack_overload_shed_total', { direction: 'edge', protocol: 'h2' }), 1);
  t.equal(await metric(admin, 'devstack_requests_total', { direction: 'outbound', status: '503' }), 2, 'a 503 is counted as a request too');

  orders.release();
  t.same((await Promise.all(held)).map((r) => r.status), [200, 200, 200], 'what was in flight finishes');
  t.equal((await send(out, { headers: { host: 'orders' } })).status, 200, 'and the next request is carried again');
  t.equal(await metric(admin, 'devstack_in_flight', {}), 0, 'nothing left in flight');
});

t.test('one client cannot open more upstream connections than the per-origin limit', async (t) => {
  const orders = await heldUpstream(t);
  const registry = writeRegistry(t.testdir(), { orders: { base: orders.origin } });
  t.equal(DEFAULT_LIMITS.connections, 256, 'by default 256');
  const child = await spawnSidecar(t, ['--registry', registry, '--outbound-port', '0', '--max-upstream-connections', '8', '--max-concurrent-streams', '20']);
  const origin = `http://127.0.0.1:${child.ports['outbound']!}`;
  const sessions = [0, 1, 2].map(() => {
    const session = h2Connect(origin);
    session.on('error', () => undefined);
    t.teardown(() => session.destroy());
    return session;
  });
  // 60 streams on three connections, each within its 20: more than the 8 connections allowed.
  const answers = sessions.flatMap((session) => Array.from({ length: 20 }, () => h2Get(session, 'orders')));
  await orders.arrived(8);
  orders.release();
  const results = await Promise.all(answers);
  t.equal(results.filter((r) => r.status === 200).length, 60, 'every stream is answered');
  t.equal(orders.sockets, 8, 'over 8 upstream connections, reused');
});

t.test('a CONNECT tunnel is bounded like a direct connection', async (t) => {
  const orders = await heldUpstream(t);
  const registry = writeRegistry(t.testdir(), { orders: { base: orders.origin } });
  const s = await sidecar(t, registry, { maxConcurrentStreams: 2 });
  const client = await rawH2(await tunnel(s.addresses.outbound!.port, 'orders:80'), { ack: false });
  t.teardown(() => client.socket.destroy());
  client.socket.write(Buffer.concat([1, 3, 5].map((id) => headersFrame(id, 'orders'))));
  await client.until(() => client.resets.has(5));
  t.equal(client.resets.get(5), REFUSED_STREAM, 'the third stream in the tunnel is refused');
  orders.release();
  t.equal((await raw(s.addresses.outbound!.port, 'GET / HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n')).split('\r\n')[0], 'HTTP/1.1 200 OK');
});

t.test('a client that opens streams past the limit is ended once its invalid frames pass --max-invalid-frames', async (t) => {
  const orders = await heldUpstream(t);
  const registry = writeRegistry(t.testdir(), { orders: { base: orders.origin } });
  const s = await sidecar(t, registry);
  // Assumes 1000 streams allowed and opens 300 before the sidecar's SETTINGS (100) can arrive.
  const session = h2Connect(`http://127.0.0.1:${s.addresses.outbound!.port}`, { peerMaxConcurrentStreams: 1000, settings: { initialWindowSize: 0 } });
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  const codes: number[] = [];
  for (let i = 0; i < 300; i++) {
    const stream = session.request({ ':authority': 'orders', ':path': '/' });
    stream.on('error', () => undefined);
    stream.once('close', () => codes.push(stream.rstCode ?? 0));
  }
  await new Promise((resolve) => session.once('close', resolve));
  t.ok(codes.filter((c) => c === REFUSED_STREAM).length >= 100, 'the streams over the limit were refused');
  t.equal(await metric(s.addresses.admin!.port, 'devstack_h2_connections_ended_total', { direction: 'outbound', reason: 'invalid_frames' }), 1, 'and the connection ended, counted');
  t.ok(orders.hits <= DEFAULT_LIMITS.maxConcurrentStreams, 'no more than the limit reached the upstream');
  orders.release();
});
