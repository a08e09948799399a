import { createRequire } from 'node:module';
import { defaultTextMapGetter, defaultTextMapSetter, propagation, type TextMapPropagator } from '@opentelemetry/api';
import { RoutingPropagator } from './propagator.js';

/*
 * The app's OpenTelemetry may start before the SDK or after it, with a propagator of its own or
 * none, through the API's ES module build (`--import`, `import`) or its CommonJS one (`--require`,
 * `require`), from the app's copy of the API or another. Registering a global propagator would
 * either fail (one is there) or make the app's own registration fail later, so none is registered.
 * What every build and copy of the API shares is the global it keeps its registrations in: the
 * propagator registered there, now or later, is read through a wrapper that runs the routing
 * propagator after it. Extracting last overrides the W3C baggage propagator's entry (the plain
 * header comes first); injecting last merges into the `baggage` it wrote. While none is registered
 * the API calls its no-op propagator, so the `propagation` objects of the builds the SDK can reach
 * run the routing propagator themselves then.
 */
const PATCHED = Symbol.for('devstack.sdk.propagation');
/** Where @opentelemetry/api 1.x keeps its registrations, shared by its builds and copies. */
const GLOBAL_API = Symbol.for('opentelemetry.js.api.1');

type PropagationApi = typeof propagation & { [PATCHED]?: true };
type GlobalApi = Record<string | symbol, unknown> & { propagation?: unknown; [PATCHED]?: true };
type GlobalHolder = Record<symbol, GlobalApi | undefined> & { [PATCHED]?: true };

const ours = new RoutingPropagator();

/** `inner` with the routing propagator after it, marked so the builds' hooks do not run it twice. */
function wrap(inner: TextMapPropagator): TextMapPropagator {
  return {
    [PATCHED]: true,
    inject(ctx, carrier, setter) {
      inner.inject(ctx, carrier, setter);
      ours.inject(ctx, carrier, setter);
    },
    extract(ctx, carrier, getter) {
      return ours.extract(inner.extract(ctx, carrier, getter), carrier, getter);
    },
    fields() {
      return [...new Set([...inner.fields(), ...ours.fields()])];
    },
  } as TextMapPropagator;
}

function isWrapped(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PATCHED] === true;
}

/**
 * The API's `propagation` slot as an accessor: what is registered is kept as it is (an unregistered
 * slot still reads as empty, so a later registration is no duplicate), and read wrapped.
 */
function hookSlot(api: GlobalApi): void {
  if (api[PATCHED] === true || !Object.isExtensible(api)) return;
  const descriptor = Object.getOwnPropertyDescriptor(api, 'propagation');
  if (descriptor !== undefined && descriptor.configurable !== true) return;
  const now = api.propagation as TextMapPropagator | undefined;
  let wrapped = now === undefined || now === null ? now : wrap(now);
  Object.defineProperty(api, 'propagation', {
    configurable: true,
    enumerable: true,
    get: () => wrapped,
    set(value: TextMapPropagator | undefined) {
      wrapped = value === undefined || value === null || isWrapped(value) ? value : wrap(value);
    },
  });
  Object.defineProperty(api, PATCHED, { value: true });
}

/** Hooks the global registrations now, or when the first registration creates them. */
function hookGlobal(): void {
  const holder = globalThis as unknown as GlobalHolder;
  const api = holder[GLOBAL_API];
  if (api !== undefined && api !== null) {
    hookSlot(api);
    return;
  }
  if (holder[PATCHED] === true) return;
  let value: GlobalApi | undefined;
  Object.defineProperty(globalThis, GLOBAL_API, {
    configurable: true,
    enumerable: false,
    get: () => value,
    set(next: GlobalApi | undefined) {
      // Once it exists it is a plain property again, as the API made it.
      Object.defineProperty(globalThis, GLOBAL_API, { configurable: true, enumerable: false, writable: true, value: next });
      value = next;
      if (next !== undefined && next !== null) hookSlot(next);
    },
  });
  Object.defineProperty(holder, PATCHED, { value: true });
}

/** Runs the routing propagator from one build's `propagation` while no propagator is registered. */
function hookBuild(api: PropagationApi): void {
  if (api[PATCHED] === true) return;
  const extract = api.extract;
  const inject = api.inject;
  const registered = (): boolean => isWrapped((globalThis as unknown as GlobalHolder)[GLOBAL_API]?.propagation);
  api.extract = function (this: unknown, ctx, carrier, get = defaultTextMapGetter) {
    const out = Reflect.apply(extract, this, [ctx, carrier, get]) as ReturnType<typeof extract>;
    return registered() ? out : ours.extract(out, carrier, get);
  };
  api.inject = function (this: unknown, ctx, carrier, set = defaultTextMapSetter) {
    Reflect.apply(inject, this, [ctx, carrier, set]);
    if (!registered()) ours.inject(ctx, carrier, set);
  };
  Object.defineProperty(api, PATCHED, { value: true });
}

/** The other build of the API the SDK resolves (CommonJS, as `require` loads it), if it loads. */
function otherBuild(): PropagationApi | undefined {
  try {
    const api = createRequire(import.meta.url)('@opentelemetry/api') as { propagation?: PropagationApi } | undefined;
    return api?.propagation === propagation ? undefined : api?.propagation;
  } catch {
    return undefined;
  }
}

export function ensurePropagation(): void {
  hookGlobal();
  const api = propagation as PropagationApi;
  if (api[PATCHED] === true) return;
  hookBuild(api);
  const other = otherBuild();
  if (other !== undefined) hookBuild(other);
}
