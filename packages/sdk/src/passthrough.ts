import { context, createContextKey, propagation, type Context } from '@opentelemetry/api';
import type { HeaderBag } from '@devstack/core';

/*
 * Without an OpenTelemetry SDK nothing turns an incoming `baggage` header into context, so the
 * entries that are not the key would stop at the first hop the SDK writes `baggage` on. The header
 * as it arrived is kept in the request's context, and an outbound call that carries no `baggage` of
 * its own gets it back with the key merged in: every other entry byte for byte.
 */
const INBOUND_BAGGAGE = createContextKey('devstack.sdk.inbound-baggage');

/**
 * `ctx` holding the request's raw `baggage` header: none when it had none, or when `ctx`'s baggage
 * already holds entries besides the key (OpenTelemetry's baggage propagator read the header, and
 * writes those entries on every call itself: both would repeat them).
 */
export function withInboundBaggage(ctx: Context, headers: HeaderBag, keyName: string): Context {
  const raw = headers['baggage'];
  const parsed = propagation.getBaggage(ctx)?.getAllEntries().some(([name]) => name !== keyName) === true;
  const value = !parsed && (typeof raw === 'string' || Array.isArray(raw)) ? raw : undefined;
  if (ctx.getValue(INBOUND_BAGGAGE) === value) return ctx;
  return value === undefined ? ctx.deleteValue(INBOUND_BAGGAGE) : ctx.setValue(INBOUND_BAGGAGE, value);
}

/** The `baggage` header the request in `ctx` arrived with, as it was. */
export function inboundBaggage(ctx: Context = context.active()): string | readonly string[] | undefined {
  return ctx.getValue(INBOUND_BAGGAGE) as string | readonly string[] | undefined;
}
