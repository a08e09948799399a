import { diag } from '@opentelemetry/api';
import { RegistryUnavailableError } from './errors.js';
import type { Router } from './router.js';

export interface Readiness {
  /** true once proxyless routing has a snapshot; false without a registry; rejects with the reason. */
  readonly ready: Promise<boolean>;
  /** Why calls cannot be routed yet (no snapshot), naming the host; undefined once they can. */
  unrouted(host: string): RegistryUnavailableError | undefined;
}

const NONE: Readiness = { ready: Promise.resolve(false), unrouted: () => undefined };

/**
 * Proxyless mode that never gets a snapshot must not look like a DNS problem much later: the
 * failure is a warning on stderr at once (a process warning: visible without any logger set up),
 * `ready` rejects with it, and calls that then fail to find their host carry it.
 */
export function watchReadiness(router: Router | undefined, registry: string): Readiness {
  if (router === undefined) return NONE;
  let failure: Error | undefined;
  const ready = router.start().then(
    () => true,
    (error: Error) => {
      failure = error;
      const reason = new RegistryUnavailableError(registry, error.message, { cause: error });
      diag.error(reason.message);
      process.emitWarning(`${reason.message}; calls to registry services are not routed`, { type: 'DevstackWarning', code: reason.code });
      throw reason;
    },
  );
  // Awaiting `ready` still rejects; an app that never awaits it is not killed by an unhandled rejection.
  ready.catch(() => undefined);
  return {
    ready,
    unrouted(host) {
      if (router.snapshot !== undefined) return undefined;
      const why = failure === undefined ? 'not loaded yet' : failure.message;
      return new RegistryUnavailableError(registry, `${why}; the call to ${host} was not routed`, { cause: failure });
    },
  };
}
