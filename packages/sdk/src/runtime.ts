import { diag } from '@opentelemetry/api';
import { createKeyCodec, type KeyCodec } from '@devstack/core';
import { createHostPolicy, type HostPredicate } from './hosts.js';
import type { Metrics } from './metrics.js';
import type { Router } from './router.js';

/**
 * Everything the hot path needs, built once by `init()`. Middleware and helpers used before (or
 * without) `init()` see the defaults, so importing the SDK never makes a request fail.
 */
export interface Runtime {
  readonly codec: KeyCodec;
  /** Key for outbound calls made with none in context (a feature copy's own key). */
  readonly defaultKey: string | undefined;
  /** The lane inbound responses report when the middleware is given none. */
  readonly lane: string;
  /** The registry service this process is (`init({ service })`), for lane consumption. */
  readonly service: string | undefined;
  readonly allowed: HostPredicate;
  readonly router: Router | undefined;
  readonly metrics: Metrics | undefined;
  /** Proxyless mode before its first snapshot: the error for a call to `host` that found no address. */
  readonly unrouted: (host: string) => Error | undefined;
}

const NO_HOSTS: ReadonlySet<string> = new Set();

export function defaultRuntime(): Runtime {
  return {
    codec: createKeyCodec(),
    defaultKey: undefined,
    lane: 'base',
    service: undefined,
    allowed: createHostPolicy({}, () => NO_HOSTS),
    router: undefined,
    metrics: undefined,
    unrouted: () => undefined,
  };
}

let active: Runtime = defaultRuntime();

export function runtime(): Runtime {
  return active;
}

export function setRuntime(next: Runtime): void {
  active = next;
}

const closeHooks = new Set<() => void>();

/**
 * Registers `hook` to run when the SDK closes (`sdk.close()`), for what lives outside the runtime:
 * patches of the app's own modules and the connections opened for it. Returns the unregistration.
 */
export function onClose(hook: () => void): () => void {
  closeHooks.add(hook);
  return () => void closeHooks.delete(hook);
}

export function runCloseHooks(): void {
  for (const hook of [...closeHooks]) {
    try {
      hook();
    } catch (error) {
      diag.error(`devstack: a shutdown step failed: ${(error as Error).message}`);
    }
  }
}
