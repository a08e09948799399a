import type { ResourceType } from './types.js';

/** A `Status` object exactly as the real API server sends it for a failure. */
export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: { name?: string; group?: string; kind?: string; uid?: string; causes?: unknown[]; retryAfterSeconds?: number };
  code: number;
}

/** An API failure: the HTTP layer answers with `status`; the seeding helpers throw it as is. */
export class KubeApiError extends Error {
  readonly code = 'DEVSTACK_KUBE_API';
  readonly status: StatusBody;
  constructor(status: StatusBody, options?: { cause?: unknown }) {
    super(status.message ?? status.reason ?? `HTTP ${status.code}`, options);
    this.name = 'KubeApiError';
    this.status = status;
  }
  get httpStatus(): number {
    return this.status.code;
  }
}

export function failure(code: number, reason: string, message: string, details?: StatusBody['details']): KubeApiError {
  const status: StatusBody = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details) status.details = details;
  return new KubeApiError(status);
}

function qualified(type: ResourceType): string {
  return type.group ? `${type.plural}.${type.group}` : type.plural;
}

function detailsOf(type: ResourceType, name: string): StatusBody['details'] {
  return type.group ? { name, group: type.group, kind: type.plural } : { name, kind: type.plural };
}

export const notFound = (type: ResourceType, name: string) =>
  failure(404, 'NotFound', `${qualified(type)} "${name}" not found`, detailsOf(type, name));

export const alreadyExists = (type: ResourceType, name: string) =>
  failure(409, 'AlreadyExists', `${qualified(type)} "${name}" already exists`, detailsOf(type, name));

export const conflict = (type: ResourceType, name: string) =>
  failure(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(type)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    detailsOf(type, name),
  );

export const badRequest = (message: string) => failure(400, 'BadRequest', message);

export function invalid(type: ResourceType, name: string, field: string, message: string): KubeApiError {
  return failure(422, 'Invalid', `${type.kind} "${name}" is invalid: ${field}: ${message}`, {
    ...detailsOf(type, name),
    kind: type.kind,
    causes: [{ reason: 'FieldValueInvalid', message, field }],
  });
}

/** 410 for a resourceVersion older than the compacted history (watch cache wording). */
export const expired = (requested: number, oldest: number) =>
  failure(410, 'Expired', `too old resource version: ${requested} (${oldest})`);

export const unknownPath = () => failure(404, 'NotFound', 'the server could not find the requested resource', {});

export function successStatus(type: ResourceType, name: string, uid: string | undefined): StatusBody {
  const details = { ...detailsOf(type, name), ...(uid ? { uid } : {}) };
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details, code: 200 };
}

/** The bodies the fault injector answers with, worded as the real server words them. */
export function injected(code: number): KubeApiError {
  switch (code) {
    case 403:
      return failure(403, 'Forbidden', 'forbidden: User "system:anonymous" cannot perform this request', {});
    case 429: {
      const error = failure(429, 'TooManyRequests', 'Too many requests, please try again later.', { retryAfterSeconds: 1 });
      return error;
    }
    case 500:
      return failure(500, 'InternalError', 'Internal error occurred: injected fault', { causes: [{ message: 'injected fault' }] });
    case 503:
      return failure(503, 'ServiceUnavailable', 'the server is currently unable to handle the request');
    case 504:
      return failure(504, 'Timeout', 'the server was unable to return a response in the time allotted');
    default:
      return failure(code, code >= 500 ? 'InternalError' : 'BadRequest', `injected fault ${code}`);
  }
}
