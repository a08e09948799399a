import t from 'tap';
import { request } from 'node:http';
import { connect as netConnect } from 'node:net';
import { connect, constants } from 'node:http2';
import type { SidecarOptions } from '@devstack/sidecar';
import { raw, send, sidecar, upstream, writeRegistry, type Tap } from './helpers.ts';
import { grpcFrame, h2Client, h2Send, h2Upstream } from './h2-helpers.ts';

const GRPC = { 'content-type': 'application/grpc', te: 'trailers' };

async function fleet(tt: Tap, options: Partial<SidecarOptions> = {}) {
  const base = await h2Upstream(tt, 'inventory-base');
  const f1 = await h2Upstream(tt, 'inventory-f1');
  const web = await upstream(tt, 'web-base');
  const registry = writeRegistry(tt.testdir(), {
    inventory: { base: [{ url: base.origin, protocol: 'h2c' }], features: { feature1: [{ url: f1.origin, protocol: 'h2c' }] } },
    web: { base: web.origin },
  });
  const s = await sidecar(tt, registry, options);
  return { s, port: s.addresses.outbound!.port, base, f1, web };
}

t.test('HTTP/2 and HTTP/1.1 clients share the outbound port and reach HTTP/2 and HTTP/1.1 upstreams by lane', async (tt) => {
  const { port } = await fleet(tt);
  const session = h2Client(tt, port);

  const feature = await h2Send(session, { ':authority': 'inventory', 'uber-ctx-key': 'feature1' }, 'order-7');
  tt.equal(feature.status, 200);
  tt.equal(feature.headers['x-devstack-lane'], 'feature1', 'the lane header names the copy');
  const echoed = JSON.parse(feature.body) as { name: string; headers: Record<string, string>; body: string };
  tt.equal(echoed.name, 'inventory-f1', 'the key routed the HTTP/2 call to the feature copy');
  tt.equal(echoed.body, 'order-7', 'the request body arrived');
  tt.equal(echoed.headers['uber-ctx-key'], 'feature1', 'the key travels on as the plain header');
  tt.match(echoed.headers['baggage'], /uber-ctx-key=feature1/, 'and in baggage');
  tt.equal(echoed.headers['x-devstack-hops'], '1');
  tt.equal(feature.trailers?.['x-checksum'], 'inventory-f1-ok', 'the upstream trailers reach the HTTP/2 client');

  const base = await h2Send(session, { ':authority': 'inventory' });
  tt.equal(JSON.parse(base.body).name, 'inventory-base', 'no key: base');
  tt.equal(base.headers['x-devstack-lane'], 'base');

  const h1Upstream = await h2Send(session, { ':authority': 'web', 'uber-ctx-key': 'feature1' }, 'x');
  tt.equal(h1Upstream.status, 200, 'an HTTP/2 client reaches an HTTP/1.1 upstream');
  tt.equal(JSON.parse(h1Upstream.body).name, 'web-base');
  tt.equal(JSON.parse(h1Upstream.body).headers.host, 'web', ':authority becomes the Host of the HTTP/1.1 request');

  const fromH1 = await new Promise<{ status: number; lane: unknown; body: string; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { host: 'inventory', 'uber-ctx-key': 'feature1' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, lane: res.headers['x-devstack-lane'], body, trailers: res.trailers }));
    });
    req.on('error', reject);
    req.end('from-h1');
  });
  tt.equal(fromH1.status, 200, 'an HTTP/1.1 client reaches the HTTP/2 upstream');
  tt.equal(fromH1.lane, 'feature1');
  tt.equal(JSON.parse(fromH1.body).body, 'from-h1');
  tt.equal(fromH1.trailers['x-checksum'], 'inventory-f1-ok', 'HTTP/2 trailers reach an HTTP/1.1 client on its chunked body');

  const invalid = await h2Send(session, { ':authority': 'inventory', 'uber-ctx-key': 'Not_A_Key' });
  tt.equal(JSON.parse(invalid.body).name, 'inventory-base', 'an invalid key goes to base');
  tt.equal(JSON.parse(invalid.body).headers['uber-ctx-key'], undefined, 'and never travels on');
});

t.test('errors the sidecar makes: gRPC statuses for gRPC calls, JSON for plain HTTP/2', async (tt) => {
  const base = await h2Upstream(tt, 'inventory-base');
  const web = await upstream(tt, 'web-base');
  const registry = writeRegistry(tt.testdir(), {
    inventory: { base: [{ url: base.origin, protocol: 'h2c' }], features: { feature1: [{ url: base.origin, protocol: 'h2c', ready: false }] } },
    web: { base: web.origin },
    gone: { base: [{ url: 'http://127.0.0.1:1', protocol: 'h2c' }] },
  });
  const s = await sidecar(tt, registry, { strict: true });
  const session = h2Client(tt, s.addresses.outbound!.port);

  const cases: [string, Record<string, string>, number, string][] = [
    ['an unknown service', { ':authority': 'nowhere' }, 12, 'DEVSTACK_UNKNOWN_SERVICE'],
    ['a routing loop', { ':authority': 'inventory', 'x-devstack-hops': '16' }, 8, 'DEVSTACK_LOOP_DETECTED'],
    ['a forged hop count', { ':authority': 'inventory', 'x-devstack-hops': '-5' }, 13, 'DEVSTACK_INVALID_HOPS'],
    ['strict mode without a ready copy', { ':authority': 'inventory', 'uber-ctx-key': 'feature1' }, 14, 'DEVSTACK_NO_FEATURE_COPY'],
    ['an HTTP/1.1 upstream', { ':authority': 'web' }, 14, 'DEVSTACK_UPSTREAM_PROTOCOL'],
    ['an unreachable upstream', { ':authority': 'gone' }, 14, 'DEVSTACK_UPSTREAM_UNREACHABLE'],
  ];
  for (const [what, headers, status, code] of cases) {
    const reply = await h2Send(session, { ...GRPC, ...headers }, grpcFrame('{}'));
    tt.equal(reply.status, 200, `${what}: HTTP 200, as gRPC wants`);
    tt.ok(reply.headersOnly, `${what}: a trailers-only response`);
    tt.equal(reply.headers['grpc-status'], String(status), `${what}: grpc-status ${status}`);
    tt.match(String(reply.headers['grpc-message']), new RegExp(`^${code}: `), `${what}: the devstack code leads grpc-message`);
    tt.ok(reply.headers['x-devstack-lane'] !== undefined, `${what}: the lane header is there`);
  }
  const plain = await h2Send(session, { ':authority': 'nowhere' });
  tt.equal(plain.status, 404, 'plain HTTP/2 gets the HTTP status');
  tt.equal(plain.headers['content-type'], 'application/json');
  tt.equal((JSON.parse(plain.body) as { error: { code: string } }).error.code, 'DEVSTACK_UNKNOWN_SERVICE');

  const metrics = (await send(s.addresses.admin!.port, { path: '/metrics' })).body;
  tt.match(metrics, /devstack_requests_total\{direction="outbound",service="none",lane="none",status="200"\} 3\n/, 'the gRPC refusals before a service was known are counted');
  tt.match(metrics, /devstack_requests_total\{direction="outbound",service="none",lane="none",status="404"\} 1\n/, 'the plain HTTP/2 refusal is counted');
});

t.test('an upstream trailers-only gRPC answer stays trailers-only', async (tt) => {
  const status = await h2Upstream(tt, 'status', (stream) => stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'no such item' }, { endStream: true }));
  const s = await sidecar(tt, writeRegistry(tt.testdir(), { inventory: { base: [{ url: status.origin, protocol: 'h2c' }] } }));
  const reply = await h2Send(h2Client(tt, s.addresses.outbound!.port), { ...GRPC, ':authority': 'inventory' }, grpcFrame('{}'));
  tt.ok(reply.headersOnly, 'one HEADERS frame with END_STREAM');
  tt.equal(reply.headers['grpc-status'], '5');
  tt.equal(reply.headers['grpc-message'], 'no such item');
  tt.equal(reply.headers['x-devstack-lane'], 'base');
});

t.test('grpc-timeout: the upstream stream is cancelled and the client gets DEADLINE_EXCEEDED', async (tt) => {
  let upstreamClosed!: Promise<number | undefined>;
  const silent = await h2Upstream(tt, 'silent', (stream) => {
    upstreamClosed = new Promise((resolve) => stream.on('close', () => resolve(stream.rstCode)));
  });
  const s = await sidecar(tt, writeRegistry(tt.testdir(), { inventory: { base: [{ url: silent.origin, protocol: 'h2c' }] } }));
  const reply = await h2Send(h2Client(tt, s.addresses.outbound!.port), { ...GRPC, ':authority': 'inventory', 'grpc-timeout': '150m' }, grpcFrame('{}'));
  tt.equal(reply.headers['grpc-status'], '4', 'DEADLINE_EXCEEDED');
  tt.match(String(reply.headers['grpc-message']), /^DEVSTACK_DEADLINE_EXCEEDED: /);
  tt.equal(silent.streams.length, 1, 'the upstream got the call');
  tt.equal(await upstreamClosed, constants.NGHTTP2_CANCEL, 'the upstream stream was reset with CANCEL');
});

/** A streaming call held open by its upstream after one message; resolves once that message reached the client. */
async function openStream(tt: Tap) {
  let closed!: Promise<number | undefined>;
  const holding = await h2Upstream(tt, 'holding', (stream) => {
    closed = new Promise((resolve) => stream.on('close', () => resolve(stream.rstCode)));
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    stream.write(grpcFrame('first'));
  });
  const s = await sidecar(tt, writeRegistry(tt.testdir(), { inventory: { base: [{ url: holding.origin, protocol: 'h2c' }] } }));
  const session = h2Client(tt, s.addresses.outbound!.port);
  const call = session.request({ ':method': 'POST', ':path': '/x.Inventory/Watch', ':authority': 'inventory', ...GRPC });
  call.on('error', () => undefined);
  call.write(grpcFrame('{}'));
  await new Promise<void>((resolve) => call.once('data', () => resolve()));
  return { port: s.addresses.outbound!.port, session, call, upstreamClosed: () => closed };
}

t.test('a client cancel (RST_STREAM) cancels the upstream stream', async (tt) => {
  const { session, call, upstreamClosed } = await openStream(tt);
  call.close(constants.NGHTTP2_CANCEL);
  tt.equal(await upstreamClosed(), constants.NGHTTP2_CANCEL, 'the upstream saw the cancel');
  const after = await h2Send(session, { ':authority': 'nowhere' });
  tt.equal(after.status, 404, 'the session serves on');
});

t.test('a client that disconnects mid-stream takes the upstream stream with it', async (tt) => {
  const { port, session, upstreamClosed } = await openStream(tt);
  session.destroy();
  tt.equal(await upstreamClosed(), constants.NGHTTP2_CANCEL, 'the upstream stream was cancelled');
  const again = await h2Send(h2Client(tt, port), { ':authority': 'nowhere' });
  tt.equal(again.status, 404, 'the listener serves on');
});

t.test('an upstream that dies mid-stream: gRPC clients get UNAVAILABLE in the trailers', async (tt) => {
  const dying = await h2Upstream(tt, 'dying', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    stream.write(grpcFrame('partial'), () => stream.session?.destroy());
  });
  const s = await sidecar(tt, writeRegistry(tt.testdir(), { inventory: { base: [{ url: dying.origin, protocol: 'h2c' }] } }));
  const reply = await h2Send(h2Client(tt, s.addresses.outbound!.port), { ...GRPC, ':authority': 'inventory' }, grpcFrame('{}'));
  tt.equal(reply.status, 200);
  tt.notOk(reply.headersOnly, 'the response had begun');
  tt.equal(reply.trailers?.['grpc-status'], '14', 'UNAVAILABLE in the trailers');
  tt.match(String(reply.trailers?.['grpc-message']), /^DEVSTACK_UPSTREAM_RESET: /);
});

t.test('flow control holds end to end: a client that does not read stops the upstream writer', async (tt) => {
  const chunk = Buffer.alloc(64 * 1024, 7);
  let written = 0;
  let blocked!: (bytes: number) => void;
  const writerBlocked = new Promise<number>((resolve) => (blocked = resolve));
  let finish!: () => void;
  const firehose = await h2Upstream(tt, 'firehose', (stream) => {
    stream.respond({ ':status': 200 });
    const pump = () => {
      while (written < 64 * 1024 * 1024) {
        written += chunk.length;
        if (!stream.write(chunk)) return blocked(written);
      }
    };
    finish = () => {
      stream.end();
    };
    pump();
  });
  const s = await sidecar(tt, writeRegistry(tt.testdir(), { big: { base: [{ url: firehose.origin, protocol: 'h2c' }] } }));
  const session = h2Client(tt, s.addresses.outbound!.port);
  const stream = session.request({ ':path': '/', ':authority': 'big' });
  stream.on('error', () => undefined);
  stream.pause();
  const bytes = await writerBlocked;
  tt.ok(bytes < 16 * 1024 * 1024, `the upstream was held back after ${bytes} bytes, not after all 64 MiB`);
  let received = 0;
  stream.on('data', (c: Buffer) => (received += c.length));
  const ended = new Promise<void>((resolve) => stream.on('end', () => resolve()));
  stream.resume();
  finish();
  await ended;
  tt.equal(received, bytes, 'every byte written before the end arrived once the client read');
});

t.test('shutdown drains HTTP/2: GOAWAY to clients, the stream in flight finishes', async (tt) => {
  let release!: () => void;
  let arrived!: () => void;
  const arrival = new Promise<void>((resolve) => (arrived = resolve));
  const slow = await h2Upstream(tt, 'slow', (stream) => {
    arrived();
    release = () => {
      stream.respond({ ':status': 200 });
      stream.end('finished');
    };
  });
  const s = await sidecar(tt, writeRegistry(tt.testdir(), { inventory: { base: [{ url: slow.origin, protocol: 'h2c' }] } }));
  const session = h2Client(tt, s.addresses.outbound!.port);
  const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
  const inflight = h2Send(session, { ':authority': 'inventory' });
  await arrival;
  const closing = s.close();
  await goaway;
  tt.pass('the client was sent GOAWAY');
  release();
  const reply = await inflight;
  tt.equal(reply.status, 200, 'the stream in flight finished');
  tt.equal(reply.body, 'finished');
  await closing;
});

t.test('the inbound listener speaks h2c to an app that does (--app-protocol h2c)', async (tt) => {
  const app = await h2Upstream(tt, 'grpc-app');
  const s = await sidecar(tt, writeRegistry(tt.testdir(), { web: { base: 'http://127.0.0.1:9' } }), {
    outbound: undefined,
    inbound: { port: 0, host: '127.0.0.1', appPort: Number(new URL(app.origin).port), appProtocol: 'h2c' },
    defaultKey: 'feature1',
  });
  const reply = await h2Send(h2Client(tt, s.addresses.inbound!.port), { ...GRPC, ':authority': 'inventory:50051' }, grpcFrame('{}'));
  const echoed = JSON.parse(reply.body) as { name: string; headers: Record<string, string> };
  tt.equal(echoed.name, 'grpc-app');
  tt.equal(echoed.headers['uber-ctx-key'], 'feature1', 'the copy\'s key is put on the call');
  tt.equal(reply.headers['x-devstack-lane'], 'feature1');
  tt.equal(reply.trailers?.['x-checksum'], 'grpc-app-ok');
});

t.test('h2c inside a CONNECT tunnel (what gRPC clients send through grpc_proxy)', async (tt) => {
  const { port } = await fleet(tt);
  const socket = netConnect(port, '127.0.0.1');
  tt.teardown(() => socket.destroy());
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write('CONNECT inventory:50051 HTTP/1.1\r\nHost: inventory:50051\r\n\r\n');
  const established = await new Promise<string>((resolve) => socket.once('data', (c: Buffer) => resolve(c.toString())));
  tt.match(established, /^HTTP\/1\.1 200 /, 'the tunnel opens for a registry service');
  const session = connect('http://inventory:50051', { createConnection: () => socket });
  session.on('error', () => undefined);
  tt.teardown(() => session.destroy());
  const reply = await h2Send(session, { ':authority': 'inventory:50051', 'uber-ctx-key': 'feature1' });
  tt.equal(JSON.parse(reply.body).name, 'inventory-f1', 'the HTTP/2 call inside the tunnel is routed by key');
  tt.equal(reply.headers['x-devstack-lane'], 'feature1');
});

t.test('hostile HTTP/2 openings: each connection alone pays, the listener serves on', async (tt) => {
  const { port } = await fleet(tt, { requestHeadersTimeoutMs: 100 });
  const stalled = await raw(port, 'PRI * HTTP/2.0\r\n');
  tt.match(stalled, /^HTTP\/1\.1 408 /, 'half a preface, then silence: 408 once the headers timeout passes');
  tt.match(stalled, /DEVSTACK_CLIENT_TIMEOUT/);
  const wrongVersion = await raw(port, 'PRX * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  tt.match(wrongVersion, /^HTTP\/1\.1 400 /, 'not quite the preface: the HTTP/1.1 parser refuses it');
  const garbage = await raw(port, `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n${'\u0000\u0001garbage-frames'.repeat(20)}`);
  tt.type(garbage, 'string', 'a preface followed by garbage: that connection is ended');
  const session = h2Client(tt, port);
  const after = await h2Send(session, { ':authority': 'inventory' });
  tt.equal(after.status, 200, 'HTTP/2 still served');
  tt.equal((await send(port, { headers: { host: 'web' } })).status, 200, 'HTTP/1.1 still served');

  const connectStream = session.request({ ':method': 'CONNECT', ':authority': 'inventory:80' });
  const connectStatus = await new Promise<number>((resolve) => connectStream.once('response', (h) => resolve(Number(h[':status']))));
  connectStream.close();
  tt.equal(connectStatus, 405, 'CONNECT over HTTP/2 is refused');
  const star = await h2Send(session, { ':method': 'OPTIONS', ':path': '*', ':authority': 'inventory' });
  tt.equal(star.status, 400, 'OPTIONS * names nothing to forward');
  const huge = await h2Send(session, { ':authority': 'inventory', 'x-big': 'a'.repeat(40 * 1024) }).then((r) => r.status, (e: Error & { code?: string }) => e.code);
  tt.ok(huge === 431 || huge === 'ERR_HTTP2_STREAM_ERROR', `headers over the limit are refused (${String(huge)})`);
  const flood = await Promise.allSettled(Array.from({ length: 1200 }, () => h2Send(session, { ':authority': 'inventory' })));
  tt.ok(flood.filter((r) => r.status === 'fulfilled').length >= 1000, 'a flood of streams on one session: the allowed streams are served');
  tt.equal((await h2Send(h2Client(tt, port), { ':authority': 'inventory' })).status, 200, 'and the listener serves on');
});


t.test('an HTTP/2 session with no traffic for --idle-timeout is sent GOAWAY', async (tt) => {
  const { port } = await fleet(tt, { idleTimeoutMs: 100 });
  const session = h2Client(tt, port);
  const first = await h2Send(session, { ':authority': 'inventory' });
  tt.equal(first.status, 200);
  const goaway = await new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
  tt.equal(goaway, constants.NGHTTP2_NO_ERROR, 'a graceful GOAWAY once the session went quiet');
  tt.equal((await h2Send(h2Client(tt, port), { ':authority': 'inventory' })).status, 200, 'a new session is served');
});
