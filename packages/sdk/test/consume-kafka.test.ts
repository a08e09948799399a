/*
 * Lane consumption of Kafka records: the decision and the header handling for kafkajs' and
 * @platformatic/kafka's record shapes. No Kafka broker runs in these tests (none can be started
 * here); the records are built as each client hands them to the app (Buffers in kafkajs' header
 * object, a Map of Buffers or strings in @platformatic/kafka).
 */
import t from 'tap';
import { buildSnapshot, StaticSource } from '@devstack/core';
import { getRoutingKey, injectKafkaHeaders, kafkaDecision, laneEachMessage, laneGroupId, laneMessageHandler, recordKeyReading, shouldConsumeRecord } from '@devstack/sdk';

const URL = 'http://127.0.0.1:1';
const registry = new StaticSource(buildSnapshot({ services: { worker: { base: URL, features: { feature1: URL } }, orders: { base: URL, features: { feature2: URL } } } }));
const base = { service: 'worker', lane: 'base', registry };
const copy = { service: 'worker', lane: 'feature1', registry };

/** kafkajs' `EachMessagePayload` and `IHeaders`, as far as these tests need them. */
type Headers = Record<string, string | Buffer | Array<string | Buffer> | undefined>;
interface Payload {
  topic: string;
  partition: number;
  message: { key: Buffer | null; value: Buffer | null; offset: string; timestamp: string; headers?: Headers | undefined };
}
/** @platformatic/kafka's `Message` with Buffer (or string) headers. */
interface PlatformaticMessage {
  topic: string;
  partition: number;
  offset: bigint;
  value: Buffer;
  headers: Map<unknown, unknown>;
  commit(): void;
}
const kafkajs = (headers: Headers | undefined): Payload => ({ topic: 'events', partition: 0, message: { key: null, value: Buffer.from('v'), offset: '0', timestamp: '0', headers } });
const platformatic = (headers: Map<unknown, unknown>): PlatformaticMessage => ({ topic: 'events', partition: 0, offset: 0n, value: Buffer.from('v'), headers, commit: () => {} });

t.test('the key from record headers in both clients\' shapes', async (t) => {
  const cases: Array<[string, Parameters<typeof recordKeyReading>[0], string | undefined]> = [
    ['kafkajs Buffer', { 'uber-ctx-key': Buffer.from('feature1') }, 'feature1'],
    ['kafkajs string', { 'uber-ctx-key': 'feature1' }, 'feature1'],
    ['kafkajs repeated, agreeing', { 'uber-ctx-key': [Buffer.from('feature1'), 'feature1'] }, 'feature1'],
    ['kafkajs baggage', { baggage: Buffer.from('a=1,uber-ctx-key=feature1') }, 'feature1'],
    ['kafkajs written by injectKafkaHeaders', injectKafkaHeaders({}, 'feature1'), 'feature1'],
    ['platformatic Buffers', new Map([[Buffer.from('uber-ctx-key'), Buffer.from('feature1')]]), 'feature1'],
    ['platformatic strings', new Map([['Uber-Ctx-Key', 'feature1']]), 'feature1'],
    ['platformatic baggage', new Map([[Buffer.from('baggage'), Buffer.from('uber-ctx-key=feature1')]]), 'feature1'],
    ['none', {}, undefined],
    ['no headers', undefined, undefined],
    ['platformatic junk names and values', new Map<unknown, unknown>([[1, 'x'], ['uber-ctx-key', 7], [null, null]]), undefined],
  ];
  for (const [name, headers, key] of cases) t.equal(recordKeyReading(headers).key, key, name);
  t.match(recordKeyReading({ 'uber-ctx-key': ['feature1', 'feature2'] }), { key: undefined, problem: 'conflict' }, 'a conflict is an invalid key');
  t.match(recordKeyReading({ 'uber-ctx-key': 'Bad Key' }), { key: undefined, problem: 'malformed' });
});

t.test('each lane\'s group sees every record; a lane processes its own and skips the rest', async (t) => {
  const rows: Array<[string, Headers | undefined, boolean, boolean]> = [
    // name, headers, base processes, copy processes
    ['the copy\'s key', { 'uber-ctx-key': Buffer.from('feature1') }, false, true],
    ['no key', undefined, true, false],
    ['invalid key', { 'uber-ctx-key': Buffer.from('Not_A_Key') }, true, false],
    ['unknown key', { 'uber-ctx-key': Buffer.from('feature9') }, true, false],
    ['no copy of this service', { 'uber-ctx-key': Buffer.from('feature2') }, true, false],
  ];
  for (const [name, headers, byBase, byCopy] of rows) {
    t.equal(shouldConsumeRecord(kafkajs(headers).message, base), byBase, `${name}: base`);
    t.equal(shouldConsumeRecord(kafkajs(headers).message, copy), byCopy, `${name}: copy`);
    const map = new Map(Object.entries(headers ?? {}));
    t.equal(shouldConsumeRecord(platformatic(map), base), byBase, `${name}: base (platformatic)`);
    t.equal(shouldConsumeRecord(platformatic(map), copy), byCopy, `${name}: copy (platformatic)`);
  }
  t.match(kafkaDecision(kafkajs({ 'uber-ctx-key': 'feature1' }).message, base), { reason: 'match', owner: 'feature1', consume: false });
  t.equal(laneGroupId('worker', base), 'worker');
  t.equal(laneGroupId('worker', copy), 'worker-feature1');

  const unready = new StaticSource(buildSnapshot({ services: { worker: { base: URL, features: { feature1: { url: URL, ready: false } } } } }));
  t.equal(shouldConsumeRecord(kafkajs({ 'uber-ctx-key': 'feature1' }).message, { ...base, registry: unready }), true, 'a copy not ready: base processes its key');
  t.equal(shouldConsumeRecord(kafkajs({ 'uber-ctx-key': 'feature1' }).message, { ...copy, registry: unready }), true, 'and the copy too (never by no lane)');
});

t.test('the handler wrappers: this lane\'s records in their key\'s context, the others skipped', async (t) => {
  const handled: Array<[string, string | undefined]> = [];
  const skipped: string[] = [];
  const eachMessage = laneEachMessage(async ({ message }: Payload) => {
    handled.push(['kafkajs', getRoutingKey()]);
    return message.offset;
  }, {
    ...copy,
    onSkip: (p) => void skipped.push(`kafkajs ${String(p.message.headers?.['uber-ctx-key'] ?? 'none')}`),
  });
  const handle = laneMessageHandler(async (m: PlatformaticMessage) => {
    handled.push(['platformatic', getRoutingKey()]);
    return m.offset;
  }, {
    ...copy,
    onSkip: () => void skipped.push('platformatic'),
  });
  await eachMessage(kafkajs({ 'uber-ctx-key': Buffer.from('feature1') }));
  await eachMessage(kafkajs({ 'uber-ctx-key': 'feature9' }));
  await eachMessage(kafkajs(undefined));
  await handle(platformatic(new Map([[Buffer.from('uber-ctx-key'), Buffer.from('feature1')]])));
  await handle(platformatic(new Map()));
  t.same(handled, [['kafkajs', 'feature1'], ['platformatic', 'feature1']]);
  t.same(skipped, ['kafkajs feature9', 'kafkajs none', 'platformatic']);
  const forBase = laneEachMessage(async (_: Payload) => getRoutingKey() ?? 'no key', base);
  t.equal(await forBase(kafkajs(undefined)), 'no key', 'base: a record without a key runs with none');
  t.equal(await forBase(kafkajs({ 'uber-ctx-key': 'feature9' })), 'feature9', 'an unknown key is base\'s and its calls carry it');
  t.equal(await forBase(kafkajs({ 'uber-ctx-key': 'feature1' })), undefined, 'skipped');
});
