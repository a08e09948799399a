import type { KeyCodec, MutableHeaderBag } from '@devstack/core';
import { outboundKey } from './context.js';
import { inboundBaggage } from './passthrough.js';
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
  if (key === undefined) return codec.strip(bag);
  // A call with no `baggage` of its own carries on the one its request came in with (see passthrough.ts).
  if (bag['baggage'] === undefined) {
    const inbound = inboundBaggage();
    if (inbound !== undefined) bag['baggage'] = typeof inbound === 'string' ? inbound : [...inbound];
  }
  return codec.write(bag, key);
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

type Entry = [name: string, value: unknown];

function entriesOf(headers: unknown): { shape: 'flat' | 'pairs' | 'record'; entries: Entry[] } {
  const entries: Entry[] = [];
  if (Array.isArray(headers)) {
    if (Array.isArray(headers[0])) {
      for (const pair of headers as unknown[][]) entries.push([String(pair[0]), pair[1]]);
      return { shape: 'pairs', entries };
    }
    for (let i = 0; i + 1 < headers.length; i += 2) entries.push([String(headers[i]), headers[i + 1]]);
    return { shape: 'flat', entries };
  }
  // node:http's own header store: lower-case name -> [name as set, value].
  if (headers !== null && typeof headers === 'object') {
    for (const stored of Object.values(headers)) if (Array.isArray(stored)) entries.push([String(stored[0]), stored[1]]);
  }
  return { shape: 'record', entries };
}

/**
 * The headers node:http is about to render (`ClientRequest#_storeHeader`: its own header store, or a
 * raw `[name, value, ...]` list or list of pairs as the app gave it), with the key written, or with
 * every carrier of it stripped when `key` is undefined. A new value, never the one given: a raw
 * list may be the app's own (an incoming request's `rawHeaders`), and the store is the request's.
 * Lists keep their shape; the store comes back as a `name -> value` record, which node:http renders
 * as it renders its store. Each carrier keeps the place of its first line; one the key adds goes
 * last; other headers keep their names, values and order.
 */
export function rewriteRendered(headers: unknown, codec: KeyCodec, key: string | undefined): unknown {
  const { shape, entries } = entriesOf(headers);
  const out = rewriteEntries(entries, codec, key);
  if (out === undefined) return headers;
  if (shape === 'pairs') return out;
  if (shape === 'flat') return out.flat();
  // Any object but its own store is rendered by node:http as a plain name -> value record.
  const record: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [name, value] of out) record[name] = value;
  return record;
}

/**
 * A copy of a `name -> value` header record (node:http2's request headers) with the key written,
 * or every carrier of it stripped when `key` is undefined; the record itself when there is
 * nothing to change. Symbol-keyed entries (`http2.sensitiveHeaders`) are kept.
 */
export function rewriteRecord<T extends object>(headers: T, codec: KeyCodec, key: string | undefined): T {
  const out = rewriteEntries(Object.entries(headers), codec, key);
  if (out === undefined) return headers;
  const record: Record<string | symbol, unknown> = {};
  for (const [name, value] of out) record[name] = value;
  for (const symbol of Object.getOwnPropertySymbols(headers)) record[symbol] = (headers as Record<symbol, unknown>)[symbol];
  return record as T;
}

/** The entries with the carriers rewritten in place (see rewriteRendered); undefined: unchanged. */
function rewriteEntries(entries: readonly Entry[], codec: KeyCodec, key: string | undefined): Entry[] | undefined {
  const bag: MutableHeaderBag = {};
  let seen = false;
  for (const [name, value] of entries) {
    const lower = name.toLowerCase();
    if (!isCarrier(lower, codec)) continue;
    add(bag, lower, value);
    seen = true;
  }
  if (!seen && key === undefined) return undefined;
  applyKey(bag, codec, key);
  const out: Entry[] = [];
  const placed = new Set<string>();
  for (const [name, value] of entries) {
    const lower = name.toLowerCase();
    if (!isCarrier(lower, codec)) out.push([name, value]);
    else if (!placed.has(lower)) {
      placed.add(lower);
      if (bag[lower] !== undefined) out.push([name, bag[lower]]);
    }
  }
  for (const [name, value] of Object.entries(bag)) if (value !== undefined && !placed.has(name)) out.push([name, value]);
  return out;
}

/**
 * Adds the current routing key to a plain header record (lower-case names) and returns it: for
 * clients the SDK does not cover, such as gRPC metadata or a hand-built request. With no key in
 * context (and no default) the record is returned unchanged.
 */
export function injectRoutingKey<T extends MutableHeaderBag>(headers: T): T {
  const key = outboundKey();
  if (key !== undefined) applyKey(headers, runtime().codec, key);
  return headers;
}
