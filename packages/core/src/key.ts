import { InvalidKeyError } from './errors.js';

/** DNS-1123 label: the only shape a routing key may have, so it is safe in labels, hosts and rules. */
export const KEY_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const MAX_KEY_LENGTH = 63;

export function isValidKey(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_KEY_LENGTH && KEY_PATTERN.test(value);
}

export function assertValidKey(value: unknown, what = 'routing key'): string {
  if (isValidKey(value)) return value;
  throw new InvalidKeyError(`${what} ${describeUntrusted(value)} is not a DNS-1123 label (a-z, 0-9, '-', at most 63 characters)`);
}

/**
 * A bounded, escaped rendering of an untrusted value for messages and logs: JSON escaping turns
 * CR/LF, quotes and control characters into visible escapes, and the length cap keeps a hostile
 * header from flooding a log line.
 */
export function describeUntrusted(value: unknown, max = 64): string {
  if (typeof value !== 'string') return String(value);
  const cut = value.length > max ? `${value.slice(0, max)}…` : value;
  // Non-ASCII is escaped too, so bidi controls and look-alike characters cannot hide in a log line.
  return JSON.stringify(cut).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
