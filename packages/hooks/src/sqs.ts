import { ConfigError, DevstackError, FEATURE_LABEL } from '@devstack/core';
import type * as SqsSdk from '@aws-sdk/client-sqs';
import type { QueueAttributeName, SQSClient } from '@aws-sdk/client-sqs';
import { NotFoundError, SqsCallError } from './errors.js';
import { secretStore, type KubeTarget } from './kube.js';
import { DEFAULT_REQUEST_TIMEOUT_MS } from './request.js';
import { SILENT, type Logger } from './log.js';
import type { RetryOptions } from './retry.js';
import { setKeys } from './secret.js';
import { dnsLabel, dnsSubdomain, problemsOf, queueName, routingKey, secretKey } from './validate.js';

export const DEFAULT_QUEUE_URL_KEY = 'QUEUE_URL';

/**
 * The base queue's attributes a copy gets. Not `Policy`, `RedrivePolicy` or `RedriveAllowPolicy`:
 * they name the base queue's ARN or its dead-letter queue, so a copy would send its failures into
 * the base's dead letters. Pass them with `attributes` when a copy needs its own.
 */
export const COPIED_ATTRIBUTES: readonly string[] = Object.freeze([
  'DelaySeconds', 'MaximumMessageSize', 'MessageRetentionPeriod', 'ReceiveMessageWaitTimeSeconds', 'VisibilityTimeout',
  'FifoQueue', 'ContentBasedDeduplication', 'DeduplicationScope', 'FifoThroughputLimit',
  'KmsMasterKeyId', 'KmsDataKeyReusePeriodSeconds', 'SqsManagedSseEnabled',
]);

/** Attributes SQS lets no one change after creation. */
const IMMUTABLE = new Set(['FifoQueue']);

export interface SqsConnection {
  /** An SQS-compatible endpoint (LocalStack, an emulator); default: AWS, or `AWS_ENDPOINT_URL_SQS`. */
  endpoint?: string | undefined;
  /** Default: `AWS_REGION`, else us-east-1. */
  region?: string | undefined;
  /** A client to use instead (tests, custom credentials). */
  client?: SQSClient | undefined;
  /** Per request, in ms, Kubernetes and SQS alike (default 30 000). */
  requestTimeoutMs?: number | undefined;
  /** The largest Kubernetes API answer read, in bytes (default 8 MiB). */
  maxResponseBytes?: number | undefined;
}

export interface CreateQueueOptions extends SqsConnection {
  queue: string;
  key: string;
  /** Attributes over the base queue's, as SQS names them. */
  attributes?: Record<string, string> | undefined;
  /** Write the queue URL into this secret of the copy (created when missing). */
  secret?: { kc: KubeTarget; namespace: string; name: string; key?: string | undefined } | undefined;
  retry?: RetryOptions | undefined;
  log?: Logger | undefined;
}

export interface DeleteQueueOptions extends SqsConnection {
  queue: string;
  key: string;
  log?: Logger | undefined;
}

/** `<name>-<key>`, with a FIFO queue's `.fifo` kept last: `orders.fifo` + `feature1` -> `orders-feature1.fifo`. */
export function copyQueueName(queue: string, key: string): string {
  const fifo = queue.endsWith('.fifo');
  return `${fifo ? queue.slice(0, -5) : queue}-${key}${fifo ? '.fifo' : ''}`;
}

function checkCommon(options: { queue: string; key: string; endpoint?: string | undefined }): string[] {
  const problems = problemsOf([[routingKey, '--key', options.key], [queueName, '--queue', options.queue]]);
  if (problems.length === 0) problems.push(...problemsOf([[queueName, '--queue', copyQueueName(options.queue, options.key)]]).map((p) => `${p} (the copy's name)`));
  if (options.endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(options.endpoint)) problems.push('--endpoint: expected an http:// or https:// URL');
  return problems;
}

export function checkCreateQueueOptions(options: CreateQueueOptions): void {
  const problems = checkCommon(options);
  for (const [name, value] of Object.entries(options.attributes ?? {})) {
    if (!/^[A-Za-z]{1,64}$/.test(name) || typeof value !== 'string') problems.push(`--attributes: ${JSON.stringify(name)} must be an attribute name with a string value`);
  }
  if (options.secret !== undefined) problems.push(...problemsOf([[dnsSubdomain, '--secret', options.secret.name], [secretKey, '--secret-key', options.secret.key], [dnsLabel, '--namespace', options.secret.namespace]]));
  if (problems.length > 0) throw new ConfigError(problems);
}

export function checkDeleteQueueOptions(options: DeleteQueueOptions): void {
  const problems = checkCommon(options);
  if (problems.length > 0) throw new ConfigError(problems);
}

export type SqsSdkModule = typeof SqsSdk;

/** Loaded by the commands that talk to SQS only: the SDK is ~25 MiB that the Kubernetes commands never need. */
export const sqsSdk = (): Promise<SqsSdkModule> => import('@aws-sdk/client-sqs');

export function sqsClient(SDK: SqsSdkModule, options: SqsConnection): SQSClient {
  const timeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  return (
    options.client ??
    new SDK.SQSClient({
      region: options.region ?? process.env['AWS_REGION'] ?? 'us-east-1',
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      // Without throwOnRequestTimeout the SDK only warns and keeps waiting.
      requestHandler: { connectionTimeout: timeout, requestTimeout: timeout, throwOnRequestTimeout: true },
    })
  );
}

export const missing = (error: unknown) => {
  const name = (error as { name?: string }).name;
  return name === 'QueueDoesNotExist' || name === 'AWS.SimpleQueueService.NonExistentQueue';
};

export async function call<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof DevstackError) throw error;
    const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    throw new SqsCallError(what, e.name, e.$metadata?.httpStatusCode, e.message ?? String(error), { cause: error });
  }
}

export async function urlOf(SDK: SqsSdkModule, sqs: SQSClient, name: string): Promise<string | undefined> {
  try {
    return (await sqs.send(new SDK.GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
  } catch (error) {
    if (missing(error)) return undefined;
    throw error;
  }
}

export interface CreateQueueOutcome {
  name: string;
  url: string;
  change: 'created' | 'updated' | 'unchanged';
  /** What happened to the secret, when one was asked for. */
  secret?: 'created' | 'updated' | 'unchanged';
}

/**
 * Creates the copy's queue with the base queue's attributes (over which `attributes` go), or
 * brings an existing one's changeable attributes in line; then writes its URL into the copy's
 * secret. The SDK retries throttling and server faults itself.
 */
export async function createQueue(options: CreateQueueOptions): Promise<CreateQueueOutcome> {
  checkCreateQueueOptions(options);
  const log = options.log ?? SILENT;
  const SDK = await sqsSdk();
  const sqs = sqsClient(SDK, options);
  try {
    const { name, url, change } = await ensureQueue(SDK, sqs, options);
    log.info('queue', { queue: name, change, url });
    const outcome: CreateQueueOutcome = { name, url, change };
    if (options.secret !== undefined) outcome.secret = await writeUrl(options.secret, url, DEFAULT_QUEUE_URL_KEY, options, log);
    return outcome;
  } finally {
    if (options.client === undefined) sqs.destroy();
  }
}

/** Writes a URL or ARN into the copy's secret, created (labelled as the copy's) when missing. */
export async function writeUrl(
  secret: NonNullable<CreateQueueOptions['secret']>,
  value: string,
  defaultKey: string,
  options: { key: string; retry?: RetryOptions | undefined; requestTimeoutMs?: number | undefined; maxResponseBytes?: number | undefined },
  log: Logger,
): Promise<'created' | 'updated' | 'unchanged'> {
  const store = secretStore(secret.kc, secret.namespace, options);
  const written = await setKeys(store, secret.name, { [secret.key ?? defaultKey]: value }, { [FEATURE_LABEL]: options.key }, { namespace: secret.namespace, retry: options.retry, requestTimeoutMs: options.requestTimeoutMs, maxResponseBytes: options.maxResponseBytes, log });
  return written.change;
}

/**
 * The copy's queue with the base queue's attributes (over which `attributes` go): created, or an
 * existing one's changeable attributes brought in line. The SDK retries throttling and server
 * faults itself.
 */
export async function ensureQueue(SDK: SqsSdkModule, sqs: SQSClient, options: { queue: string; key: string; attributes?: Record<string, string> | undefined }): Promise<{ name: string; url: string; change: 'created' | 'updated' | 'unchanged' }> {
  const { CreateQueueCommand, GetQueueAttributesCommand, SetQueueAttributesCommand } = SDK;
  const name = copyQueueName(options.queue, options.key);
  const wanted = await call(`read the base queue ${options.queue}`, async () => {
    const baseUrl = await urlOf(SDK, sqs, options.queue);
    if (baseUrl === undefined && options.attributes === undefined) throw new NotFoundError(`the base queue ${options.queue} does not exist (its attributes are what a copy gets; or pass --attributes)`);
    const base = baseUrl === undefined ? {} : ((await sqs.send(new GetQueueAttributesCommand({ QueueUrl: baseUrl, AttributeNames: ['All'] }))).Attributes ?? {});
    const copied = Object.fromEntries(Object.entries(base).filter(([k]) => COPIED_ATTRIBUTES.includes(k)));
    return { ...copied, ...options.attributes, ...(name.endsWith('.fifo') ? { FifoQueue: 'true' } : {}) } as Record<string, string>;
  });
  let url = await call(`look up ${name}`, () => urlOf(SDK, sqs, name));
  if (url === undefined) {
    url = await call(`create ${name}`, async () => (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: wanted }))).QueueUrl);
    if (typeof url !== 'string' || url === '') throw new SqsCallError(`create ${name}`, undefined, undefined, 'the answer has no QueueUrl');
    return { name, url, change: 'created' };
  }
  const queueUrl = url;
  const have = await call(`read ${name}`, async () => ((await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }))).Attributes ?? {}) as Record<string, string>);
  const differ = Object.fromEntries(Object.entries(wanted).filter(([k, v]) => !IMMUTABLE.has(k) && have[k] !== v));
  if (Object.keys(differ).length === 0) return { name, url, change: 'unchanged' };
  await call(`update ${name}`, () => sqs.send(new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: differ as Partial<Record<QueueAttributeName, string>> })));
  return { name, url, change: 'updated' };
}

/** Deletes the copy's queue; one that is not there is success (`absent`). */
export async function deleteQueue(options: DeleteQueueOptions): Promise<{ name: string; change: 'deleted' | 'absent' }> {
  checkDeleteQueueOptions(options);
  const SDK = await sqsSdk();
  const sqs = sqsClient(SDK, options);
  const name = copyQueueName(options.queue, options.key);
  try {
    return { name, change: await removeQueue(SDK, sqs, name) };
  } finally {
    if (options.client === undefined) sqs.destroy();
  }
}

/** Deletes a queue by name; one that is not there (or goes while this runs) is `absent`. */
export async function removeQueue(SDK: SqsSdkModule, sqs: SQSClient, name: string, known?: string): Promise<'deleted' | 'absent'> {
  const url = known ?? (await call(`look up ${name}`, () => urlOf(SDK, sqs, name)));
  if (url === undefined) return 'absent';
  try {
    await sqs.send(new SDK.DeleteQueueCommand({ QueueUrl: url }));
  } catch (error) {
    if (missing(error)) return 'absent';
    await call(`delete ${name}`, () => Promise.reject(error));
  }
  return 'deleted';
}
