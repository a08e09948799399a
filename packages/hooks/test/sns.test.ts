/*
 * `devstack-hooks sns subscribe|unsubscribe|create|delete` against a real SNS/SQS-protocol server
 * (fauxqs) on 127.0.0.1: topics, subscriptions with filter policies and raw delivery, messages
 * published through it and received from the queues. fauxqs stores a queue's Policy but checks
 * no permission, so the policy is asserted as written, not as enforced.
 */
import t from 'tap';
import { CreateTopicCommand, GetSubscriptionAttributesCommand, ListSubscriptionsByTopicCommand, ListTagsForResourceCommand, ListTopicsCommand, PublishCommand, SNSClient, DeleteTopicCommand, GetTopicAttributesCommand } from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, GetQueueUrlCommand, ListQueuesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { done, fake, NS, run, spawnCli } from './helpers.ts';

const AWS = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' };
Object.assign(process.env, AWS);
const errorOf = (r: Awaited<ReturnType<typeof run>>) => r.lines.find((l) => l['level'] === 'error');

async function aws(t: { teardown(fn: () => unknown): void }) {
  const server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  t.teardown(() => server.stop());
  const config = { endpoint: server.address, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
  const sqs = new SQSClient(config);
  const sns = new SNSClient(config);
  t.teardown(() => {
    sqs.destroy();
    sns.destroy();
  });
  const queues = async () => ((await sqs.send(new ListQueuesCommand({}))).QueueUrls ?? []).map((u) => u.slice(u.lastIndexOf('/') + 1)).sort();
  const topics = async () => ((await sns.send(new ListTopicsCommand({}))).Topics ?? []).map((x) => x.TopicArn!.split(':')[5]).sort();
  const subscriptions = async (topicArn: string) => (await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topicArn }))).Subscriptions ?? [];
  const urlOf = async (name: string) => (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
  /** Every message now in a queue: bodies and key attributes, received once (bounded). */
  const drain = async (name: string) => {
    const url = await urlOf(name);
    const got: { body: string; key: string | undefined }[] = [];
    for (let i = 0; i < 20; i++) {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], WaitTimeSeconds: 0 }));
      const messages = out.Messages ?? [];
      if (messages.length === 0) break;
      for (const m of messages) got.push({ body: m.Body!, key: m.MessageAttributes?.['uber-ctx-key']?.StringValue });
    }
    return got.sort((a, b) => a.body.localeCompare(b.body));
  };
  const publish = (topicArn: string, body: string, key?: string) =>
    sns.send(new PublishCommand({ TopicArn: topicArn, Message: body, ...(key === undefined ? {} : { MessageAttributes: { 'uber-ctx-key': { DataType: 'String', StringValue: key } } }) }));
  const e = ['--endpoint', server.address];
  return { server, sqs, sns, queues, topics, subscriptions, urlOf, drain, publish, e };
}

/** A base topic with the base queue subscribed to it, unfiltered, as a team's base has it. */
async function base(a: Awaited<ReturnType<typeof aws>>, topic = 'events', queue = 'orders') {
  const topicArn = (await a.sns.send(new CreateTopicCommand({ Name: topic }))).TopicArn!;
  a.server.createQueue(queue, { attributes: { VisibilityTimeout: '45' } });
  const queueArn = (await a.sqs.send(new GetQueueAttributesCommand({ QueueUrl: await a.urlOf(queue), AttributeNames: ['QueueArn'] }))).Attributes!['QueueArn']!;
  a.server.subscribe({ topic, queue, attributes: { RawMessageDelivery: 'true' } });
  return { topicArn, queueArn };
}

t.test('subscribe: the copy queue gets only its key, raw with its attributes; the base queue gets all; a rerun changes nothing', async (t) => {
  const a = await aws(t);
  const { topicArn } = await base(a);
  const first = await spawnCli(['sns', 'subscribe', '--topic', 'events', '--queue', 'orders', '--key', 'feature1', ...a.e], AWS);
  t.equal(first.code, 0, first.stderr);
  t.match(done(first), { command: 'sns subscribe', topic: topicArn, queue: 'orders-feature1', url: /orders-feature1$/, queueChange: 'created', subscription: /^arn:aws:sns:us-east-1:000000000000:events:/, change: 'created' });
  t.same(await a.queues(), ['orders', 'orders-feature1']);

  const url = done(first)!['url'] as string;
  const attrs = (await a.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }))).Attributes!;
  t.equal(attrs['VisibilityTimeout'], '45', "the base queue's attributes, as sqs create copies them");
  const policy = JSON.parse(attrs['Policy']!) as { Statement: Record<string, unknown>[] };
  t.match(policy.Statement, [{ Sid: /^devstack-hooks-sns-/, Effect: 'Allow', Principal: { Service: 'sns.amazonaws.com' }, Action: 'sqs:SendMessage', Resource: attrs['QueueArn'], Condition: { ArnEquals: { 'aws:SourceArn': topicArn } } }]);
  const sub = (await a.sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: done(first)!['subscription'] as string }))).Attributes!;
  t.match(sub, { Protocol: 'sqs', Endpoint: attrs['QueueArn'], RawMessageDelivery: 'true' });
  t.same(JSON.parse(sub['FilterPolicy']!), { 'uber-ctx-key': ['feature1'] });

  await a.publish(topicArn, 'for feature1', 'feature1');
  await a.publish(topicArn, 'for feature2', 'feature2');
  await a.publish(topicArn, 'no key');
  t.same(await a.drain('orders-feature1'), [{ body: 'for feature1', key: 'feature1' }], 'raw: the body as published, the key attribute kept');
  t.same((await a.drain('orders')).map((m) => m.body), ['for feature1', 'for feature2', 'no key'], 'the base queue receives every message (its consumer drops what a ready copy takes)');

  for (const topic of ['events', topicArn]) {
    const again = await run(['sns', 'subscribe', '--topic', topic, '--queue', 'orders', '--key', 'feature1', ...a.e]);
    t.equal(again.code, 0, again.stderr);
    t.match(done(again), { queueChange: 'unchanged', change: 'unchanged', subscription: done(first)!['subscription'] }, `by ${topic === 'events' ? 'name' : 'ARN'}`);
  }
  t.equal((await a.subscriptions(topicArn)).length, 2, 'the base and one copy, never twice');

  // Another key name: the filter policy is brought in line in place.
  const renamed = await run(['sns', 'subscribe', '--topic', 'events', '--queue', 'orders', '--key', 'feature1', '--key-name', 'x-lane', ...a.e]);
  t.match(done(renamed), { change: 'updated', queueChange: 'unchanged' });
  const after = (await a.sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: done(first)!['subscription'] as string }))).Attributes!;
  t.same(JSON.parse(after['FilterPolicy']!), { 'x-lane': ['feature1'] });
});

t.test('unsubscribe removes the subscription and the queue; again, nothing to do', async (t) => {
  const a = await aws(t);
  const { topicArn } = await base(a);
  t.equal((await run(['sns', 'subscribe', '--topic', 'events', '--queue', 'orders', '--key', 'feature1', ...a.e])).code, 0);
  const r = await spawnCli(['sns', 'unsubscribe', '--topic', 'events', '--queue', 'orders', '--key', 'feature1', ...a.e], AWS);
  t.equal(r.code, 0, r.stderr);
  t.match(done(r), { command: 'sns unsubscribe', topic: topicArn, queue: 'orders-feature1', change: 'deleted', queueChange: 'deleted' });
  t.same(await a.queues(), ['orders']);
  t.equal((await a.subscriptions(topicArn)).length, 1, "the base's subscription stays");
  t.match(done(await run(['sns', 'unsubscribe', '--topic', topicArn, '--queue', 'orders', '--key', 'feature1', ...a.e])), { change: 'absent', queueChange: 'absent' });

  // The base topic already gone (a pre-delete hook after it): the queue still goes.
  t.equal((await run(['sns', 'subscribe', '--topic', 'events', '--queue', 'orders', '--key', 'feature2', ...a.e])).code, 0);
  await a.sns.send(new DeleteTopicCommand({ TopicArn: topicArn }));
  const gone = await run(['sns', 'unsubscribe', '--topic', 'events', '--queue', 'orders', '--key', 'feature2', ...a.e]);
  t.equal(gone.code, 0, gone.stderr);
  t.match(done(gone), { topic: 'events', change: 'absent', queueChange: 'deleted' });
  t.same(await a.queues(), ['orders']);
});

t.test('a queue subscribed to two topics: unsubscribing one keeps it for the other', async (t) => {
  const a = await aws(t);
  const one = await base(a);
  const two = (await a.sns.send(new CreateTopicCommand({ Name: 'audit' }))).TopicArn!;
  const sub = (topic: string) => run(['sns', 'subscribe', '--topic', topic, '--queue', 'orders', '--key', 'f1', ...a.e]);
  t.match(done(await sub('events')), { queueChange: 'created', change: 'created' });
  t.match(done(await sub('audit')), { queueChange: 'updated', change: 'created' }, "the second topic's statement added");
  const url = await a.urlOf('orders-f1');
  const statements = () => a.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['Policy'] })).then((o) => (JSON.parse(o.Attributes!['Policy']!) as { Statement: { Condition: { ArnEquals: Record<string, string> } }[] }).Statement.map((s) => s.Condition.ArnEquals['aws:SourceArn']).sort());
  t.same(await statements(), [two, one.topicArn].sort());
  const first = await run(['sns', 'unsubscribe', '--topic', 'events', '--queue', 'orders', '--key', 'f1', ...a.e]);
  t.match(done(first), { change: 'deleted', queueChange: 'kept' });
  t.same(await statements(), [two], "only the other topic's statement is left");
  t.match(done(await run(['sns', 'unsubscribe', '--topic', 'audit', '--queue', 'orders', '--key', 'f1', ...a.e])), { change: 'deleted', queueChange: 'deleted' });
  t.same(await a.queues(), ['orders']);
});

t.test('subscribe with the queue URL in the copy secret; a missing topic or base queue is exit 1', async (t) => {
  const a = await aws(t);
  await base(a);
  const { api, kubeconfig } = await fake(t);
  const args = ['sns', 'subscribe', '--topic', 'events', '--queue', 'orders', '--key', 'feature1', ...a.e, '--kubeconfig', kubeconfig, '--namespace', NS, '--secret', 'orders-feature1', '--secret-key', 'EVENTS_QUEUE_URL'];
  const r = await run(args);
  t.equal(r.code, 0, r.stderr);
  t.match(done(r), { secret: 'created' });
  const secret = api.get({ apiVersion: 'v1', kind: 'Secret', name: 'orders-feature1', namespace: NS }) as unknown as { data: Record<string, string> };
  t.equal(Buffer.from(secret.data['EVENTS_QUEUE_URL']!, 'base64').toString(), done(r)!['url']);
  t.match(done(await run(args)), { secret: 'unchanged', change: 'unchanged' });

  const noTopic = await run(['sns', 'subscribe', '--topic', 'nope', '--queue', 'orders', '--key', 'feature1', ...a.e]);
  t.equal(noTopic.code, 1);
  t.match(errorOf(noTopic), { code: 'DEVSTACK_HOOK_NOT_FOUND', error: /the topic nope does not exist/ });
  const noArn = await run(['sns', 'subscribe', '--topic', 'arn:aws:sns:us-east-1:000000000000:nope', '--queue', 'orders', '--key', 'feature1', ...a.e]);
  t.match(errorOf(noArn), { code: 'DEVSTACK_HOOK_NOT_FOUND' });
  const noQueue = await run(['sns', 'subscribe', '--topic', 'events', '--queue', 'payments', '--key', 'feature1', ...a.e]);
  t.equal(noQueue.code, 1);
  t.match(errorOf(noQueue), { code: 'DEVSTACK_HOOK_NOT_FOUND', error: /the base queue payments does not exist/ });
  t.same(await a.queues(), ['orders', 'orders-feature1']);
});

t.test('sns create|delete: a per-feature topic it tags as its own, and only that one is deleted', async (t) => {
  const a = await aws(t);
  await a.sns.send(new CreateTopicCommand({ Name: 'events', Attributes: { DisplayName: 'Events' } }));
  const { api, kubeconfig } = await fake(t);
  const args = ['sns', 'create', '--topic', 'events', '--key', 'feature1', ...a.e, '--kubeconfig', kubeconfig, '--namespace', NS, '--secret', 'orders-feature1'];
  const first = await spawnCli(args, AWS);
  t.equal(first.code, 0, first.stderr);
  t.match(done(first), { command: 'sns create', name: 'events-feature1', arn: 'arn:aws:sns:us-east-1:000000000000:events-feature1', change: 'created', secret: 'created' });
  const arn = done(first)!['arn'] as string;
  t.equal((await a.sns.send(new GetTopicAttributesCommand({ TopicArn: arn }))).Attributes!['DisplayName'], 'Events', "the base topic's attributes");
  const tags = (await a.sns.send(new ListTagsForResourceCommand({ ResourceArn: arn }))).Tags!;
  t.same(Object.fromEntries(tags.map((x) => [x.Key, x.Value])), { 'app.kubernetes.io/managed-by': 'devstack-hooks', 'devstack.io/feature': 'feature1' });
  const secret = api.get({ apiVersion: 'v1', kind: 'Secret', name: 'orders-feature1', namespace: NS }) as unknown as { data: Record<string, string> };
  t.equal(Buffer.from(secret.data['TOPIC_ARN']!, 'base64').toString(), arn);
  t.match(done(await run(args)), { change: 'unchanged', secret: 'unchanged' });
  t.match(done(await run([...args, '--attributes', '{"DisplayName":"Events f1"}'])), { change: 'updated' });

  // A topic of a copy's name that someone else made: neither taken over nor deleted.
  await a.sns.send(new CreateTopicCommand({ Name: 'events-feature2' }));
  for (const command of ['create', 'delete']) {
    const r = await run(['sns', command, '--topic', 'events', '--key', 'feature2', ...a.e]);
    t.equal(r.code, 1, command);
    t.match(errorOf(r), { code: 'DEVSTACK_HOOK_NOT_OWNED', error: /events-feature2 .*not made by devstack-hooks/ });
  }
  const deleted = await run(['sns', 'delete', '--topic', 'events', '--key', 'feature1', ...a.e]);
  t.equal(deleted.code, 0, deleted.stderr);
  t.match(done(deleted), { command: 'sns delete', name: 'events-feature1', change: 'deleted' });
  t.match(done(await run(['sns', 'delete', '--topic', 'events', '--key', 'feature1', ...a.e])), { change: 'absent' });
  t.same(await a.topics(), ['events', 'events-feature2']);

  const missing = await run(['sns', 'create', '--topic', 'payments', '--key', 'feature1', ...a.e]);
  t.equal(missing.code, 1);
  t.match(errorOf(missing), { code: 'DEVSTACK_HOOK_NOT_FOUND', error: /the base topic payments does not exist/ });
  t.match(done(await run(['sns', 'create', '--topic', 'orders.fifo', '--key', 'f1', '--attributes', '{"ContentBasedDeduplication":"true"}', ...a.e])), { name: 'orders-f1.fifo', change: 'created' });
});

t.test('bad topics, keys, key names and attributes are refused before any request', async (t) => {
  const a = await aws(t);
  // A closed port: any request would fail with a connection error, not a usage error.
  const closed = ['--endpoint', 'http://127.0.0.1:9'];
  const cases: [string[], RegExp][] = [
    [['sns', 'subscribe', '--topic', 'events', '--queue', 'orders', '--key', 'a`b'], /--key: .* is not a routing key/],
    [['sns', 'subscribe', '--topic', 'bad topic', '--queue', 'orders', '--key', 'f1'], /--topic: "bad topic" is not an SNS topic name/],
    [['sns', 'subscribe', '--topic', 'arn:aws:sns:us-east-1:1:events', '--queue', 'orders', '--key', 'f1'], /--topic: .* is not an SNS topic ARN/],
    [['sns', 'subscribe', '--topic', 'events', '--queue', 'orders', '--key', 'f1', '--key-name', 'AWS.key'], /--key-name: .* is not a message attribute name/],
    [['sns', 'subscribe', '--topic', 'events', '--queue', 'orders.fifo', '--key', 'f1'], /a FIFO topic \(\.fifo\) delivers to FIFO queues only/],
    [['sns', 'subscribe', '--topic', 'events', '--queue', 'orders', '--key', 'f1', '--attributes', '{"Policy":"{}"}'], /--attributes: Policy is written by this command/],
    [['sns', 'unsubscribe', '--topic', 'events', '--queue', 'q'.repeat(75), '--key', 'feature1'], /is not an SQS queue name .*\(the copy's name\)/],
    [['sns', 'create', '--topic', 'arn:aws:sns:us-east-1:000000000000:events', '--key', 'f1'], /--topic: .* is not an SNS topic name/],
    [['sns', 'delete', '--topic', 'events', '--key', 'base'], /--key: "base" is not a routing key/],
  ];
  for (const [args, problem] of cases) {
    const r = await run([...args, ...closed]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, problem);
    t.same(r.lines, [], 'nothing attempted');
  }
  t.same(await a.queues(), []);
});
