import type { ServerResponse } from 'node:http';
import { DevstackError, LANE_HEADER } from '@devstack/core';

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
  DEVSTACK_NOT_READY: 503,
  DEVSTACK_NO_FEATURE_COPY: 503,
  DEVSTACK_NO_READY_UPSTREAM: 503,
  DEVSTACK_UPSTREAM_CONNECT_TIMEOUT: 504,
  DEVSTACK_UPSTREAM_TIMEOUT: 504,
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

/** Answers with the error's status and a JSON body `{ error: { code, message } }`. */
export function sendError(res: ServerResponse, code: ProxyErrorCode, message: string, lane: string): void {
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
