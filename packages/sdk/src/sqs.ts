/*
 * `@devstack/sdk/sqs`: lane consumption over `@aws-sdk/client-sqs` (an optional peer, loaded only by
 * this entry). A shared queue: each lane processes and deletes its own messages and hands the others
 * back; a queue per lane fed by an SNS topic (fan-out): each lane drops what another lane processes.
 */
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { diag } from '@opentelemetry/api';
import { ConfigError, DevstackError, describeUntrusted, type KeyReading, type MutableHeaderBag } from '@devstack/core';
import { consumeDecision, fanOutConsume, type ConsumeDecision, type LaneOptions } from './consume.js';
import { withRoutingKey } from './context.js';
import { readCarriers, sqsCarriers, type SqsAttributes } from './messages.js';

export type { Message } from '@aws-sdk/client-sqs';

/**
 * `shared`: every lane's consumers read one queue; a message not this lane's is handed back
 * (visibility 0) for its lane. `fan-out`: every lane has its own copy of each message (a queue
 * subscribed to an SNS topic); a message not this lane's is deleted unprocessed.
 */
export type SqsMode = 'shared' | 'fan-out';

/** What a lane does with one received message. */
export type SqsAction = 'process' | 'release' | 'drop';

export interface SqsBound {
  /** Receives (ApproximateReceiveCount) after which base takes a message no lane took. */
  readonly maxReceives: number;
  /** And the time since its first receive, so a live copy is never raced out of its own messages. */
  readonly maxWaitMs: number;
  /** Now, in ms since the epoch. */
  readonly now: number;
}

const NO_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Whether a message has gone around long enough that base takes it: received `maxReceives` times
 * and first received `maxWaitMs` ago (the SQS server's clock; a message without the timestamp is
 * judged by its receives alone). A copy that claims readiness but never consumes holds its
 * messages up this long, never for ever.
 */
export function pastBound(message: Message, bound: SqsBound): boolean {
  const attrs = message.Attributes ?? NO_ATTRIBUTES;
  const receives = Number(attrs['ApproximateReceiveCount'] ?? 0);
  if (!(receives >= bound.maxReceives)) return false;
  const first = Number(attrs['ApproximateFirstReceiveTimestamp'] ?? attrs['SentTimestamp']);
  return !Number.isFinite(first) || bound.now - first >= bound.maxWaitMs;
}

/** The pure step: what this lane does with `message`, given its lane decision. */
export function sqsAction(decision: ConsumeDecision, message: Message, mode: SqsMode, bound: SqsBound): SqsAction {
  if (mode === 'fan-out') return fanOutConsume(decision) ? 'process' : 'drop';
  if (decision.consume) return 'process';
  return decision.lane === 'base' && pastBound(message, bound) ? 'process' : 'release';
}

/** The largest body read for an SNS envelope's attributes (SQS allows 1 MiB). */
const MAX_ENVELOPE = 1024 * 1024;

/**
 * The key carriers of an SNS notification delivered without raw message delivery: the attributes
 * are inside the JSON envelope as `{ Type, Value }`.
 */
function envelopeCarriers(body: string | undefined): MutableHeaderBag | undefined {
  if (body === undefined || body.length > MAX_ENVELOPE || !body.startsWith('{') || !body.includes('"Notification"')) return undefined;
  let envelope: unknown;
  try {
    envelope = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof envelope !== 'object' || envelope === null || (envelope as { Type?: unknown }).Type !== 'Notification') return undefined;
  const attrs = (envelope as { MessageAttributes?: unknown }).MessageAttributes;
  if (typeof attrs !== 'object' || attrs === null) return undefined;
  const shaped: SqsAttributes = {};
  for (const [name, attr] of Object.entries(attrs as Record<string, { Value?: unknown } | null>)) {
    if (typeof attr?.Value === 'string') shaped[name] = { StringValue: attr.Value };
  }
  return sqsCarriers(shaped);
}

/**
 * The routing key reading of an SQS message: its message attributes (as `extractSqsKey` reads
 * them), else the attributes inside an SNS envelope in its body.
 */
export function sqsKeyReading(message: Message): KeyReading {
  const own = sqsCarriers(message.MessageAttributes as SqsAttributes | undefined);
  const bag = own !== undefined && Object.keys(own).length > 0 ? own : (envelopeCarriers(message.Body) ?? {});
  return readCarriers(bag, 'SQS message');
}

/** The lane decision for an SQS message (its key from its attributes or SNS envelope). */
export function sqsDecision(message: Message, options?: LaneOptions): ConsumeDecision {
  return consumeDecision(sqsKeyReading(message), options);
}

/** A failed step of the consumer; `cause` is the AWS SDK's or the handler's error. */
export class SqsConsumerError extends DevstackError {
  /** `receive`, `delete`, `release` (ChangeMessageVisibility) or `handler`. */
  readonly operation: 'receive' | 'delete' | 'release' | 'handler';
  readonly messageId: string | undefined;

  constructor(operation: SqsConsumerError['operation'], messageId: string | undefined, cause: unknown) {
    const code = operation === 'handler' ? 'DEVSTACK_MESSAGE_FAILED' : 'DEVSTACK_QUEUE_FAILED';
    const what = operation === 'handler' ? 'the handler failed' : `${operation} failed`;
    super(code, `devstack: ${what}${messageId === undefined ? '' : ` for message ${describeUntrusted(messageId)}`}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.operation = operation;
    this.messageId = messageId;
  }
}

/** What `client.send` needs: an `SQSClient`, or anything that sends its commands. */
export interface SqsClientLike {
  send(command: ReceiveMessageCommand | DeleteMessageCommand | ChangeMessageVisibilityCommand, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
}

export interface SqsClock {
  now(): number;
  /** Resolves after `ms`, or at once when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export interface SqsConsumerOptions extends LaneOptions {
  client: SqsClientLike;
  queueUrl: string;
  /** Called with each message this lane processes, in its key's context; the message is deleted once it settles. */
  handler: (message: Message, decision: ConsumeDecision) => unknown;
  /** Default `shared`. */
  mode?: SqsMode;
  /** The bound: base takes a message no lane took after this many receives... Default 5. */
  maxReceives?: number;
  /** ...and this long after its first receive. Default 30 000 ms. */
  maxWaitMs?: number;
  /** Long polling of each receive. Default 20 s (the SQS maximum). */
  waitTimeSeconds?: number;
  /** Messages per receive, 1 to 10. Default 10. */
  maxMessages?: number;
  /** Visibility timeout of each receive, in seconds. Default: the queue's. */
  visibilityTimeout?: number;
  /** The loop's pause after a receive that handed every message back, so a lane does not spin on another lane's messages. Default 1000 ms. */
  releasePauseMs?: number;
  /** The loop's longest pause after a failed receive (doubling from 100 ms). Default 10 000 ms. */
  maxBackoffMs?: number;
  /** Every failure: a receive, a delete, a release, a handler. Default: a diag error line. */
  onError?: (error: SqsConsumerError) => void;
  /** Timers and time, for tests. */
  clock?: SqsClock;
}

/** Counts of one receive, or of the consumer so far. */
export interface SqsReceipt {
  received: number;
  processed: number;
  released: number;
  dropped: number;
  failed: number;
}

export interface SqsConsumer {
  /** One receive and its messages handled; never rejects (failures go to `onError`). */
  receiveOnce(): Promise<SqsReceipt>;
  /** Runs receives until `stop()`. Returns the consumer. */
  start(): SqsConsumer;
  /** Ends the current receive (aborting its long poll), lets the messages in hand finish, stops the loop. */
  stop(): Promise<void>;
  readonly stats: Readonly<SqsReceipt>;
}

const realClock: SqsClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((done) => {
      if (signal.aborted) return done();
      const timer = setTimeout(finish, ms);
      function finish() {
        clearTimeout(timer);
        signal.removeEventListener('abort', finish);
        done();
      }
      signal.addEventListener('abort', finish, { once: true });
    }),
};

function whole(name: string, value: unknown, min: number, max: number, problems: string[]): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    problems.push(`consumeSqs: ${name} must be a whole number from ${min} to ${max}, got ${describeUntrusted(value)}`);
  }
}

function check(options: SqsConsumerOptions): void {
  const problems: string[] = [];
  if (typeof options?.client?.send !== 'function') problems.push('consumeSqs: client must be an SQSClient');
  if (typeof options?.queueUrl !== 'string' || options.queueUrl.length === 0) problems.push('consumeSqs: queueUrl must be a queue URL');
  if (typeof options?.handler !== 'function') problems.push('consumeSqs: handler must be a function');
  if (options?.mode !== undefined && options.mode !== 'shared' && options.mode !== 'fan-out') problems.push(`consumeSqs: mode must be shared or fan-out, got ${describeUntrusted(options.mode)}`);
  whole('maxReceives', options?.maxReceives, 1, 1000, problems);
  whole('maxWaitMs', options?.maxWaitMs, 0, 43_200_000, problems);
  whole('waitTimeSeconds', options?.waitTimeSeconds, 0, 20, problems);
  whole('maxMessages', options?.maxMessages, 1, 10, problems);
  whole('visibilityTimeout', options?.visibilityTimeout, 0, 43_200, problems);
  whole('releasePauseMs', options?.releasePauseMs, 0, 600_000, problems);
  whole('maxBackoffMs', options?.maxBackoffMs, 0, 600_000, problems);
  if (problems.length > 0) throw new ConfigError(problems);
}

function counts(): SqsReceipt {
  return { received: 0, processed: 0, released: 0, dropped: 0, failed: 0 };
}

/**
 * A lane's consumer of an SQS queue. Shared queue: its lane's messages are processed and deleted,
 * the others handed back at once; past the bound (`maxReceives` and `maxWaitMs`) base processes a
 * message whatever it carries, so one no lane takes is never handed around for ever, and none is
 * deleted unprocessed. Fan-out (`mode: 'fan-out'`): what another lane processes is deleted
 * unprocessed. A message whose handler fails stays in the queue and comes back after its
 * visibility timeout (and to the queue's dead-letter queue past its redrive policy).
 */
export function consumeSqs(options: SqsConsumerOptions): SqsConsumer {
  check(options);
  const { client, queueUrl, handler } = options;
  const mode = options.mode ?? 'shared';
  const maxReceives = options.maxReceives ?? 5;
  const maxWaitMs = options.maxWaitMs ?? 30_000;
  const releasePauseMs = options.releasePauseMs ?? 1000;
  const maxBackoffMs = options.maxBackoffMs ?? 10_000;
  const clock = options.clock ?? realClock;
  const lane: LaneOptions = { service: options.service, lane: options.lane, registry: options.registry, strict: options.strict };
  const report = options.onError ?? ((error: SqsConsumerError) => diag.error(error.message));
  const stats = counts();
  let stopping = new AbortController();
  let loop: Promise<void> | undefined;
  let busy: Promise<unknown> = Promise.resolve();

  const fail = (error: SqsConsumerError): void => {
    try {
      report(error);
    } catch {
      // The app's error callback must not stop the consumer.
    }
  };

  const receive = () =>
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: options.maxMessages ?? 10,
      WaitTimeSeconds: options.waitTimeSeconds ?? 20,
      VisibilityTimeout: options.visibilityTimeout,
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: ['ApproximateReceiveCount', 'ApproximateFirstReceiveTimestamp', 'SentTimestamp'],
    });

  async function settle(message: Message, command: DeleteMessageCommand | ChangeMessageVisibilityCommand, operation: 'delete' | 'release'): Promise<boolean> {
    try {
      await client.send(command);
      return true;
    } catch (error) {
      fail(new SqsConsumerError(operation, message.MessageId, error));
      return false;
    }
  }

  async function handle(messages: readonly Message[], out: SqsReceipt): Promise<void> {
    const now = clock.now();
    const bound = { maxReceives, maxWaitMs, now };
    const mine: Array<[Message, ConsumeDecision]> = [];
    const back: Message[] = [];
    for (const message of messages) {
      const decision = sqsDecision(message, lane);
      const action = sqsAction(decision, message, mode, bound);
      if (action === 'process') mine.push([message, decision]);
      else if (action === 'release') back.push(message);
      else if (await settle(message, new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }), 'delete')) out.dropped++;
    }
    // Handed back first, so their lane has them while this one works.
    await Promise.all(
      back.map(async (message) => {
        if (await settle(message, new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: 0 }), 'release')) out.released++;
      }),
    );
    for (const [message, decision] of mine) {
      try {
        await withRoutingKey(decision.key, () => handler(message, decision));
      } catch (error) {
        out.failed++;
        fail(new SqsConsumerError('handler', message.MessageId, error));
        continue;
      }
      if (await settle(message, new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }), 'delete')) out.processed++;
    }
  }

  /** One receive; rethrows a failed receive for the loop's backoff. */
  async function once(signal: AbortSignal): Promise<SqsReceipt> {
    const out = counts();
    let messages: readonly Message[];
    try {
      const answer = (await client.send(receive(), { abortSignal: signal })) as { Messages?: Message[] } | undefined;
      messages = answer?.Messages ?? [];
    } catch (error) {
      if (signal.aborted) return out;
      throw new SqsConsumerError('receive', undefined, error);
    }
    out.received = messages.length;
    // The messages in hand are finished even when the consumer is stopping: none is left invisible.
    const work = handle(messages, out);
    busy = work;
    await work;
    for (const k of Object.keys(out) as Array<keyof SqsReceipt>) stats[k] += out[k];
    return out;
  }

  const consumer: SqsConsumer = {
    stats,
    async receiveOnce() {
      try {
        return await once(stopping.signal);
      } catch (error) {
        fail(error as SqsConsumerError);
        return counts();
      }
    },
    start() {
      if (loop !== undefined) return consumer;
      const signal = stopping.signal;
      loop = (async () => {
        let failures = 0;
        while (!signal.aborted) {
          let got: SqsReceipt;
          try {
            got = await once(signal);
            failures = 0;
          } catch (error) {
            fail(error as SqsConsumerError);
            await clock.sleep(Math.min(maxBackoffMs, 100 * 2 ** Math.min(failures++, 20)), signal);
            continue;
          }
          if (got.released > 0 && got.released === got.received) await clock.sleep(releasePauseMs, signal);
        }
      })();
      return consumer;
    },
    async stop() {
      stopping.abort();
      await loop;
      await busy;
      loop = undefined;
      stopping = new AbortController();
    },
  };
  return consumer;
}
