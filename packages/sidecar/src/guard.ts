import type { Duplex } from 'node:stream';
import type { DownstreamRequest, DownstreamResponse } from './downstream.js';
import { isGrpc } from './grpc.js';
import { PROXY_ERRORS, rawErrorResponse, sendError, type ProxyErrorCode } from './errors.js';
import type { Listener, SidecarMetrics } from './metrics.js';
import type { Logger } from './log.js';

function destroySelf(this: Duplex): void {
  this.destroy();
}

/**
 * What keeps one request from ending the process: every server event handler runs inside a guard,
 * and a throw there is logged, counted and answered for that request or socket alone.
 */
export class Guard {
  readonly #log: Logger;
  readonly #metrics: SidecarMetrics;

  constructor(log: Logger, metrics: SidecarMetrics) {
    this.#log = log;
    this.#metrics = metrics;
  }

  /** Logs and counts a throw from the sidecar's own code; the caller answers the request. */
  report(listener: Listener, error: unknown): void {
    this.#metrics.internalError(listener);
    const e = error instanceof Error ? error : new Error(String(error));
    this.#log.error('request failed inside the sidecar', { listener, error: e.message, stack: e.stack });
  }

  /** A request handler that answers 500 (or cuts the connection once the response began) when it throws. */
  request<Req extends DownstreamRequest, Res extends DownstreamResponse>(listener: Listener, handler: (req: Req, res: Res) => void) {
    return (req: Req, res: Res): void => {
      try {
        handler(req, res);
      } catch (error) {
        this.report(listener, error);
        if (!res.headersSent) this.#metrics.refused(listener, PROXY_ERRORS.DEVSTACK_INTERNAL);
        try {
          sendError(res, 'DEVSTACK_INTERNAL', 'the sidecar failed on this request', 'none', isGrpc(req.headers));
        } catch {
          res.destroy();
        }
      }
    };
  }

  /** A socket-level handler (upgrade, CONNECT, parse errors) whose throw ends that socket alone. */
  socket<T>(listener: Listener, handler: (first: T, socket: Duplex, head: Buffer) => void) {
    return (first: T, socket: Duplex, head: Buffer): void => {
      // Node hands over an upgraded or CONNECT socket without an 'error' listener: a client's
      // reset would then be an unhandled 'error' event, which ends the process.
      if (socket.listenerCount('error') === 0) socket.on('error', destroySelf);
      try {
        handler(first, socket, head);
      } catch (error) {
        this.report(listener, error);
        this.refuse(listener, socket, 'DEVSTACK_INTERNAL', 'the sidecar failed on this request');
      }
    };
  }

  /**
   * Ends a socket with a raw JSON error (no lane was chosen: `none`) and counts it; a socket that
   * can no longer be written to is destroyed and not counted, as no answer was made.
   */
  refuse(listener: Listener, socket: Duplex, code: ProxyErrorCode, message: string): void {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    this.#metrics.refused(listener, PROXY_ERRORS[code]);
    socket.end(rawErrorResponse(code, message));
  }
}
