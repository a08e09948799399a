import t from 'tap';
import { once } from 'node:events';
import { constants } from 'node:http2';
import { propagation, trace } from '@opentelemetry/api';
import { sidecar, writeRegistry } from './helpers.ts';
import { grpcFrame, h2Client, h2Send, h2Upstream } from './h2-helpers.ts';
import { recordSpans, spanEnded, type Recorded } from './spans.ts';

recordSpans();
// The W3C shape, enough to see the span's context reach the upstream headers.
propagation.setGlobalPropagator({
  inject: (ctx, carrier, setter) => {
    const sc = trace.getSpanContext(ctx);
    if (sc !== undefined) setter.set(carrier, 'traceparent', `00-${sc.traceId}-${sc.spanId}-01`);
  },
  extract: (ctx) => ctx,
  fields: () => ['traceparent'],
});
const GRPC = { 'content-type': 'application/grpc', te: 'trailers' };

t.test('an HTTP/2 exchange is traced like an HTTP/1.1 one: routed attributes, context injected, ended with its answer', async (tt) => {
  const base = await h2Upstream(tt, 'inventory-base');
  const s = await sidecar(tt, writeRegistry(tt.testdir(), { inventory: { base: [{ url: base.origin, protocol: 'h2c' }], features: { f1: [{ url: base.origin, protocol: 'h2c' }] } } }), { tracing: true });
  const session = h2Client(tt, s.addresses.outbound!.port);
  const ended = once(spanEnded, 'end');
  const reply = await h2Send(session, { ...GRPC, ':authority': 'inventory', 'uber-ctx-key': 'f1' }, grpcFrame('{}'));
  const [span] = (await ended) as [Recorded];
  tt.equal(span.attributes['devstack.lane'], 'f1');
  tt.equal(span.attributes['devstack.service'], 'inventory');
  tt.equal(span.attributes['devstack.key'], 'f1');
  tt.equal(span.attributes['http.response.status_code'], 200);
  tt.equal(span.status, undefined, 'a complete answer is not an error');
  tt.match(JSON.parse(reply.body).headers.traceparent, /^00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01$/, 'the span context travels upstream');

  const refusedEnd = once(spanEnded, 'end');
  const call = session.request({ ':method': 'POST', ':path': '/x', ':authority': 'inventory', ...GRPC });
  call.on('error', () => undefined);
  call.write(grpcFrame('{}'));
  await once(base.server, 'stream');
  call.close(constants.NGHTTP2_CANCEL);
  const [cancelled] = (await refusedEnd) as [Recorded];
  tt.equal(cancelled.status, 2, 'a call the client cancelled ends its span as an error');
});
