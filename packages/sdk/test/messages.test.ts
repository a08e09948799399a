import t from 'tap';
import { ConfigError } from '@devstack/core';
import {
  extractKafkaKey,
  extractSqsKey,
  featureQueueName,
  init,
  injectKafkaHeaders,
  injectRoutingKey,
  injectSqsAttributes,
  isAllowedHost,
  isClusterLocal,
  resolveQueueName,
  withRoutingKey,
} from '@devstack/sdk';

t.test('SQS message attributes carry the key both ways', async (t) => {
  const attrs = withRoutingKey('feature1', () => injectSqsAttributes({ trace: { DataType: 'String', StringValue: 'x' } }));
  t.same(attrs, { trace: { DataType: 'String', StringValue: 'x' }, 'uber-ctx-key': { DataType: 'String', StringValue: 'feature1' } });
  t.equal(extractSqsKey(attrs), 'feature1');
  t.equal(extractSqsKey({ 'uber-ctx-key': { dataType: 'String', stringValue: 'feature2' } }), 'feature2', 'Lambda event shape');
  t.equal(extractSqsKey({ baggage: { DataType: 'String', StringValue: 'a=1,uber-ctx-key=feature3' } }), 'feature3', 'baggage attribute');
  t.equal(injectSqsAttributes({}, 'feature4')['uber-ctx-key']?.StringValue, 'feature4', 'explicit key');
  const none = {};
  t.equal(injectSqsAttributes(none), none, 'no key: unchanged');
  t.equal(injectSqsAttributes(none, 'Bad Key'), none, 'invalid key: unchanged');
});

t.test('Kafka record headers carry the key both ways', async (t) => {
  const headers = withRoutingKey('feature1', () => injectKafkaHeaders({ baggage: Buffer.from('a=1,uber-ctx-key=old'), other: 'x' }));
  t.equal(headers['uber-ctx-key'], 'feature1');
  t.equal(headers['baggage'], 'a=1,uber-ctx-key=feature1', 'merged in place, other entries kept');
  t.equal(headers['other'], 'x');
  t.equal(extractKafkaKey({ 'uber-ctx-key': Buffer.from('feature2') }), 'feature2');
  t.equal(extractKafkaKey({ 'uber-ctx-key': [Buffer.from('feature2'), 'feature2'] }), 'feature2', 'repeats that agree');
  t.equal(extractKafkaKey({ 'uber-ctx-key': ['feature2', 'feature3'] }), undefined, 'a conflict is no key');
});

t.test('malformed message carriers never throw', async (t) => {
  const junk: unknown[] = [null, undefined, 42, 'str', [], { 'uber-ctx-key': null }, { 'uber-ctx-key': { StringValue: 7 } },
    { 'uber-ctx-key': 'x'.repeat(10_000) }, { baggage: { StringValue: '%%%' } }, { 'uber-ctx-key': { nested: { deep: true } } }];
  for (const value of junk) {
    t.equal(extractSqsKey(value as never), undefined, `SQS ${JSON.stringify(value)?.slice(0, 40)}`);
    t.equal(extractKafkaKey(value as never), undefined, `Kafka ${JSON.stringify(value)?.slice(0, 40)}`);
  }
});

t.test('queues and topics resolve to their per-feature copy when it exists', async (t) => {
  const existing = new Set(['orders-events', 'orders-events-feature1']);
  t.equal(featureQueueName('orders-events', 'feature1'), 'orders-events-feature1');
  t.equal(withRoutingKey('feature1', () => resolveQueueName('orders-events', existing)), 'orders-events-feature1');
  t.equal(withRoutingKey('feature2', () => resolveQueueName('orders-events', existing)), 'orders-events', 'no copy: base');
  t.equal(resolveQueueName('orders-events', existing), 'orders-events', 'no key: base');
  t.equal(resolveQueueName('orders-events', (n) => n.endsWith('-feature5'), 'feature5'), 'orders-events-feature5', 'predicate');
  const broken = () => {
    throw new Error('ListQueues failed');
  };
  t.equal(resolveQueueName('orders-events', broken, 'feature5'), 'orders-events', 'a failing lookup falls back to base');
});

t.test('injectRoutingKey fills a plain header record', async (t) => {
  t.same(injectRoutingKey({ accept: 'x' }), { accept: 'x' }, 'no key');
  t.same(withRoutingKey('feature1', () => injectRoutingKey({ baggage: 'a=1' })), { 'uber-ctx-key': 'feature1', baggage: 'a=1,uber-ctx-key=feature1' });
});

t.test('the default allow-list is cluster-local names and this machine', async (t) => {
  for (const host of ['orders', 'orders.shop.svc', 'orders.shop.svc.cluster.local', 'localhost', '127.0.0.1', '::1', 'app.localhost']) t.ok(isClusterLocal(host), host);
  for (const host of ['api.example.com', 'example.com', '8.8.8.8', '10.0.0.7', 'svc.evil.com', '']) t.notOk(isClusterLocal(host), host);
  t.ok(isAllowedHost('orders'));
  t.notOk(isAllowedHost('api.stripe.com'));
});

t.test('the allow-list is configurable, and bad options fail at init', async (t) => {
  const sdk = init({ allowHosts: ['*.corp.example', 'partner.io'], denyHosts: ['vault.corp.example'] });
  t.teardown(() => sdk.close());
  t.ok(isAllowedHost('orders.corp.example'));
  t.ok(isAllowedHost('PARTNER.IO.'), 'case and trailing dot do not matter');
  t.notOk(isAllowedHost('vault.corp.example'), 'deny wins');
  t.notOk(isAllowedHost('orders'), 'the cluster-local default was replaced');
  t.equal(init({ lane: 'Bad' }), sdk, 'a second init keeps the first');
  await sdk.close();
  t.ok(isAllowedHost('orders'), 'close restores the defaults');
  t.throws(() => init({ lane: 'Not A Key' }), ConfigError);
  t.throws(() => init({ keyName: 'Bad Name' }), ConfigError);
  t.throws(() => init({ allowHosts: [''] }), ConfigError);
});
