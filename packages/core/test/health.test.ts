import t from 'tap';
import {
  buildSnapshot,
  failOver,
  PassiveHealth,
  retryable,
  routeStep,
  ConfigError,
  type RouteFields,
  type Target,
} from '@devstack/core';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let ms = 1_000_000;
  return { now: () => ms, advance: (d) => void (ms += d) };
}

const A = 'http://127.0.0.1:7101';

t.test('the tracker: consecutive failures eject, the backoff doubles up to its cap, a success clears it', async (t) => {
  // [step, expected: ejected by this failure / ejected now / ejectedUntil - now]
  type Row = [string, 'fail' | 'ok' | `wait ${number}`, boolean | undefined, boolean, number | undefined];
  const rows: Row[] = [
    ['first failure (ejectAfter 2): not yet', 'fail', false, false, undefined],
    ['second: ejected for the base 1000 ms', 'fail', true, true, 1000],
    ['a failure while ejected changes nothing', 'fail', false, true, 1000],
    ['999 ms on: still ejected', 'wait 999', undefined, true, 1],
    ['1000 ms on: back by itself', 'wait 1', undefined, false, undefined],
    ['fails again at once: 2000 ms', 'fail', true, true, 2000],
    ['after it', 'wait 2000', undefined, false, undefined],
    ['then 4000 ms', 'fail', true, true, 4000],
    ['after it', 'wait 4000', undefined, false, undefined],
    ['then the cap, 5000 ms', 'fail', true, true, 5000],
    ['after it', 'wait 5000', undefined, false, undefined],
    ['capped again', 'fail', true, true, 5000],
    ['after it', 'wait 5000', undefined, false, undefined],
    ['a connection made: the record is gone', 'ok', undefined, false, undefined],
    ['one failure again: not ejected (the count restarted)', 'fail', false, false, undefined],
    ['the second: the base ejection again (the backoff restarted)', 'fail', true, true, 1000],
  ];
  const c = clock();
  const health = new PassiveHealth({ ejectAfter: 2, baseEjectionMs: 1000, maxEjectionMs: 5000, now: c.now });
  for (const [name, step, ejectedNow, ejected, left] of rows) {
    let result: boolean | undefined;
    if (step === 'fail') result = health.failure(A);
    else if (step === 'ok') health.success(A);
    else c.advance(Number(step.slice(5)));
    t.equal(result, ejectedNow, `${name}: failure() says`);
    t.equal(health.ejected(A), ejected, `${name}: ejected`);
    const until = health.status().find((s) => s.origin === A)?.ejectedUntil;
    t.equal(until === undefined ? undefined : until - c.now(), left, `${name}: ejected for`);
  }
  t.equal(health.ejected('http://127.0.0.1:1'), false, 'a target never seen is not ejected');
});

t.test('the tracker forgets the oldest record past maxTracked, expired ones first', async (t) => {
  const c = clock();
  const health = new PassiveHealth({ maxTracked: 2, now: c.now });
  health.failure('http://a:1');
  c.advance(5000);
  health.failure('http://b:1');
  health.failure('http://c:1');
  t.same(health.status().map((s) => s.origin), ['http://b:1', 'http://c:1'], 'a, whose ejection ended, went first');
  health.failure('http://d:1');
  t.same(health.status().map((s) => s.origin), ['http://c:1', 'http://d:1'], 'then the oldest');
  t.equal(health.size, 2);
});

t.test('bad tracker options are one ConfigError listing each', async (t) => {
  const error = t.throws(() => new PassiveHealth({ ejectAfter: 0, baseEjectionMs: 1.5 })) as ConfigError;
  t.ok(error instanceof ConfigError);
  t.equal(error.problems.length, 2);
  t.throws(() => new PassiveHealth({ baseEjectionMs: 2000, maxEjectionMs: 1000 }), /below baseEjectionMs/);
});

const snapshot = buildSnapshot({
  services: {
    orders: {
      base: ['http://127.0.0.1:7001', 'http://127.0.0.1:7002'],
      features: { f1: ['http://127.0.0.1:7101', 'http://127.0.0.1:7102'], solo: 'http://127.0.0.1:7201' },
    },
  },
});

function fields(): RouteFields {
  return { service: undefined, reading: undefined, key: undefined, decision: undefined, lane: 'none', target: undefined, refusal: undefined };
}
const reading = (key: string | undefined) => ({ key, carrier: key === undefined ? undefined : ('header' as const), problem: undefined });
const port = (target: Target | undefined) => (target === undefined ? undefined : Number(new URL(target.origin).port));

t.test('routeStep with a tracker: ejected targets are passed over, an ejected copy goes to base, strict stays', async (t) => {
  // [name, key, strict, ejected ports, expected target ports over 2 calls, lane, refusal]
  type Row = [string, string | undefined, boolean, number[], Array<number | undefined>, string, string | undefined];
  const rows: Row[] = [
    ['nothing ejected: round robin', 'f1', false, [], [7101, 7102], 'f1', undefined],
    ['one copy target ejected: the other', 'f1', false, [7101], [7102, 7102], 'f1', undefined],
    ['every copy target ejected: base', 'f1', false, [7101, 7102], [7001, 7002], 'base', undefined],
    ['the copy and one base target ejected: the other base target', 'solo', false, [7201, 7001], [7002, 7002], 'base', undefined],
    ['strict: an ejected copy is still the only lane', 'solo', true, [7201], [7201, 7201], 'solo', undefined],
    ['everything ejected: the copy is tried anyway', 'solo', false, [7201, 7001, 7002], [7201, 7201], 'solo', undefined],
    ['no key: base, an ejected base target passed over', undefined, false, [7001], [7002, 7002], 'base', undefined],
  ];
  for (const [name, key, strict, ejected, expected, lane, refusal] of rows) {
    const health = new PassiveHealth({ now: clock().now });
    for (const p of ejected) health.failure(`http://127.0.0.1:${p}`);
    const got: Array<number | undefined> = [];
    let out = fields();
    for (let i = 0; i < 2; i++) {
      out = fields();
      routeStep(snapshot, 'orders', reading(key), { strict, health }, out);
      got.push(port(out.target));
    }
    t.same(got.slice().sort(), expected.slice().sort(), `${name}: targets`);
    t.equal(out.lane, lane, `${name}: lane`);
    t.equal(out.refusal, refusal, `${name}: refusal`);
  }
});

t.test('failOver: the lane\'s other targets, then base, then nothing (strict: no-ready-target)', async (t) => {
  // [name, key, strict, ejected ports, attempts: the target and lane after each failure, final refusal]
  type Row = [string, string | undefined, boolean, number[], Array<[number | undefined, string]>, string | undefined];
  const rows: Row[] = [
    ['a copy of two, then base\'s two', 'f1', false, [], [[0, 'f1'], [0, 'base'], [0, 'base'], [undefined, 'base']], undefined],
    ['strict: the copy\'s two, then a 503', 'f1', true, [], [[0, 'f1'], [undefined, 'f1']], 'no-ready-target'],
    ['a single copy: base at once', 'solo', false, [], [[0, 'base'], [0, 'base'], [undefined, 'base']], undefined],
    ['an ejected base target comes last', 'solo', false, [7001], [[7002, 'base'], [7001, 'base'], [undefined, 'base']], undefined],
    ['no key: base\'s other target, then the error', undefined, false, [], [[0, 'base'], [undefined, 'base']], undefined],
  ];
  for (const [name, key, strict, ejected, steps, refusal] of rows) {
    const health = new PassiveHealth({ now: clock().now });
    for (const p of ejected) health.failure(`http://127.0.0.1:${p}`);
    const out = fields();
    const options = { strict, health };
    routeStep(snapshot, 'orders', reading(key), options, out);
    const done: Target[] = [];
    const seen = new Set([out.target!.origin]);
    for (const [i, [expected, lane]] of steps.entries()) {
      const failed = out.target;
      const moved = failOver(snapshot, out, options, done);
      t.equal(moved, expected !== undefined, `${name}, failure ${i + 1}: moved on`);
      if (expected === undefined) {
        t.equal(out.target, failed, `${name}: the failed target stays`);
        continue;
      }
      t.notOk(seen.has(out.target!.origin), `${name}, failure ${i + 1}: a target not tried yet`);
      seen.add(out.target!.origin);
      if (expected !== 0) t.equal(port(out.target), expected, `${name}, failure ${i + 1}: target`);
      t.equal(out.lane, lane, `${name}, failure ${i + 1}: lane`);
    }
    t.equal(out.refusal, refusal, `${name}: refusal`);
  }
});

t.test('failOver after a reset of a sent idempotent call: the same target once more, then on', async (t) => {
  const health = new PassiveHealth({ now: clock().now });
  const out = fields();
  const options = { health };
  routeStep(snapshot, 'orders', reading('solo'), options, out);
  const done: Target[] = [];
  t.equal(failOver(snapshot, out, options, done, 'idempotent'), true, 'first reset: tried again');
  t.equal(port(out.target), 7201, 'on the same target');
  t.equal(out.lane, 'solo');
  t.equal(failOver(snapshot, out, options, done, 'idempotent'), true, 'second reset: moved on');
  t.equal(out.lane, 'base');
  const first = port(out.target);
  t.equal(failOver(snapshot, out, options, done, 'idempotent'), true, 'a reset on base: base target again');
  t.equal(port(out.target), first);
  t.equal(failOver(snapshot, out, options, done, 'connect'), true, 'a connect failure there: base\'s other target');
  t.not(port(out.target), first);
  t.equal(failOver(snapshot, out, options, done, 'connect'), false, 'nothing left');
});

t.test('retryable: any method before a byte was sent, an idempotent one after, nothing once answered', async (t) => {
  const refused = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
  const reset = Object.assign(new Error('reset'), { code: 'ECONNRESET' });
  const timeout = Object.assign(new Error('slow'), { code: 'UND_ERR_HEADERS_TIMEOUT' });
  type Row = [string, Error, boolean, boolean, string, boolean, 'connect' | 'idempotent' | false];
  const rows: Row[] = [
    ['refused POST', refused, false, false, 'POST', false, 'connect'],
    ['reset while connecting, POST', reset, false, false, 'POST', false, 'connect'],
    ['reset after sending a GET', reset, true, false, 'GET', true, 'idempotent'],
    ['reset after sending a PUT whose body streamed', reset, true, false, 'PUT', false, false],
    ['reset after sending a POST', reset, true, false, 'POST', true, false],
    ['reset once the answer began', reset, true, true, 'GET', true, false],
    ['a headers timeout', timeout, true, false, 'GET', true, false],
    ['an error of no known code', new Error('x'), false, false, 'GET', true, false],
  ];
  for (const [name, error, sent, responded, method, replayable, expected] of rows) {
    t.equal(retryable(error, { sent, responded, method, replayable }), expected, name);
  }
});
