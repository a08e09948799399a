/*
 * worker: a consumer with no port. Every lane of it reads the one events queue; `consumeSqs` (from
 * `@devstack/sdk/sqs`) processes this lane's events and hands the others back, deciding as an HTTP
 * call to `worker` would be routed: a copy takes its key, base takes no key, unknown keys and keys
 * whose worker copy is missing or not ready in the registry. Each processed event is answered on
 * its publisher's reply queue, naming this lane.
 */
import { init } from '@devstack/sdk';
import { consumeSqs } from '@devstack/sdk/sqs';
import { settings } from './common.ts';
import { answer, ensureQueue, EVENTS_QUEUE, sqsClient } from './events.ts';

const s = settings('worker');
const endpoint = process.env['SQS_ENDPOINT'];
if (!endpoint) throw new Error('worker: SQS_ENDPOINT must name the SQS server');
// The registry service this process is: the lane decision resolves `worker` by the message's key.
const sdk = init({ service: s.service, lane: s.lane, registry: s.registry });
await sdk.ready;

const client = sqsClient(endpoint);
const queueUrl = await ensureQueue(client, EVENTS_QUEUE);
const consumer = consumeSqs({
  client,
  queueUrl,
  // A demo hands a message that no lane takes (a copy in the registry that does not run) to base
  // after 5 s rather than the default 30 s, and pauses less after a receive it handed back whole,
  // so an event waits less behind another lane's.
  maxWaitMs: 5_000,
  releasePauseMs: 250,
  handler: async (message, decision) => {
    const receives = Number(message.Attributes?.['ApproximateReceiveCount'] ?? 1);
    // Not this lane's by the registry, yet here: base took it past the bound (maxReceives, maxWaitMs).
    const reason = decision.consume ? decision.reason : 'past-bound';
    console.log(JSON.stringify({ msg: 'processed', id: message.MessageId, key: decision.key ?? null, lane: s.lane, reason, receives }));
    await answer(client, message, { service: s.service, lane: s.lane, reason, receives });
  },
  onError: (error) => console.error(JSON.stringify({ msg: 'consumer error', code: error.code, operation: error.operation, error: error.message })),
}).start();

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  // Ends the long poll at once; the events in hand are finished first.
  void consumer
    .stop()
    .then(() => sdk.close())
    .finally(() => {
      client.destroy();
      process.exit(0);
    });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
console.log(JSON.stringify({ msg: 'consuming', service: s.service, lane: s.lane, queue: EVENTS_QUEUE }));
