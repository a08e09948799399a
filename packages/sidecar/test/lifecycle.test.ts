import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Sidecar } from '@devstack/sidecar';
import { holdingUpstream, send, sidecar, upstream, writeRegistry } from './helpers.ts';

function nextVersion(s: Sidecar, version: number): Promise<void> {
  // The sidecar swaps its snapshot reference when the source publishes; wait for that event.
  return new Promise((resolve) => {
    const check = () => (s.snapshot()!.version >= version ? resolve() : setImmediate(check));
    check();
  });
}

t.test('registry hot reload and invalid edits', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const a2 = await upstream(t, 'a2');
  const path = writeRegistry(dir, { a: { base: a.origin } });
  const s = await sidecar(t, path);
  const port = s.addresses.outbound!.port;
  const admin = s.addresses.admin!.port;
  t.equal((await send(port, { headers: { host: 'a', 'uber-ctx-key': 'f' } })).json()['name'], 'a');

  writeRegistry(dir, { a: { base: a.origin, features: { f: a2.origin } } });
  await nextVersion(s, 2);
  t.equal((await send(port, { headers: { host: 'a', 'uber-ctx-key': 'f' } })).json()['name'], 'a2', 'a new copy routes after the file changes');

  const errors = () => send(admin, { path: '/metrics' }).then((r) => /devstack_registry_errors_total\{source="file"\} (\d+)/.exec(r.body)?.[1]);
  await writeFile(path, '{"services": {"a": {"base": "not a url"}}}');
  while ((await errors()) !== '1') await new Promise((r) => setImmediate(r));
  t.equal((await send(port, { headers: { host: 'a', 'uber-ctx-key': 'f' } })).json()['name'], 'a2', 'an invalid edit keeps the last good snapshot');
  t.equal(s.snapshot()!.version, 2);

  const routes = (await send(admin, { path: '/routes' })).json() as { version: number; services: Record<string, unknown> };
  t.equal(routes.version, 2);
  t.same(Object.keys(routes.services), ['a']);
  const resolved = (await send(admin, { path: '/resolve?service=a&key=f' })).json();
  t.same(resolved, { service: 'a', outcome: 'feature', reason: 'match', lane: 'f', targets: [a2.origin] });
  t.equal((await send(admin, { path: '/resolve' })).status, 400);
  t.equal((await send(admin, { path: '/nope' })).status, 404);
});

t.test('metrics names and labels', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const s = await sidecar(t, writeRegistry(dir, { a: { base: a.origin, features: { f: a.origin } } }));
  await send(s.addresses.outbound!.port, { headers: { host: 'a', 'uber-ctx-key': 'f' } });
  await send(s.addresses.outbound!.port, { headers: { host: 'a', baggage: 'uber-ctx-key=x,uber-ctx-key=y' } });
  const text = (await send(s.addresses.admin!.port, { path: '/metrics' })).body;
  t.match(text, /devstack_requests_total\{direction="outbound",service="a",lane="f",status="200"\} 1/);
  t.match(text, /devstack_requests_total\{direction="outbound",service="a",lane="base",status="200"\} 1/);
  t.match(text, /devstack_request_duration_seconds_bucket\{le="[0-9.]+",direction="outbound",service="a",lane="f"\} 1/);
  t.match(text, /devstack_request_duration_seconds_bucket\{le="0.0005",direction="outbound",service="a",lane="f"\} [01]\n/);
  t.match(text, /devstack_request_duration_seconds_bucket\{le="\+Inf",direction="outbound",service="a",lane="f"\} 1\n/);
  t.match(text, /devstack_request_duration_seconds_count\{direction="outbound",service="a",lane="f"\} 1\n/);
  t.match(text, /devstack_request_duration_seconds_sum\{direction="outbound",service="a",lane="f"\} 0\.\d+/);
  const buckets = [...text.matchAll(/devstack_request_duration_seconds_bucket\{le="[^"]+",direction="outbound",service="a",lane="base"\} (\d+)/g)].map((m) => Number(m[1]));
  t.same(buckets, [...buckets].sort((a, b) => a - b), 'buckets are cumulative');
  t.equal(buckets.length, 15);
  t.match(text, /devstack_invalid_keys_total\{direction="outbound",carrier="baggage",problem="conflict"\} 1/);
  t.match(text, /devstack_registry_services 1/);
  t.match(text, /devstack_registry_last_update_seconds \d+/);
  t.match(text, /# TYPE devstack_upstream_errors_total counter/);
  t.match(text, /devstack_sidecar_process_cpu_seconds_total/);
});

t.test('readiness, and drain on close with a request in flight', async (t) => {
  const dir = t.testdir();
  const slow = await holdingUpstream(t, 'slow');
  const s = await sidecar(t, writeRegistry(dir, { slow: { base: slow.origin } }));
  const admin = s.addresses.admin!.port;
  t.equal((await send(admin, { path: '/readyz' })).status, 200, 'ready once the first snapshot is in');
  t.equal((await send(admin, { path: '/healthz' })).status, 200);

  const inFlight = send(s.addresses.outbound!.port, { headers: { host: 'slow' } });
  const held = await slow.arrival;
  const closing = s.close();
  t.equal(s.ready(), false, 'not ready from the moment shutdown begins');
  t.equal((await send(admin, { path: '/readyz' })).status, 503, '/readyz says so while draining');
  const refused = await new Promise<string>((resolve) => {
    const req = request({ host: '127.0.0.1', port: s.addresses.outbound!.port, headers: { host: 'slow' } }, () => resolve('accepted'));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    req.end();
  });
  t.equal(refused, 'ECONNREFUSED', 'no new connections while draining');
  held.end('finished');
  const reply = await inFlight;
  t.equal(reply.status, 200, 'the in-flight request finished');
  t.equal(reply.body, 'finished');
  t.equal(reply.headers['connection'], 'close', 'and its connection is not kept alive');
  await closing;
});

t.test('the shutdown deadline cuts what is still running', async (t) => {
  const dir = t.testdir();
  const hang = await upstream(t, 'hang', () => undefined);
  const s = await sidecar(t, writeRegistry(dir, { hang: { base: hang.origin } }), { shutdownTimeoutMs: 50 });
  const inFlight = send(s.addresses.outbound!.port, { headers: { host: 'hang' } }).then(
    () => 'answered',
    (e: NodeJS.ErrnoException) => e.code,
  );
  while (hang.hits === 0) await new Promise((r) => setImmediate(r));
  await s.close();
  t.equal(await inFlight, 'ECONNRESET', 'after the deadline the connection is closed');
});

t.test('connections that never sent a request: closed when the client ends, cut at the shutdown deadline', async (t) => {
  const a = await upstream(t, 'a');
  // A headers timeout far beyond the test: only the fix can close these sockets in time.
  const s = await sidecar(t, writeRegistry(t.testdir(), { a: { base: a.origin } }), { headersTimeoutMs: 600_000, requestHeadersTimeoutMs: 600_000, shutdownTimeoutMs: 100 });
  const port = s.addresses.outbound!.port;
  const opened = () =>
    new Promise<Socket>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => resolve(socket));
      socket.on('error', () => undefined);
    });

  const ender = await opened();
  const closed = new Promise<boolean>((resolve) => ender.once('close', () => resolve(true)));
  ender.end();
  // The bound is only a guard, so a regression fails here rather than at the runner's timeout.
  let guard: NodeJS.Timeout | undefined;
  const bounded = <T>(p: Promise<T>, fallback: T) => Promise.race([p, new Promise<T>((resolve) => (guard = setTimeout(() => resolve(fallback), 20_000)))]).finally(() => clearTimeout(guard));
  t.equal(await bounded(closed, false), true, 'a client that ends before a request: the sidecar closes its side');

  const silent = await opened();
  const silentClosed = new Promise<boolean>((resolve) => silent.once('close', () => resolve(true)));
  await send(port, { headers: { host: 'a' } }); // the listener is past accepting the silent one
  t.equal(await bounded(s.close().then(() => true), false), true, 'close() ends at the deadline with a silent connection open');
  t.equal(await bounded(silentClosed, false), true, 'the silent connection was cut');
});
