import type { KeyCodec, MutableHeaderBag } from '@devstack/core';
import { outboundKey } from './context.js';
import { runtime } from './runtime.js';

type HeaderValue = string | string[] | number | undefined;

function add(bag: MutableHeaderBag, name: string, value: unknown): void {
  if (value === undefined || value === null) return;
  const v: string | string[] = Array.isArray(value) ? value.map(String) : String(value);
  const prev = bag[name];
  if (prev === undefined) bag[name] = v;
  else bag[name] = ([] as string[]).concat(typeof prev === 'number' ? String(prev) : prev, v);
}

/**
 * A lower-cased copy of headers in any shape undici accepts (record, flat array, array of pairs,
 * iterable). The caller's object is never changed: it may be reused for other requests.
 */
export function headerBag(headers: unknown): MutableHeaderBag {
  const bag: MutableHeaderBag = {};
  if (headers === null || typeof headers !== 'object') return bag;
  if (Array.isArray(headers)) {
    if (Array.isArray(headers[0])) for (const pair of headers as unknown[][]) add(bag, String(pair[0]).toLowerCase(), pair[1]);
    else for (let i = 0; i + 1 < headers.length; i += 2) add(bag, String(headers[i]).toLowerCase(), headers[i + 1]);
  } else if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const pair of headers as Iterable<unknown[]>) add(bag, String(pair[0]).toLowerCase(), pair[1]);
  } else {
    for (const [name, value] of Object.entries(headers)) add(bag, name.toLowerCase(), value);
  }
  return bag;
}

/** Writes the key (or, with undefined, strips every carrier of it). */
export function applyKey(bag: MutableHeaderBag, codec: KeyCodec, key: string | undefined): MutableHeaderBag {
  return key === undefined ? codec.strip(bag) : codec.write(bag, key);
}

function isCarrier(name: string, codec: KeyCodec): boolean {
  return name === codec.name || name === 'baggage' || name === codec.jaegerHeader;
}

/**
 * Rewrites the carriers inside a flat `[name, value, ...]` list in place (undici's request
 * headers): repeated `baggage` lines become one merged line, so the key appears exactly once
 * however many writers (the app, OpenTelemetry, this SDK) touched it.
 */
export function rewriteFlat(headers: unknown[], codec: KeyCodec, key: string | undefined): void {
  const bag: MutableHeaderBag = {};
  let seen = false;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = String(headers[i]).toLowerCase();
    if (isCarrier(name, codec)) {
      add(bag, name, headers[i + 1]);
      seen = true;
    }
  }
  if (!seen && key === undefined) return;
  applyKey(bag, codec, key);
  let w = 0;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (isCarrier(String(headers[i]).toLowerCase(), codec)) continue;
    headers[w++] = headers[i];
    headers[w++] = headers[i + 1];
  }
  headers.length = w;
  for (const [name, value] of Object.entries(bag)) if (value !== undefined) headers.push(name, value as HeaderValue);
}

/**
 * Adds the current routing key to a plain header record (lower-case names) and returns it: for
 * clients the SDK does not cover, such as gRPC metadata or a hand-built request. With no key in
 * context (and no default) the record is returned unchanged.
 */
export function injectRoutingKey<T extends MutableHeaderBag>(headers: T): T {
  const key = outboundKey();
  if (key !== undefined) runtime().codec.write(headers, key);
  return headers;
}
