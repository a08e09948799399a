import { DevstackError, REFUSALS, type Refusal } from '@devstack/core';

/**
 * An outbound call that proxyless routing refused: strict mode and a key with no usable copy, or a
 * lane with no ready target. It reaches the app the way a connection error would (an `error`
 * event, a rejected fetch), never as a synchronous throw. `code` and `status` are what the sidecar
 * answers for the same call (`DEVSTACK_NO_FEATURE_COPY` or `DEVSTACK_NO_READY_UPSTREAM`, 503).
 */
export class RoutingRejectedError extends DevstackError {
  readonly service: string;
  /** `no-feature-copy` or `no-ready-target`. */
  readonly reason: Refusal;
  readonly status: number;

  constructor(service: string, reason: Refusal, options?: { cause?: unknown }) {
    super(REFUSALS[reason].code, `devstack: no route to ${service} (${reason})`, options);
    this.service = service;
    this.reason = reason;
    this.status = REFUSALS[reason].status;
  }
}

/**
 * Proxyless mode without a registry snapshot: the source could not give its first one (a missing
 * or invalid file), or has not yet. `sdk.ready` rejects with it, and a call that fails to find a
 * host while there is no snapshot fails with it instead of a bare DNS error. `cause` is the
 * source's own error when there is one.
 */
export class RegistryUnavailableError extends DevstackError {
  /** The registry as configured: a file path, or the source's kind. */
  readonly registry: string;

  constructor(registry: string, message: string, options?: { cause?: unknown }) {
    super('DEVSTACK_REGISTRY_UNAVAILABLE', `devstack: proxyless routing has no registry snapshot from ${registry}: ${message}`, options);
    this.registry = registry;
  }
}
