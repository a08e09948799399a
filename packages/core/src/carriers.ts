import { ConfigError } from './errors.js';
import { baggageValues, mergeBaggage } from './baggage.js';
import { isValidKey } from './key.js';

/**
 * Where a routing key can travel, highest precedence first. The highest-precedence carrier that is
 * present decides alone; lower carriers are ignored even when they disagree (they are usually stale
 * copies from an older hop, and writing the key overwrites them). Within the deciding carrier every
 * value must agree: repeated headers, comma-joined values or repeated baggage entries with
 * different values are a conflict, and a conflict is an invalid key (the request goes to base).
 */
export const CARRIER_PRECEDENCE = Object.freeze(['header', 'baggage', 'jaeger', 'host'] as const);
export type Carrier = (typeof CARRIER_PRECEDENCE)[number];

export const DEFAULT_KEY_NAME = 'uber-ctx-key';
export const JAEGER_BAGGAGE_PREFIX = 'uberctx-';

export type KeyProblem = 'malformed' | 'conflict';

export interface KeyReading {
  /** A valid routing key, or undefined when there is none or it was invalid. */
  readonly key: string | undefined;
  /** The carrier that decided, or undefined when no carrier was present. */
  readonly carrier: Carrier | undefined;
  /** Why a present carrier gave no key. */
  readonly problem: KeyProblem | undefined;
}

/** Node's `IncomingHttpHeaders` shape: lower-case names, repeated values as arrays or joined. */
export type HeaderBag = Readonly<Record<string, string | readonly string[] | number | undefined>>;
export type MutableHeaderBag = Record<string, string | string[] | number | undefined>;

export interface KeyCodecOptions {
  /**
   * The key's name in every carrier: the plain header, the baggage entry and the Jaeger
   * `uberctx-<name>` header. Default `uber-ctx-key`; older setups use e.g. `dev-serve-user`.
   */
  name?: string;
  /** Base domains whose first extra label is a key (`feature1.example.com`); empty: Host is not read. */
  domains?: readonly string[];
}

export interface KeyCodec {
  readonly name: string;
  readonly jaegerHeader: string;
  readonly domains: readonly string[];
  /**
   * Reads the key from a request's headers and, when domains are configured, from the authority the
   * request is routed by: `authority` when given (an absolute-form target's, RFC 9112 §3.2.2), else
   * the Host header. Never throws.
   */
  read(headers: HeaderBag, authority?: string): KeyReading;
  /** The key carried by a Host value under one of the domains; undefined when it carries none. */
  readHost(host: string | undefined): KeyReading;
  /** Writes the key as the plain header and into `baggage`, keeping every other baggage entry. */
  write(headers: MutableHeaderBag, key: string): MutableHeaderBag;
  /** Removes the key from every header carrier (used to ignore keys from untrusted clients). */
  strip(headers: MutableHeaderBag): MutableHeaderBag;
}

const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const DOMAIN_PATTERN = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

const NONE: KeyReading = Object.freeze({ key: undefined, carrier: undefined, problem: undefined });

function frozenReadings(carrier: Carrier) {
  return {
    malformed: Object.freeze({ key: undefined, carrier, problem: 'malformed' as const }),
    conflict: Object.freeze({ key: undefined, carrier, problem: 'conflict' as const }),
  };
}

const BAD = {
  header: frozenReadings('header'),
  baggage: frozenReadings('baggage'),
  jaeger: frozenReadings('jaeger'),
  host: frozenReadings('host'),
};

function valid(key: string, carrier: Carrier): KeyReading {
  return { key, carrier, problem: undefined };
}

/** One agreed value out of a list of raw values, or the problem with them. */
function agree(values: readonly string[], carrier: Carrier): KeyReading {
  let first: string | undefined;
  for (const raw of values) {
    const value = raw.trim();
    if (first === undefined) first = value;
    else if (value !== first) return BAD[carrier].conflict;
  }
  if (first === undefined || !isValidKey(first)) return BAD[carrier].malformed;
  return valid(first, carrier);
}

function headerValues(value: string | readonly string[] | number, decode: boolean): string[] | undefined {
  const parts: string[] = [];
  const list = typeof value === 'object' ? value : [String(value)];
  for (const item of list) {
    for (const part of item.split(',')) {
      if (!decode || part.indexOf('%') === -1) {
        parts.push(part);
        continue;
      }
      try {
        parts.push(decodeURIComponent(part));
      } catch {
        return undefined;
      }
    }
  }
  return parts;
}

function readPlain(value: string | readonly string[] | number, carrier: Carrier, decode: boolean): KeyReading {
  // Hot path: one string, no comma, nothing to decode.
  if (typeof value === 'string' && value.indexOf(',') === -1 && (!decode || value.indexOf('%') === -1)) {
    const key = value.trim();
    return isValidKey(key) ? valid(key, carrier) : BAD[carrier].malformed;
  }
  const parts = headerValues(value, decode);
  return parts === undefined ? BAD[carrier].malformed : agree(parts, carrier);
}

/** Lower-cases, drops the port and one trailing dot. Returns undefined for an unusable Host. */
export function normalizeHost(host: string): string | undefined {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[')) return undefined; // an IPv6 literal never carries a key
  const colon = h.lastIndexOf(':');
  if (colon !== -1) {
    const port = h.slice(colon + 1);
    if (!/^[0-9]{1,5}$/.test(port)) return undefined;
    h = h.slice(0, colon);
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h.length === 0 ? undefined : h;
}

export function createKeyCodec(options: KeyCodecOptions = {}): KeyCodec {
  const name = options.name ?? DEFAULT_KEY_NAME;
  const problems: string[] = [];
  if (!NAME_PATTERN.test(name)) problems.push(`key name ${JSON.stringify(name)} must be a lower-case header token (a-z, 0-9, '.', '_', '-')`);
  const domains: string[] = [];
  for (const raw of options.domains ?? []) {
    const domain = normalizeHost(raw);
    if (domain === undefined || !DOMAIN_PATTERN.test(domain)) problems.push(`domain ${JSON.stringify(raw)} is not a DNS name`);
    else domains.push(domain);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  // Longest first, so `app.example.com` wins over `example.com` for `k.app.example.com`.
  domains.sort((a, b) => b.length - a.length);
  const suffixes = domains.map((d) => `.${d}`);
  const jaegerHeader = JAEGER_BAGGAGE_PREFIX + name;

  function readHost(host: string | undefined): KeyReading {
    if (host === undefined || suffixes.length === 0) return NONE;
    const h = normalizeHost(host);
    if (h === undefined) return NONE;
    for (let i = 0; i < suffixes.length; i++) {
      if (h === domains[i]) return NONE;
      const suffix = suffixes[i]!;
      if (h.endsWith(suffix)) {
        const label = h.slice(0, h.length - suffix.length);
        // More than one label before the domain is not a key: `a.b.example.com` is refused.
        return isValidKey(label) ? valid(label, 'host') : BAD.host.malformed;
      }
    }
    return NONE;
  }

  function read(headers: HeaderBag, authority?: string): KeyReading {
    const plain = headers[name];
    if (plain !== undefined) return readPlain(plain, 'header', false);
    const baggage = headers['baggage'];
    if (baggage !== undefined && typeof baggage !== 'number') {
      const values = baggageValues(baggage, name);
      if (values.length > 0) return agree(values, 'baggage');
    }
    const jaeger = headers[jaegerHeader];
    if (jaeger !== undefined) return readPlain(jaeger, 'jaeger', true);
    if (suffixes.length === 0) return NONE;
    const host = authority ?? headers['host'] ?? headers[':authority'];
    return typeof host === 'string' ? readHost(host) : NONE;
  }

  function write(headers: MutableHeaderBag, key: string): MutableHeaderBag {
    headers[name] = key;
    const baggage = headers['baggage'];
    headers['baggage'] = mergeBaggage(typeof baggage === 'number' ? String(baggage) : baggage, name, key);
    // A stale Jaeger copy is rewritten rather than left to disagree with the plain header.
    if (headers[jaegerHeader] !== undefined) headers[jaegerHeader] = key;
    return headers;
  }

  function strip(headers: MutableHeaderBag): MutableHeaderBag {
    delete headers[name];
    delete headers[jaegerHeader];
    const baggage = headers['baggage'];
    if (baggage !== undefined) {
      const rest = mergeBaggage(typeof baggage === 'number' ? String(baggage) : baggage, name, undefined);
      if (rest.length === 0) delete headers['baggage'];
      else headers['baggage'] = rest;
    }
    return headers;
  }

  return Object.freeze({ name, jaegerHeader, domains: Object.freeze(domains), read, readHost, write, strip });
}
