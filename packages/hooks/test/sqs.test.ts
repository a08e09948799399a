/*
 * `devstack-hooks sqs create|delete` against a real SQS-protocol server (fauxqs, the AWS JSON
 * protocol the current SDK speaks) on 127.0.0.1, and the fake Kubernetes API for the secret.
 */
import t from 'tap';
import { GetQueueAttributesCommand, ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { copyQueueName } from '@devstack/hooks';
import { done, fake, NS, run, spawnCli, writes } from './helpers.ts';

const AWS = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' };
// The SDK's credential chain reads the process environment (the in-process runs share it).
Object.assign(process.env, AWS);

async function sqsServer(t: { teardown(fn: () => unknown): void }) {
  const server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  t.teardown(() => server.stop());
  const client = new SQSClient({ endpoint: server.address, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  t.teardown(() => client.destroy());
  const names = async () => ((await client.send(new ListQueuesCommand({}))).QueueUrls ?? []).map((u) => u.slice(u.lastIndexOf('/') + 1)).sort();
  return { server, client, names };
}

t.test('the copy queue name keeps .fifo last', async (t) => {
  t.equal(copyQueueName('orders', 'feature1'), 'orders-feature1');
  t.equal(copyQueueName('orders.fifo', 'feature1'), 'orders-feature1.fifo');
});

t.test('create with the base attributes, create again, delete, delete again', async (t) => {
  const { server, client, names } = await sqsServer(t);
  server.createQueue('orders', { attributes: { VisibilityTimeout: '45', DelaySeconds: '3' } });
  const sqs = ['--endpoint', server.address];
  const first = await spawnCli(['sqs', 'create', '--queue', 'orders', '--key', 'feature1', ...sqs, '--attributes', '{"DelaySeconds":5}'], AWS);
  t.equal(first.code, 0, first.stderr);
  t.match(done(first), { command: 'sqs create', name: 'orders-feature1', change: 'created', url: /orders-feature1$/ });
  t.same(await names(), ['orders', 'orders-feature1']);
  const url = done(first)!['url'] as string;
  const attrs = (await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }))).Attributes!;
  t.equal(attrs['VisibilityTimeout'], '45', 'from the base queue');
  t.equal(attrs['DelaySeconds'], '5', '--attributes over the base');

  const again = await run(['sqs', 'create', '--queue', 'orders', '--key', 'feature1', ...sqs, '--attributes', '{"DelaySeconds":5}']);
  t.equal(again.code, 0, again.stderr);
  t.match(done(again), { change: 'unchanged', url });
  t.same(await names(), ['orders', 'orders-feature1']);

  const deleted = await run(['sqs', 'delete', '--queue', 'orders', '--key', 'feature1', ...sqs]);
  t.equal(deleted.code, 0, deleted.stderr);
  t.match(done(deleted), { command: 'sqs delete', name: 'orders-feature1', change: 'deleted' });
  t.same(await names(), ['orders'], 'the base queue stays');
  const twice = await run(['sqs', 'delete', '--queue', 'orders', '--key', 'feature1', ...sqs]);
  t.equal(twice.code, 0);
  t.match(done(twice), { change: 'absent' });
});

t.test('FIFO: the copy is a FIFO queue named <name>-<key>.fifo', async (t) => {
  const { server, client, names } = await sqsServer(t);
  server.createQueue('orders.fifo', { attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' } });
  const r = await run(['sqs', 'create', '--queue', 'orders.fifo', '--key', 'feature1', '--endpoint', server.address]);
  t.equal(r.code, 0, r.stderr);
  t.match(done(r), { name: 'orders-feature1.fifo', change: 'created' });
  t.same(await names(), ['orders-feature1.fifo', 'orders.fifo']);
  const attrs = (await client.send(new GetQueueAttributesCommand({ QueueUrl: done(r)!['url'] as string, AttributeNames: ['All'] }))).Attributes!;
  t.match(attrs, { FifoQueue: 'true', ContentBasedDeduplication: 'true' });
  t.match(done(await run(['sqs', 'create', '--queue', 'orders.fifo', '--key', 'feature1', '--endpoint', server.address])), { change: 'unchanged' });
  t.match(done(await run(['sqs', 'delete', '--queue', 'orders.fifo', '--key', 'feature1', '--endpoint', server.address])), { change: 'deleted' });
  t.same(await names(), ['orders.fifo']);
});

t.test('the queue URL goes into the copy secret', async (t) => {
  const { server } = await sqsServer(t);
  const { api, kubeconfig } = await fake(t);
  server.createQueue('orders');
  const args = ['sqs', 'create', '--queue', 'orders', '--key', 'feature1', '--endpoint', server.address, '--kubeconfig', kubeconfig, '--namespace', NS, '--secret', 'orders-feature1'];
  const r = await run(args);
  t.equal(r.code, 0, r.stderr);
  t.match(done(r), { change: 'created', secret: 'created' });
  const secret = api.get({ apiVersion: 'v1', kind: 'Secret', name: 'orders-feature1', namespace: NS }) as unknown as { data: Record<string, string>; metadata: { labels: Record<string, string> } };
  t.equal(Buffer.from(secret.data['QUEUE_URL']!, 'base64').toString(), done(r)!['url']);
  t.same(secret.metadata.labels, { 'app.kubernetes.io/managed-by': 'devstack-hooks', 'devstack.io/feature': 'feature1' });
  const count = writes(api).length;
  t.match(done(await run(args)), { change: 'unchanged', secret: 'unchanged' });
  t.equal(writes(api).length, count, 'the rerun wrote nothing');
  const other = await run([...args, '--secret-key', 'ORDERS_QUEUE']);
  t.match(done(other), { secret: 'updated' });
});

t.test('a missing base queue is exit 1; a bad key is refused before any call', async (t) => {
  const { server, names } = await sqsServer(t);
  const missing = await run(['sqs', 'create', '--queue', 'orders', '--key', 'feature1', '--endpoint', server.address]);
  t.equal(missing.code, 1);
  t.match(missing.lines.find((l) => l['level'] === 'error'), { code: 'DEVSTACK_HOOK_NOT_FOUND', error: /the base queue orders does not exist/ });
  // With attributes of its own, a copy needs no base.
  t.match(done(await run(['sqs', 'create', '--queue', 'orders', '--key', 'feature1', '--endpoint', server.address, '--attributes', '{"VisibilityTimeout":"10"}'])), { change: 'created' });
  // A closed port: any request would fail with a connection error, not a usage error.
  for (const args of [['--key', 'a`b'], ['--key', 'ok', '--queue', 'bad name']]) {
    const r = await run(['sqs', 'create', '--queue', 'orders', '--endpoint', 'http://127.0.0.1:9', ...args]);
    t.equal(r.code, 2, args.join(' '));
    t.same(r.lines, []);
  }
  const long = await run(['sqs', 'delete', '--queue', 'q'.repeat(75), '--key', 'feature1', '--endpoint', server.address]);
  t.equal(long.code, 2);
  t.match(long.stderr, /is not an SQS queue name .*\(the copy's name\)/);
  t.same(await names(), ['orders-feature1']);
});
