import t from 'tap';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { blackholePort, raw, send, sidecar, upstream, writeRegistry, type Tap } from './helpers.ts';
import { recordSpans, spanEnded, spans, type Recorded } from './spans.ts';

recordSpans();

/** A raw TCP upstream; `onSocket` decides what it does with each connection. */
async function tcpUpstream(t: Tap, onSocket: (socket: Socket) => void): Promise<string> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    sockets.forEach((s) => s.destroy());
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const WS_REQUEST = 'GET /socket HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

function errorCode(answer: string): string | undefined {
  return /"code":"([A-Z_]+)"/.exec(answer)?.[1];
}

async function metric(adminPort: number, pattern: RegExp): Promise<string | undefined> {
  return pattern.exec((await send(adminPort, { path: '/metrics' })).body)?.[1];
}

t.test('an Upgrade request with a body is answered as an ordinary request, its body delivered', async (t) => {
  const dir = t.testdir();
  const svc = await upstream(t, 'svc');
  const s = await sidecar(t, writeRegistry(dir, { svc: { base: svc.origin } }), { connectTimeoutMs: 10_000 });
  const h2c = { host: 'svc', connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA' };
  const framings: Record<string, string>[] = [{ 'content-length': '5' }, { 'transfer-encoding': 'chunked' }];
  for (const framing of framings) {
    const reply = await send(s.addresses.outbound!.port, { method: 'POST', path: '/h2', headers: { ...h2c, ...framing }, body: 'hello' });
    const name = Object.keys(framing)[0];
    t.equal(reply.status, 200, `${name}: the upstream's own answer`);
    t.equal(reply.headers['x-devstack-lane'], 'base');
    const seen = reply.json() as { method: string; body: string; headers: Record<string, string> };
    t.equal(seen.method, 'POST');
    t.equal(seen.body, 'hello', `${name}: the request body reached the upstream`);
    t.equal(seen.headers['upgrade'], undefined, 'the offer to upgrade was declined at this hop');
  }
});

t.test('an upstream that never answers the handshake: headers timeout; one that cannot be reached: connect timeout', async (t) => {
  const dir = t.testdir();
  const silent = await tcpUpstream(t, (socket) => socket.resume());
  const hole = await blackholePort(t);
  const a = await sidecar(t, writeRegistry(dir, { svc: { base: silent } }), { headersTimeoutMs: 100, connectTimeoutMs: 60_000 });
  const noAnswer = await raw(a.addresses.outbound!.port, WS_REQUEST);
  t.match(noAnswer, /^HTTP\/1\.1 504 /);
  t.equal(errorCode(noAnswer), 'DEVSTACK_UPSTREAM_TIMEOUT', 'an open connection without an answer is not a connect timeout');
  t.match(noAnswer, /\r\nx-devstack-lane: base\r\n/);
  t.equal(await metric(a.addresses.admin!.port, /devstack_upstream_errors_total\{direction="outbound",service="svc",code="DEVSTACK_UPSTREAM_TIMEOUT"\} (\d+)/), '1');
  t.equal(await metric(a.addresses.admin!.port, /devstack_requests_total\{direction="outbound",service="svc",lane="base",status="504"\} (\d+)/), '1', 'the answer is counted');

  const b = await sidecar(t, writeRegistry(dir, { svc: { base: `http://127.0.0.1:${hole}` } }, 'hole.json'), { headersTimeoutMs: 60_000, connectTimeoutMs: 100 });
  const unreachable = await raw(b.addresses.outbound!.port, WS_REQUEST);
  t.match(unreachable, /^HTTP\/1\.1 504 /);
  t.equal(errorCode(unreachable), 'DEVSTACK_UPSTREAM_CONNECT_TIMEOUT');
});

t.test('a 101: one lane header, the tunnel carries bytes, counted when answered, traced until it closes', async (t) => {
  const dir = t.testdir();
  const accepting = await tcpUpstream(t, (socket) => {
    let handshake = '';
    const onData = (chunk: Buffer) => {
      handshake += chunk.toString('latin1');
      if (!handshake.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Devstack-Lane: upstream-lane\r\n\r\n');
      socket.pipe(socket);
    };
    socket.on('data', onData);
  });
  const s = await sidecar(t, writeRegistry(dir, { svc: { base: accepting, features: { f: accepting } } }), { tracing: true });
  const client = connect(s.addresses.outbound!.port, '127.0.0.1');
  await once(client, 'connect');
  client.write(WS_REQUEST.replace('\r\n\r\n', '\r\nuber-ctx-key: f\r\n\r\n'));
  let got = '';
  client.setEncoding('latin1');
  while (!got.includes('\r\n\r\n')) got += ((await once(client, 'data')) as [string])[0];
  const head = got.slice(0, got.indexOf('\r\n\r\n'));
  t.match(head, /^HTTP\/1\.1 101 /);
  t.same(head.match(/^x-devstack-lane: [^\r\n]*/gim), ['x-devstack-lane: f'], "only this sidecar's lane header reaches the client");

  client.write('ping');
  let echoed = got.slice(got.indexOf('\r\n\r\n') + 4);
  while (echoed.length < 4) echoed += ((await once(client, 'data')) as [string])[0];
  t.equal(echoed, 'ping', 'the tunnel carries bytes both ways');

  const admin = s.addresses.admin!.port;
  t.equal(await metric(admin, /devstack_requests_total\{direction="outbound",service="svc",lane="f",status="101"\} (\d+)/), '1', 'counted once answered, while the tunnel is open');
  t.equal(await metric(admin, /devstack_request_duration_seconds_count\{direction="outbound",service="svc",lane="f"\} (\d+)/), '1');
  const span = spans.find((x) => x.attributes['devstack.lane'] === 'f');
  t.ok(span, 'a span was started for the upgrade');
  t.equal(span?.ended, false, 'the span lasts as long as the tunnel');

  const ended = once(spanEnded, 'end');
  client.end();
  const [done] = (await ended) as [Recorded];
  t.equal(done, span, 'the span ends when the tunnel closes');
  t.equal(done.attributes['http.response.status_code'], 101);
  t.equal(done.status, undefined, 'a tunnel that closes normally is not an error');
  t.equal(await metric(admin, /devstack_requests_total\{direction="outbound",service="svc",lane="f",status="101"\} (\d+)/), '1', 'and still counted once');
});

t.test('a declined upgrade is an ordinary answer: lane header, counted, traced', async (t) => {
  const dir = t.testdir();
  const declining = createHttpServer((req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain', 'x-devstack-lane': 'upstream-lane' });
    res.end(`no ${req.headers.upgrade}`);
  });
  await new Promise<void>((resolve) => declining.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    declining.closeAllConnections();
    declining.close();
  });
  const origin = `http://127.0.0.1:${(declining.address() as AddressInfo).port}`;
  const s = await sidecar(t, writeRegistry(dir, { svc: { base: origin } }), { tracing: true });
  const before = spans.length;
  const ended = once(spanEnded, 'end');
  const answer = await raw(s.addresses.outbound!.port, WS_REQUEST);
  t.match(answer, /^HTTP\/1\.1 426 /);
  t.same(answer.match(/^x-devstack-lane: [^\r\n]*/gim), ['x-devstack-lane: base']);
  t.match(answer, /\r\nno websocket\r\n/);
  const [span] = (await ended) as [Recorded];
  t.equal(spans.indexOf(span), before, 'the span of this upgrade ended once its answer was sent');
  t.equal(span.attributes['http.response.status_code'], 426);
  t.equal(await metric(s.addresses.admin!.port, /devstack_requests_total\{direction="outbound",service="svc",lane="base",status="426"\} (\d+)/), '1');
});

t.test('a client that leaves before the 101 takes the upstream handshake with it', async (t) => {
  const dir = t.testdir();
  // An upstream that takes the upgrade and never answers it: its socket closes only if the sidecar lets go.
  const held = createHttpServer();
  const arrived = new Promise<Socket>((resolve) => held.on('upgrade', (_req, socket: Socket) => resolve(socket)));
  await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => held.close(() => resolve())));
  const origin = `http://127.0.0.1:${(held.address() as AddressInfo).port}`;
  const s = await sidecar(t, writeRegistry(dir, { chat: { base: origin } }), { headersTimeoutMs: 60_000 });
  const client = connect(s.addresses.outbound!.port, '127.0.0.1');
  await once(client, 'connect');
  client.write('GET / HTTP/1.1\r\nHost: chat\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  const upstreamSocket = await arrived;
  // Read it, or its end is never seen (a socket handed over by 'upgrade' is not flowing).
  upstreamSocket.resume();
  const released = once(upstreamSocket, 'end');
  client.destroy();
  await released;
  t.equal(upstreamSocket.readableEnded, true, 'the sidecar ended the upstream handshake once the client left, long before its headers timeout');
  t.equal(s.ready(), true, 'and the sidecar serves on');
  // An upgraded socket is no longer the server's to close.
  upstreamSocket.destroy();
});
