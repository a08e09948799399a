import { DevstackError } from '@devstack/core';

/**
 * An outbound call that proxyless routing refused: strict mode and a key with no usable copy, or a
 * lane with no ready target. It reaches the app the way a connection error would (an `error`
 * event, a rejected fetch), never as a synchronous throw.
 */
export class RoutingRejectedError extends DevstackError {
  readonly service: string;
  readonly reason: string;

  constructor(service: string, reason: string) {
    super('DEVSTACK_ROUTE_REJECTED', `devstack: no route to ${service} (${reason})`);
    this.service = service;
    this.reason = reason;
  }
}
