import { defaultTextMapGetter, defaultTextMapSetter, propagation } from '@opentelemetry/api';
import { RoutingPropagator } from './propagator.js';

/*
 * The app's OpenTelemetry may start before the SDK or after it, with a propagator of its own or
 * none. Registering a global propagator would either fail (one is there) or make the app's own
 * registration fail later, so none is registered: every `propagation.extract` and `inject` (what
 * every instrumentation calls, whatever propagator is global now or later) runs the routing
 * propagator after the global one. Extracting last overrides the W3C baggage propagator's entry
 * (the plain header comes first); injecting last merges into the `baggage` it wrote.
 */
const PATCHED = Symbol.for('devstack.sdk.propagation');

type PropagationApi = typeof propagation & { [PATCHED]?: true };

export function ensurePropagation(): void {
  const api = propagation as PropagationApi;
  if (api[PATCHED] === true) return;
  const ours = new RoutingPropagator();
  const extract = api.extract;
  const inject = api.inject;
  api.extract = function (this: unknown, ctx, carrier, getter = defaultTextMapGetter) {
    return ours.extract(Reflect.apply(extract, this, [ctx, carrier, getter]), carrier, getter);
  };
  api.inject = function (this: unknown, ctx, carrier, setter = defaultTextMapSetter) {
    Reflect.apply(inject, this, [ctx, carrier, setter]);
    ours.inject(ctx, carrier, setter);
  };
  Object.defineProperty(api, PATCHED, { value: true });
}
