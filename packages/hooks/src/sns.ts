import { createHash } from 'node:crypto';
import { ConfigError, DEFAULT_KEY_NAME, DevstackError, FEATURE_LABEL } from '@devstack/core';
import type * as SnsSdk from '@aws-sdk/client-sns';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { NotFoundError, NotOwnedError, SnsCallError, SqsCallError } from './errors.js';
import type { KubeTarget } from './kube.js';
import { SILENT, type Logger } from './log.js';
import { DEFAULT_REQUEST_TIMEOUT_MS } from './request.js';
import type { RetryOptions } from './retry.js';
import { MANAGED_BY, MANAGED_BY_LABEL } from './secret.js';
import { DEFAULT_QUEUE_URL_KEY, call, copyQueueName, ensureQueue, removeQueue, sqsClient, sqsSdk, urlOf, writeUrl, type SqsSdkModule } from './sqs.js';
import { attributeName, dnsLabel, dnsSubdomain, problemsOf, queueName, routingKey, secretKey, topicName, topicRef } from './validate.js';

export const DEFAULT_TOPIC_ARN_KEY = 'TOPIC_ARN';

/**
 * A base topic's attributes a per-feature topic gets. Not `Policy` (it names the base topic's
 * ARN), nor what SNS reports and no one sets (`Owner`, `SubscriptionsConfirmed`, …).
 */
export const COPIED_TOPIC_ATTRIBUTES: readonly string[] = Object.freeze(['DisplayName', 'DeliveryPolicy', 'KmsMasterKeyId', 'SignatureVersion', 'TracingConfig', 'FifoTopic', 'ContentBasedDeduplication', 'FifoThroughputScope']);

/** Attributes SNS lets no one change after creation. */
const IMMUTABLE_TOPIC = new Set(['FifoTopic']);

/** The queue policy statements this tool writes carry this Sid prefix, one per topic. */
export const POLICY_SID_PREFIX = 'devstack-hooks-sns-';

/** List pages read before giving up on finding a topic or a subscription (100 per page). */
const MAX_PAGES = 1000;

export interface SnsConnection {
  /** An SNS- and SQS-compatible endpoint (LocalStack, fauxqs); default: AWS, or `AWS_ENDPOINT_URL_SNS` / `AWS_ENDPOINT_URL_SQS`. */
  endpoint?: string | undefined;
  /** Default: `AWS_REGION`, else us-east-1. */
  region?: string | undefined;
  /** Clients to use instead (tests, custom credentials). */
  sns?: SNSClient | undefined;
  sqs?: SQSClient | undefined;
  /** Per request, in ms, AWS and Kubernetes alike (default 30 000). */
  requestTimeoutMs?: number | undefined;
  /** The largest Kubernetes API answer read, in bytes (default 8 MiB). */
  maxResponseBytes?: number | undefined;
}

type SecretTarget = { kc: KubeTarget; namespace: string; name: string; key?: string | undefined };

export interface SubscribeOptions extends SnsConnection {
  /** The base topic, by name or ARN. */
  topic: string;
  /** The base queue: the copy's is `<queue>-<key>`, with its attributes. */
  queue: string;
  key: string;
  /** The message attribute the key travels in (default `uber-ctx-key`). */
  keyName?: string | undefined;
  /** Queue attributes over the base queue's, as SQS names them (not `Policy`). */
  attributes?: Record<string, string> | undefined;
  /** Write the copy queue's URL into this secret of the copy (created when missing). */
  secret?: SecretTarget | undefined;
  retry?: RetryOptions | undefined;
  log?: Logger | undefined;
}

export interface UnsubscribeOptions extends SnsConnection {
  topic: string;
  queue: string;
  key: string;
  log?: Logger | undefined;
}

export interface CreateTopicOptions extends SnsConnection {
  /** The base topic's name: the copy's is `<topic>-<key>`, with its attributes. */
  topic: string;
  key: string;
  attributes?: Record<string, string> | undefined;
  /** Write the copy topic's ARN into this secret of the copy (created when missing). */
  secret?: SecretTarget | undefined;
  retry?: RetryOptions | undefined;
  log?: Logger | undefined;
}

export interface DeleteTopicOptions extends SnsConnection {
  topic: string;
  key: string;
  log?: Logger | undefined;
}

export type Change = 'created' | 'updated' | 'unchanged';

export interface SubscribeOutcome {
  topic: string;
  queue: string;
  url: string;
  queueChange: Change;
  subscription: string;
  change: Change;
  secret?: Change;
}

export interface UnsubscribeOutcome {
  topic: string;
  queue: string;
  /** The subscription. */
  change: 'deleted' | 'absent';
  /** `kept` when the queue is still subscribed by this tool to another topic. */
  queueChange: 'deleted' | 'absent' | 'kept';
}

export interface CreateTopicOutcome {
  name: string;
  arn: string;
  change: Change;
  secret?: Change;
}

/** The filter policy of a copy's subscription: only messages whose key attribute is its key. */
export function filterPolicy(keyName: string, key: string): string {
  return JSON.stringify({ [keyName]: [key] });
}

function endpointProblem(endpoint: string | undefined): string[] {
  return endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint) ? ['--endpoint: expected an http:// or https:// URL'] : [];
}

function attributeProblems(attributes: Record<string, string> | undefined, refused: readonly string[]): string[] {
  return Object.entries(attributes ?? {}).flatMap(([name, value]) => {
    if (!/^[A-Za-z]{1,64}$/.test(name) || typeof value !== 'string') return [`--attributes: ${JSON.stringify(name)} must be an attribute name with a string value`];
    return refused.includes(name) ? [`--attributes: ${name} is written by this command, not taken from --attributes`] : [];
  });
}

function secretProblems(secret: SecretTarget | undefined): string[] {
  return secret === undefined ? [] : problemsOf([[dnsSubdomain, '--secret', secret.name], [secretKey, '--secret-key', secret.key], [dnsLabel, '--namespace', secret.namespace]]);
}

function copyProblems(check: typeof queueName, flag: string, name: string, key: string): string[] {
  return problemsOf([[check, flag, copyQueueName(name, key)]]).map((p) => `${p} (the copy's name)`);
}

const nameOfArn = (arn: string) => arn.split(':')[5] ?? '';

export function checkSubscribeOptions(options: SubscribeOptions | UnsubscribeOptions): void {
  const o = options as SubscribeOptions;
  const problems = problemsOf([[routingKey, '--key', o.key], [topicRef, '--topic', o.topic], [queueName, '--queue', o.queue], [attributeName, '--key-name', o.keyName]]);
  if (problems.length === 0) problems.push(...copyProblems(queueName, '--queue', o.queue, o.key));
  // SNS delivers to a FIFO queue only from a FIFO topic, and a FIFO topic only to FIFO queues.
  if (problems.length === 0 && o.queue.endsWith('.fifo') !== (o.topic.startsWith('arn:') ? nameOfArn(o.topic) : o.topic).endsWith('.fifo')) {
    problems.push('--queue: a FIFO topic (.fifo) delivers to FIFO queues only, and a standard topic to standard queues only');
  }
  problems.push(...endpointProblem(o.endpoint), ...attributeProblems(o.attributes, ['Policy']), ...secretProblems(o.secret));
  if (problems.length > 0) throw new ConfigError(problems);
}

export function checkTopicOptions(options: CreateTopicOptions | DeleteTopicOptions): void {
  const o = options as CreateTopicOptions;
  const problems = problemsOf([[routingKey, '--key', o.key], [topicName, '--topic', o.topic]]);
  if (problems.length === 0) problems.push(...copyProblems(topicName, '--topic', o.topic, o.key));
  problems.push(...endpointProblem(o.endpoint), ...attributeProblems(o.attributes, ['Policy']), ...secretProblems(o.secret));
  if (problems.length > 0) throw new ConfigError(problems);
}

type Sdk = typeof SnsSdk;

/** Loaded by the `sns` commands only, as the SQS SDK is by the queue commands. */
const snsSdk = (): Promise<Sdk> => import('@aws-sdk/client-sns');

function snsClient(SDK: Sdk, options: SnsConnection): SNSClient {
  const timeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  return new SDK.SNSClient({
    region: options.region ?? process.env['AWS_REGION'] ?? 'us-east-1',
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    // Without throwOnRequestTimeout the SDK only warns and keeps waiting.
    requestHandler: { connectionTimeout: timeout, requestTimeout: timeout, throwOnRequestTimeout: true },
  });
}

const notFound = (error: unknown) => {
  const name = (error as { name?: string }).name;
  return name === 'NotFound' || name === 'NotFoundException';
};

async function snsCall<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof DevstackError) throw error;
    const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    throw new SnsCallError(what, e.name, e.$metadata?.httpStatusCode, e.message ?? String(error), { cause: error });
  }
}

/** A topic's ARN from its name (listed: SNS has no lookup by name) or its ARN (checked to exist). */
async function topicArnOf(SDK: Sdk, sns: SNSClient, ref: string): Promise<string | undefined> {
  if (ref.startsWith('arn:')) {
    try {
      await sns.send(new SDK.GetTopicAttributesCommand({ TopicArn: ref }));
      return ref;
    } catch (error) {
      if (notFound(error)) return undefined;
      throw error;
    }
  }
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const out = await sns.send(new SDK.ListTopicsCommand(token === undefined ? {} : { NextToken: token }));
    const found = (out.Topics ?? []).find((t) => typeof t.TopicArn === 'string' && nameOfArn(t.TopicArn) === ref);
    if (found !== undefined) return found.TopicArn;
    token = out.NextToken;
    if (!token) return undefined;
  }
  throw new SnsCallError(`look up the topic ${ref}`, undefined, undefined, `not among the first ${MAX_PAGES} pages of topics`);
}

async function topicAttributes(SDK: Sdk, sns: SNSClient, arn: string): Promise<Record<string, string>> {
  return ((await sns.send(new SDK.GetTopicAttributesCommand({ TopicArn: arn }))).Attributes ?? {}) as Record<string, string>;
}

/** JSON with sorted keys, to compare policies as values whatever order a server writes them in. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

type Statement = Record<string, unknown>;
interface Policy {
  Version?: string;
  Statement: Statement[];
  [field: string]: unknown;
}

/** The statement that lets one topic send to the copy's queue, and no one else through it. */
export function policyStatement(queueArn: string, topicArn: string): Statement {
  return {
    Sid: `${POLICY_SID_PREFIX}${createHash('sha256').update(topicArn).digest('hex').slice(0, 16)}`,
    Effect: 'Allow',
    Principal: { Service: 'sns.amazonaws.com' },
    Action: 'sqs:SendMessage',
    Resource: queueArn,
    Condition: { ArnEquals: { 'aws:SourceArn': topicArn } },
  };
}

function parsePolicy(name: string, text: string | undefined): Policy {
  if (text === undefined || text === '') return { Version: '2012-10-17', Statement: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new SqsCallError(`read the policy of ${name}`, undefined, undefined, 'its Policy is not JSON; left as it is', { cause: error });
  }
  const p = parsed as { Statement?: unknown };
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new SqsCallError(`read the policy of ${name}`, undefined, undefined, 'its Policy is not a JSON object; left as it is');
  const statements = p.Statement === undefined ? [] : Array.isArray(p.Statement) ? p.Statement : [p.Statement];
  return { ...(parsed as Record<string, unknown>), Statement: statements.filter((s): s is Statement => typeof s === 'object' && s !== null) };
}

const ours = (s: Statement) => typeof s['Sid'] === 'string' && s['Sid'].startsWith(POLICY_SID_PREFIX);
const sourceOf = (s: Statement) => {
  const arn = ((s['Condition'] as { ArnEquals?: Record<string, unknown> } | undefined)?.ArnEquals ?? {})['aws:SourceArn'];
  return typeof arn === 'string' ? arn : undefined;
};

async function queueArnAndPolicy(SDK: SqsSdkModule, sqs: SQSClient, name: string, url: string): Promise<{ arn: string; policy: string | undefined } | undefined> {
  try {
    const attrs = (await sqs.send(new SDK.GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn', 'Policy'] }))).Attributes ?? {};
    const arn = attrs['QueueArn'];
    if (typeof arn !== 'string' || !arn.startsWith('arn:')) throw new SqsCallError(`read ${name}`, undefined, undefined, 'the answer has no QueueArn');
    return { arn, policy: attrs['Policy'] };
  } catch (error) {
    const n = (error as { name?: string }).name;
    if (n === 'QueueDoesNotExist' || n === 'AWS.SimpleQueueService.NonExistentQueue') return undefined;
    throw error;
  }
}

/** A subscription of `topicArn` whose SQS endpoint `matches`; pending ones have no ARN yet and are skipped. */
async function findSubscription(SDK: Sdk, sns: SNSClient, topicArn: string, matches: (endpoint: string) => boolean): Promise<string | undefined> {
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const out = await sns.send(new SDK.ListSubscriptionsByTopicCommand({ TopicArn: topicArn, ...(token === undefined ? {} : { NextToken: token }) }));
    const found = (out.Subscriptions ?? []).find((s) => s.Protocol === 'sqs' && typeof s.Endpoint === 'string' && matches(s.Endpoint) && typeof s.SubscriptionArn === 'string' && s.SubscriptionArn.startsWith('arn:'));
    if (found !== undefined) return found.SubscriptionArn;
    token = out.NextToken;
    if (!token) return undefined;
  }
  throw new SnsCallError(`list the subscriptions of ${topicArn}`, undefined, undefined, `not among the first ${MAX_PAGES} pages of subscriptions`);
}

async function ensureSubscription(SDK: Sdk, sns: SNSClient, topicArn: string, queueArn: string, wanted: Record<string, string>): Promise<{ arn: string; change: Change }> {
  const existing = await snsCall(`list the subscriptions of ${topicArn}`, () => findSubscription(SDK, sns, topicArn, (e) => e === queueArn));
  if (existing === undefined) {
    const arn = await snsCall(`subscribe ${queueArn} to ${topicArn}`, async () => (await sns.send(new SDK.SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queueArn, Attributes: wanted, ReturnSubscriptionArn: true }))).SubscriptionArn);
    if (typeof arn !== 'string' || !arn.startsWith('arn:')) throw new SnsCallError(`subscribe ${queueArn} to ${topicArn}`, undefined, undefined, 'the answer has no subscription ARN');
    return { arn, change: 'created' };
  }
  const have = await snsCall(`read the subscription ${existing}`, async () => ((await sns.send(new SDK.GetSubscriptionAttributesCommand({ SubscriptionArn: existing }))).Attributes ?? {}) as Record<string, string>);
  const same = (k: string, v: string) => {
    if (k === 'FilterPolicy') {
      try {
        return have[k] !== undefined && canonical(JSON.parse(have[k])) === canonical(JSON.parse(v));
      } catch {
        return false;
      }
    }
    return (have[k] ?? (k === 'FilterPolicyScope' ? 'MessageAttributes' : undefined)) === v;
  };
  const differ = Object.entries(wanted).filter(([k, v]) => !same(k, v));
  for (const [name, value] of differ) {
    await snsCall(`set ${name} of ${existing}`, () => sns.send(new SDK.SetSubscriptionAttributesCommand({ SubscriptionArn: existing, AttributeName: name, AttributeValue: value })));
  }
  return { arn: existing, change: differ.length > 0 ? 'updated' : 'unchanged' };
}

async function withClients<T>(options: SnsConnection, run: (c: { SNS: Sdk; SQS: SqsSdkModule; sns: SNSClient; sqs: SQSClient }) => Promise<T>): Promise<T> {
  const [SNS, SQS] = await Promise.all([snsSdk(), sqsSdk()]);
  const sns = options.sns ?? snsClient(SNS, options);
  const sqs = options.sqs ?? sqsClient(SQS, options);
  try {
    return await run({ SNS, SQS, sns, sqs });
  } finally {
    if (options.sns === undefined) sns.destroy();
    if (options.sqs === undefined) sqs.destroy();
  }
}

/**
 * The copy's queue `<queue>-<key>` (as `createQueue` makes it), with a policy statement that lets
 * the topic send to it, subscribed to the topic with raw delivery (the message attributes reach
 * the consumer as attributes) and a filter policy on the key attribute: it receives only its
 * key's messages. A rerun brings each in line and changes nothing when they are.
 */
export async function subscribeQueue(options: SubscribeOptions): Promise<SubscribeOutcome> {
  checkSubscribeOptions(options);
  const log = options.log ?? SILENT;
  return withClients(options, async ({ SNS, SQS, sns, sqs }) => {
    const topicArn = await snsCall(`look up the topic ${options.topic}`, () => topicArnOf(SNS, sns, options.topic));
    if (topicArn === undefined) throw new NotFoundError(`the topic ${options.topic} does not exist`);
    const queue = await ensureQueue(SQS, sqs, options);
    const read = await call(`read ${queue.name}`, () => queueArnAndPolicy(SQS, sqs, queue.name, queue.url));
    if (read === undefined) throw new SqsCallError(`read ${queue.name}`, 'QueueDoesNotExist', undefined, 'deleted while this command ran');
    const policy = parsePolicy(queue.name, read.policy);
    const wanted = policyStatement(read.arn, topicArn);
    const mine = policy.Statement.find((s) => s['Sid'] === wanted['Sid']);
    let queueChange = queue.change;
    if (mine === undefined || canonical(mine) !== canonical(wanted)) {
      const next = { Version: '2012-10-17', ...policy, Statement: [...policy.Statement.filter((s) => s['Sid'] !== wanted['Sid']), wanted] };
      await call(`allow ${topicArn} to send to ${queue.name}`, () => sqs.send(new SQS.SetQueueAttributesCommand({ QueueUrl: queue.url, Attributes: { Policy: JSON.stringify(next) } })));
      if (queueChange === 'unchanged') queueChange = 'updated';
    }
    log.info('queue', { queue: queue.name, change: queueChange, url: queue.url });
    const attributes = { RawMessageDelivery: 'true', FilterPolicyScope: 'MessageAttributes', FilterPolicy: filterPolicy(options.keyName ?? DEFAULT_KEY_NAME, options.key) };
    const subscription = await ensureSubscription(SNS, sns, topicArn, read.arn, attributes);
    log.info('subscription', { topic: topicArn, subscription: subscription.arn, change: subscription.change });
    const outcome: SubscribeOutcome = { topic: topicArn, queue: queue.name, url: queue.url, queueChange, subscription: subscription.arn, change: subscription.change };
    if (options.secret !== undefined) outcome.secret = await writeUrl(options.secret, queue.url, DEFAULT_QUEUE_URL_KEY, options, log);
    return outcome;
  });
}

/**
 * Removes the copy's subscription to the topic, and then its queue, unless this tool subscribed
 * that queue to another topic too (its policy still lets one send): then only this topic's
 * statement goes. A topic or queue already gone is fine (`absent`): a pre-delete hook may run
 * after the base's topic went.
 */
export async function unsubscribeQueue(options: UnsubscribeOptions): Promise<UnsubscribeOutcome> {
  checkSubscribeOptions(options);
  const log = options.log ?? SILENT;
  const name = copyQueueName(options.queue, options.key);
  return withClients(options, async ({ SNS, SQS, sns, sqs }) => {
    const topicArn = await snsCall(`look up the topic ${options.topic}`, () => topicArnOf(SNS, sns, options.topic));
    const url = await call(`look up ${name}`, () => urlOf(SQS, sqs, name));
    const read = url === undefined ? undefined : await call(`read ${name}`, () => queueArnAndPolicy(SQS, sqs, name, url));
    let change: UnsubscribeOutcome['change'] = 'absent';
    if (topicArn !== undefined) {
      const arn = await snsCall(`list the subscriptions of ${topicArn}`, () => findSubscription(SNS, sns, topicArn, (e) => (read === undefined ? nameOfArn(e) === name : e === read.arn)));
      if (arn !== undefined) {
        try {
          await sns.send(new SNS.UnsubscribeCommand({ SubscriptionArn: arn }));
          change = 'deleted';
        } catch (error) {
          if (!notFound(error)) await snsCall(`unsubscribe ${arn}`, () => Promise.reject(error));
        }
      }
    }
    log.info('subscription', { topic: topicArn ?? options.topic, change });
    if (url === undefined || read === undefined) return { topic: topicArn ?? options.topic, queue: name, change, queueChange: 'absent' };
    const policy = parsePolicy(name, read.policy);
    const topicName = options.topic.startsWith('arn:') ? nameOfArn(options.topic) : options.topic;
    const thisTopic = (s: Statement) => ours(s) && (topicArn === undefined ? nameOfArn(sourceOf(s) ?? '') === topicName : s['Sid'] === policyStatement(read.arn, topicArn)['Sid']);
    const others = policy.Statement.filter((s) => ours(s) && !thisTopic(s));
    if (others.length > 0) {
      if (policy.Statement.some(thisTopic)) {
        const next = { ...policy, Statement: policy.Statement.filter((s) => !thisTopic(s)) };
        await call(`stop ${options.topic} sending to ${name}`, () => sqs.send(new SQS.SetQueueAttributesCommand({ QueueUrl: url, Attributes: { Policy: JSON.stringify(next) } })));
      }
      log.info('queue kept', { queue: name, reason: 'subscribed by this tool to other topics too', topics: others.map(sourceOf) });
      return { topic: topicArn ?? options.topic, queue: name, change, queueChange: 'kept' };
    }
    return { topic: topicArn ?? options.topic, queue: name, change, queueChange: await removeQueue(SQS, sqs, name, url) };
  });
}

const TAGS = (key: string) => [
  { Key: MANAGED_BY_LABEL, Value: MANAGED_BY },
  { Key: FEATURE_LABEL, Value: key },
];

async function ownedTopic(SDK: Sdk, sns: SNSClient, arn: string): Promise<boolean> {
  const tags = (await sns.send(new SDK.ListTagsForResourceCommand({ ResourceArn: arn }))).Tags ?? [];
  return tags.some((t) => t.Key === MANAGED_BY_LABEL && t.Value === MANAGED_BY);
}

/**
 * A per-feature topic `<topic>-<key>` with the base topic's attributes (over which `attributes`
 * go), tagged as devstack's so that `deleteTopic` removes only what it made. A topic of that name
 * without the tag is refused, never taken over.
 */
export async function createTopic(options: CreateTopicOptions): Promise<CreateTopicOutcome> {
  checkTopicOptions(options);
  const log = options.log ?? SILENT;
  const name = copyQueueName(options.topic, options.key);
  const SDK = await snsSdk();
  const sns = options.sns ?? snsClient(SDK, options);
  try {
    const wanted = await snsCall(`read the base topic ${options.topic}`, async () => {
      const base = await topicArnOf(SDK, sns, options.topic);
      if (base === undefined && options.attributes === undefined) throw new NotFoundError(`the base topic ${options.topic} does not exist (its attributes are what a copy gets; or pass --attributes)`);
      const attrs = base === undefined ? {} : await topicAttributes(SDK, sns, base);
      const copied = Object.fromEntries(Object.entries(attrs).filter(([k]) => COPIED_TOPIC_ATTRIBUTES.includes(k)));
      return { ...copied, ...options.attributes, ...(name.endsWith('.fifo') ? { FifoTopic: 'true' } : {}) } as Record<string, string>;
    });
    let change: Change;
    let arn = await snsCall(`look up ${name}`, () => topicArnOf(SDK, sns, name));
    if (arn === undefined) {
      arn = await snsCall(`create ${name}`, async () => (await sns.send(new SDK.CreateTopicCommand({ Name: name, Attributes: wanted, Tags: TAGS(options.key) }))).TopicArn);
      if (typeof arn !== 'string' || !arn.startsWith('arn:')) throw new SnsCallError(`create ${name}`, undefined, undefined, 'the answer has no TopicArn');
      change = 'created';
    } else {
      const topicArn = arn;
      if (!(await snsCall(`read the tags of ${name}`, () => ownedTopic(SDK, sns, topicArn)))) throw new NotOwnedError(`the topic ${name} exists and was not made by devstack-hooks (no ${MANAGED_BY_LABEL}=${MANAGED_BY} tag); it is left alone`);
      const have = await snsCall(`read ${name}`, () => topicAttributes(SDK, sns, topicArn));
      const differ = Object.entries(wanted).filter(([k, v]) => !IMMUTABLE_TOPIC.has(k) && have[k] !== v);
      for (const [attribute, value] of differ) {
        await snsCall(`set ${attribute} of ${name}`, () => sns.send(new SDK.SetTopicAttributesCommand({ TopicArn: topicArn, AttributeName: attribute, AttributeValue: value })));
      }
      change = differ.length > 0 ? 'updated' : 'unchanged';
    }
    log.info('topic', { topic: name, arn, change });
    const outcome: CreateTopicOutcome = { name, arn, change };
    if (options.secret !== undefined) outcome.secret = await writeUrl(options.secret, arn, DEFAULT_TOPIC_ARN_KEY, options, log);
    return outcome;
  } finally {
    if (options.sns === undefined) sns.destroy();
  }
}

/** Deletes the per-feature topic when this tool made it (and with it, in SNS, its subscriptions); none is `absent`. */
export async function deleteTopic(options: DeleteTopicOptions): Promise<{ name: string; change: 'deleted' | 'absent' }> {
  checkTopicOptions(options);
  const name = copyQueueName(options.topic, options.key);
  const SDK = await snsSdk();
  const sns = options.sns ?? snsClient(SDK, options);
  try {
    const arn = await snsCall(`look up ${name}`, () => topicArnOf(SDK, sns, name));
    if (arn === undefined) return { name, change: 'absent' };
    if (!(await snsCall(`read the tags of ${name}`, () => ownedTopic(SDK, sns, arn)))) throw new NotOwnedError(`the topic ${name} was not made by devstack-hooks (no ${MANAGED_BY_LABEL}=${MANAGED_BY} tag); it is left alone`);
    await snsCall(`delete ${name}`, () => sns.send(new SDK.DeleteTopicCommand({ TopicArn: arn })));
    return { name, change: 'deleted' };
  } finally {
    if (options.sns === undefined) sns.destroy();
  }
}
