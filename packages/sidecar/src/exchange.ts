import type { Decision, KeyReading, MutableHeaderBag, Refusal, RouteFields, Target } from '@devstack/core';
import type { DownstreamRequest, DownstreamResponse } from './downstream.js';
import { sendError, type ProxyErrorCode } from './errors.js';
import { isGrpc } from './grpc.js';

export type Direction = 'outbound' | 'inbound' | 'edge';

/**
 * One request on its way through a listener's stages. Stages read and fill it in, then call
 * `next()`; a stage that answers the request itself simply does not call `next()`.
 * One object per request and no closures: the pipeline allocates nothing else of its own.
 */
export class Exchange implements RouteFields {
  readonly req: DownstreamRequest;
  readonly res: DownstreamResponse;
  readonly direction: Direction;
  readonly started: number;
  /** The client speaks HTTP/2 (h2c). */
  readonly h2: boolean;
  /** A gRPC call: errors the sidecar makes are gRPC statuses, and stream-length calls have no idle timeouts. */
  readonly grpc: boolean;
  /** Cancels the upstream side of the exchange (set by the transport that carries it). */
  cancel: ((reason: Error) => void) | undefined = undefined;
  /** Headers to send upstream; built by the header stage. */
  headers: MutableHeaderBag | undefined = undefined;
  /** Path (and query) to send upstream. */
  path: string;
  /** The Host the client meant, passed on unchanged. */
  host: string | undefined = undefined;
  /** Logical service the request is for (outbound, edge). */
  service: string | undefined = undefined;
  reading: KeyReading | undefined = undefined;
  /** The routing key the request carries on (after default key and validation). */
  key: string | undefined = undefined;
  decision: Decision | undefined = undefined;
  target: Target | undefined = undefined;
  /** What the lane response header says: `base`, a key, or `none` before a lane is chosen. */
  lane = 'none';
  /** Why the routing step refused the request, if it did. */
  refusal: Refusal | undefined = undefined;
  /** Devstack hops the request arrived with (read once by the loop guard). */
  hops = 0;
  /** A call for a host outside the registry, passed through to it (outbound `--passthrough`). */
  passthrough = false;
  /** Set when the sidecar answered with an error instead of the upstream's response. */
  errorCode: ProxyErrorCode | undefined = undefined;
  attempts = 0;
  /** Targets this call tried and failed on (failover), made on the first failure. */
  tried: Target[] | undefined = undefined;
  readonly #stages: readonly Stage[];
  readonly #onFault: FaultHandler | undefined;
  #index = 0;

  constructor(req: DownstreamRequest, res: DownstreamResponse, direction: Direction, stages: readonly Stage[], onFault?: FaultHandler) {
    this.req = req;
    this.res = res;
    this.direction = direction;
    this.started = performance.now();
    this.h2 = req.httpVersionMajor === 2;
    this.grpc = isGrpc(req.headers);
    this.path = req.url ?? '/';
    this.#stages = stages;
    this.#onFault = onFault;
  }

  next(): void {
    const stage = this.#stages[this.#index++];
    if (stage === undefined) return;
    // Each stage runs inside the previous stage's next(): a throw is caught once, at the nearest level.
    try {
      stage(this);
    } catch (error) {
      this.fault(error);
    }
  }

  /**
   * A stage, or a callback working for one, threw: this request gets a 500 (or loses its
   * connection once its response has begun); the listener and every other exchange go on.
   */
  fault(error: unknown): void {
    this.errorCode = 'DEVSTACK_INTERNAL';
    try {
      this.#onFault?.(this, error);
    } catch {
      // Reporting a fault must not become a second one.
    }
    try {
      sendError(this.res, 'DEVSTACK_INTERNAL', 'the sidecar failed on this request', this.lane, this.grpc);
    } catch {
      this.res.destroy();
    }
  }

  fail(code: ProxyErrorCode, message: string): void {
    this.errorCode = code;
    sendError(this.res, code, message, this.lane, this.grpc);
  }
}

/** A piece of the request path. Calls `ex.next()` to go on, or answers and stops. */
export type Stage = (ex: Exchange) => void;

export type Pipeline = (req: DownstreamRequest, res: DownstreamResponse) => void;

/** Told about every fault (to log and count it); the exchange answers it itself. */
export type FaultHandler = (ex: Exchange, error: unknown) => void;

/** Runs stages in order for every request (like undici's `compose` for interceptors). */
export function compose(direction: Direction, stages: readonly Stage[], onFault?: FaultHandler): Pipeline {
  const frozen = Object.freeze([...stages]);
  return (req, res) => new Exchange(req, res, direction, frozen, onFault).next();
}
