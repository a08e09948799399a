/*
 * The demo's asynchronous hop over SQS, as both ends use it: web publishes an event carrying the
 * request's routing key, a worker lane consumes it (`consumeSqs` of `@devstack/sdk/sqs` decides
 * which lane), and the worker answers on the publisher's own reply queue, so the publish can say
 * which lane processed its event. The SQS server is the one the demo starts (fauxqs), no cloud.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { injectSqsAttributes, type SqsAttributes } from '@devstack/sdk';
import { EVENTS_QUEUE } from '../plan.ts';

/** The queue every lane of the worker reads: one shared queue, no queue per lane. */
export { EVENTS_QUEUE };
/** Each publisher's own queue for the workers' answers: `demo-replies-<service>-<lane>`. */
export const REPLY_PREFIX = 'demo-replies-';
const REPLY_QUEUE_NAME = /^demo-replies-[a-z0-9-]{1,60}$/;

/** What a publish answers: who processed the event (or a failure with a stable code). */
export interface Processed {
  service: string;
  lane: string;
  /**
   * The SDK's reason for the lane (`match`, `no-key`, `no-copy`, `unknown-key`, `not-ready`, ...), or
   * `past-bound`: no lane took it within the bound and base processed it.
   */
  reason: string;
  /** How many times the queue handed the event out (another lane's receives handed it back). */
  receives: number;
}

export class EventError extends Error {
  readonly code: 'DEVSTACK_DEMO_NOT_PROCESSED' | 'DEVSTACK_DEMO_QUEUE_FAILED';

  constructor(code: EventError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventError';
    this.code = code;
  }
}

/** An SQS client of the demo's server. Any credentials do; the endpoint is the only place it talks to. */
export function sqsClient(endpoint: string): SQSClient {
  return new SQSClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'demo', secretAccessKey: 'demo' }, maxAttempts: 1 });
}

/**
 * The queue's URL, creating it (idempotent). The demo starts every process at once, so the SQS
 * server may not listen yet: a refused connection is retried for `timeoutMs`.
 */
export async function ensureQueue(client: SQSClient, name: string, timeoutMs = 15_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: name }));
      if (QueueUrl === undefined) throw new Error('CreateQueue returned no QueueUrl');
      return QueueUrl;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ECONNREFUSED' || Date.now() >= until) throw new EventError('DEVSTACK_DEMO_QUEUE_FAILED', `cannot create queue ${name}: ${(error as Error).message}`, { cause: error });
      await sleep(50);
    }
  }
}

/** The event on the wire. */
interface EventBody {
  id: string;
  /** The publisher's reply queue. */
  replyTo: string;
}

interface ReplyBody extends Processed {
  id: string;
}

function parse<T>(text: string | undefined): Partial<T> | undefined {
  try {
    const value = JSON.parse(text ?? '') as unknown;
    return typeof value === 'object' && value !== null ? (value as Partial<T>) : undefined;
  } catch {
    return undefined;
  }
}

export interface Publisher {
  /** Sends an event with the current routing key and resolves with who processed it, or rejects after `timeoutMs`. */
  publish(timeoutMs?: number): Promise<Processed>;
  close(): Promise<void>;
}

/**
 * A publisher of the events queue that waits for the answer: its reply queue is read by one loop
 * that settles each waiting publish by the event's id.
 */
export async function startPublisher(endpoint: string, replyQueue: string): Promise<Publisher> {
  const client = sqsClient(endpoint);
  const [events, replies] = await Promise.all([ensureQueue(client, EVENTS_QUEUE), ensureQueue(client, replyQueue)]);
  const waiting = new Map<string, (processed: Processed) => void>();
  const stopping = new AbortController();

  const loop = (async () => {
    while (!stopping.signal.aborted) {
      let messages: Message[];
      try {
        const answer = await client.send(new ReceiveMessageCommand({ QueueUrl: replies, WaitTimeSeconds: 20, MaxNumberOfMessages: 10 }), { abortSignal: stopping.signal });
        messages = answer.Messages ?? [];
      } catch (error) {
        if (stopping.signal.aborted) return;
        console.error(`replies: receive failed: ${(error as Error).message}`);
        // Ended at once by close(): the SQS server may be stopping before this process.
        await sleep(500, undefined, { signal: stopping.signal }).catch(() => undefined);
        continue;
      }
      for (const m of messages) {
        const reply = parse<ReplyBody>(m.Body);
        if (typeof reply?.id === 'string') waiting.get(reply.id)?.({ service: String(reply.service), lane: String(reply.lane), reason: String(reply.reason), receives: Number(reply.receives) });
        await client.send(new DeleteMessageCommand({ QueueUrl: replies, ReceiptHandle: m.ReceiptHandle })).catch(() => undefined);
      }
    }
  })();

  return {
    async publish(timeoutMs = 15_000) {
      const id = randomUUID();
      const body: EventBody = { id, replyTo: replies };
      let timer: NodeJS.Timeout | undefined;
      const answered = new Promise<Processed>((resolve, reject) => {
        waiting.set(id, resolve);
        timer = setTimeout(() => reject(new EventError('DEVSTACK_DEMO_NOT_PROCESSED', `no lane processed event ${id} within ${timeoutMs} ms; it stays in ${EVENTS_QUEUE}`)), timeoutMs);
      });
      try {
        // The request's key, from the context withRouting set: the attribute the worker decides by.
        const attributes = injectSqsAttributes({}) as SqsAttributes as NonNullable<SendMessageCommand['input']['MessageAttributes']>;
        await client.send(new SendMessageCommand({ QueueUrl: events, MessageBody: JSON.stringify(body), MessageAttributes: attributes })).catch((error: Error) => {
          throw new EventError('DEVSTACK_DEMO_QUEUE_FAILED', `cannot publish to ${EVENTS_QUEUE}: ${error.message}`, { cause: error });
        });
        return await answered;
      } finally {
        clearTimeout(timer);
        waiting.delete(id);
      }
    },
    async close() {
      stopping.abort();
      await loop;
      client.destroy();
    },
  };
}

/** The worker's side: the reply for a processed event, sent to the publisher's queue. */
export async function answer(client: SQSClient, message: Message, processed: Processed): Promise<void> {
  const event = parse<EventBody>(message.Body);
  const replyTo = typeof event?.replyTo === 'string' ? event.replyTo : undefined;
  // Only a demo reply queue: an event cannot make the worker write to another queue.
  if (typeof event?.id !== 'string' || replyTo === undefined || !REPLY_QUEUE_NAME.test(replyTo.slice(replyTo.lastIndexOf('/') + 1))) return;
  const reply: ReplyBody = { id: event.id, ...processed };
  await client.send(new SendMessageCommand({ QueueUrl: replyTo, MessageBody: JSON.stringify(reply) }));
}
