import t from 'tap';
import { connect, type Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { raw, send, sidecar, upstream, writeRegistry, type Reply, type Tap } from './helpers.ts';

const CHUNK = Buffer.alloc(64 * 1024, 'x');

/** Writes to `res` for as long as someone reads it: a response that never ends. */
function endless(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  const pump = () => {
    while (!res.destroyed && res.write(CHUNK));
  };
  res.on('drain', pump);
  pump();
}

/** An upstream whose `/upload` reads the body before answering, `/stream` never ends and `/` answers at once. */
async function service(t: Tap) {
  const seen = { stalled: 0, connections: 0, waiters: [] as (() => void)[], aborted: 0 };
  const server = await upstream(t, 'svc', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/') return res.end('ok');
    seen.stalled++;
    seen.waiters.forEach((w) => w());
    req.on('close', () => {
      if (!req.complete || !res.writableFinished) seen.aborted++;
    });
    if (req.url === '/stream') return endless(res);
    req.resume();
    req.on('end', () => res.end('uploaded'));
  });
  server.server.on('connection', () => {
    seen.connections++;
    seen.waiters.forEach((w) => w());
  });
  /** Resolves once `ready()` holds, checked on every upstream connection and request. */
  const until = (ready: () => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => ready() && resolve();
      seen.waiters.push(check);
      check();
    });
  return { server, seen, until };
}

/** A client that sends `text` and then neither sends nor reads anything more. */
function stalled(port: number, text: string): Socket {
  const socket = connect(port, '127.0.0.1', () => socket.write(text));
  socket.pause();
  socket.on('error', () => undefined);
  return socket;
}

/** One ordinary request, given up after `ms` so that a service that is locked out fails the test instead of hanging it. */
function ordinary(port: number, ms: number): Promise<Reply | 'gave up'> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<'gave up'>((resolve) => (timer = setTimeout(() => resolve('gave up'), ms)));
  return Promise.race([send(port, { headers: { host: 'svc' } }), gaveUp]).finally(() => clearTimeout(timer));
}

t.test('160 stalled clients on one service do not lock the others out', async (t) => {
  const dir = t.testdir();
  const svc = await service(t);
  // Default client timeouts (tens of seconds): the stalled clients stay stalled for the whole test.
  const s = await sidecar(t, writeRegistry(dir, { svc: { base: svc.server.origin } }), { shutdownTimeoutMs: 200 });
  const port = s.addresses.outbound!.port;
  const clients: Socket[] = [];
  t.teardown(() => clients.forEach((c) => c.destroy()));
  const upload = 'POST /upload HTTP/1.1\r\nHost: svc\r\nContent-Length: 100\r\n\r\n';
  for (let i = 0; i < 55; i++) clients.push(stalled(port, upload)); // the body never comes
  for (let i = 0; i < 55; i++) clients.push(stalled(port, `${upload}x`)); // one byte of it, then nothing
  for (let i = 0; i < 50; i++) clients.push(stalled(port, 'GET /stream HTTP/1.1\r\nHost: svc\r\n\r\n')); // never read
  const all = await Promise.race([svc.until(() => svc.seen.connections >= 160 && svc.seen.stalled >= 105).then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 10_000).unref())]);
  t.ok(all, 'each stalled exchange holds its own upstream connection, none is queued behind the others');
  t.equal(svc.seen.stalled, 105, 'the trickled bodies and the unread responses reached the upstream');

  const replies = await Promise.all([1, 2, 3, 4, 5].map(() => ordinary(port, 10_000)));
  for (const reply of replies) {
    t.not(reply, 'gave up', 'an ordinary request is not stuck behind the stalled ones');
    if (reply === 'gave up') continue;
    t.equal(reply.status, 200);
    t.equal(reply.body, 'ok');
  }
  clients.forEach((c) => c.destroy());
});

async function metric(adminPort: number, pattern: RegExp): Promise<string | undefined> {
  return pattern.exec((await send(adminPort, { path: '/metrics' })).body)?.[1];
}

t.test('a request body that stalls: 408, the upstream attempt is abandoned, counted', async (t) => {
  const dir = t.testdir();
  const svc = await service(t);
  const s = await sidecar(t, writeRegistry(dir, { svc: { base: svc.server.origin } }), { requestBodyTimeoutMs: 100 });
  const answer = await raw(s.addresses.outbound!.port, 'POST /upload HTTP/1.1\r\nHost: svc\r\nContent-Length: 10\r\n\r\nabc');
  t.match(answer, /^HTTP\/1\.1 408 /);
  t.match(answer, /\r\nx-devstack-lane: base\r\n/i);
  t.match(answer, /\r\nconnection: close\r\n/i, 'the unread rest of the body cannot be followed by another request');
  t.match(answer, /"code":"DEVSTACK_CLIENT_TIMEOUT"/);
  while (svc.seen.aborted < 1) await new Promise((r) => setImmediate(r));
  t.equal(svc.seen.aborted, 1, 'the upstream request was cut, not left waiting for the body');
  const admin = s.addresses.admin!.port;
  t.equal(await metric(admin, /devstack_client_timeouts_total\{direction="outbound",stall="body"\} (\d+)/), '1');
  t.equal(await metric(admin, /devstack_requests_total\{direction="outbound",service="svc",lane="base",status="408"\} (\d+)/), '1');
});

t.test('a response the client stops reading: the connection is cut, the upstream released, counted', async (t) => {
  const dir = t.testdir();
  const svc = await service(t);
  const s = await sidecar(t, writeRegistry(dir, { svc: { base: svc.server.origin } }), { responseDrainTimeoutMs: 100 });
  const client = stalled(s.addresses.outbound!.port, 'GET /stream HTTP/1.1\r\nHost: svc\r\n\r\n');
  while (svc.seen.aborted < 1) await new Promise((r) => setImmediate(r));
  t.equal(svc.seen.aborted, 1, 'the endless upstream response was abandoned');
  // A paused socket does not see its connection close until it reads again.
  const closed = once(client, 'close');
  client.resume();
  await closed;
  t.ok(client.destroyed, 'the client that did not read lost its connection');
  t.equal(await metric(s.addresses.admin!.port, /devstack_client_timeouts_total\{direction="outbound",stall="drain"\} (\d+)/), '1');
});

t.test('request headers that never finish: 408 on every listener, counted', async (t) => {
  const dir = t.testdir();
  const svc = await service(t);
  const s = await sidecar(t, writeRegistry(dir, { svc: { base: svc.server.origin } }), { requestHeadersTimeoutMs: 100 });
  for (const [listener, port] of [['outbound', s.addresses.outbound!.port], ['admin', s.addresses.admin!.port]] as const) {
    const answer = await raw(port, 'GET / HTTP/1.1\r\nHost: svc\r\nX-Slow: ');
    t.match(answer, /^HTTP\/1\.1 408 Request Timeout\r\n/, `${listener}: 408`);
    t.match(answer, /"code":"DEVSTACK_CLIENT_TIMEOUT"/);
    const silent = await raw(port, '');
    t.match(silent, /^HTTP\/1\.1 408 /, `${listener}: a connection that sends nothing is closed too`);
  }
  t.equal(svc.server.hits, 0);
  t.equal(await metric(s.addresses.admin!.port, /devstack_client_timeouts_total\{direction="outbound",stall="headers"\} (\d+)/), '2');
  t.equal(await metric(s.addresses.admin!.port, /devstack_client_timeouts_total\{direction="admin",stall="headers"\} (\d+)/), '2');
});
