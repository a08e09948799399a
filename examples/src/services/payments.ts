/*
 * payments: the end of the chain. It calls nothing and answers which lane served it; the SDK's
 * inbound middleware still reads the key and sets the x-devstack-lane response header.
 */
import http from 'node:http';
import { init, withRouting } from '@devstack/sdk';
import { isHealthCheck, listen, reply, settings, useSidecar } from './common.ts';

const s = settings('payments');
const sdk = init({ lane: s.lane, registry: s.registry });
if (!(await sdk.ready) && sdk.proxyless) throw new Error('payments: no registry snapshot for proxyless routing');
useSidecar(s);

const server = http.createServer(
  withRouting((req, res) => {
    if (isHealthCheck(req)) return reply(res, 200, { status: 'ok' });
    reply(res, 200, { service: s.service, lane: s.lane });
  }),
);
await listen(server, s, sdk);
