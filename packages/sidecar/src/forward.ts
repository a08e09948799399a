import type { Dispatcher } from 'undici';
import { LANE_HEADER } from '@devstack/core';
import type { Exchange, Stage } from './exchange.js';
import type { ProxyErrorCode } from './errors.js';
import { responseHeaderList } from './headers.js';
import { nextTarget } from './route.js';

/** undici and socket error codes, mapped to the sidecar's answer; `retry` marks failures before any byte was sent. */
const UPSTREAM_ERRORS: Record<string, { code: ProxyErrorCode; retry: boolean }> = {
  ECONNREFUSED: { code: 'DEVSTACK_UPSTREAM_UNREACHABLE', retry: true },
  EHOSTUNREACH: { code: 'DEVSTACK_UPSTREAM_UNREACHABLE', retry: true },
  ENETUNREACH: { code: 'DEVSTACK_UPSTREAM_UNREACHABLE', retry: true },
  ENOTFOUND: { code: 'DEVSTACK_UPSTREAM_UNREACHABLE', retry: true },
  EAI_AGAIN: { code: 'DEVSTACK_UPSTREAM_UNREACHABLE', retry: true },
  UND_ERR_CONNECT_TIMEOUT: { code: 'DEVSTACK_UPSTREAM_CONNECT_TIMEOUT', retry: true },
  UND_ERR_HEADERS_TIMEOUT: { code: 'DEVSTACK_UPSTREAM_TIMEOUT', retry: false },
  UND_ERR_BODY_TIMEOUT: { code: 'DEVSTACK_UPSTREAM_TIMEOUT', retry: false },
  UND_ERR_SOCKET: { code: 'DEVSTACK_UPSTREAM_RESET', retry: false },
  ECONNRESET: { code: 'DEVSTACK_UPSTREAM_RESET', retry: false },
  EPIPE: { code: 'DEVSTACK_UPSTREAM_RESET', retry: false },
};

const OTHER = { code: 'DEVSTACK_UPSTREAM_ERROR' as const, retry: false };

export interface ForwardOptions {
  /** Called for every failed upstream attempt, retried or not. */
  onUpstreamError?: ((ex: Exchange, code: ProxyErrorCode, error: Error) => void) | undefined;
  /** True once shutdown has begun: responses then close their connection. */
  draining?: () => boolean;
}

function hasBody(ex: Exchange): boolean {
  const h = ex.req.headers;
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

/**
 * Streams one exchange to its target and the answer back, through undici's dispatcher API:
 * no intermediate Readable, backpressure by pausing the upstream when the client is slow.
 */
class ForwardHandler implements Dispatcher.DispatchHandler {
  readonly #ex: Exchange;
  readonly #forward: Forwarder;
  #controller: Dispatcher.DispatchController | undefined;
  #responded = false;
  /** Body bytes still expected by Content-Length; -1 when the length is not known. */
  #remaining = -1;
  /** The last chunk of a response whose length is known, sent with `end()` in one call. */
  #last: Buffer | undefined;

  constructor(ex: Exchange, forward: Forwarder) {
    this.#ex = ex;
    this.#forward = forward;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#ex.attempts === 1) {
      const { res } = this.#ex;
      res.on('close', () => {
        if (!res.writableFinished) this.#controller?.abort(new Error('client closed the connection'));
      });
    }
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return;
    this.#responded = true;
    const ex = this.#ex;
    const list = responseHeaderList(headers, LANE_HEADER, ex.lane);
    if (this.#forward.draining()) list.push('connection', 'close');
    const length = headers['content-length'];
    if (typeof length === 'string') this.#remaining = Number(length);
    ex.res.writeHead(statusCode, list);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#remaining !== -1 && (this.#remaining -= chunk.length) === 0) {
      this.#last = chunk;
      return;
    }
    if (this.#ex.res.write(chunk)) return;
    // The client reads slower than the upstream sends: hold the upstream until the client drains.
    controller.pause();
    this.#ex.res.once('drain', () => this.#controller?.resume());
  }

  onResponseEnd(): void {
    this.#ex.res.end(this.#last);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const ex = this.#ex;
    if (ex.res.destroyed) return; // the client left; nothing to answer
    const known = UPSTREAM_ERRORS[(error as NodeJS.ErrnoException).code ?? ''] ?? OTHER;
    this.#forward.onUpstreamError(ex, known.code, error);
    // One retry, and only when nothing reached the upstream: no response, no body byte read.
    if (known.retry && !this.#responded && ex.attempts < 2 && !ex.req.readableDidRead) {
      const lane = ex.decision?.lane;
      if (lane !== undefined && lane.ready.length > 1) ex.target = nextTarget(lane, ex.target);
      return this.#forward.dispatch(ex);
    }
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

  constructor(dispatcher: Dispatcher, options: ForwardOptions) {
    this.#dispatcher = dispatcher;
    this.#options = options;
  }

  draining(): boolean {
    return this.#options.draining?.() ?? false;
  }

  onUpstreamError(ex: Exchange, code: ProxyErrorCode, error: Error): void {
    this.#options.onUpstreamError?.(ex, code, error);
  }

  dispatch(ex: Exchange): void {
    ex.attempts++;
    const { req } = ex;
    try {
      this.#dispatcher.dispatch(
        {
          origin: ex.target!.origin,
          path: ex.path,
          method: req.method as Dispatcher.HttpMethod,
          headers: ex.headers as Record<string, string | string[]>,
          body: hasBody(ex) ? req : null,
        },
        new ForwardHandler(ex, this),
      );
    } catch (error) {
      // undici refuses what it cannot send (a header value it rejects, say) before any I/O.
      ex.fail('DEVSTACK_BAD_REQUEST', `cannot forward this request: ${(error as Error).message}`);
    }
  }
}

/** The last stage: sends the request to `ex.target` with `ex.headers`. */
export function forward(dispatcher: Dispatcher, options: ForwardOptions = {}): Stage {
  const forwarder = new Forwarder(dispatcher, options);
  return (ex) => forwarder.dispatch(ex);
}
