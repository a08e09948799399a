/*
 * SNS fan-out against a real SNS/SQS server (fauxqs) on 127.0.0.1: the base consumer's queue
 * subscribed to the topic (SNS envelopes), the copy's queue subscribed with a filter policy on the
 * key attribute and raw message delivery, as `devstack-hooks sns subscribe` makes it. Each lane
 * consumes its queue with `mode: 'fan-out'`.
 */
import t, { type Test } from 'tap';
import { CreateTopicCommand, PublishBatchCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { buildSnapshot, StaticSource, type RegistryInput } from '@devstack/core';
import { consumeSqs, sqsKeyReading, type Message, type SqsConsumer } from '@devstack/sdk/sqs';

const URL = 'http://127.0.0.1:1';
let version = 1;
const snapshot = (copyReady: boolean) =>
  buildSnapshot({ services: { worker: { base: URL, features: { feature1: { url: URL, ready: copyReady } } }, orders: { base: URL, features: { feature2: URL } } } } satisfies RegistryInput, { version: version++ });
const MIX = ['feature1', undefined, 'feature2', 'feature9', 'Not_A_Key'] as const;
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

async function fleet(t: Test) {
  const server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  t.teardown(() => server.stop());
  const sqs = new SQSClient({ endpoint: server.address, region: 'us-east-1', credentials });
  const sns = new SNSClient({ endpoint: server.address, region: 'us-east-1', credentials });
  t.teardown(() => {
    sqs.destroy();
    sns.destroy();
  });
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'events' }));
  const base = server.createQueue('worker-events');
  const copy = server.createQueue('worker-events-feature1');
  await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: base.queueArn }));
  await sns.send(
    new SubscribeCommand({
      TopicArn, Protocol: 'sqs', Endpoint: copy.queueArn,
      Attributes: { RawMessageDelivery: 'true', FilterPolicy: JSON.stringify({ 'uber-ctx-key': ['feature1'] }) },
    }),
  );
  const publish = async (n: number, from: number, keys: ReadonlyArray<string | undefined> = MIX) => {
    const sent = new Map<string, string | undefined>();
    for (let i = from; i < from + n; i += 10) {
      const entries = [];
      for (let j = i; j < Math.min(i + 10, from + n); j++) {
        const key = keys[j % keys.length];
        entries.push({ Id: String(j), Message: `m${j}`, ...(key === undefined ? {} : { MessageAttributes: { 'uber-ctx-key': { DataType: 'String', StringValue: key } } }) });
        sent.set(`m${j}`, key);
      }
      await sns.send(new PublishBatchCommand({ TopicArn, PublishBatchRequestEntries: entries }));
    }
    return sent;
  };
  return { server, sqs, base, copy, publish };
}

/** The published message of a delivery: the raw body, or the SNS envelope's `Message`. */
function published(m: Message): string {
  const body = m.Body ?? '';
  return body.startsWith('{') ? (JSON.parse(body) as { Message: string }).Message : body;
}

t.test('the copy\'s subscription receives only its key; base drops what the ready copy gets', async (t) => {
  const f = await fleet(t);
  const registry = new StaticSource(snapshot(true));
  const seen = new Map<string, string[]>();
  const clock = { now: () => Date.now(), sleep: async () => {} };
  const consumer = (lane: string, queueUrl: string) =>
    consumeSqs({
      client: f.sqs, queueUrl, service: 'worker', lane, registry, mode: 'fan-out', waitTimeSeconds: 0, clock,
      handler: (m) => void seen.set(published(m), [...(seen.get(published(m)) ?? []), lane]),
    });
  const base = consumer('base', f.base.queueUrl);
  const copy = consumer('feature1', f.copy.queueUrl);
  const drain = async (list: SqsConsumer[], until: () => boolean) => {
    for (let round = 0; round < 100 && !until(); round++) await Promise.all(list.map((c) => c.receiveOnce()));
  };

  const sent = await f.publish(50, 0);
  await drain([base, copy], () => seen.size >= 50 && base.stats.dropped >= 10);
  t.equal(copy.stats.received, 10, 'the copy\'s queue got its 10 messages and nothing else');
  t.equal(copy.stats.dropped, 0);
  t.equal(base.stats.received, 50, 'base got every message');
  t.equal(base.stats.dropped, 10, 'and deleted the copy\'s unprocessed');
  const wrong = [...sent].filter(([body, key]) => (seen.get(body) ?? []).join() !== (key === 'feature1' ? 'feature1' : 'base'));
  t.same(wrong, [], 'each processed once, by its lane');

  // The copy's entry not ready: base processes its key too. The copy still takes what its queue
  // holds (base may have dropped it while the copy was ready), so around the change a message may
  // be processed twice, never by no lane.
  registry.publish(snapshot(false));
  seen.clear();
  const later = await f.publish(5, 100, ['feature1']);
  await drain([base, copy], () => [...later.keys()].every((b) => (seen.get(b) ?? []).length === 2));
  for (const body of later.keys()) t.same((seen.get(body) ?? []).sort(), ['base', 'feature1'], `${body}: base and the copy`);
});

t.test('the key is read from an SNS envelope when the delivery is not raw', async (t) => {
  const envelope = (attrs: unknown) => ({ Body: JSON.stringify({ Type: 'Notification', Message: 'x', MessageAttributes: attrs }) }) as Message;
  t.equal(sqsKeyReading(envelope({ 'uber-ctx-key': { Type: 'String', Value: 'feature1' } })).key, 'feature1');
  t.equal(sqsKeyReading(envelope({ baggage: { Type: 'String', Value: 'a=1,uber-ctx-key=feature2' } })).key, 'feature2');
  t.match(sqsKeyReading(envelope({ 'uber-ctx-key': { Type: 'String', Value: 'Bad Key' } })), { key: undefined, problem: 'malformed' });
  t.equal(sqsKeyReading({ Body: '{"Type":"Notification",' } as Message).key, undefined, 'not JSON');
  t.equal(sqsKeyReading({ Body: JSON.stringify({ Type: 'Other', MessageAttributes: { 'uber-ctx-key': { Value: 'feature1' } } }) } as Message).key, undefined, 'not a notification');
  t.equal(
    sqsKeyReading({ Body: envelope({ 'uber-ctx-key': { Value: 'feature1' } }).Body!, MessageAttributes: { 'uber-ctx-key': { DataType: 'String', StringValue: 'feature3' } } } as Message).key,
    'feature3',
    'the message\'s own attributes first',
  );
});
