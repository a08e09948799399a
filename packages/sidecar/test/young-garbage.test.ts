/*
 * A finished exchange must be garbage the young generation can collect. If anything on the
 * request path keeps finished exchanges reachable for V8's scavenges (a Map that requests pass
 * through did: see client-timeouts.ts), every exchange is promoted and lives on in the old
 * generation until a full collection, and a small heap then costs the sidecar much CPU.
 *
 * Exchanges with a payload pass through the stage, 10 open at a time, with a minor collection
 * every 25; the old generation may grow by a fraction of what they allocated, not by all of it.
 */
import { EventEmitter } from 'node:events';
import { setFlagsFromString, getHeapSpaceStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { ClientTimeouts, compose, type Stage } from '@devstack/sidecar';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major'; execution: 'sync' }) => void;

const oldSpaceUsed = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;

/** A response the stage can watch, carrying about 2 KiB of its own objects. */
function fakeExchange(): { req: EventEmitter; res: EventEmitter } {
  const req = Object.assign(new EventEmitter(), { httpVersionMajor: 1, headers: {}, url: '/', complete: true, readableFlowing: null, socket: undefined });
  const res = Object.assign(new EventEmitter(), { writableNeedDrain: false, payload: Array.from({ length: 48 }, (_, i) => ({ i, s: `x${i}` })) });
  return { req, res };
}

function churn(stage: Stage, exchanges: number): number {
  const end: Stage = () => {};
  const pipeline = compose('outbound', [stage, end]);
  const open: EventEmitter[] = [];
  gc({ type: 'major', execution: 'sync' });
  const before = oldSpaceUsed();
  for (let i = 0; i < exchanges; i++) {
    const { req, res } = fakeExchange();
    pipeline(req as never, res as never);
    open.push(res);
    if (open.length > OPEN) open.shift()!.emit('close');
    // Often enough that no collection of V8's own comes between: an exchange open for OPEN
    // iterations is alive at one minor collection at most, and dies young unless something keeps it.
    if (i % EVERY === EVERY - 1) gc({ type: 'minor', execution: 'sync' });
  }
  for (const res of open.splice(0)) res.emit('close');
  gc({ type: 'minor', execution: 'sync' });
  gc({ type: 'minor', execution: 'sync' });
  return oldSpaceUsed() - before;
}

const EXCHANGES = 20_000;
const OPEN = 10;
const EVERY = 25;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

// One test, in this order: V8 may decide from what survives to allocate an allocation site's
// objects in the old generation from then on, so the stage that keeps exchanges runs last.
t.test('finished exchanges die young: the client-timeout stage keeps none of them for the young generation', (t) => {
  const passThrough = churn((ex) => ex.next(), EXCHANGES);
  const timeouts = new ClientTimeouts({ bodyTimeoutMs: 60_000, drainTimeoutMs: 60_000 });
  t.teardown(() => timeouts.close());
  const watched = churn(timeouts.stage, EXCHANGES);
  // Holds the last 100 finished exchanges: more than two minor collections' worth.
  const recent: unknown[] = [];
  const keeping: Stage = (ex) => {
    ex.res.once('close', () => {
      recent.push(ex);
      if (recent.length > 100) recent.shift();
    });
    ex.next();
  };
  const kept = churn(keeping, EXCHANGES);
  t.ok(kept > 16 * 2 ** 20, `the test tells: a stage that keeps finished exchanges a while had them promoted (${mib(kept)})`);
  t.ok(passThrough < kept / 4, `a stage that keeps nothing: ${mib(passThrough)}`);
  t.ok(watched < kept / 4, `the client-timeout stage: the old generation grew by ${mib(watched)}`);
  t.end();
});
