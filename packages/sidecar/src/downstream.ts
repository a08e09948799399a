import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Readable, Writable } from 'node:stream';

/**
 * The client side of an exchange, whichever transport carried it: node:http's request and response
 * for HTTP/1.1, node:http2's compatibility pair for HTTP/2. The routing stages use only what both
 * have (these interfaces); what only one transport has is reached through `h1`/`h2` below, so a new
 * transport (HTTP/3) is one more pair that meets them.
 */
export interface DownstreamRequest extends Readable {
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly trailers: Record<string, string | undefined> | NodeJS.Dict<string>;
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly httpVersionMajor: number;
  readonly complete: boolean;
  readonly socket: { readonly remoteAddress?: string | undefined; readonly bytesRead?: number | undefined };
}

export interface DownstreamResponse extends Writable {
  statusCode: number;
  readonly headersSent: boolean;
  writeHead(statusCode: number, headers?: OutgoingHttpHeaders | string[]): this;
  addTrailers(trailers: OutgoingHttpHeaders): void;
}

/** The node:http pair behind an HTTP/1.1 exchange, or undefined for another transport. */
export function h1(req: DownstreamRequest, res: DownstreamResponse): { req: IncomingMessage; res: ServerResponse } | undefined {
  return req.httpVersionMajor === 2 ? undefined : { req: req as IncomingMessage, res: res as ServerResponse };
}

/** The node:http2 compatibility response behind an HTTP/2 exchange. */
export function h2Response(res: DownstreamResponse): Http2ServerResponse | undefined {
  return 'stream' in res ? (res as Http2ServerResponse) : undefined;
}

/**
 * Whether the client can no longer be answered: its connection (HTTP/1.1) or stream (HTTP/2) is
 * gone. node:http2 throws when a closed stream is answered, so every answer checks this first.
 */
export function clientGone(res: DownstreamResponse): boolean {
  const h2 = h2Response(res);
  return h2 !== undefined ? h2.stream.destroyed || h2.stream.closed : res.destroyed;
}

export function h2Request(req: DownstreamRequest): Http2ServerRequest | undefined {
  return req.httpVersionMajor === 2 ? (req as Http2ServerRequest) : undefined;
}

/** Whether the response can still end with trailers: HTTP/2 always, HTTP/1.1 only on a chunked body. */
export function canAddTrailers(res: DownstreamResponse): boolean {
  return 'stream' in res || (res as ServerResponse).chunkedEncoding === true;
}

/** Whether the client's request has a body to forward (HTTP/2: no END_STREAM on its HEADERS frame). */
export function requestHasBody(req: DownstreamRequest): boolean {
  const h2 = h2Request(req);
  if (h2 !== undefined) return !h2.stream.endAfterHeaders;
  const h = req.headers;
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

/**
 * Whether the response reached its end, rather than the client leaving first. node:http2's
 * compatibility response reports itself finished once its stream is closed, even by the client's
 * RST_STREAM: only a stream that closed without an error code was answered in full.
 */
export function completed(res: DownstreamResponse): boolean {
  if (!res.writableFinished) return false;
  const h2 = h2Response(res);
  return h2 === undefined || (h2.stream.rstCode ?? 0) === 0;
}
