/*
 * The SDK next to @opentelemetry/sdk-node with http and undici auto-instrumentation: both write
 * `baggage`, and a request must still carry one routing key entry, not two. The SDK is started
 * first, so OpenTelemetry's undici hook runs after ours (the harder order). Own process.
 */
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { Agent, request as undiciRequest } from 'undici';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { baggageValues } from '@devstack/core';
import { init, withRouting, withRoutingKey } from '@devstack/sdk';

// No exporter may try to reach a collector: spans go to a processor that drops them.
process.env.OTEL_METRICS_EXPORTER = 'none';
process.env.OTEL_LOGS_EXPORTER = 'none';

const sdk = init();
t.teardown(() => sdk.close());
const dropSpans = { onStart() {}, onEnd() {}, forceFlush: async () => {}, shutdown: async () => {} };
const otel = new NodeSDK({
  instrumentations: [new HttpInstrumentation(), new UndiciInstrumentation()],
  resourceDetectors: [],
  spanProcessors: [dropSpans],
});
otel.start();
t.teardown(() => otel.shutdown());
// instrumentation-http patches on require; the ESM default import is the same object.
createRequire(import.meta.url)('http');

const received: http.IncomingHttpHeaders[] = [];
const echo = http.createServer(
  withRouting((req, res) => {
    received.push(req.headers);
    res.end('ok');
  }),
);
await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
t.teardown(() => new Promise<void>((r) => echo.close(() => r())));
const port = (echo.address() as AddressInfo).port;

function viaHttp(url: string, options: http.RequestOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, options, (res) => res.resume().on('end', resolve));
    req.on('error', reject);
    req.end();
  });
}

t.test('fetch, undici and http.request each carry one baggage entry', async (t) => {
  received.length = 0;
  const url = `http://127.0.0.1:${port}/`;
  await withRoutingKey('feature1', async () => {
    await (await fetch(url)).text();
    await (await fetch(url, { headers: { baggage: 'team=pay' } })).text();
    await (await undiciRequest(url)).body.text();
    await viaHttp(url);
    await viaHttp(url, { headers: { baggage: 'team=pay,uber-ctx-key=stale' } });
  });
  t.equal(received.length, 5);
  for (const [i, h] of received.entries()) {
    t.ok(h.traceparent, `${i}: OpenTelemetry instrumented the call`);
    t.equal(h['uber-ctx-key'], 'feature1', `${i}: plain header`);
    t.same(baggageValues(h.baggage, 'uber-ctx-key'), ['feature1'], `${i}: one baggage entry (${String(h.baggage)})`);
    t.notOk(Array.isArray(h.baggage) || String(h.baggage).includes('uber-ctx-key=feature1,uber-ctx-key'), `${i}: no repeat`);
  }
  t.match(received[1]!.baggage, /team=pay/, 'the app\'s own baggage is kept');
});

t.test('a hop through an instrumented server keeps one entry', async (t) => {
  received.length = 0;
  const front = http.createServer(
    withRouting(async (_req, res) => {
      await (await fetch(`http://127.0.0.1:${port}/`)).text();
      res.end('ok');
    }),
  );
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => front.close(() => r())));
  // The client sends the key only as baggage: OpenTelemetry extracts it, the SDK agrees.
  await viaHttp(`http://127.0.0.1:${(front.address() as AddressInfo).port}/`, { headers: { baggage: 'uber-ctx-key=feature2' } });
  t.equal(received.length, 1);
  t.equal(received[0]!['uber-ctx-key'], 'feature2');
  t.same(baggageValues(received[0]!.baggage, 'uber-ctx-key'), ['feature2']);
});

t.test('OpenTelemetry\'s baggage does not leak the key to an excluded host', async (t) => {
  received.length = 0;
  const lookup = (_host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) =>
    options.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4);
  const agent = new Agent({ connect: { lookup: lookup as never } });
  t.teardown(() => agent.close());
  const url = `http://api.example.com:${port}/`;
  await withRoutingKey('feature1', async () => {
    await (await fetch(url, { dispatcher: agent } as RequestInit)).text();
    await (await undiciRequest(url, { dispatcher: agent })).body.text();
    await viaHttp(url, { lookup: lookup as never });
  });
  t.equal(received.length, 3);
  for (const [i, h] of received.entries()) {
    t.ok(h.traceparent, `${i}: instrumented`);
    t.equal(h['uber-ctx-key'], undefined, `${i}: no plain header`);
    t.same(baggageValues(h.baggage, 'uber-ctx-key'), [], `${i}: no baggage entry`);
  }
});
