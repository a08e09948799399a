import { DevstackError } from '@devstack/core';

/** An object or queue a command needs is not there (a missing source secret, a missing IngressRoute). */
export class NotFoundError extends DevstackError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DEVSTACK_HOOK_NOT_FOUND', message, options);
  }
}

/** The object exists but was not made by devstack-hooks: it is left as it is rather than taken over. */
export class NotOwnedError extends DevstackError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DEVSTACK_HOOK_NOT_OWNED', message, options);
  }
}

/** Every attempt met a conflict or a transient failure; `cause` is the last one. */
export class RetriesExhaustedError extends DevstackError {
  readonly attempts: number;

  constructor(what: string, attempts: number, options: { cause: unknown }) {
    super('DEVSTACK_HOOK_RETRIES_EXHAUSTED', `${what}: gave up after ${attempts} attempts: ${reason(options.cause)}`, options);
    this.attempts = attempts;
  }
}

/**
 * A Kubernetes API call that failed: `status` is the HTTP status (undefined when no answer came),
 * the message the API server's `Status` gave.
 */
export class KubeCallError extends DevstackError {
  readonly status: number | undefined;

  constructor(what: string, status: number | undefined, detail: string, options?: { cause?: unknown }) {
    super('DEVSTACK_HOOK_KUBE_API', `${what}: ${status === undefined ? 'no answer' : `HTTP ${status}`}: ${detail}`, options);
    this.status = status;
  }
}

/**
 * A Kubernetes API request that got no complete answer within `--request-timeout`. Not retried: a
 * server that accepted and stayed silent that long is not answering this Job, whose own retries
 * (the Job's `backoffLimit`) start from a fresh pod and connection.
 */
export class RequestTimeoutError extends DevstackError {
  readonly timeoutMs: number;

  constructor(what: string, timeoutMs: number, options?: { cause?: unknown }) {
    super('DEVSTACK_HOOK_KUBE_TIMEOUT', `${what}: no answer within ${timeoutMs} ms (--request-timeout)`, options);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * An answer that is not what a Kubernetes API server sends: not JSON, `null`, an object of another
 * kind or name, an error that is not a `Status`. Something else answered (a proxy's page, a
 * captive portal, a wrong address): said as such, never read as a missing or foreign object.
 */
export class BadResponseError extends DevstackError {
  readonly status: number;

  constructor(what: string, status: number, detail: string, options?: { cause?: unknown }) {
    super('DEVSTACK_HOOK_KUBE_BAD_RESPONSE', `${what}: HTTP ${status}: ${detail}`, options);
    this.status = status;
  }
}

/** An SQS call that failed; `name` is the AWS error name (`QueueDoesNotExist`, …). */
export class SqsCallError extends DevstackError {
  readonly awsName: string | undefined;
  readonly status: number | undefined;

  constructor(what: string, awsName: string | undefined, status: number | undefined, detail: string, options?: { cause?: unknown }) {
    super('DEVSTACK_HOOK_SQS', `${what}: ${awsName ?? 'error'}: ${detail}`, options);
    this.awsName = awsName;
    this.status = status;
  }
}

/** An SNS call that failed; `awsName` is the AWS error name (`NotFound`, `InvalidParameter`, …). */
export class SnsCallError extends DevstackError {
  readonly awsName: string | undefined;
  readonly status: number | undefined;

  constructor(what: string, awsName: string | undefined, status: number | undefined, detail: string, options?: { cause?: unknown }) {
    super('DEVSTACK_HOOK_SNS', `${what}: ${awsName ?? 'error'}: ${detail}`, options);
    this.awsName = awsName;
    this.status = status;
  }
}

/**
 * A PostgreSQL call that failed; `sqlState` is the server's SQLSTATE (`42501`, …), undefined when
 * no answer came (a refused connection, a timeout).
 */
export class PostgresCallError extends DevstackError {
  readonly sqlState: string | undefined;

  constructor(what: string, sqlState: string | undefined, detail: string, options?: { cause?: unknown }) {
    super('DEVSTACK_HOOK_POSTGRES', `${what}: ${sqlState === undefined ? '' : `SQLSTATE ${sqlState}: `}${detail}`, options);
    this.sqlState = sqlState;
  }
}

/**
 * `CREATE DATABASE ... TEMPLATE` was refused on every attempt because other sessions were
 * connected to the template (SQLSTATE 55006): PostgreSQL copies a template only while no one else
 * is connected to it.
 */
export class TemplateBusyError extends DevstackError {
  readonly attempts: number;
  readonly sessions: number | undefined;

  constructor(message: string, attempts: number, sessions: number | undefined, options: { cause: unknown }) {
    super('DEVSTACK_HOOK_PG_TEMPLATE_BUSY', message, options);
    this.attempts = attempts;
    this.sessions = sessions;
  }
}

/** A secret's value that a command cannot use (a database URL that is not one); the value is never shown. */
export class SecretValueError extends DevstackError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DEVSTACK_HOOK_SECRET_VALUE', message, options);
  }
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** No kubeconfig could be loaded: no --kubeconfig, no KUBECONFIG, not in a pod. */
export class NoCredentialsError extends DevstackError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DEVSTACK_HOOK_NO_CREDENTIALS', message, options);
  }
}
