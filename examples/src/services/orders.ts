/*
 * orders: the middle of the chain, called by web. GET / asks inventory over gRPC (when INVENTORY
 * names it) and calls payments over HTTP, and answers with what both returned. The demo runs it
 * proxyless: the SDK routes both calls, no sidecar.
 */
import http from 'node:http';
import { init, withRouting } from '@devstack/sdk';
import { callDownstream, isHealthCheck, listen, reply, settings, useSidecar } from './common.ts';
import { inventoryClient, reserve } from './inventory-api.ts';

const s = settings('orders');
// Propagation: the key of each inbound request is put on every call made while handling it.
// With DEVSTACK_REGISTRY set, the SDK also routes those calls itself (proxyless mode).
const sdk = init({ lane: s.lane, registry: s.registry });
// Proxyless: rejects with RegistryUnavailableError (the file's problem) when there is no snapshot.
await sdk.ready;
useSidecar(s);
// Opt-in, so that a fleet without an inventory service (the helmfile's) keeps a working orders.
const inventory = process.env['INVENTORY'] ? inventoryClient(s, process.env['INVENTORY']) : undefined;

const server = http.createServer(
  withRouting(async (req, res) => {
    if (isHealthCheck(req)) return reply(res, 200, { status: 'ok' });
    // Logical names both: the SDK (or the sidecar) picks each one's feature copy or its base, by
    // the key of this request, which both calls carry.
    const [stock, payment] = await Promise.all([inventory && reserve(inventory), callDownstream('http://payments/')]);
    const ok = payment.ok && stock?.ok !== false;
    reply(res, ok ? 200 : 502, { service: s.service, lane: s.lane, ...(stock && { grpc: stock.downstream }), downstream: payment.downstream });
  }),
);
await listen(server, s, sdk);
