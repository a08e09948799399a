/*
 * Lane consumption of one shared SQS queue (`@devstack/sdk/sqs`) against a real SQS-protocol
 * server (fauxqs) on 127.0.0.1: base and a copy of one worker, the registry a StaticSource the
 * tests update. Time is a fake clock (the bound's age) and pauses resolve at once.
 */
import t, { type Test } from 'tap';
import { SendMessageBatchCommand, SQSClient, type MessageAttributeValue } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { buildSnapshot, StaticSource, type RegistryInput } from '@devstack/core';
import { getRoutingKey, injectSqsAttributes } from '@devstack/sdk';
import { consumeSqs, pastBound, type Message, type SqsConsumer, type SqsConsumerError, type SqsConsumerOptions } from '@devstack/sdk/sqs';

const URL = 'http://127.0.0.1:1';
const fleet = (copyReady: boolean): RegistryInput => ({
  services: {
    worker: { base: URL, features: { feature1: { url: URL, ready: copyReady } } },
    orders: { base: URL, features: { feature2: URL } },
  },
});

let version = 1;
const snapshot = (copyReady: boolean) => buildSnapshot(fleet(copyReady), { version: version++ });

/** Keys of the mix: the copy's, none, a key with a copy of another service only, an unknown and an invalid one. */
const MIX = ['feature1', undefined, 'feature2', 'feature9', 'Not_A_Key'] as const;
const owner = (key: string | undefined) => (key === 'feature1' ? 'feature1' : 'base');

async function queue(t: Test) {
  const server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  t.teardown(() => server.stop());
  const client = new SQSClient({ endpoint: server.address, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  t.teardown(() => client.destroy());
  const { queueUrl } = server.createQueue('worker-events');
  const left = () => {
    const q = server.inspectQueue('worker-events')!;
    return q.messages.ready.length + q.messages.delayed.length + q.messages.inflight.length;
  };
  /** Sends `n` messages `m<from>..`, keys from MIX in turn; returns each body's key. */
  const send = async (n: number, from = 0, keys: ReadonlyArray<string | undefined> = MIX): Promise<Map<string, string | undefined>> => {
    const sent = new Map<string, string | undefined>();
    for (let i = from; i < from + n; i += 10) {
      const entries = [];
      for (let j = i; j < Math.min(i + 10, from + n); j++) {
        const key = keys[j % keys.length];
        const attrs: Record<string, MessageAttributeValue> =
          key === 'Not_A_Key' ? { 'uber-ctx-key': { DataType: 'String', StringValue: key } } : (injectSqsAttributes({}, key) as Record<string, MessageAttributeValue>);
        entries.push({ Id: String(j), MessageBody: `m${j}`, MessageAttributes: attrs });
        sent.set(`m${j}`, key);
      }
      await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
    }
    return sent;
  };
  return { server, client, queueUrl, left, send };
}

/** A fake clock: `now` moves only when the test says; pauses resolve at once. */
function fakeClock() {
  const start = Date.now();
  const clock = { offset: 0, now: () => start + clock.offset, sleep: async () => {} };
  return clock;
}

interface Seen {
  lane: string;
  key: string | undefined;
  context: string | undefined;
}

function recorder() {
  const seen = new Map<string, Seen[]>();
  const handler = (lane: string) => (message: Message) => {
    const list = seen.get(message.Body!) ?? [];
    list.push({ lane, key: message.MessageAttributes?.['uber-ctx-key']?.StringValue, context: getRoutingKey() });
    seen.set(message.Body!, list);
  };
  return { seen, handler };
}

function consumers(q: Awaited<ReturnType<typeof queue>>, registry: StaticSource, handler: (lane: string) => (m: Message) => void, extra: Partial<SqsConsumerOptions> = {}) {
  const clock = fakeClock();
  const make = (lane: string) =>
    consumeSqs({ client: q.client, queueUrl: q.queueUrl, service: 'worker', lane, registry, waitTimeSeconds: 0, clock, handler: handler(lane), ...extra });
  return { base: make('base'), copy: make('feature1'), clock };
}

/**
 * Rounds of receives by the consumers at once, as their loops make them: a consumer whose receive
 * handed every message back pauses (`releasePauseMs`) for one round, which is what leaves another
 * lane's messages to that lane when both poll an almost empty queue.
 */
async function drive(list: readonly SqsConsumer[], rounds: number, done: () => boolean): Promise<void> {
  const paused = new Set<SqsConsumer>();
  for (let round = 0; round < rounds && !done(); round++) {
    const now = list.filter((c) => !paused.delete(c));
    const got = await Promise.all(now.map((c) => c.receiveOnce()));
    got.forEach((r, i) => {
      if (r.released > 0 && r.released === r.received) paused.add(now[i]!);
    });
  }
}

function checkOnce(t: Test, sent: Map<string, string | undefined>, seen: Map<string, Seen[]>, expected: (body: string, key: string | undefined) => string) {
  const wrong: string[] = [];
  for (const [body, key] of sent) {
    const got = seen.get(body) ?? [];
    if (got.length !== 1 || got[0]!.lane !== expected(body, key)) wrong.push(`${body} (${String(key)}): ${got.map((s) => s.lane).join(',') || 'never'}`);
  }
  t.same(wrong, [], `each of ${sent.size} messages processed exactly once, by its lane`);
  t.equal(seen.size, sent.size, 'nothing else processed');
}

t.test('base and copy share a queue: 200 messages of mixed keys, each once, by its lane', async (t) => {
  const q = await queue(t);
  const registry = new StaticSource(snapshot(true));
  const { seen, handler } = recorder();
  const { base, copy } = consumers(q, registry, handler);
  const sent = await q.send(200);
  await drive([base, copy], 500, () => seen.size >= 200);
  checkOnce(t, sent, seen, (_, key) => owner(key));
  t.equal(q.left(), 0, 'the queue is empty');
  t.ok(base.stats.released > 0 && copy.stats.released > 0, `both lanes handed messages back (base ${base.stats.released}, copy ${copy.stats.released})`);
  t.equal(base.stats.processed + copy.stats.processed, 200);
  t.equal(copy.stats.processed, 40);
  const contexts = [...seen.values()].flat();
  t.ok(contexts.every((s) => s.context === (s.key === 'Not_A_Key' ? undefined : s.key)), 'each handler ran in its message\'s key context');
});

t.test('the copy stops mid-run: its keys go to base, none lost, none twice; ready again, they come back', async (t) => {
  const q = await queue(t);
  const registry = new StaticSource(snapshot(true));
  const { seen, handler } = recorder();
  let switched = false;
  let copyAfterSwitch = 0;
  const wrapped = (lane: string) => {
    const inner = handler(lane);
    return (message: Message) => {
      inner(message);
      if (lane !== 'feature1') return;
      if (switched) copyAfterSwitch++;
      // The copy's entry turns not ready while it still runs (a pod terminating drains its work).
      if (!switched && (copy.stats.processed ?? 0) >= 10) {
        switched = true;
        registry.publish(snapshot(false));
      }
    };
  };
  const { base, copy } = consumers(q, registry, wrapped);
  const sent = await q.send(200);
  await drive([base, copy], 500, () => seen.size >= 200);
  t.ok(switched, 'the copy went away mid-run');
  checkOnce(t, sent, seen, (body, key) => (key === 'feature1' && seen.get(body)?.[0]?.lane === 'feature1' ? 'feature1' : 'base'));
  const byBase = [...sent].filter(([b, k]) => k === 'feature1' && seen.get(b)?.[0]?.lane === 'base').length;
  t.ok(byBase > 0, `base processed the copy's messages once it was not ready (${byBase} of 40)`);
  t.ok(copyAfterSwitch <= 10, 'the copy finished only what it had in hand');
  t.equal(q.left(), 0);

  // Ready again: its key is the copy's again.
  registry.publish(snapshot(true));
  const { seen: again, handler: h2 } = recorder();
  const back = consumers(q, registry, h2);
  const more = await q.send(50, 1000);
  await drive([back.base, back.copy], 200, () => again.size >= 50);
  checkOnce(t, more, again, (_, key) => owner(key));
});

t.test('a copy that claims readiness but never consumes: its messages reach base within the bound', async (t) => {
  const q = await queue(t);
  const registry = new StaticSource(snapshot(true));
  const { seen, handler } = recorder();
  const { base, clock } = consumers(q, registry, handler, { maxReceives: 5, maxWaitMs: 30_000 });
  const sent = await q.send(20, 0, ['feature1', undefined]);
  for (let round = 0; round < 20; round++) await base.receiveOnce();
  t.equal(seen.size, 10, 'base processed its own');
  t.ok([...seen.keys()].every((b) => sent.get(b) === undefined), 'and none of the copy\'s while the bound holds');
  t.ok(base.stats.released >= 50, `handed back again and again (${base.stats.released})`);
  t.equal(q.left(), 10, 'none lost');

  // Time since the first receive passes maxWaitMs.
  clock.offset = 60_000;
  for (let round = 0; round < 5 && seen.size < 20; round++) await base.receiveOnce();
  checkOnce(t, sent, seen, () => 'base');
  t.equal(q.left(), 0);
});

t.test('the bound needs both the receives and the time', async (t) => {
  const m = (receives: number, first: number | undefined): Message => ({
    Attributes: { ApproximateReceiveCount: String(receives), ...(first === undefined ? {} : { ApproximateFirstReceiveTimestamp: String(first) }) },
  });
  const bound = { maxReceives: 5, maxWaitMs: 30_000, now: 100_000 };
  t.equal(pastBound(m(5, 70_000), bound), true);
  t.equal(pastBound(m(4, 0), bound), false, 'too few receives');
  t.equal(pastBound(m(50, 80_000), bound), false, 'too soon: a live copy is not raced out of its messages');
  t.equal(pastBound(m(5, undefined), bound), true, 'no timestamp: receives alone');
  t.equal(pastBound({}, bound), false);
});

t.test('a failing handler leaves the message for another receive; failures are coded errors', async (t) => {
  const q = await queue(t);
  const registry = new StaticSource(snapshot(true));
  const errors: SqsConsumerError[] = [];
  let calls = 0;
  const base = consumeSqs({
    client: q.client, queueUrl: q.queueUrl, service: 'worker', registry, waitTimeSeconds: 0, visibilityTimeout: 0, clock: fakeClock(),
    handler: () => {
      if (calls++ === 0) throw new Error('database down');
    },
    onError: (e) => errors.push(e),
  });
  await q.send(1, 0, [undefined]);
  t.match(await base.receiveOnce(), { received: 1, processed: 0, failed: 1 });
  t.equal(errors.length, 1);
  t.match(errors[0], { code: 'DEVSTACK_MESSAGE_FAILED', operation: 'handler', cause: { message: 'database down' } });
  t.equal(q.left(), 1, 'still in the queue');
  t.match(await base.receiveOnce(), { received: 1, processed: 1 });
  t.equal(q.left(), 0);

  q.server.deleteQueue('worker-events');
  t.match(await base.receiveOnce(), { received: 0 });
  t.match(errors[1], { code: 'DEVSTACK_QUEUE_FAILED', operation: 'receive' });
});

t.test('the loops: the copy stopped mid-run with stop(), base takes the rest of its key', async (t) => {
  const q = await queue(t);
  const registry = new StaticSource(snapshot(true));
  const { seen, handler } = recorder();
  const reached = (n: number) => {
    let hit: () => void = () => {};
    return { at: n, promise: new Promise<void>((resolve) => (hit = resolve)), hit: () => hit() };
  };
  const copyTen = reached(10);
  const all = reached(100);
  const each = (lane: string) => {
    const inner = handler(lane);
    return (m: Message) => {
      inner(m);
      if (lane === 'feature1' && copy.stats.processed + 1 >= copyTen.at) copyTen.hit();
      if (seen.size >= all.at) all.hit();
    };
  };
  const { base, copy } = consumers(q, registry, each, { waitTimeSeconds: 20 });
  base.start();
  copy.start();
  const sent = await q.send(100);
  // Bounded: a consumer that lost messages fails the checks below instead of hanging the file.
  const bounded = (p: Promise<void>) => Promise.race([p, new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref())]);
  await bounded(copyTen.promise);
  registry.publish(snapshot(false));
  await copy.stop();
  const byCopy = copy.stats.processed;
  await bounded(all.promise);
  await base.stop();
  checkOnce(t, sent, seen, (body, key) => (key === 'feature1' && seen.get(body)?.[0]?.lane === 'feature1' ? 'feature1' : 'base'));
  t.ok(byCopy >= 10 && byCopy < 20, `the copy processed its first ${byCopy} of 20`);
  t.equal(copy.stats.processed, byCopy, 'and nothing after stop()');
  t.equal(q.left(), 0, 'none left in the queue');
});

t.test('options are checked at once', async (t) => {
  t.throws(() => consumeSqs({ client: {} as never, queueUrl: '', handler: 1 as never, maxReceives: 0, waitTimeSeconds: 21, mode: 'both' as never }), {
    code: 'DEVSTACK_INVALID_CONFIG',
    problems: [/client/, /queueUrl/, /handler/, /mode/, /maxReceives/, /waitTimeSeconds/],
  });
});
