/*
 * Sidecar mode over gRPC: the SDK only carries the key (`init()`, no registry) and grpc-js clients
 * made with grpcClientOptions() call the sidecar's outbound port (HTTP/2 with prior knowledge),
 * naming the service in the authority; the sidecar routes each call to the feature copy or base.
 * Both the SDK and the sidecar write the key: every hop must get it once. Patches grpc-js and the
 * SDK's globals: runs in its own process.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { LANE_HEADER, baggageValues } from '@devstack/core';
import { FileSource } from '@devstack/registry-file';
import { Sidecar, createLogger } from '@devstack/sidecar';
import { init, withRoutingKey } from '@devstack/sdk';
import { grpcClientOptions, grpcServerInterceptor } from '@devstack/sdk/grpc';
import { CALLS, EchoClient, first, startEcho, unary, type Echo, type EchoServer, type Seen } from './grpc-echo.ts';

const sdk = init();
t.teardown(() => sdk.close());

const insecure = grpc.credentials.createInsecure();
const clients: Echo[] = [];
t.teardown(() => clients.forEach((c) => c.close()));
// Filled in once the sidecar listens; the handlers read it per call.
let outboundAddress = '';
function viaSidecar(service: string): Echo {
  const c = new EchoClient(outboundAddress, insecure, grpcClientOptions(grpc, { 'grpc.default_authority': service }));
  clients.push(c);
  return c;
}

const servers: Record<string, EchoServer> = {};
t.teardown(() => Promise.all(Object.values(servers).map((s) => s.close())));
// The orders handlers call payments through the sidecar too, once it listens.
const peers: { payments?: Echo } = {};
servers['payments:base'] = await startEcho('payments:base', { interceptors: [grpcServerInterceptor(grpc)] });
for (const lane of ['base', 'feature1']) {
  servers[`orders:${lane}`] = await startEcho(`orders:${lane}`, { interceptors: [grpcServerInterceptor(grpc, { lane })] }, async () => first(await unary(peers.payments!)));
}
const h2c = (id: string) => [{ url: `http://${servers[id]!.address}`, protocol: 'h2c' }];
const path = join(t.testdir({}), 'registry.json');
await writeFile(path, JSON.stringify({
  services: {
    orders: { base: h2c('orders:base'), features: { feature1: h2c('orders:feature1') } },
    payments: { base: h2c('payments:base') },
  },
}));

const sidecar = new Sidecar({ source: new FileSource({ path, persistent: false }), outbound: { port: 0, host: '127.0.0.1' }, logger: createLogger('silent') });
const { outbound } = await sidecar.start();
t.teardown(() => sidecar.close());
outboundAddress = `127.0.0.1:${outbound!.port}`;
peers.payments = viaSidecar('payments');
const orders = viaSidecar('orders');

type Same = Pick<typeof t, 'same'>;

function once(tt: Same, s: Seen | undefined, key: string, what: string): void {
  tt.same(s?.plain, [key], `${what}: one plain entry`);
  tt.same(baggageValues(s?.baggage ?? [], 'uber-ctx-key'), [key], `${what}: one baggage entry`);
}

t.test('the sidecar routes each call by the key the SDK wrote', async (t) => {
  for (const [kind, call] of CALLS) {
    const reply = await withRoutingKey('feature1', () => call(orders));
    t.notOk(reply.error, `${kind}: no error`);
    const s = first(reply);
    t.equal(s?.server, 'orders:feature1', `${kind}: the feature copy`);
    once(t, s, 'feature1', kind);
    t.equal(s?.key, 'feature1', `${kind}: in the handler's context`);
    t.equal(reply.metadata?.get(LANE_HEADER)[0], 'feature1', `${kind}: the lane in the response metadata`);
    const base = first(await call(orders));
    t.equal(base?.server, 'orders:base', `${kind}: no key: base`);
    t.same(base?.plain, [], `${kind}: and no key sent`);
  }
});

t.test('a chain through the sidecar: the handler calls on with the key it received', async (t) => {
  const reply = await withRoutingKey('feature1', () => unary(orders, { nested: true }));
  t.equal(reply.value?.server, 'orders:feature1');
  const nested = reply.value?.nested as Seen | undefined;
  t.equal(nested?.server, 'payments:base', 'payments has no copy: base');
  once(t, nested, 'feature1', 'payments');
});

t.test('the sidecar answers an unknown service with a gRPC status', async (t) => {
  const reply = await withRoutingKey('feature1', () => unary(viaSidecar('nowhere')));
  t.equal(reply.error?.code, grpc.status.UNIMPLEMENTED);
  t.match(reply.error?.details, /^DEVSTACK_UNKNOWN_SERVICE: /);
});
