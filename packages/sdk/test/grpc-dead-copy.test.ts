/*
 * Proxyless gRPC to a dead copy: a feature copy the registry still lists ready but whose server is
 * gone. Every kind of call answers from base (nothing reached the copy: its connection was never
 * made), the copy is passed over for a while (a fake clock for the tracker) and used again once it
 * is back; strict mode answers DEVSTACK_NO_READY_UPSTREAM. Patches grpc-js and the SDK's globals:
 * runs in its own process.
 */
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { LANE_HEADER, StaticSource, buildSnapshot } from '@devstack/core';
import { init, withRoutingKey, type DevstackSdk } from '@devstack/sdk';
import { grpcClientOptions } from '@devstack/sdk/grpc';
import { CALLS, EchoClient, first, startEcho, unary, type Echo, type EchoServer } from './grpc-echo.ts';

let now = 1_000_000;
const clock = { now: () => now };

const base = await startEcho('orders:base');
let copy: EchoServer = await startEcho('orders:feature1');
const copyPort = copy.port;
t.teardown(async () => {
  await base.close();
  await copy.close();
});

/** The copy's server again, on the port the registry lists (bounded retries: the port may take a turn to free). */
async function restart(): Promise<EchoServer> {
  for (let i = 0; ; i++) {
    try {
      return await startEcho('orders:feature1', {}, undefined, copyPort);
    } catch (error) {
      if (i >= 20) throw error;
      await new Promise(setImmediate);
    }
  }
}

const source = new StaticSource(
  buildSnapshot({
    services: {
      orders: { base: { url: `http://${base.address}`, protocol: 'h2c' }, features: { feature1: { url: `http://127.0.0.1:${copyPort}`, protocol: 'h2c' } } },
    },
  }),
);
let sdk: DevstackSdk = init({ registry: source, passiveHealth: { now: clock.now } });
t.teardown(() => sdk.close());
await sdk.ready;

const clients: Echo[] = [];
t.teardown(() => clients.forEach((c) => c.close()));
function client(): Echo {
  const c = new EchoClient('orders:50051', grpc.credentials.createInsecure(), grpcClientOptions(grpc));
  clients.push(c);
  return c;
}
const orders = client();

const keyed = <T>(fn: () => Promise<T>): Promise<T> => withRoutingKey('feature1', fn);

t.test('a live copy serves its key', async (t) => {
  for (const [kind, call] of CALLS) {
    const reply = await keyed(() => call(orders));
    t.equal(first(reply)?.server, 'orders:feature1', kind);
  }
});

t.test('the copy dies: every kind of call answers from base', async (t) => {
  await copy.close();
  for (let round = 0; round < 2; round++) {
    for (const [kind, call] of CALLS) {
      const reply = await keyed(() => call(orders));
      t.equal(reply.error, undefined, `${kind}, round ${round}: no error`);
      t.equal(first(reply)?.server, 'orders:base', `${kind}, round ${round}: base served`);
      t.same(reply.metadata?.get(LANE_HEADER), ['base'], `${kind}, round ${round}: the lane says base`);
    }
  }
  t.ok(sdk.health().some((h) => h.origin === `http://127.0.0.1:${copyPort}` && h.ejectedUntil !== undefined), 'the copy is ejected');
});

t.test('the copy comes back: used again once its ejection ends', async (t) => {
  copy = await restart();
  now += 10_000;
  const reply = await keyed(() => unary(orders));
  t.equal(first(reply)?.server, 'orders:feature1');
  t.same(reply.metadata?.get(LANE_HEADER), ['feature1']);
  t.same(sdk.health(), []);
});

t.test('never ejected (ejectAfter 1000): every kind of call tries the dead copy first, its messages replayed on base', async (t) => {
  await copy.close();
  await sdk.close();
  sdk = init({ registry: source, passiveHealth: { ejectAfter: 1000, now: clock.now } });
  await sdk.ready;
  const c = client();
  for (let round = 0; round < 2; round++) {
    for (const [kind, call] of CALLS) {
      const reply = await keyed(() => call(c));
      t.equal(reply.error, undefined, `${kind}, round ${round}: no error`);
      t.equal(first(reply)?.server, 'orders:base', `${kind}, round ${round}: base served`);
      t.same(reply.metadata?.get(LANE_HEADER), ['base'], `${kind}, round ${round}: the lane says base`);
      if (kind === 'client streaming') t.equal((first(reply) as { keysWhileReading?: unknown[] }).keysWhileReading?.length, 2, 'both messages reached base');
      if (kind === 'bidi streaming') t.equal((reply.value as unknown[]).length, 2, 'both messages answered');
    }
  }
  const record = sdk.health().find((h) => h.origin === `http://127.0.0.1:${copyPort}`);
  t.equal(record?.consecutiveFailures, CALLS.length * 2, 'each call found the copy dead');
  t.equal(record?.ejectedUntil, undefined, 'and none ejected it');
  copy = await restart();
});

t.test('strict: a dead copy is DEVSTACK_NO_READY_UPSTREAM', async (t) => {
  await copy.close();
  await sdk.close();
  sdk = init({ registry: source, strict: true, passiveHealth: { now: clock.now } });
  await sdk.ready;
  const strictClient = client();
  for (let round = 0; round < 2; round++) {
    const reply = await keyed(() => unary(strictClient));
    t.equal(reply.error?.code, grpc.status.UNAVAILABLE, `round ${round}: UNAVAILABLE`);
    t.match(reply.error?.details, /^DEVSTACK_NO_READY_UPSTREAM: /, `round ${round}: the devstack code first`);
    t.same(reply.error?.metadata.get(LANE_HEADER), ['feature1']);
  }
});
