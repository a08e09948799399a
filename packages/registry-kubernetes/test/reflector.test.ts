import t from 'tap';
import { Backoff, Reflector, type ReflectorError } from '@devstack/registry-kubernetes';
import { FakeClock, FakeTransport, httpError, obj, settle } from './fakes.ts';

type Obj = ReturnType<typeof obj>;

function setup(t: { teardown(fn: () => unknown): void }, idleTimeoutMs = 90_000) {
  const clock = new FakeClock();
  const transport = new FakeTransport();
  const log = { changes: 0, syncs: 0, failures: [] as Array<{ error: ReflectorError; wait: number }>, recovered: 0 };
  const reflector = new Reflector<Obj>({
    name: 'things in ns',
    transport,
    idleTimeoutMs,
    clock,
    random: () => 0.5,
    onChange: () => log.changes++,
    onSync: () => log.syncs++,
    onFailure: (error, wait) => log.failures.push({ error, wait }),
    onRecovered: () => log.recovered++,
  });
  t.teardown(() => reflector.close());
  return { clock, transport, reflector, log };
}

const names = (r: Reflector<Obj>) => [...r.store.values()].map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`).sort();

t.test('lists at resourceVersion 0, pages through, then watches from the list\'s version', async (t) => {
  const { clock, transport, reflector, log } = setup(t);
  transport.items = [obj('a', 3), obj('b', 5), obj('c', 7)];
  transport.pageSize = 2;
  reflector.start();
  await clock.advance(0);
  t.same(transport.lists, [{ resourceVersion: '0', continue: undefined }, { resourceVersion: undefined, continue: '2' }], 'first page from the cache, then the continue token');
  t.same(names(reflector), ['a@3', 'b@5', 'c@7']);
  t.equal(log.syncs, 1);
  t.equal(transport.watches.length, 1);
  t.equal(transport.last.resourceVersion, '10', 'watch from the list\'s resourceVersion');
  t.ok(transport.last.timeoutSeconds >= 300 && transport.last.timeoutSeconds < 600, 'a 5-10 minute server timeout');
  transport.last.emit({ type: 'ADDED', object: obj('d', 11) });
  transport.last.emit({ type: 'MODIFIED', object: obj('a', 12, 'x') });
  transport.last.emit({ type: 'DELETED', object: obj('b', 13) });
  const changes = log.changes;
  transport.last.emit({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '20' } } });
  t.same(names(reflector), ['a@12', 'c@7', 'd@11']);
  t.equal(log.changes, changes, 'a bookmark changes no object');
  t.equal(reflector.resourceVersion, '20', 'but moves the resourceVersion on');
});

t.test('a watch closed by the server resumes from the last version seen: nothing lost, nothing twice', async (t) => {
  const { clock, transport, reflector } = setup(t);
  transport.items = [obj('a', 3)];
  reflector.start();
  await clock.advance(0);
  transport.last.emit({ type: 'ADDED', object: obj('b', 11) });
  await clock.advance(5000);
  transport.last.close();
  await clock.advance(0);
  t.equal(transport.watches.length, 2, 'watching again at once');
  t.equal(transport.last.resourceVersion, '11');
  t.equal(transport.lists.length, 1, 'no relist');
  transport.last.emit({ type: 'MODIFIED', object: obj('b', 12) });
  t.same(names(reflector), ['a@3', 'b@12']);
});

t.test('410 Gone, as an ERROR event or an HTTP status, relists and drops what vanished: at once, then with backoff', async (t) => {
  const { clock, transport, reflector, log } = setup(t);
  transport.items = [obj('a', 3), obj('b', 4)];
  reflector.start();
  await clock.advance(0);
  transport.items = [obj('a', 30), obj('c', 31)];
  transport.resourceVersion = '40';
  transport.last.emit({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' } });
  await clock.advance(0);
  t.equal(transport.lists.length, 2, 'relisted at once');
  t.equal(transport.lists[1]!.resourceVersion, undefined, 'from etcd, not from the watch cache that may be what is behind');
  t.same(names(reflector), ['a@30', 'c@31'], 'b vanished meanwhile and is gone');
  t.equal(transport.last.resourceVersion, '40');
  t.same(log.failures.map((f) => [f.error.reason, f.wait]), [['gone', 0]], 'counted, as every failure');
  transport.items = [obj('c', 41)];
  transport.resourceVersion = '50';
  transport.last.close(httpError(410));
  await clock.advance(0);
  t.equal(transport.lists.length, 2, 'a second 410 right after the relist waits');
  t.equal(reflector.stale, true, 'and the store is stale meanwhile');
  await clock.advance(600);
  t.equal(transport.lists.length, 3, 'relisted on an HTTP 410 too, after the backoff');
  t.same(names(reflector), ['c@41']);
  t.equal(reflector.stale, false);
  t.same(log.failures.map((f) => [f.error.reason, f.wait]), [['gone', 0], ['gone', 600]]);
  for (let i = 0; i < 6; i++) {
    transport.last.close(httpError(410));
    await clock.advance(0);
    await clock.advance(log.failures[log.failures.length - 1]!.wait);
  }
  t.same(log.failures.slice(2).map((f) => f.wait), [1200, 2400, 4800, 9600, 19200, 22500], 'a storm of 410s backs off as any failure');
  t.equal(transport.lists.length, 9, 'one relist per 410, never more');
  await clock.advance(61_000);
  transport.last.close(httpError(410));
  await clock.advance(0);
  t.equal(transport.lists.length, 10, 'after a healthy minute, the next 410 relists at once again');
});

t.test('failures back off exponentially with jitter up to 30 s, never giving up, and reset after a healthy minute', async (t) => {
  const { clock, transport, reflector, log } = setup(t);
  transport.listFailures = [httpError(500), httpError(403), httpError(429), Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), Object.assign(new Error('getaddrinfo'), { code: 'ENOTFOUND' }), httpError(503), httpError(500), httpError(500)];
  reflector.start();
  for (let i = 0; i < 8; i++) await clock.advance(log.failures[log.failures.length - 1]?.wait ?? 0);
  await clock.advance(60_000);
  t.equal(transport.lists.length, 9, 'retried until the list succeeded');
  // random() is 0.5: three quarters of each capped step.
  t.same(log.failures.map((f) => f.wait), [600, 1200, 2400, 4800, 9600, 19200, 22500, 22500]);
  t.same(log.failures.map((f) => f.error.status ?? f.error.message.replace(/.*: /, '')), [500, 403, 429, 'ECONNREFUSED', 'ENOTFOUND', 503, 500, 500]);
  t.equal(log.recovered, 1, 'recovered once');
  t.equal(log.syncs, 1);
  // The watch then lives a healthy minute and fails: the backoff starts over.
  await clock.advance(61_000);
  transport.last.close(httpError(500));
  await clock.advance(0);
  t.equal(log.failures[log.failures.length - 1]!.wait, 600, 'back to the first step');
});

t.test('a silent watch is dropped and restarted by the watchdog', async (t) => {
  const { clock, transport, reflector } = setup(t, 1000);
  transport.items = [obj('a', 3)];
  reflector.start();
  await clock.advance(0);
  await clock.advance(900);
  transport.last.emit({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '15' } } });
  await clock.advance(900);
  t.equal(transport.watches.length, 1, 'a bookmark keeps it alive');
  await clock.advance(200);
  t.equal(transport.watches[0]!.stopped, true, 'the silent watch was stopped');
  t.equal(transport.watches.length, 2, 'and a new one started');
  t.equal(transport.last.resourceVersion, '15', 'from the last version seen');
});

t.test('close() stops the loop even while it waits out a backoff', async (t) => {
  const { clock, transport, reflector } = setup(t);
  transport.listFailures = [httpError(500)];
  reflector.start();
  await clock.advance(0);
  await reflector.close();
  await clock.advance(60_000);
  t.equal(transport.lists.length, 1, 'no more requests after close');
  await settle();
});

t.test('Backoff: capped, jittered, reset only after a healthy stretch', async (t) => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, resetAfterMs: 5000, random: () => 1 });
  t.same([b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000]);
  b.healthy(4999);
  t.equal(b.next(), 1000, 'not reset by a short stretch');
  b.healthy(5000);
  t.equal(b.next(), 100, 'reset by a healthy one');
  const low = new Backoff({ initialMs: 100, random: () => 0 });
  t.equal(low.next(), 50, 'at least half the step');
});
