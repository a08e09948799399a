/*
 * A finished exchange must be garbage: nothing on the request path may keep it reachable once its
 * response closed. The client-timeout stage watches every open exchange, so it is the stage most
 * likely to hold on to one. This checks reachability (a full collection frees every finished
 * exchange), which does not depend on the collector's heuristics; whether finished exchanges also
 * die in the young generation is measured by `npm run young-garbage -w @devstack/bench`.
 */
import { EventEmitter } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setImmediate as tick } from 'node:timers/promises';
import t from 'tap';
import { ClientTimeouts, compose, type Stage } from '@devstack/sidecar';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: { type: 'major'; execution: 'sync' }) => void;

/** A response the stage can watch. */
function fakeExchange(): { req: EventEmitter; res: EventEmitter } {
  const req = Object.assign(new EventEmitter(), { httpVersionMajor: 1, headers: {}, url: '/', complete: true, readableFlowing: null, socket: undefined });
  const res = Object.assign(new EventEmitter(), { writableNeedDrain: false });
  return { req, res };
}

/**
 * Passes `count` exchanges through `stage`, closes all but the last `open`, and returns how many
 * of the closed and of the open ones a full collection left alive.
 */
async function survivors(stage: Stage, count: number, open: number): Promise<{ closed: number; open: number }> {
  const pipeline = compose('outbound', [stage, () => {}]);
  const closedRefs: WeakRef<object>[] = [];
  const openRefs: WeakRef<object>[] = [];
  const stillOpen: EventEmitter[] = [];
  for (let i = 0; i < count; i++) {
    const { req, res } = fakeExchange();
    pipeline(req as never, res as never);
    if (i < count - open) {
      res.emit('close');
      closedRefs.push(new WeakRef(res));
    } else {
      openRefs.push(new WeakRef(res));
      stillOpen.push(res);
    }
  }
  stillOpen.length = 0;
  // A WeakRef keeps its target alive until the job that made it ends.
  await tick();
  gc({ type: 'major', execution: 'sync' });
  const alive = (refs: WeakRef<object>[]) => refs.filter((r) => r.deref() !== undefined).length;
  return { closed: alive(closedRefs), open: alive(openRefs) };
}

t.test('the client-timeout stage keeps no finished exchange, and keeps the open ones it watches', async (t) => {
  const timeouts = new ClientTimeouts({ bodyTimeoutMs: 60_000, drainTimeoutMs: 60_000 });
  t.teardown(() => timeouts.close());
  const watched = await survivors(timeouts.stage, 200, 10);
  t.equal(watched.closed, 0, 'every finished exchange was collected');
  t.equal(watched.open, 10, 'the open exchanges stay watched (the sweep must see them)');
});

t.test('the check tells: a stage that keeps finished exchanges has them survive', async (t) => {
  const kept: unknown[] = [];
  const keeping: Stage = (ex) => {
    ex.res.once('close', () => kept.push(ex));
    ex.next();
  };
  const result = await survivors(keeping, 200, 10);
  t.equal(result.closed, 190);
  t.ok(kept.length === 190);
});
