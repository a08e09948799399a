import t from 'tap';
import { buildSnapshot, resolve, routeStep, snapshotToJSON, updateSnapshot, MAX_STACK_DEPTH, NO_LANE, RegistryValidationError, type Reason, type RouteFields } from '@devstack/core';

// web has copies for feature1 and f3, api for feature1 and f2 (f2's not ready), db for none.
// Stacks: f2 -> feature1, f3 -> f2 -> feature1, lonely -> ghost (no copy of either anywhere).
const services = {
  web: { base: 'http://127.0.0.1:7001', features: { feature1: 'http://127.0.0.1:7101', f3: 'http://127.0.0.1:7301' } },
  api: { base: 'http://127.0.0.1:7002', features: { feature1: 'http://127.0.0.1:7102', f2: { url: 'http://127.0.0.1:7202', ready: false } } },
  db: { base: 'http://127.0.0.1:7003' },
  cache: { base: 'http://127.0.0.1:7004', features: { f2: 'http://127.0.0.1:7204', feature1: { url: 'http://127.0.0.1:7104', ready: false } } },
  queue: { base: 'http://127.0.0.1:7005', features: { feature1: { url: 'http://127.0.0.1:7105', ready: false } } },
};
const stacks = { f2: 'feature1', f3: 'f2', lonely: 'ghost' };
const snapshot = buildSnapshot({ services, stacks });

t.test('a key goes to the first copy up its stack, else base', async (t) => {
  const rows: Array<[string, string, string, boolean, 'feature' | 'base' | 'reject', Reason, string | undefined]> = [
    ['one level: f2 has no web copy, its parent has', 'web', 'f2', false, 'feature', 'stacked', 'feature1'],
    ['two levels: f3 -> f2 (no copy) -> feature1', 'api', 'f3', false, 'feature', 'stacked', 'feature1'],
    ['a copy of its own wins', 'web', 'f3', false, 'feature', 'match', 'f3'],
    ['the parent itself is not stacked', 'web', 'feature1', false, 'feature', 'match', 'feature1'],
    ['a copy in the middle: f3 -> f2 at cache', 'cache', 'f3', false, 'feature', 'stacked', 'f2'],
    ['a copy in the middle: f2 at cache, its own', 'cache', 'f2', false, 'feature', 'match', 'f2'],
    ['own copy not ready: the parent serves', 'api', 'f2', false, 'feature', 'stacked', 'feature1'],
    ['no copy anywhere in the stack: base', 'db', 'f3', false, 'base', 'no-copy', 'base'],
    ['copies in the stack, none ready: base', 'queue', 'f2', false, 'base', 'not-ready', 'base'],
    ['a stack of keys with no copy anywhere is unknown', 'web', 'lonely', false, 'base', 'unknown-key', 'base'],
    // strict mode refuses only when no key of the stack has a ready copy
    ['strict: the parent serves', 'web', 'f2', true, 'feature', 'stacked', 'feature1'],
    ['strict: own copy not ready, the parent serves', 'api', 'f2', true, 'feature', 'stacked', 'feature1'],
    ['strict: no copy of the service in the stack: base (chain rule)', 'db', 'f3', true, 'base', 'no-copy', 'base'],
    ['strict: copies in the stack, none ready: refused', 'queue', 'f3', true, 'reject', 'not-ready', 'feature1'],
    ['strict: a stack of unknown keys: refused', 'web', 'lonely', true, 'reject', 'unknown-key', undefined],
  ];
  for (const [name, service, key, strict, outcome, reason, lane] of rows) {
    const d = resolve(snapshot, service, key, { strict });
    t.same([d.outcome, d.reason, d.lane?.name], [outcome, reason, lane], name);
  }
});

t.test('the key carried on stays the request’s; the lane names the copy that served', async (t) => {
  const out: RouteFields = { service: undefined, reading: undefined, key: undefined, decision: undefined, lane: NO_LANE, target: undefined, refusal: undefined };
  t.ok(routeStep(snapshot, 'web', { key: 'f3', carrier: 'header', problem: undefined }, {}, out));
  t.equal(out.key, 'f3');
  t.equal(out.lane, 'f3');
  t.ok(routeStep(snapshot, 'api', { key: 'f3', carrier: 'header', problem: undefined }, {}, out));
  t.equal(out.key, 'f3', 'the next hop still finds f3’s own copies');
  t.equal(out.lane, 'feature1');
  t.equal(out.target?.origin, 'http://127.0.0.1:7102');
});

t.test('decisions are made with the snapshot: resolving returns the same object every time', async (t) => {
  t.equal(resolve(snapshot, 'api', 'f3'), resolve(snapshot, 'api', 'f3'));
  t.equal(resolve(snapshot, 'db', 'f3'), resolve(snapshot, 'db', 'f3'));
});

t.test('a cycle is refused and reported; its keys resolve unstacked', async (t) => {
  const s = buildSnapshot({ services, stacks: { a: 'b', b: 'a', c: 'a', self: 'self', f2: 'feature1' } });
  t.same(
    s.stackProblems.map((p) => [p.key, p.problem, p.chain]),
    [
      ['a', 'cycle', ['a', 'b', 'a']],
      ['b', 'cycle', ['b', 'a', 'b']],
      ['c', 'cycle', ['c', 'a', 'b', 'a']],
      ['self', 'cycle', ['self', 'self']],
    ],
  );
  // `a` has no copy anywhere: unstacked, it is an unknown key.
  t.same([resolve(s, 'web', 'a').reason, resolve(s, 'web', 'c').reason], ['unknown-key', 'unknown-key']);
  t.equal(resolve(s, 'web', 'f2').lane?.name, 'feature1', 'the other stacks still work');
  const json = snapshotToJSON(s) as { stacks: object; stackProblems: unknown[] };
  t.same(json.stacks, { a: 'b', b: 'a', c: 'a', self: 'self', f2: 'feature1' });
  t.equal(json.stackProblems.length, 4, 'shown with the snapshot (the sidecar’s /routes)');
});

t.test(`a stack deeper than ${MAX_STACK_DEPTH} is refused; one of exactly ${MAX_STACK_DEPTH} is not`, async (t) => {
  // k0 -> k1 -> ... -> k9, and only k8 and k9 have a copy of web.
  const chain: Record<string, string> = {};
  for (let i = 0; i < 9; i++) chain[`k${i}`] = `k${i + 1}`;
  const s = buildSnapshot({
    services: { web: { base: 'http://127.0.0.1:7001', features: { k8: 'http://127.0.0.1:7108', k9: 'http://127.0.0.1:7109' } } },
    stacks: chain,
  });
  t.same(s.stackProblems.map((p) => [p.key, p.problem, p.chain.length]), [['k0', 'too-deep', MAX_STACK_DEPTH + 2]]);
  t.same([resolve(s, 'web', 'k0').outcome, resolve(s, 'web', 'k0').reason], ['base', 'unknown-key'], 'k0 resolves unstacked');
  t.equal(resolve(s, 'web', 'k1').lane?.name, 'k8', `k1 is ${MAX_STACK_DEPTH} deep: accepted`);
});

t.test('stacks are validated', async (t) => {
  const err = t.throws(() => buildSnapshot({ services, stacks: { Bad: 'feature1', base: 'feature1', f2: 'base', f3: 7, f4: 'Not-A-Key' } })) as RegistryValidationError;
  t.type(err, RegistryValidationError);
  t.equal(err.problems.length, 5, err.problems.join('\n'));
  t.match(err.problems.join('\n'), /stacks\.Bad: routing key/);
  t.match(err.problems.join('\n'), /stacks\.base: "base" is reserved/);
  t.match(err.problems.join('\n'), /stacks\.f2: "base" is reserved/);
  t.throws(() => buildSnapshot({ services, stacks: ['f2'] }), RegistryValidationError);
});

t.test('no stacks: nothing changes', async (t) => {
  const plain = buildSnapshot({ services });
  t.equal(plain.stacks.size, 0);
  t.equal(plain.known, plain.keys);
  t.same(Object.keys(snapshotToJSON(plain)), ['version', 'source', 'createdAt', 'services']);
  t.same([resolve(plain, 'web', 'f2').reason, resolve(plain, 'api', 'f2').reason], ['no-copy', 'not-ready']);
});

t.test('updateSnapshot: stacks kept, changed, and services changed under them', async (t) => {
  const plain = buildSnapshot({ services });
  const stacked = updateSnapshot(plain, new Map(), {}, { f2: 'feature1' });
  t.equal(resolve(stacked, 'web', 'f2').lane?.name, 'feature1', 'new stacks redo every service');
  const kept = updateSnapshot(stacked, new Map([['db', { base: 'http://127.0.0.1:7003', features: { feature1: 'http://127.0.0.1:7103' } }]]));
  t.equal(resolve(kept, 'db', 'f2').lane?.name, 'feature1', 'a changed service is decided with the stacks kept');
  t.equal(kept.services.get('web'), stacked.services.get('web'), 'an untouched service keeps its entry');
  const same = updateSnapshot(kept, new Map(), {}, { f2: 'feature1' });
  t.equal(same.services.get('web'), kept.services.get('web'), 'the same stacks again redo nothing');
  const gone = updateSnapshot(kept, new Map(), {}, {});
  t.equal(resolve(gone, 'web', 'f2').reason, 'no-copy', 'stacks removed');
  t.throws(() => updateSnapshot(kept, new Map(), {}, { f2: 'base' }), RegistryValidationError);
});
