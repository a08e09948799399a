import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { LANE_HEADER } from '@devstack/core';
import { canAddTrailers, h1 } from './downstream.js';
import type { Exchange } from './exchange.js';
import type { ProxyErrorCode } from './errors.js';
import { responseHeaderList } from './headers.js';

/** True for a request that announces trailers on a chunked body (undici cannot send request trailers). */
export function sendsTrailers(ex: Exchange): boolean {
  const h = ex.req.headers;
  return h.trailer !== undefined && h['transfer-encoding'] !== undefined;
}

/**
 * Whether the response to the client can carry trailers: only a chunked body can (RFC 9112 §7.1.2),
 * so not a HEAD, 204 or 304 answer, a body with a known length, or an HTTP/1.0 client. Node refuses
 * to write a `Trailer` header on any other response.
 */
export function canSendTrailers(ex: Exchange, status: number, hasLength: boolean): boolean {
  if (status === 204 || status === 304 || ex.req.method === 'HEAD') return false;
  // HTTP/2 frames trailers itself, whatever the body's length.
  const http1 = h1(ex.req, ex.res);
  return http1 === undefined || (!hasLength && http1.res.useChunkedEncodingByDefault);
}

export interface TrailerPathOptions {
  draining(): boolean;
  /** Upstream silence (connecting included) after which the exchange fails with a timeout. */
  idleTimeoutMs(): number;
  /** Maps an upstream failure to the sidecar's error code and counts it. */
  failed(ex: Exchange, error: Error): ProxyErrorCode;
}

/**
 * Forwards a request that carries trailers through node:http, which can write them, on a connection
 * of its own: such requests are rare (gRPC bridges, checksummed uploads), so they get no pool and no
 * retry (the body streams as it arrives). Response trailers come back as on the main path.
 */
export function forwardWithTrailers(ex: Exchange, options: TrailerPathOptions): void {
  const { req, res } = ex;
  const target = new URL(ex.target!.origin);
  const headers: OutgoingHttpHeaders = { 'transfer-encoding': 'chunked', trailer: req.headers.trailer };
  for (const [name, value] of Object.entries(ex.headers ?? {})) if (value !== undefined) headers[name] = value;
  const upstream = (target.protocol === 'https:' ? httpsRequest : httpRequest)({ host: target.hostname, port: target.port, method: req.method, path: ex.path, headers, agent: false });
  upstream.setTimeout(options.idleTimeoutMs(), () => upstream.destroy(Object.assign(new Error('upstream timed out'), { code: 'UND_ERR_BODY_TIMEOUT' })));
  upstream.on('response', (response) => {
    try {
      relay(ex, response, options);
    } catch (error) {
      response.destroy();
      ex.fault(error);
    }
  });
  upstream.on('error', (error) => {
    if (res.destroyed) return;
    const code = options.failed(ex, error);
    if (res.headersSent) {
      ex.errorCode = code;
      res.destroy(error);
      return;
    }
    ex.fail(code, `upstream ${ex.target!.origin} failed: ${(error as NodeJS.ErrnoException).code ?? error.message}`);
  });
  ex.cancel = (reason) => upstream.destroy(reason);
  req.on('end', () => {
    try {
      upstream.addTrailers(req.trailers);
      upstream.end();
    } catch (error) {
      upstream.destroy();
      ex.fault(error);
    }
  });
  req.pipe(upstream, { end: false });
}

/** The upstream's answer to the client: headers with the lane, the body, then the trailers. */
function relay(ex: Exchange, response: IncomingMessage, options: TrailerPathOptions): void {
  const { res } = ex;
  const status = response.statusCode ?? 502;
  const hasLength = response.headers['content-length'] !== undefined;
  const list = responseHeaderList(response.headers, LANE_HEADER, ex.lane);
  const announced = response.headers.trailer;
  const trailers = announced !== undefined && canSendTrailers(ex, status, hasLength);
  if (trailers) list.push('trailer', announced);
  if (!ex.h2 && options.draining()) list.push('connection', 'close');
  res.writeHead(status, list);
  response.on('error', (error) => res.destroy(error));
  response.on('end', () => {
    try {
      if (canAddTrailers(res) && response.rawTrailers.length > 0) res.addTrailers(response.trailers);
      res.end();
    } catch (error) {
      ex.fault(error);
    }
  });
  response.pipe(res, { end: false });
}
