import type { IncomingMessage } from 'node:http';
import type { Dispatcher } from 'undici';
import { failOver, LANE_HEADER, retryable, upstreamFailure, type PassiveHealth, type RouteStepOptions, type Snapshot } from '@devstack/core';
import { canAddTrailers, clientGone, requestHasBody } from './downstream.js';
import type { Exchange, Stage } from './exchange.js';
import type { ProxyErrorCode } from './errors.js';
import { responseHeaderList } from './headers.js';
import { markBody, releaseWhenWritten } from './release.js';
import { forwardH2, type H2ForwardOptions, type H2Sessions } from './h2-upstream.js';
import { canSendTrailers, forwardWithTrailers, sendsTrailers, type TrailerPathOptions } from './trailers.js';

export interface ForwardOptions {
  /** HTTP/2 sessions to upstreams whose target protocol is `h2c`. */
  h2?: H2Sessions | undefined;
  /** Until an HTTP/2 upstream answers with its headers (HTTP/1.1 upstreams: the dispatcher's own). Default 60000. */
  headersTimeoutMs?: number | undefined;
  /** Called for every failed upstream attempt, retried or not. */
  onUpstreamError?: ((ex: Exchange, code: ProxyErrorCode, error: Error) => void) | undefined;
  /** True once shutdown has begun: responses then close their connection. */
  draining?: () => boolean;
  /** Upstream silence that fails a request sent outside undici (one with trailers). Default 60000. */
  idleTimeoutMs?: number | undefined;
  /** The snapshot at hand, where a failed call finds its next target. */
  snapshot?: (() => Snapshot | undefined) | undefined;
  /** The routing step's options (default key, strict, health), the same the lane was chosen with. */
  step?: RouteStepOptions | undefined;
  /** Passive health: connect failures are recorded, connections made clear the record. */
  health?: PassiveHealth | undefined;
  /** A connect failure ejected `ex.target` (`ex.lane` is the lane it served). */
  onEjected?: ((ex: Exchange) => void) | undefined;
  /** The call moved on from lane `from` to `ex.target` in `ex.lane`. */
  onFailOver?: ((ex: Exchange, from: string) => void) | undefined;
}

/** What `retryable` says of a failed attempt. */
export type RetryKind = 'connect' | 'idempotent';

/**
 * Streams one exchange to its target and the answer back, through undici's dispatcher API:
 * no intermediate Readable, backpressure by pausing the upstream when the client is slow.
 */
class ForwardHandler implements Dispatcher.DispatchHandler {
  readonly #ex: Exchange;
  readonly #forward: Forwarder;
  #controller: Dispatcher.DispatchController | undefined;
  #responded = false;
  /** undici had a connection and began writing the request: a byte of it may have reached the target. */
  #started = false;
  /** Body bytes still expected by Content-Length; -1 when the length is not known. */
  #remaining = -1;
  /** The last chunk of a response whose length is known, sent with `end()` in one call. */
  #last: Buffer | undefined;
  /** Why the exchange was cancelled before undici started the request (it waited for a connection). */
  #cancelled: Error | undefined;
  /** True while undici's dispatch() runs: an error then is undici refusing the request before any I/O. */
  dispatching = true;

  constructor(ex: Exchange, forward: Forwarder) {
    this.#ex = ex;
    this.#forward = forward;
    // Set per attempt, so a client that leaves aborts the retry too, not the finished first try;
    // and from the start, so a request still waiting for a pool connection is cancelled as well.
    ex.cancel = this.#cancel;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    this.#started = true;
    this.#forward.connected(this.#ex);
    // A request that waited in the pool may start after its client left: nobody wants its answer.
    if (this.#cancelled !== undefined || clientGone(this.#ex.res)) return controller.abort(this.#cancelled ?? new Error('client closed the connection'));
  }

  readonly #cancel = (reason: Error): void => {
    if (this.#controller === undefined) this.#cancelled = reason;
    else this.#controller.abort(reason);
  };

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return;
    // The sidecar answered already (a client that stalled got its 408): this answer has no taker.
    if (this.#ex.res.headersSent) return controller.abort(new Error('the client was answered already'));
    this.#responded = true;
    const ex = this.#ex;
    const list = responseHeaderList(headers, LANE_HEADER, ex.lane);
    // HTTP/2 has no Connection header: its sessions are drained by GOAWAY instead.
    if (!ex.h2 && this.#forward.draining()) list.push('connection', 'close');
    const length = headers['content-length'];
    if (typeof length === 'string') this.#remaining = Number(length);
    const trailer = headers['trailer'];
    if (trailer !== undefined && canSendTrailers(ex, statusCode, length !== undefined)) list.push('trailer', String(trailer));
    ex.res.writeHead(statusCode, list);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#remaining !== -1 && (this.#remaining -= chunk.length) === 0) {
      this.#last = chunk;
      return;
    }
    if (this.#ex.res.write(chunk, this.#written(chunk))) return;
    // The client reads slower than the upstream sends: hold the upstream until the client drains.
    controller.pause();
    this.#ex.res.once('drain', () => this.#controller?.resume());
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    const { res } = this.#ex;
    // Only a chunked answer has room for trailers; anything else could not carry them anyway.
    if (canAddTrailers(res) && hasAny(trailers)) res.addTrailers(trailers as Record<string, string>);
    const last = this.#last;
    if (last === undefined) res.end();
    else res.end(last, this.#written(last));
  }

  /**
   * The write callback that frees `chunk`'s buffer once written (release.ts). HTTP/2 clients'
   * chunks are left to the collector: an http2 write completes into nghttp2's queue, and when
   * nghttp2 is done with the bytes is not something its callback promises.
   */
  #written(chunk: Buffer): ((error?: Error | null) => void) | undefined {
    return this.#ex.h2 ? undefined : releaseWhenWritten(chunk);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const ex = this.#ex;
    if (ex.res.destroyed || ex.res.writableEnded) return; // the client left or was answered; nothing to answer
    const refused = (error as NodeJS.ErrnoException).code;
    if (this.dispatching && (refused === 'UND_ERR_INVALID_ARG' || refused === 'ERR_ASSERTION')) {
      // What the client sent cannot be sent on (a Host such as `[`): the client's fault, not the upstream's.
      return ex.fail('DEVSTACK_BAD_REQUEST', `cannot forward this request: ${error.message.split('\n')[0]}`);
    }
    // The contract's table (core): the SDK reports the same failure with the same code.
    const known = upstreamFailure(error);
    this.#forward.onUpstreamError(ex, known.code, error);
    const kind = retryable(error, { sent: this.#started, responded: this.#responded || ex.res.headersSent, method: ex.req.method, replayable: !ex.req.readableDidRead });
    if (kind !== false && this.#forward.failOver(ex, kind)) return this.#forward.dispatch(ex);
    if (ex.refusal === 'no-ready-target') return ex.fail('DEVSTACK_NO_READY_UPSTREAM', `strict mode: no ready target left in lane ${ex.lane} of ${ex.service} (${ex.target?.origin ?? ''} failed: ${known.code})`);
    if (this.#responded || ex.res.headersSent) {
      ex.errorCode = known.code;
      ex.res.destroy(error);
      return;
    }
    ex.fail(known.code, `upstream ${ex.target?.origin ?? ''} failed: ${known.code === 'DEVSTACK_UPSTREAM_ERROR' ? error.message : (error as NodeJS.ErrnoException).code}`);
  }
}

class Forwarder {
  readonly #dispatcher: Dispatcher;
  readonly #options: ForwardOptions;

  readonly #h2Path: H2ForwardOptions;

  constructor(dispatcher: Dispatcher, options: ForwardOptions) {
    this.#dispatcher = dispatcher;
    this.#options = options;
    this.#h2Path = {
      headersTimeoutMs: options.headersTimeoutMs ?? 60_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
      draining: () => this.draining(),
      onUpstreamError: (ex, code, error) => this.onUpstreamError(ex, code, error),
      connected: (ex) => this.connected(ex),
      failOver: (ex, kind) => {
        if (!this.failOver(ex, kind)) return false;
        this.dispatch(ex);
        return true;
      },
    };
  }

  #body(ex: Exchange): Exchange['req'] {
    if (!ex.h2) markBody(ex.req as IncomingMessage);
    return ex.req;
  }

  draining(): boolean {
    return this.#options.draining?.() ?? false;
  }

  onUpstreamError(ex: Exchange, code: ProxyErrorCode, error: Error): void {
    this.#options.onUpstreamError?.(ex, code, error);
  }

  /** A connection to `ex.target` was made: passive health forgets its failures. */
  connected(ex: Exchange): void {
    this.#options.health?.success(ex.target!.origin);
  }

  /**
   * Moves a failed call on to its next target (core's `failOver`): the lane's other ready targets,
   * then base (not strict), bounded by the targets it tried. A connect failure of a routed call is
   * a passive health failure first. False when there is none: the failure is then answered.
   */
  failOver(ex: Exchange, kind: RetryKind): boolean {
    const o = this.#options;
    const snapshot = o.snapshot?.();
    // Passthrough and the inbound app have no lane to move in: only a fresh connection to the same target.
    if (ex.decision === undefined || snapshot === undefined || o.step === undefined) {
      if (kind !== 'idempotent' || (ex.tried ??= []).includes(ex.target!)) return false;
      ex.tried.push(ex.target!);
      return true;
    }
    if (kind === 'connect' && o.health?.failure(ex.target!.origin) === true) o.onEjected?.(ex);
    const from = ex.lane;
    if (!failOver(snapshot, ex, o.step, (ex.tried ??= []), kind)) return false;
    o.onFailOver?.(ex, from);
    return true;
  }

  readonly trailerPath: TrailerPathOptions = {
    draining: () => this.draining(),
    idleTimeoutMs: () => this.#options.idleTimeoutMs ?? 60_000,
    failed: (ex, error) => {
      const { code } = upstreamFailure(error);
      this.onUpstreamError(ex, code, error);
      return code;
    },
  };

  dispatch(ex: Exchange): void {
    // A client that is gone (an HTTP/2 stream reset before its request was sent on) is never forwarded.
    if (clientGone(ex.res)) return;
    if (ex.target!.protocol === 'h2c' && this.#options.h2 !== undefined) return forwardH2(ex, this.#options.h2, this.#h2Path);
    // gRPC is HTTP/2 only: sent over HTTP/1.1 it would fail at the upstream in some less clear way.
    if (ex.grpc) return ex.fail('DEVSTACK_UPSTREAM_PROTOCOL', `gRPC needs an HTTP/2 upstream, and ${ex.target!.origin} is HTTP/1.1: mark the target's protocol h2c`);
    ex.attempts++;
    const { req } = ex;
    if (sendsTrailers(ex)) return forwardWithTrailers(ex, this.trailerPath);
    const handler = new ForwardHandler(ex, this);
    try {
      this.#dispatcher.dispatch(
        {
          origin: ex.target!.origin,
          path: ex.path,
          method: req.method as Dispatcher.HttpMethod,
          headers: ex.headers as Record<string, string | string[]>,
          body: requestHasBody(req) ? this.#body(ex) : null,
        },
        handler,
      );
      handler.dispatching = false;
    } catch (error) {
      // undici refuses what it cannot send (a header value it rejects, say) before any I/O.
      ex.fail('DEVSTACK_BAD_REQUEST', `cannot forward this request: ${(error as Error).message}`);
    }
  }
}

function hasAny(record: object | undefined): boolean {
  for (const _ in record) return true;
  return false;
}

function dispatchSettled(forwarder: Forwarder, ex: Exchange): void {
  try {
    forwarder.dispatch(ex);
  } catch (error) {
    ex.fault(error);
  }
}

/** The last stage: sends the request to `ex.target` with `ex.headers`. */
export function forward(dispatcher: Dispatcher, options: ForwardOptions = {}): Stage {
  const forwarder = new Forwarder(dispatcher, options);
  return (ex) => {
    // node:http2 announces a request as its HEADERS frame is read, before the rest of the bytes
    // read with it: an RST_STREAM right behind it (the rapid-reset shape) is only seen one turn
    // later. After that turn a stream its client reset is not forwarded at all.
    if (ex.h2) setImmediate(dispatchSettled, forwarder, ex);
    else forwarder.dispatch(ex);
  };
}
