import type { IncomingHttpHeaders } from 'node:http';
import type { ProxyErrorCode } from './errors.js';
import type { Stage } from './exchange.js';

/** gRPC status codes the sidecar answers with (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export const GRPC_STATUS = Object.freeze({
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
});

/**
 * The gRPC status of each answer the sidecar makes itself. gRPC clients read the status from the
 * trailers, never the HTTP status, so an HTTP error page would reach them as a protocol error.
 * Where the HTTP status has a mapping in gRPC's own HTTP-to-gRPC table it is followed (404 ->
 * UNIMPLEMENTED, 502/503/504 -> UNAVAILABLE), except where the cause is known better (timeouts ->
 * DEADLINE_EXCEEDED, a loop -> RESOURCE_EXHAUSTED).
 */
export const GRPC_STATUS_OF: Readonly<Record<ProxyErrorCode, number>> = Object.freeze({
  DEVSTACK_BAD_REQUEST: GRPC_STATUS.INTERNAL,
  DEVSTACK_DUPLICATE_HOST: GRPC_STATUS.INTERNAL,
  DEVSTACK_INVALID_HOPS: GRPC_STATUS.INTERNAL,
  DEVSTACK_MISSING_HOST: GRPC_STATUS.INTERNAL,
  DEVSTACK_FORBIDDEN: GRPC_STATUS.PERMISSION_DENIED,
  DEVSTACK_UNKNOWN_SERVICE: GRPC_STATUS.UNIMPLEMENTED,
  DEVSTACK_UNKNOWN_HOST: GRPC_STATUS.UNIMPLEMENTED,
  DEVSTACK_NOT_FOUND: GRPC_STATUS.UNIMPLEMENTED,
  DEVSTACK_METHOD_NOT_ALLOWED: GRPC_STATUS.UNIMPLEMENTED,
  DEVSTACK_CLIENT_TIMEOUT: GRPC_STATUS.DEADLINE_EXCEEDED,
  DEVSTACK_EXPECTATION_FAILED: GRPC_STATUS.INTERNAL,
  DEVSTACK_HEADERS_TOO_LARGE: GRPC_STATUS.RESOURCE_EXHAUSTED,
  DEVSTACK_INTERNAL: GRPC_STATUS.INTERNAL,
  DEVSTACK_UPSTREAM_UNREACHABLE: GRPC_STATUS.UNAVAILABLE,
  DEVSTACK_UPSTREAM_RESET: GRPC_STATUS.UNAVAILABLE,
  DEVSTACK_UPSTREAM_ERROR: GRPC_STATUS.UNAVAILABLE,
  DEVSTACK_UPSTREAM_PROTOCOL: GRPC_STATUS.UNAVAILABLE,
  DEVSTACK_NOT_READY: GRPC_STATUS.UNAVAILABLE,
  DEVSTACK_OVERLOADED: GRPC_STATUS.UNAVAILABLE,
  DEVSTACK_NO_FEATURE_COPY: GRPC_STATUS.UNAVAILABLE,
  DEVSTACK_NO_READY_UPSTREAM: GRPC_STATUS.UNAVAILABLE,
  DEVSTACK_UPSTREAM_CONNECT_TIMEOUT: GRPC_STATUS.UNAVAILABLE,
  DEVSTACK_UPSTREAM_TIMEOUT: GRPC_STATUS.DEADLINE_EXCEEDED,
  DEVSTACK_DEADLINE_EXCEEDED: GRPC_STATUS.DEADLINE_EXCEEDED,
  DEVSTACK_LOOP_DETECTED: GRPC_STATUS.RESOURCE_EXHAUSTED,
});

/** A gRPC call: `application/grpc` or one of its `+proto`/`;...` forms (not gRPC-Web, which is plain HTTP). */
export function isGrpc(headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type'];
  if (type === undefined || type.length < 16 || type.slice(0, 16).toLowerCase() !== 'application/grpc') return false;
  return type.length === 16 || type[16] === '+' || type[16] === ';';
}

/** `grpc-message` is percent-encoded: bytes outside printable ASCII, and `%` itself (gRPC's HTTP/2 protocol spec). */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/**
 * A `grpc-timeout` header (`<1-8 digits><H|M|S|m|u|n>`) in milliseconds; undefined when absent or
 * malformed (a malformed one is not trusted to shorten anything: the call then has no deadline here).
 */
export function grpcTimeoutMs(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || !/^[0-9]{1,8}[HMSmun]$/.test(value)) return undefined;
  return Number(value.slice(0, -1)) * UNIT_MS[value[value.length - 1]!]!;
}

/** The trailer fields of a gRPC error the sidecar makes: the status, and its devstack code in the message. */
export function grpcErrorFields(code: ProxyErrorCode, message: string): { 'grpc-status': string; 'grpc-message': string } {
  return { 'grpc-status': String(GRPC_STATUS_OF[code]), 'grpc-message': encodeGrpcMessage(`${code}: ${message}`) };
}

/**
 * Honours a gRPC call's `grpc-timeout`: when it passes, the upstream stream is cancelled and the
 * client gets DEADLINE_EXCEEDED (the header itself travels on, so the upstream knows it too).
 * One timer per gRPC call with a deadline; other exchanges pass straight through.
 */
export const grpcDeadline: Stage = (ex) => {
  if (!ex.grpc) return ex.next();
  const value = ex.req.headers['grpc-timeout'];
  const ms = grpcTimeoutMs(value);
  if (ms === undefined) return ex.next();
  const timer = setTimeout(() => {
    if (ex.res.writableEnded || ex.res.destroyed) return;
    ex.cancel?.(new Error('deadline exceeded'));
    ex.fail('DEVSTACK_DEADLINE_EXCEEDED', `the call's deadline (grpc-timeout ${String(value)}) passed`);
  }, Math.max(1, Math.ceil(ms)));
  ex.res.once('close', () => clearTimeout(timer));
  ex.next();
};
