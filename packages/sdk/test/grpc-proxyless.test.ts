/*
 * Proxyless gRPC: clients made with grpcClientOptions() address registry services by name
 * (`orders:50051`) and each call is sent to the feature copy or base that the routing step picks.
 * Base and feature copies are separate grpc-js servers on 127.0.0.1. Patches grpc-js and the
 * SDK's globals: runs in its own process.
 */
import * as grpc from '@grpc/grpc-js';
import { DiagLogLevel, diag } from '@opentelemetry/api';
import t from 'tap';
import { LANE_HEADER, StaticSource, buildSnapshot, type RegistryInput } from '@devstack/core';
import { init, withRoutingKey, type DevstackSdk, type InitOptions } from '@devstack/sdk';
import { grpcClientOptions, grpcServerInterceptor, instrumentGrpc } from '@devstack/sdk/grpc';
import { CALLS, EchoClient, first, startEcho, unary, type Echo, type EchoServer, type Seen } from './grpc-echo.ts';

const insecure = grpc.credentials.createInsecure();
const clients: Echo[] = [];
t.teardown(() => clients.forEach((c) => c.close()));
function routed(address: string, options: grpc.ClientOptions = {}): Echo {
  const c = new EchoClient(address, insecure, grpcClientOptions(grpc, options));
  clients.push(c);
  return c;
}

/** The per-target channels a routed client has open (origins). */
function openTargets(c: Echo): readonly string[] {
  return (grpc.getClientChannel(c) as unknown as { openTargets: readonly string[] }).openTargets;
}

const servers: Record<string, EchoServer> = {};
t.teardown(() => Promise.all(Object.values(servers).map((s) => s.close())));
// payments has a base only, and no server interceptor: the lane its callers see is the SDK's.
servers['payments:base'] = await startEcho('payments:base');
const toPayments = routed('payments:50051');
for (const lane of ['base', 'feature1']) {
  servers[`orders:${lane}`] = await startEcho(`orders:${lane}`, { interceptors: [grpcServerInterceptor(grpc, { lane })] }, async () => first(await unary(toPayments)));
}
const origin = (id: string): string => `http://${servers[id]!.address}`;

function registry(withOrdersCopy = true): RegistryInput {
  return {
    services: {
      orders: { base: origin('orders:base'), features: withOrdersCopy ? { feature1: origin('orders:feature1') } : {} },
      payments: { base: origin('payments:base') },
      // Another service's copy, so feature1 is a known key; stock itself has no ready target.
      stock: { base: { url: 'http://127.0.0.1:9', ready: false }, features: { feature2: { url: 'http://127.0.0.1:9', ready: false } } },
    },
  };
}

const source = new StaticSource(buildSnapshot(registry()));
let sdk: DevstackSdk = init({ registry: source });
t.teardown(() => sdk.close());
t.equal(await sdk.ready, true);

async function reinit(options: InitOptions): Promise<void> {
  await sdk.close();
  sdk = init(options);
}

const orders = routed('orders:50051');

t.test('a short Kubernetes name keeps the key: the registry routes it, the authority stays as written', async (t) => {
  // `orders.shop` is no allow-listed name; the transport must still let the key through to the copy.
  const short = routed('orders.shop:50051');
  for (const [kind, call] of CALLS) {
    const s = first(await withRoutingKey('feature1', () => call(short)));
    t.same([s?.server, s?.plain, s?.authority], ['orders:feature1', ['feature1'], 'orders.shop:50051'], kind);
  }
});

t.test('each call goes to the feature copy or to base, by the key in context', async (t) => {
  const table: ReadonlyArray<[string, string | undefined, string]> = [
    ['a key with a copy', 'feature1', 'orders:feature1'],
    ['no key', undefined, 'orders:base'],
    ['a key no service has', 'feature9', 'orders:base'],
  ];
  for (const [name, key, server] of table) {
    for (const [kind, call] of CALLS) {
      const reply = await withRoutingKey(key, () => call(orders));
      const s = first(reply);
      t.equal(s?.server, server, `${name}, ${kind}: ${server}`);
      t.same(s?.plain, key === undefined ? [] : [key], `${name}, ${kind}: the key in metadata`);
      t.equal(s?.authority, 'orders:50051', `${name}, ${kind}: the authority the app wrote`);
      t.equal(reply.metadata?.get(LANE_HEADER)[0], server.split(':')[1], `${name}, ${kind}: the lane in the response metadata`);
    }
  }
  const pay = await withRoutingKey('feature1', () => unary(toPayments));
  t.equal(pay.value?.server, 'payments:base', 'a service without a copy: base (the chain rule)');
  t.equal(pay.metadata?.get(LANE_HEADER)[0], 'base', 'the lane is said by the SDK (payments does not)');
});

t.test('a chain: the handler calls on by name, with the key it received', async (t) => {
  const reply = await withRoutingKey('feature1', () => unary(orders, { nested: true }));
  t.equal(reply.value?.server, 'orders:feature1');
  const nested = reply.value?.nested as Seen | undefined;
  t.equal(nested?.server, 'payments:base');
  t.same(nested?.plain, ['feature1'], 'payments got the key through base');
  // The feature copy called directly, with no key: its lane is the key its calls carry on.
  const direct = new EchoClient(servers['orders:feature1']!.address, insecure);
  clients.push(direct);
  const own = (await unary(direct, { nested: true })).value?.nested as Seen | undefined;
  t.same(own?.plain, ['feature1'], "a copy's own lane stands in for a missing key");
});

t.test('refused calls end with a gRPC status carrying the devstack code', async (t) => {
  const cases: ReadonlyArray<[string, Echo, string | undefined, grpc.status, RegExp, string]> = [
    ['a service the registry does not know', routed('nope:50051'), 'feature1', grpc.status.UNIMPLEMENTED, /^DEVSTACK_UNKNOWN_SERVICE: devstack: no route to nope:50051 \(unknown-service\)$/, 'none'],
    ['no ready target', routed('stock:50051'), undefined, grpc.status.UNAVAILABLE, /^DEVSTACK_NO_READY_UPSTREAM: devstack: no route to stock \(no-ready-target\)$/, 'base'],
  ];
  for (const [name, c, key, code, details, lane] of cases) {
    for (const [kind, call] of CALLS) {
      const reply = await withRoutingKey(key, () => call(c));
      t.equal(reply.error?.code, code, `${name}, ${kind}: ${grpc.status[code]}`);
      t.match(reply.error?.details, details, `${name}, ${kind}: the code first in the details`);
      t.equal(reply.metadata?.get(LANE_HEADER)[0], lane, `${name}, ${kind}: the lane`);
    }
  }
});

t.test('a registry change applies to the next call; channels to removed targets close', async (t) => {
  const c = routed('orders:50051');
  t.equal(first(await withRoutingKey('feature1', () => unary(c)))?.server, 'orders:feature1');
  // A stream to the copy stays open across the change.
  const stream = withRoutingKey('feature1', () => c['bidi']!(new grpc.Metadata())) as grpc.ClientDuplexStream<object, Seen>;
  const answers: Seen[] = [];
  stream.on('data', (s: Seen) => answers.push(s));
  const ended = new Promise<void>((resolve) => stream.on('status', () => resolve()));
  stream.write({});
  await new Promise((resolve) => stream.once('data', resolve));
  t.same(openTargets(c), [origin('orders:feature1')], 'one channel so far: the copy');

  source.publish(buildSnapshot(registry(false)));
  t.equal(first(await withRoutingKey('feature1', () => unary(c)))?.server, 'orders:base', 'the copy is gone: base');
  t.ok(openTargets(c).includes(origin('orders:feature1')), "the copy's channel stays open while a call uses it");
  stream.write({});
  await new Promise((resolve) => stream.once('data', resolve));
  t.equal(answers.at(-1)?.server, 'orders:feature1', 'the open stream goes on where it started');
  stream.end();
  await ended;
  t.same(openTargets(c), [origin('orders:base')], 'its last call ended: closed');

  source.publish(buildSnapshot(registry()));
  t.equal(first(await withRoutingKey('feature1', () => unary(c)))?.server, 'orders:feature1', 'back: the copy again');
  c.close();
  t.same(openTargets(c), [], 'closing the client closes its channels');
});

t.test("the app's channelFactoryOverride makes each per-target channel", async (t) => {
  const made: [string, unknown][] = [];
  const c = routed('orders:50051', {
    'grpc.max_receive_message_length': 1 << 20,
    channelFactoryOverride: (address, credentials, options) => {
      made.push([address, options['grpc.default_authority']]);
      return new grpc.Channel(address, credentials, options);
    },
  });
  t.equal(first(await withRoutingKey('feature1', () => unary(c)))?.server, 'orders:feature1');
  t.same(made, [[servers['orders:feature1']!.address, 'orders:50051']], 'asked for the target, with the authority the app wrote');

  const broken = routed('orders:50051', {
    channelFactoryOverride: () => {
      throw new Error('no channel today');
    },
  });
  const reply = await withRoutingKey('feature1', () => unary(broken));
  t.equal(reply.error?.code, grpc.status.INTERNAL, 'a failure inside routing is a status, not a throw');
  t.match(reply.error?.details, /^DEVSTACK_INTERNAL: /);
});

t.test('waitForReady asks the channel a call would use', async (t) => {
  const c = routed('orders:50051');
  await withRoutingKey('feature1', () => new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 30_000, (e) => (e ? reject(e) : resolve()))));
  t.same(openTargets(c), [origin('orders:feature1')], 'connected to the copy, not to a DNS name `orders`');
});

t.test('instrumentGrpc does not route, and says so for registry names', async (t) => {
  const warnings: string[] = [];
  diag.setLogger({ verbose() {}, debug() {}, info() {}, warn: (m: string) => void warnings.push(m), error() {} }, DiagLogLevel.WARN);
  t.teardown(() => diag.disable());
  const off = instrumentGrpc(grpc);
  t.teardown(off);
  const plain = new EchoClient('orders:1', insecure);
  clients.push(plain);
  const call = withRoutingKey('feature1', () => plain['unary']!({}, () => {})) as grpc.ClientUnaryCall;
  call.cancel();
  t.match(warnings, [/gRPC calls to "dns:orders:1" are not routed/], 'a warning names the target');
  const direct = new EchoClient(servers['orders:base']!.address, insecure);
  clients.push(direct);
  t.same(first(await withRoutingKey('feature1', () => unary(direct)))?.plain, ['feature1'], 'a registry target by address: given the key');
  const viaOptions = first(await withRoutingKey('feature1', () => unary(orders)));
  t.same([viaOptions?.server, viaOptions?.plain], ['orders:feature1', ['feature1']], 'routed clients: one key entry');
});

t.test('strict mode: a key with no usable copy is refused', async (t) => {
  await reinit({ registry: source, strict: true });
  await sdk.ready;
  const reply = await withRoutingKey('feature9', () => unary(orders));
  t.equal(reply.error?.code, grpc.status.UNAVAILABLE);
  t.match(reply.error?.details, /^DEVSTACK_NO_FEATURE_COPY: /);
  t.equal(first(await withRoutingKey('feature1', () => unary(orders)))?.server, 'orders:feature1', 'a key with a copy still routes');
});

t.test('sdk.close() closes the channels opened for routing', async (t) => {
  t.ok(openTargets(orders).length > 0);
  await sdk.close();
  t.same(openTargets(orders), [], 'none left open');
  sdk = init({ registry: source });
  await sdk.ready;
  t.equal(first(await withRoutingKey('feature1', () => unary(orders)))?.server, 'orders:feature1', 'a new init() routes it again');
});

t.test('no registry snapshot: calls fail with the reason, as UNAVAILABLE', async (t) => {
  await reinit({ registry: t.testdir({}) + '/missing.yaml' });
  await t.rejects(sdk.ready, { code: 'DEVSTACK_REGISTRY_UNAVAILABLE' });
  const reply = await withRoutingKey('feature1', () => unary(orders));
  t.equal(reply.error?.code, grpc.status.UNAVAILABLE);
  t.match(reply.error?.details, /^DEVSTACK_REGISTRY_UNAVAILABLE: devstack: proxyless routing has no registry snapshot from .*missing\.yaml: .*the call to orders:50051 was not routed/);
});
