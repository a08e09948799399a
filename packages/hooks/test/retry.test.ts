/* The retry loop and its backoff, with injected randomness and sleep (no waiting, no timing). */
import t from 'tap';
import { backoffDelay, classifyKube, KubeCallError, NotFoundError, RetriesExhaustedError, SILENT, withRetries } from '@devstack/hooks';

t.test('backoff doubles from the base, is capped, and is jittered in its upper half', async (t) => {
  const low = { baseMs: 100, capMs: 1000, random: () => 0 };
  const high = { ...low, random: () => 0.999999 };
  t.same([1, 2, 3, 4, 5, 50].map((n) => backoffDelay(n, low)), [50, 100, 200, 400, 500, 500]);
  t.same([1, 2, 3, 4, 5, 50].map((n) => backoffDelay(n, high)), [100, 200, 400, 800, 1000, 1000]);
});

t.test('conflicts and server faults are retried; answers are not', async (t) => {
  t.match(classifyKube(new KubeCallError('x', 409, 'conflict')), { retry: true, why: 'conflict' });
  t.match(classifyKube(new KubeCallError('x', 500, 'boom')), { retry: true });
  t.match(classifyKube(new KubeCallError('x', 429, 'slow down')), { retry: true });
  t.match(classifyKube(new KubeCallError('x', undefined, 'ECONNRESET')), { retry: true, why: 'no answer' });
  t.match(classifyKube(new KubeCallError('x', 403, 'forbidden')), { retry: false });
  t.match(classifyKube(new KubeCallError('x', 404, 'not found')), { retry: false });
  t.match(classifyKube(new NotFoundError('gone')), { retry: false });
});

t.test('withRetries re-runs the whole attempt, sleeps the backoff between, and gives up with the last cause', async (t) => {
  const slept: number[] = [];
  const options = { attempts: 3, baseMs: 10, capMs: 1000, random: () => 0, sleep: async (ms: number) => void slept.push(ms) };
  let calls = 0;
  const value = await withRetries('op', async () => (++calls < 3 ? Promise.reject(new KubeCallError('put', 409, 'stale')) : 'ok'), classifyKube, SILENT, options);
  t.equal(value, 'ok');
  t.same(slept, [5, 10]);

  const error = await withRetries('update the thing', () => Promise.reject(new KubeCallError('put', 409, 'stale')), classifyKube, SILENT, options).catch((e: unknown) => e);
  t.ok(error instanceof RetriesExhaustedError);
  t.match(error, { code: 'DEVSTACK_HOOK_RETRIES_EXHAUSTED', attempts: 3, message: 'update the thing: gave up after 3 attempts: put: HTTP 409: stale' });
  t.ok((error as Error).cause instanceof KubeCallError);

  let once = 0;
  const answer = await withRetries('op', () => (once++, Promise.reject(new KubeCallError('get', 403, 'forbidden'))), classifyKube, SILENT, options).catch((e: unknown) => e);
  t.match(answer, { status: 403 });
  t.equal(once, 1, 'a 403 is an answer, not retried');
});
