/*
 * The routing key through @grpc/grpc-js without proxyless routing (a sidecar routes): the client
 * interceptor, the automatic instrumentation, the client options' channel, and the server
 * interceptor, with real servers and clients on 127.0.0.1. Patches grpc-js: runs in its own process.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { context, propagation } from '@opentelemetry/api';
import { Registry } from 'prom-client';
import t from 'tap';
import { ConfigError, LANE_HEADER, METRICS, baggageValues } from '@devstack/core';
import { init, withRoutingKey, type DevstackSdk, type InitOptions } from '@devstack/sdk';
import { grpcClientOptions, grpcInterceptor, grpcServerInterceptor, instrumentGrpc, type GrpcModule } from '@devstack/sdk/grpc';
import { CALLS, EchoClient, first, startEcho, unary, type Echo, type Seen } from './grpc-echo.ts';

const metrics = new Registry();
let sdk: DevstackSdk = init({ metrics });
t.teardown(() => sdk.close());

async function reinit(options: InitOptions): Promise<void> {
  await sdk.close();
  sdk = init(options);
}

const insecure = grpc.credentials.createInsecure();
const clients: Echo[] = [];
t.teardown(() => clients.forEach((c) => c.close()));
function client(address: string, options: grpc.ClientOptions = {}): Echo {
  const c = new EchoClient(address, insecure, options);
  clients.push(c);
  return c;
}

// An HTTP server that reports the carriers it received, for calls made inside gRPC handlers.
const httpLeaf = http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ plain: req.headers['uber-ctx-key'] ?? null, baggage: req.headers['baggage'] ?? null }));
});
await new Promise<void>((resolve) => httpLeaf.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => httpLeaf.close(() => resolve())));
const httpLeafUrl = `http://127.0.0.1:${(httpLeaf.address() as AddressInfo).port}/`;

const inbound = { interceptors: [grpcServerInterceptor(grpc)] };
const leaf = await startEcho('leaf', inbound);
t.teardown(() => leaf.close());
const toLeaf = client(leaf.address, { interceptors: [grpcInterceptor(grpc)] });
// Its handlers call the leaf over gRPC (through the interceptor) and the HTTP leaf with fetch.
const middle = await startEcho('middle', inbound, async () => ({
  grpc: first(await unary(toLeaf)),
  http: await (await fetch(httpLeafUrl)).json(),
}));
t.teardown(() => middle.close());
const plainLeaf = client(leaf.address);

function metadata(entries: Record<string, string | string[]>): grpc.Metadata {
  const m = new grpc.Metadata();
  for (const [name, value] of Object.entries(entries)) for (const v of [value].flat()) m.add(name, v);
  return m;
}

function keyEntries(s: Seen | undefined): readonly string[] {
  return baggageValues(s?.baggage ?? [], 'uber-ctx-key');
}

t.test('the client interceptor carries the key on every kind of call', async (t) => {
  for (const [kind, call] of CALLS) {
    const reply = await withRoutingKey('feature1', () => call(toLeaf));
    t.notOk(reply.error, `${kind}: no error`);
    const s = first(reply);
    t.same(s?.plain, ['feature1'], `${kind}: the plain entry`);
    t.same(keyEntries(s), ['feature1'], `${kind}: one baggage entry`);
    t.equal(s?.key, 'feature1', `${kind}: the server interceptor put it in the handler's context`);
    if (s?.keysWhileReading !== undefined) t.same(s.keysWhileReading, ['feature1', 'feature1'], `${kind}: and in the context of its 'data' events`);
    t.equal(reply.metadata?.get(LANE_HEADER)[0], 'base', `${kind}: the server says its lane`);
  }
});

t.test('no key in context: the metadata is left as the app made it', async (t) => {
  for (const [kind, call] of CALLS) {
    const s = first(await call(toLeaf, metadata({ 'x-app': 'kept', baggage: 'userId=7' })));
    t.same(s?.plain, [], `${kind}: no plain entry`);
    t.same(s?.baggage, ['userId=7'], `${kind}: baggage untouched`);
    t.same(s?.other, ['kept'], `${kind}: other metadata kept`);
    t.equal(s?.key, null, `${kind}: no key on the server`);
  }
});

t.test('an invalid key is never sent', async (t) => {
  const bad = propagation.setBaggage(context.active(), propagation.createBaggage({ 'uber-ctx-key': { value: 'Not_A_Key' } }));
  const s = first(await context.with(bad, () => unary(toLeaf)));
  t.same(s?.plain, [], 'a malformed value in the context baggage is not a key');
  t.same(s?.baggage, []);
  const s2 = first(await withRoutingKey('Feature1', () => unary(toLeaf)));
  t.same(s2?.plain, [], 'withRoutingKey with an invalid key runs with none');
});

t.test('the key is merged into baggage: other entries kept, stale copies replaced', async (t) => {
  const md = metadata({ 'uber-ctx-key': 'stale', baggage: ['userId=7,uber-ctx-key=stale', 'tenant=a'], 'x-app': 'kept' });
  const s = first(await withRoutingKey('feature1', () => unary(toLeaf, {}, md)));
  t.same(s?.plain, ['feature1'], 'the plain entry replaced');
  t.same(s?.baggage, ['userId=7,uber-ctx-key=feature1,tenant=a'], 'one baggage line: the entry replaced in place, the others kept in order');
  t.same(s?.other, ['kept']);
  t.same(md.get('uber-ctx-key'), ['stale'], "the app's Metadata object is not changed");
});

t.test('the server interceptor: calls made by the handler carry the key', async (t) => {
  const toMiddle = client(middle.address, { interceptors: [grpcInterceptor(grpc)] });
  const reply = await withRoutingKey('feature1', () => unary(toMiddle, { nested: true }));
  const nested = reply.value?.nested as { grpc: Seen; http: { plain: string | null; baggage: string | null } } | undefined;
  t.equal(reply.value?.key, 'feature1');
  t.same(nested?.grpc.plain, ['feature1'], 'a gRPC call from the handler');
  t.equal(nested?.grpc.key, 'feature1');
  t.equal(nested?.http.plain, 'feature1', 'a fetch from the handler');
  t.same(baggageValues(nested?.http.baggage ?? undefined, 'uber-ctx-key'), ['feature1']);

  // The key arrives from a client without the SDK, in each carrier.
  const s = first(await unary(plainLeaf, { nested: false }, metadata({ 'uberctx-uber-ctx-key': 'feature5' })));
  t.equal(s?.key, 'feature5', 'the Jaeger carrier is read');
  const viaRaw = await unary(client(middle.address), { nested: true }, metadata({ baggage: 'a=1,uber-ctx-key=feature4' }));
  t.equal((viaRaw.value?.nested as { grpc: Seen }).grpc.key, 'feature4', 'a key from baggage travels on from the handler');
});

t.test('inbound: the HTTP carriers, precedence and conflict rule; invalid keys counted', async (t) => {
  const cases: ReadonlyArray<[string, Record<string, string | string[]>, string | null]> = [
    ['plain', { 'uber-ctx-key': 'feature2' }, 'feature2'],
    ['baggage', { baggage: 'a=1,uber-ctx-key=feature4' }, 'feature4'],
    ['jaeger', { 'uberctx-uber-ctx-key': 'feature5' }, 'feature5'],
    ['plain wins over baggage', { 'uber-ctx-key': 'feature2', baggage: 'uber-ctx-key=feature4' }, 'feature2'],
    ['malformed plain: no key, baggage not consulted', { 'uber-ctx-key': 'Bad!', baggage: 'uber-ctx-key=feature4' }, null],
    ['conflicting plain values', { 'uber-ctx-key': ['feature1', 'feature2'] }, null],
    ['none', {}, null],
  ];
  for (const [name, entries, key] of cases) {
    const s = first(await unary(plainLeaf, {}, metadata(entries)));
    t.equal(s?.key, key, name);
  }
  const text = await metrics.metrics();
  t.match(text, `${METRICS.invalidKeys}{direction="inbound",carrier="header",problem="malformed"} 1`);
  t.match(text, `${METRICS.invalidKeys}{direction="inbound",carrier="header",problem="conflict"} 1`);
});

t.test('instrumentGrpc: every client carries the key, whatever its interceptors', async (t) => {
  const before = first(await withRoutingKey('feature1', () => unary(plainLeaf)));
  t.same(before?.plain, [], 'a client without the interceptor sends no key before');
  const off = instrumentGrpc(grpc);
  t.equal(instrumentGrpc(grpc), off, 'instrumenting the module again changes nothing');
  for (const [kind, call] of CALLS) {
    const s = first(await withRoutingKey('feature1', () => call(plainLeaf)));
    t.same(s?.plain, ['feature1'], `${kind}: a client created before, with no interceptor`);
    t.same(keyEntries(s), ['feature1'], `${kind}: one baggage entry`);
  }
  const own: grpc.Interceptor = (options, next) => new grpc.InterceptingCall(next(options));
  const perCall = first(await withRoutingKey('feature1', () => unary(plainLeaf, {}, new grpc.Metadata(), { interceptors: [own] })));
  t.same(perCall?.plain, ['feature1'], 'a call given its own interceptors (which replace the client ones in grpc-js)');
  const both = first(await withRoutingKey('feature2', () => unary(toLeaf)));
  t.same(both?.plain, ['feature2'], 'with the interceptor too: one entry');
  t.same(keyEntries(both), ['feature2']);
  const none = first(await unary(plainLeaf, {}, metadata({ baggage: 'userId=7' })));
  t.same([none?.plain, none?.baggage], [[], ['userId=7']], 'no key: untouched');
  off();
  const after = first(await withRoutingKey('feature1', () => unary(plainLeaf)));
  t.same(after?.plain, [], 'the returned function removes it');
});

t.test('grpcClientOptions without a registry: the address as written, the key added', async (t) => {
  const c = client(leaf.address, grpcClientOptions(grpc, { 'grpc.max_receive_message_length': 1 << 20 }));
  t.equal(grpc.getClientChannel(c).getTarget(), leaf.address);
  await new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 30_000, (e) => (e ? reject(e) : resolve())));
  t.pass('waitForReady sees the connection');
  for (const [kind, call] of CALLS) {
    const s = first(await withRoutingKey('feature1', () => call(c)));
    t.same(s?.plain, ['feature1'], kind);
    t.equal(s?.server, 'leaf');
  }
  const none = first(await unary(c));
  t.same(none?.plain, []);
  c.close();
  const plain = new EchoClient(leaf.address, insecure);
  plain.close();
  // grpc-js throws from the client method; the helper's promise turns that into a rejection.
  await t.rejects(unary(plain), /Channel has been shut down/, 'a closed grpc-js client throws when called');
  await t.rejects(unary(c), /Channel has been shut down/, 'and so does a closed one of ours');
});

t.test('hosts outside the allow-list never get the key', async (t) => {
  await reinit({ denyHosts: ['127.0.0.1'] });
  instrumentGrpc(grpc);
  const stale = () => metadata({ 'uber-ctx-key': 'feature2', baggage: 'userId=7,uber-ctx-key=feature2' });
  const auto = first(await withRoutingKey('feature1', () => unary(plainLeaf, {}, stale())));
  t.same([auto?.plain, auto?.baggage], [[], ['userId=7']], 'instrumentGrpc: every carrier stripped, other baggage kept');
  const options = first(await withRoutingKey('feature1', () => unary(client(leaf.address, grpcClientOptions(grpc)), {}, stale())));
  t.same([options?.plain, options?.baggage], [[], ['userId=7']], 'grpcClientOptions: the same');
  const interceptor = first(await withRoutingKey('feature1', () => unary(client(leaf.address, { interceptors: [grpcInterceptor(grpc)] }))));
  t.same(interceptor?.plain, [], 'the interceptor writes the key, and the instrumentation below it strips it');

  await reinit({ metrics });
  const closed = first(await withRoutingKey('feature1', () => unary(plainLeaf)));
  t.same(closed?.plain, [], 'sdk.close() removed the instrumentation');
});

t.test('a target outside the fleet gets no carrier of the key, with no key in context too', async (t) => {
  await reinit({ denyHosts: ['127.0.0.1'] });
  t.teardown(() => reinit({ metrics }));
  instrumentGrpc(grpc);
  // An incoming call's metadata forwarded as it came: its invalid plain entry decided (no key in
  // context), and the valid baggage and Jaeger entries behind it are a key to whoever reads them.
  const forwarded = () => metadata({ 'uber-ctx-key': 'Not A Key', baggage: 'userId=7, uber-ctx-key=feature1;p=1 ,team=pay', 'uberctx-uber-ctx-key': 'feature1', 'x-app': 'mine' });
  const clients: Array<[string, Echo]> = [['instrumentGrpc', plainLeaf], ['grpcClientOptions', client(leaf.address, grpcClientOptions(grpc))]];
  for (const [name, c] of clients) {
    for (const [kind, call] of CALLS) {
      const s = first(await call(c, forwarded()));
      t.same([s?.plain, s?.baggage, s?.jaeger, s?.other], [[], ['userId=7,team=pay'], [], ['mine']], `${name}, ${kind}: every carrier stripped, the rest kept`);
    }
  }
});

t.test('a feature copy: its key is the default for calls made without one', async (t) => {
  await reinit({ lane: 'feature3' });
  t.teardown(() => reinit({ metrics }));
  const s = first(await unary(toLeaf));
  t.same(s?.plain, ['feature3'], 'no key in context: the default key');
  t.equal(s?.key, 'feature3');
  t.equal((await unary(toLeaf)).metadata?.get(LANE_HEADER)[0], 'feature3', 'the server reports the lane it serves');
  const own = first(await withRoutingKey('feature1', () => unary(toLeaf)));
  t.same(own?.plain, ['feature1'], 'a key in context wins');
  const invalid = first(await unary(plainLeaf, {}, metadata({ 'uber-ctx-key': 'Bad!' })));
  t.equal(invalid?.key, 'feature3', 'an invalid inbound key is replaced by the lane, as HTTP inbound does');
});

t.test('bad arguments are ConfigErrors naming the function', async (t) => {
  const cases: ReadonlyArray<[string, () => unknown, RegExp]> = [
    ['grpcInterceptor({})', () => grpcInterceptor({} as GrpcModule), /^grpcInterceptor: grpc must be the app's @grpc\/grpc-js module .*without InterceptingCall, Metadata$/],
    ['instrumentGrpc(undefined)', () => instrumentGrpc(undefined as unknown as GrpcModule), /^instrumentGrpc: grpc must be .*, got undefined$/],
    ['an old grpc-js', () => grpcServerInterceptor({ ...grpc, ServerInterceptingCall: undefined } as unknown as GrpcModule), /server interceptors need @grpc\/grpc-js 1\.10 or newer/],
    ['lane', () => grpcServerInterceptor(grpc, { lane: 'Feature1' }), /^grpcServerInterceptor: lane "Feature1" must be 'base' or a routing key/],
    ['server options', () => grpcServerInterceptor(grpc, 'feature1' as never), /^grpcServerInterceptor: options must be an object, got the string "feature1"$/],
    ['client options', () => grpcClientOptions(grpc, 5 as never), /^grpcClientOptions: options must be an object/],
    ['channelOverride', () => grpcClientOptions(grpc, { channelOverride: new grpc.Channel('127.0.0.1:1', insecure, {}) }), /^grpcClientOptions: channelOverride fixes one channel/],
    ['channelFactoryOverride', () => grpcClientOptions(grpc, { channelFactoryOverride: 'x' as never }), /^grpcClientOptions: channelFactoryOverride must be a function/],
  ];
  for (const [name, fn, message] of cases) {
    const error = t.throws(fn, name) as ConfigError;
    t.type(error, ConfigError, `${name}: a ConfigError`);
    t.match(error.problems?.[0], message, `${name}: ${message}`);
  }
});
