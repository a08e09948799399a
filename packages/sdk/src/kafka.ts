/*
 * Lane consumption of Kafka records. Each lane reads every record through its own consumer group
 * (`laneGroupId`: `<group>-<key>` for a copy), so a record is never handed back: a lane processes
 * its own and skips the rest, by the fan-out rule. Structural types only: no Kafka client is loaded.
 */
import type { KeyReading, MutableHeaderBag } from '@devstack/core';
import { consumeDecision, fanOutConsume, type ConsumeDecision, type LaneOptions } from './consume.js';
import { withRoutingKey } from './context.js';
import { kafkaCarriers, readCarriers, type KafkaHeaders } from './messages.js';

/**
 * Record headers as the clients give them: kafkajs' object (`IHeaders`: strings, Buffers, lists of
 * them), or @platformatic/kafka's `Map` (Buffer keys and values, or strings with string
 * deserializers).
 */
export type RecordHeaders = KafkaHeaders | ReadonlyMap<unknown, unknown>;

/** A record with headers: kafkajs' `message` (`KafkaMessage`), or an @platformatic/kafka `Message`. */
export interface RecordLike {
  readonly headers?: RecordHeaders | null | undefined;
}

function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  return undefined;
}

function carriers(headers: RecordHeaders | null | undefined): MutableHeaderBag {
  if (headers instanceof Map) {
    const bag: KafkaHeaders = {};
    for (const [name, value] of headers as ReadonlyMap<unknown, unknown>) {
      const n = text(name);
      if (n === undefined) continue;
      const v = text(value);
      if (v === undefined) continue;
      // A header repeated under one name is kept as a list, as kafkajs gives it.
      const lower = n.toLowerCase();
      const had = bag[lower];
      bag[lower] = had === undefined ? v : [...(Array.isArray(had) ? had : [had as string]), v];
    }
    return kafkaCarriers(bag) ?? {};
  }
  return kafkaCarriers(headers as KafkaHeaders | null | undefined) ?? {};
}

/** The routing key reading of record headers (same carriers and rules as HTTP). Never throws. */
export function recordKeyReading(headers: RecordHeaders | null | undefined): KeyReading {
  return readCarriers(carriers(headers), 'record headers');
}

/** The lane decision for a record (its key from its headers). */
export function kafkaDecision(record: RecordLike | null | undefined, options?: LaneOptions): ConsumeDecision {
  return consumeDecision(recordKeyReading(record?.headers), options);
}

/** Whether this lane processes the record (the fan-out rule: every lane's group sees it). */
export function shouldConsumeRecord(record: RecordLike | null | undefined, options?: LaneOptions): boolean {
  return fanOutConsume(kafkaDecision(record, options));
}

export interface RecordHandlerOptions<R> extends LaneOptions {
  /** Called for each record another lane processes (for example to commit its offset). */
  onSkip?: (record: R, decision: ConsumeDecision) => unknown;
}

/** kafkajs' `eachMessage` payload, as far as the lane decision reads it. */
export interface EachMessagePayloadLike {
  readonly message: RecordLike;
}

/**
 * A kafkajs `eachMessage` that calls `handler` for this lane's records, in their key's context
 * (outbound calls carry it), and skips the others:
 * `consumer.run({ eachMessage: laneEachMessage(async ({ message }) => ...) })`.
 */
export function laneEachMessage<P extends EachMessagePayloadLike, T>(
  handler: (payload: P, decision: ConsumeDecision) => T | Promise<T>,
  options?: RecordHandlerOptions<P>,
): (payload: P) => Promise<T | undefined> {
  return async (payload) => {
    const decision = kafkaDecision(payload.message, options);
    if (!fanOutConsume(decision)) {
      await options?.onSkip?.(payload, decision);
      return undefined;
    }
    return withRoutingKey(decision.key, () => handler(payload, decision));
  };
}

/**
 * The same for @platformatic/kafka, whose consumer stream yields messages:
 * `const handle = laneMessageHandler(async (message) => ...); for await (const m of stream) await handle(m)`.
 */
export function laneMessageHandler<M extends RecordLike, T>(
  handler: (message: M, decision: ConsumeDecision) => T | Promise<T>,
  options?: RecordHandlerOptions<M>,
): (message: M) => Promise<T | undefined> {
  return async (message) => {
    const decision = kafkaDecision(message, options);
    if (!fanOutConsume(decision)) {
      await options?.onSkip?.(message, decision);
      return undefined;
    }
    return withRoutingKey(decision.key, () => handler(message, decision));
  };
}
