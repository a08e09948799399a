import { diag } from '@opentelemetry/api';
import { isValidKey, type KeyReading, type MutableHeaderBag } from '@devstack/core';
import { outboundKey } from './context.js';
import { runtime } from './runtime.js';

/** An SQS message attribute in the AWS SDK's shape, or the lower-case shape Lambda events use. */
export interface SqsAttribute {
  DataType?: string;
  StringValue?: string;
  dataType?: string;
  stringValue?: string;
  [other: string]: unknown;
}
export type SqsAttributes = Record<string, SqsAttribute | undefined>;

/** Kafka-style record headers (kafkajs): values are strings, Buffers or lists of them. */
export type KafkaHeaders = Record<string, string | Uint8Array | ReadonlyArray<string | Uint8Array> | undefined>;

function text(value: unknown): string | string[] | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  if (Array.isArray(value)) return value.map((v) => text(v)).filter((v): v is string => typeof v === 'string');
  return undefined;
}

function readKey(bag: MutableHeaderBag, where: string): string | undefined {
  return readCarriers(bag, where).key;
}

/** The key reading of a message's carriers; a problem is counted and logged as inbound. */
export function readCarriers(bag: MutableHeaderBag, where: string): KeyReading {
  const reading = runtime().codec.read(bag);
  if (reading.problem !== undefined) {
    runtime().metrics?.invalidKey('inbound', reading.carrier ?? 'unknown', reading.problem);
    diag.debug(`devstack: ignored a ${reading.problem} routing key in ${where}`);
  }
  return reading;
}

/**
 * Message attributes with the routing key added (the current one unless `key` is given) as a String
 * attribute named like the header (`uber-ctx-key`). Returns a new object; with no key, the input.
 */
export function injectSqsAttributes(attributes: SqsAttributes = {}, key: string | undefined = outboundKey()): SqsAttributes {
  if (key === undefined || !isValidKey(key)) return attributes;
  return { ...attributes, [runtime().codec.name]: { DataType: 'String', StringValue: key } };
}

/**
 * The routing key carried by message attributes, read like headers: the key attribute first, then a
 * `baggage` attribute (as OpenTelemetry's SQS instrumentation writes it), then the Jaeger name.
 * Undefined when absent or invalid; never throws.
 */
export function extractSqsKey(attributes: SqsAttributes | undefined | null): string | undefined {
  const bag = sqsCarriers(attributes);
  return bag === undefined ? undefined : readKey(bag, 'SQS message attributes');
}

/** The key's carriers among message attributes, as headers; undefined for no attributes at all. */
export function sqsCarriers(attributes: SqsAttributes | undefined | null): MutableHeaderBag | undefined {
  if (attributes === null || typeof attributes !== 'object') return undefined;
  const { codec } = runtime();
  const bag: MutableHeaderBag = {};
  for (const [name, attr] of Object.entries(attributes)) {
    const lower = name.toLowerCase();
    if (lower !== codec.name && lower !== 'baggage' && lower !== codec.jaegerHeader) continue;
    const value = attr?.StringValue ?? attr?.stringValue;
    if (typeof value === 'string') bag[lower] = value;
  }
  return bag;
}

/** Record headers with the routing key set (and merged into a `baggage` header if there is one). */
export function injectKafkaHeaders(headers: KafkaHeaders = {}, key: string | undefined = outboundKey()): KafkaHeaders {
  if (key === undefined || !isValidKey(key)) return headers;
  const { codec } = runtime();
  const out: KafkaHeaders = { ...headers, [codec.name]: key };
  const baggage = text(headers['baggage']);
  if (baggage !== undefined) out['baggage'] = codec.write({ baggage }, key)['baggage'] as string;
  return out;
}

/** The routing key carried by record headers (same carriers and rules as HTTP). Never throws. */
export function extractKafkaKey(headers: KafkaHeaders | undefined | null): string | undefined {
  const bag = kafkaCarriers(headers);
  return bag === undefined ? undefined : readKey(bag, 'record headers');
}

/** Record headers as a header bag (text values); undefined for no headers at all. */
export function kafkaCarriers(headers: KafkaHeaders | undefined | null): MutableHeaderBag | undefined {
  if (headers === null || typeof headers !== 'object') return undefined;
  const bag: MutableHeaderBag = {};
  for (const [name, value] of Object.entries(headers)) {
    const v = text(value);
    if (v !== undefined) bag[name.toLowerCase()] = v;
  }
  return bag;
}

/** The name of a queue's or topic's copy for a key: `orders-events` -> `orders-events-feature1`. */
export function featureQueueName(name: string, key: string): string {
  return `${name}-${key}`;
}

/**
 * The queue or topic to use for the current key (or `key`): its per-feature copy when that copy
 * exists, else the name itself, as calls fall back to base. `exists` is the set of existing names or
 * a predicate (for example a cached ListQueues result).
 */
export function resolveQueueName(
  name: string,
  exists: ReadonlySet<string> | ((name: string) => boolean),
  key: string | undefined = outboundKey(),
): string {
  if (key === undefined || !isValidKey(key)) return name;
  const copy = featureQueueName(name, key);
  try {
    return (typeof exists === 'function' ? exists(copy) : exists.has(copy)) ? copy : name;
  } catch (error) {
    diag.error(`devstack: queue lookup failed, using ${name}: ${(error as Error).message}`);
    return name;
  }
}
