import { context, propagation, trace, SpanKind, SpanStatusCode, ROOT_CONTEXT, type Tracer } from '@opentelemetry/api';
import { completed, h1 } from './downstream.js';
import type { Exchange, Stage } from './exchange.js';
import type { SidecarMetrics } from './metrics.js';

/**
 * Records every exchange once it ends, whether the response finished or the client left. An
 * upgrade that opens a tunnel never ends this way: it is recorded when its 101 is relayed
 * (see `forwardUpgrade`'s `onOpen`), so its duration is the handshake, not the tunnel's life.
 */
const CLIENT_LEFT = new Error('client closed the connection');

/**
 * The one owner of client aborts, whatever carries the exchange: when the client leaves before its
 * response is complete (a closed connection, an HTTP/2 RST_STREAM), the upstream side is cancelled
 * through `ex.cancel`, which each transport sets for the attempt it is making.
 */
export const cancelOnClientLeave: Stage = (ex) => {
  ex.res.once('close', () => {
    if (!completed(ex.res)) ex.cancel?.(CLIENT_LEFT);
  });
  ex.next();
};

export function measure(metrics: SidecarMetrics): Stage {
  return (ex) => {
    ex.res.on('close', () => metrics.request(ex, completed(ex.res) ? ex.res.statusCode : 'aborted'));
    ex.next();
  };
}

const getter = {
  keys: (carrier: Exchange['req']['headers']) => Object.keys(carrier),
  get: (carrier: Exchange['req']['headers'], key: string) => carrier[key],
};

/**
 * A span per proxied request, continuing the incoming trace. Placed after routing so the span
 * carries service, lane and key; the span context is injected into the upstream headers.
 * Only part of the pipeline when an OpenTelemetry SDK is running (see otel.ts).
 */
export function traceExchange(tracer: Tracer, keyAttribute: string): Stage {
  return (ex) => {
    const parent = propagation.extract(ROOT_CONTEXT, ex.req.headers, getter);
    const span = tracer.startSpan(
      `${ex.direction} ${ex.service ?? ex.host ?? ''}`,
      {
        kind: ex.direction === 'inbound' ? SpanKind.SERVER : SpanKind.CLIENT,
        attributes: {
          'http.request.method': ex.req.method ?? '',
          'devstack.direction': ex.direction,
          'devstack.service': ex.service ?? '',
          'devstack.lane': ex.lane,
          [keyAttribute]: ex.key ?? '',
          'devstack.reason': ex.decision?.reason ?? '',
        },
      },
      parent,
    );
    if (ex.headers !== undefined) propagation.inject(trace.setSpan(parent, span), ex.headers);
    // An upgraded response never closes (its socket is handed to the tunnel): an upgrade's span
    // lasts as long as the client's connection, which ends with the tunnel or after the answer.
    const upgraded = (ex.req as { upgrade?: boolean }).upgrade === true ? h1(ex.req, ex.res) : undefined;
    const ended = upgraded !== undefined ? upgraded.req.socket : ex.res;
    ended.once('close', () => {
      const status = ex.res.statusCode;
      span.setAttribute('http.response.status_code', status);
      if (ex.errorCode !== undefined) span.setAttribute('devstack.error', ex.errorCode);
      if (status >= 500 || (status !== 101 && !completed(ex.res))) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    context.with(trace.setSpan(parent, span), () => ex.next());
  };
}
