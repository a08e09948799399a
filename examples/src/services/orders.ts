/*
 * orders: the middle of the chain, called by web. GET / calls payments and answers with what it
 * returned. The demo runs it proxyless: the SDK routes its calls to payments, no sidecar.
 */
import http from 'node:http';
import { init, withRouting } from '@devstack/sdk';
import { callDownstream, isHealthCheck, listen, reply, settings, useSidecar } from './common.ts';

const s = settings('orders');
// Propagation: the key of each inbound request is put on every call made while handling it.
// With DEVSTACK_REGISTRY set, the SDK also routes those calls itself (proxyless mode).
const sdk = init({ lane: s.lane, registry: s.registry });
// Proxyless: rejects with RegistryUnavailableError (the file's problem) when there is no snapshot.
await sdk.ready;
useSidecar(s);

const server = http.createServer(
  withRouting(async (req, res) => {
    if (isHealthCheck(req)) return reply(res, 200, { status: 'ok' });
    // A logical name: the sidecar (or the SDK) picks payments' feature copy or its base.
    const { ok, downstream } = await callDownstream('http://payments/');
    reply(res, ok ? 200 : 502, { service: s.service, lane: s.lane, downstream });
  }),
);
await listen(server, s, sdk);
