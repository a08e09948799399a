/*
 * Whether finished exchanges die in the young generation: exchanges pass through a stage, 10 open
 * at a time, with a minor collection every 25, and the old generation's growth is printed for a
 * stage that keeps nothing, for the client-timeout stage, and for one that keeps the last 100
 * finished exchanges (the reference for "promoted"). A stage that keeps exchanges reachable for
 * V8's scavenges has them promoted and living on as old garbage until a full collection, which a
 * small heap pays for in CPU. This depends on V8's heuristics, so it is a measurement, not a test:
 * `npm run young-garbage -w @devstack/bench`.
 */
import { EventEmitter } from 'node:events';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ClientTimeouts, compose, type Stage } from '@devstack/sidecar';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major'; execution: 'sync' }) => void;

const EXCHANGES = 20_000;
const OPEN = 10;
const EVERY = 25;

const oldSpaceUsed = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** A response the stage can watch, carrying about 2 KiB of its own objects. */
function fakeExchange(): { req: EventEmitter; res: EventEmitter } {
  const req = Object.assign(new EventEmitter(), { httpVersionMajor: 1, headers: {}, url: '/', complete: true, readableFlowing: null, socket: undefined });
  const res = Object.assign(new EventEmitter(), { writableNeedDrain: false, payload: Array.from({ length: 48 }, (_, i) => ({ i, s: `x${i}` })) });
  return { req, res };
}

function oldGrowth(stage: Stage): number {
  const pipeline = compose('outbound', [stage, () => {}]);
  const open: EventEmitter[] = [];
  gc({ type: 'major', execution: 'sync' });
  const before = oldSpaceUsed();
  for (let i = 0; i < EXCHANGES; i++) {
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

// In this order: V8 may decide from what survives to allocate an allocation site's objects in the
// old generation from then on, so the stage that keeps exchanges runs last.
const passThrough = oldGrowth((ex) => ex.next());
const timeouts = new ClientTimeouts({ bodyTimeoutMs: 60_000, drainTimeoutMs: 60_000 });
const watched = oldGrowth(timeouts.stage);
timeouts.close();
const recent: unknown[] = [];
const kept = oldGrowth((ex) => {
  ex.res.once('close', () => {
    recent.push(ex);
    if (recent.length > 100) recent.shift();
  });
  ex.next();
});

console.log(`old generation growth over ${EXCHANGES} exchanges (${OPEN} open, a minor collection every ${EVERY}):`);
console.log(`  stage that keeps nothing        ${mib(passThrough)}`);
console.log(`  client-timeout stage            ${mib(watched)}`);
console.log(`  keeps the last 100 (reference)  ${mib(kept)}`);
const verdict = watched < kept / 4 ? 'die young' : 'are promoted';
console.log(`finished exchanges of the client-timeout stage ${verdict}`);
