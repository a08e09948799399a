import { diag, type Context, type TextMapGetter, type TextMapPropagator, type TextMapSetter } from '@opentelemetry/api';
import type { MutableHeaderBag } from '@devstack/core';
import { getRoutingKey } from './context.js';
import { extractRoutingContext } from './inbound.js';
import { inboundBaggage } from './passthrough.js';
import { runtime } from './runtime.js';

/** A carrier's current value of `name`, when the carrier can be read (header records, gRPC Metadata, Headers). */
function current(carrier: unknown, name: string): string | string[] | undefined {
  if (typeof carrier !== 'object' || carrier === null) return undefined;
  const own = (carrier as Record<string, unknown>)[name];
  if (typeof own === 'string') return own;
  if (Array.isArray(own)) return own.every((v) => typeof v === 'string') ? (own as string[]) : undefined;
  const get = (carrier as { get?: unknown }).get;
  if (typeof get !== 'function') return undefined;
  try {
    const value: unknown = Reflect.apply(get, carrier, [name]);
    if (typeof value === 'string') return value;
    if (Array.isArray(value)) {
      const strings = value.filter((v): v is string => typeof v === 'string');
      return strings.length === 0 ? undefined : strings;
    }
  } catch {
    // A carrier whose get needs other arguments: treated as empty.
  }
  return undefined;
}

/** A getter's answer, undefined for none: gRPC's metadata getter answers `[]` for a key not there. */
function present(value: string | string[] | undefined): string | string[] | undefined {
  return Array.isArray(value) && value.length === 0 ? undefined : value;
}

/**
 * The routing key as an OpenTelemetry `TextMapPropagator`. `extract` reads every carrier with the
 * sidecar's precedence and conflict rule (plain header, then baggage, then `uberctx-<name>`; a
 * feature copy's lane for a request with none) and puts the key into the context's baggage,
 * replacing an entry that disagrees; an invalid key removes it. `inject` writes the plain header and
 * merges the key into the carrier's `baggage`, keeping every other entry as it is.
 *
 * Put it last in a `CompositePropagator`, after W3C baggage (which replaces the whole baggage when it
 * extracts): `new NodeSDK({ textMapPropagator: new CompositePropagator({ propagators: [new
 * W3CTraceContextPropagator(), new W3CBaggagePropagator(), new RoutingPropagator()] }) })`.
 * `init()` and `register` make every `propagation.extract`/`inject` run it anyway.
 */
export class RoutingPropagator implements TextMapPropagator {
  extract(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    try {
      const codec = runtime().codec;
      const bag: MutableHeaderBag = {};
      for (const name of this.fields()) {
        const value = present(getter.get(carrier, name));
        if (value !== undefined) bag[name] = value;
      }
      if (codec.domains.length > 0) {
        const host = present(getter.get(carrier, 'host')) ?? present(getter.get(carrier, ':authority'));
        if (host !== undefined) bag['host'] = host;
      }
      return extractRoutingContext(bag, ctx);
    } catch (error) {
      diag.error(`devstack: routing key not extracted: ${(error as Error).message}`);
      return ctx;
    }
  }

  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    try {
      const rt = runtime();
      const key = getRoutingKey(ctx) ?? rt.defaultKey;
      if (key === undefined) return;
      const codec = rt.codec;
      const bag: MutableHeaderBag = {};
      const baggage = current(carrier, 'baggage') ?? inboundBaggage(ctx);
      if (baggage !== undefined) bag['baggage'] = typeof baggage === 'string' ? baggage : [...baggage];
      const jaeger = current(carrier, codec.jaegerHeader);
      if (jaeger !== undefined) bag[codec.jaegerHeader] = jaeger;
      codec.write(bag, key);
      for (const name of this.fields()) {
        const value = bag[name];
        if (value !== undefined) setter.set(carrier, name, String(value));
      }
    } catch (error) {
      diag.error(`devstack: routing key not injected: ${(error as Error).message}`);
    }
  }

  fields(): string[] {
    const codec = runtime().codec;
    return [codec.name, 'baggage', codec.jaegerHeader];
  }
}
