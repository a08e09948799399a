/*
 * web: the entry service. GET / calls orders and answers what the whole chain did, e.g.
 * {"service":"web","lane":"feature1","downstream":{"service":"orders","lane":"base",...}}.
 * POST /events (when SQS_ENDPOINT names an SQS server) publishes an event with the request's key
 * and answers which worker lane processed it.
 */
import http from 'node:http';
import { getRoutingKey, init, withRouting, withRoutingKey } from '@devstack/sdk';
import { callDownstream, isHealthCheck, listen, reply, settings, useSidecar } from './common.ts';
import { EVENTS_QUEUE } from '../plan.ts';
import type { Publisher } from './events.ts';

const s = settings('web');
// Propagation: the key of each inbound request is put on every call made while handling it.
// With DEVSTACK_REGISTRY set, the SDK also routes those calls itself (proxyless mode).
const sdk = init({ lane: s.lane, registry: s.registry });
if (!(await sdk.ready) && sdk.proxyless) throw new Error('web: no registry snapshot for proxyless routing');
useSidecar(s);
// Opt-in, as orders' gRPC call is: a fleet without an SQS server (the helmfile's) keeps a working web.
const sqs = process.env['SQS_ENDPOINT'];
// Loaded and started by the first POST /events: the AWS SDK costs start-up time (and memory) that
// a run of the demo may never use, and web is ready without the SQS server. A failed start is retried.
let publisher: Promise<Publisher> | undefined;
const publisherOf = (endpoint: string) =>
  (publisher ??= import('./events.ts')
    // Outside the request's key: the reply loop it starts outlives the request.
    .then((events) => withRoutingKey(undefined, () => events.startPublisher(endpoint, `${events.REPLY_PREFIX}${s.service}-${s.lane}`)))
    .catch((error: unknown) => {
      publisher = undefined;
      throw error;
    }));

const server = http.createServer(
  withRouting(async (req, res) => {
    if (isHealthCheck(req)) return reply(res, 200, { status: 'ok' });
    if (req.url === '/events') {
      if (req.method !== 'POST') return reply(res, 405, { error: { code: 'DEVSTACK_DEMO_METHOD', message: 'POST /events publishes an event' } });
      if (sqs === undefined) return reply(res, 404, { error: { code: 'DEVSTACK_DEMO_NO_QUEUE', message: 'no SQS server configured (SQS_ENDPOINT)' } });
      req.resume();
      const published = { queue: EVENTS_QUEUE, key: getRoutingKey() ?? null };
      try {
        // The key travels as a message attribute; the worker lane it picks answers on our reply queue.
        const processed = await (await publisherOf(sqs)).publish();
        return reply(res, 200, { service: s.service, lane: s.lane, published, processed });
      } catch (error) {
        const code = (error as { code?: unknown }).code === 'DEVSTACK_DEMO_NOT_PROCESSED' ? 'DEVSTACK_DEMO_NOT_PROCESSED' : 'DEVSTACK_DEMO_QUEUE_FAILED';
        return reply(res, code === 'DEVSTACK_DEMO_NOT_PROCESSED' ? 504 : 502, { service: s.service, lane: s.lane, published, processed: { status: null, error: code, message: (error as Error).message } });
      }
    }
    // A logical name: the sidecar (or the SDK) picks orders' feature copy or its base.
    const { ok, downstream } = await callDownstream('http://orders/');
    reply(res, ok ? 200 : 502, { service: s.service, lane: s.lane, downstream });
  }),
);
await listen(server, s, sdk, () => publisher?.then((p) => p.close(), () => undefined));
