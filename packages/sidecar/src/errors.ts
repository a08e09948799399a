import { DevstackError, LANE_HEADER } from '@devstack/core';
import { canAddTrailers, clientGone, h2Response, type DownstreamResponse } from './downstream.js';
import { grpcErrorFields } from './grpc.js';

/** Every answer the sidecar makes itself, with its HTTP status. Codes are stable: clients branch on them. */
export const PROXY_ERRORS = Object.freeze({
  DEVSTACK_BAD_REQUEST: 400,
  DEVSTACK_DUPLICATE_HOST: 400,
  DEVSTACK_INVALID_HOPS: 400,
  DEVSTACK_MISSING_HOST: 400,
  DEVSTACK_FORBIDDEN: 403,
  DEVSTACK_UNKNOWN_SERVICE: 404,
  DEVSTACK_UNKNOWN_HOST: 404,
  DEVSTACK_NOT_FOUND: 404,
  DEVSTACK_METHOD_NOT_ALLOWED: 405,
  DEVSTACK_CLIENT_TIMEOUT: 408,
  DEVSTACK_EXPECTATION_FAILED: 417,
  DEVSTACK_HEADERS_TOO_LARGE: 431,
  DEVSTACK_INTERNAL: 500,
  DEVSTACK_UPSTREAM_UNREACHABLE: 502,
  DEVSTACK_UPSTREAM_RESET: 502,
  DEVSTACK_UPSTREAM_ERROR: 502,
  DEVSTACK_UPSTREAM_PROTOCOL: 502,
  DEVSTACK_NOT_READY: 503,
  DEVSTACK_NO_FEATURE_COPY: 503,
  DEVSTACK_NO_READY_UPSTREAM: 503,
  DEVSTACK_OVERLOADED: 503,
  DEVSTACK_UPSTREAM_CONNECT_TIMEOUT: 504,
  DEVSTACK_UPSTREAM_TIMEOUT: 504,
  DEVSTACK_DEADLINE_EXCEEDED: 504,
  DEVSTACK_LOOP_DETECTED: 508,
});

export type ProxyErrorCode = keyof typeof PROXY_ERRORS;

/** A listener that could not open (port in use, no permission): the sidecar cannot start. */
export class ListenError extends DevstackError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DEVSTACK_LISTEN', message, options);
  }
}

export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** Answers with the error's status and a JSON body `{ error: { code, message } }`, or as a gRPC error for gRPC calls. */
export function sendError(res: DownstreamResponse, code: ProxyErrorCode, message: string, lane: string, grpc = false): void {
  // The client left (a reset stream, a closed connection) before its answer was ready: no one to
  // tell, and an HTTP/2 stream would throw.
  if (clientGone(res)) return;
  if (grpc) return sendGrpcError(res, code, message, lane);
  if (res.headersSent) {
    // Too late for a status: cutting the connection is the only honest signal left.
    res.destroy();
    return;
  }
  const body = errorBody(code, message);
  res.writeHead(PROXY_ERRORS[code], {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    [LANE_HEADER]: lane,
    'cache-control': 'no-store',
  });
  res.end(body);
}

/**
 * A gRPC error: HTTP 200 with `grpc-status` and `grpc-message` (the devstack code first). Before the
 * response began it is a trailers-only response (one HEADERS frame that ends the stream, which is
 * what gRPC clients expect); after, the status goes in the trailers.
 */
function sendGrpcError(res: DownstreamResponse, code: ProxyErrorCode, message: string, lane: string): void {
  const fields = grpcErrorFields(code, message);
  if (res.writableEnded) {
    res.destroy();
    return;
  }
  if (res.headersSent) {
    if (canAddTrailers(res)) {
      res.addTrailers(fields);
      res.end();
    } else {
      res.destroy();
    }
    return;
  }
  res.statusCode = 200;
  const h2 = h2Response(res);
  if (h2 !== undefined) {
    h2.stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...fields, [LANE_HEADER]: lane }, { endStream: true });
    return;
  }
  res.writeHead(200, { 'content-type': 'application/grpc', ...fields, [LANE_HEADER]: lane, 'content-length': 0 });
  res.end();
}

/** A raw HTTP/1.1 error answer for sockets the HTTP server could not parse or upgrade; no lane was chosen. */
export function rawErrorResponse(code: ProxyErrorCode, message: string): string {
  const body = errorBody(code, message);
  const status = PROXY_ERRORS[code];
  const reason = STATUS_TEXT[status] ?? 'Error';
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${LANE_HEADER}: none\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  417: 'Expectation Failed',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  508: 'Loop Detected',
};
