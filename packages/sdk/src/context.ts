import { ROOT_CONTEXT, context, createContextKey, diag, propagation, type Context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { describeUntrusted, isValidKey } from '@devstack/core';
import { yieldContextManager } from './manager-yield.js';
import { runtime } from './runtime.js';

const PROBE = createContextKey('devstack.sdk.probe');
let managerChecked = false;

/**
 * Registers an AsyncLocalStorage context manager unless the app already has one. The check is
 * behavioural (does `context.with` carry a value?) so it works with any manager and any API copy.
 */
export function ensureContextManager(): void {
  if (managerChecked) return;
  managerChecked = true;
  const works = context.with(ROOT_CONTEXT.setValue(PROBE, true), () => context.active().getValue(PROBE) === true);
  if (works) return;
  const manager = new AsyncLocalStorageContextManager();
  manager.enable();
  if (!context.setGlobalContextManager(manager)) diag.warn('devstack: could not register a context manager; routing keys will not follow async work');
  else yieldContextManager(manager);
}

/** The routing key in `ctx` (default: the active context), or undefined. Invalid values are no key. */
export function getRoutingKey(ctx: Context = context.active()): string | undefined {
  const value = propagation.getBaggage(ctx)?.getEntry(runtime().codec.name)?.value;
  return value !== undefined && isValidKey(value) ? value : undefined;
}

/** `ctx` with the key set in its baggage, or removed when `key` is undefined or invalid. */
export function contextWithRoutingKey(ctx: Context, key: string | undefined): Context {
  const name = runtime().codec.name;
  const baggage = propagation.getBaggage(ctx);
  if (key === undefined || !isValidKey(key)) {
    if (key !== undefined) diag.warn(`devstack: ignored routing key ${describeUntrusted(key)}: not a DNS-1123 label`);
    if (baggage?.getEntry(name) === undefined) return ctx;
    return propagation.setBaggage(ctx, baggage.removeEntry(name));
  }
  if (baggage?.getEntry(name)?.value === key) return ctx;
  const next = baggage === undefined ? propagation.createBaggage({ [name]: { value: key } }) : baggage.setEntry(name, { value: key });
  return propagation.setBaggage(ctx, next);
}

/**
 * Runs `fn` with `key` as the routing key and returns what it returns: for jobs, consumers and
 * timers that start work outside a request. An invalid key runs `fn` with no key.
 */
export function withRoutingKey<T>(key: string | undefined, fn: () => T): T {
  ensureContextManager();
  return context.with(contextWithRoutingKey(context.active(), key), fn);
}

/** The key outbound calls should carry now: the context's, else the configured default. */
export function outboundKey(): string | undefined {
  return getRoutingKey() ?? runtime().defaultKey;
}

/** Whether the allow-list lets `host` (a hostname, no port) receive the routing key. */
export function isAllowedHost(host: string): boolean {
  return runtime().allowed(host);
}
