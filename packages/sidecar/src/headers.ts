import type { IncomingHttpHeaders } from 'node:http';
import type { MutableHeaderBag } from '@devstack/core';

/** RFC 9110 §7.6.1 connection-specific headers, plus the legacy ones proxies must not forward. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  // Except its `trailers` token (RFC 9110 §10.1.4): endToEndHeaders passes that one on.
  'te',
  // Re-added only where the message can carry trailers (a chunked body): see forward.ts.
  'trailer',
  'transfer-encoding',
  'upgrade',
  // Node's server answers `Expect: 100-continue` itself; the upstream connection makes its own choice.
  'expect',
  // HTTP/2's connection-specific header (RFC 9113 §8.2.2) and pseudo-headers: each hop makes its own.
  'http2-settings',
  ':authority',
  ':method',
  ':path',
  ':scheme',
  ':status',
  ':protocol',
]);

/** Names listed in a Connection header (which must be dropped with it), lower-cased. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  // Nearly every request says just one of these: no tokens, nothing to split.
  if (value === 'keep-alive' || value === 'close' || value === 'Keep-Alive') return undefined;
  const text = typeof value === 'string' ? value : value.join(',');
  let out: Set<string> | undefined;
  for (const token of text.split(',')) {
    const name = token.trim().toLowerCase();
    if (name.length > 0 && name !== 'close' && name !== 'keep-alive') (out ??= new Set()).add(name);
  }
  return out;
}

/**
 * A copy of a message's end-to-end headers: hop-by-hop headers and those the Connection header
 * names are left out.
 */
export function endToEndHeaders(headers: IncomingHttpHeaders): MutableHeaderBag {
  const named = connectionTokens(headers.connection);
  const out: MutableHeaderBag = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    out[name] = headers[name];
  }
  // The client reads trailers, and every hop on the way forwards them: the upstream may send them.
  if (headers.te !== undefined && acceptsTrailers(headers.te)) out['te'] = 'trailers';
  return out;
}

/** True when a TE header lists the `trailers` token (other codings are this hop's business only). */
function acceptsTrailers(te: string | string[]): boolean {
  for (const token of (typeof te === 'string' ? te : te.join(',')).split(',')) {
    const semi = token.indexOf(';');
    if ((semi === -1 ? token : token.slice(0, semi)).trim().toLowerCase() === 'trailers') return true;
  }
  return false;
}

/**
 * The upstream's response headers as a flat [name, value, ...] list for `writeHead`, end-to-end only,
 * plus `extra`. Node skips re-validating a list: these came out of undici's HTTP parser already.
 */
export function responseHeaderList(headers: Record<string, string | string[] | undefined>, extraName: string, extraValue: string): string[] {
  const named = connectionTokens(headers['connection']);
  const out: string[] = [];
  for (const name in headers) {
    // `extra` replaces what the upstream said (a lane header from the hop before this one).
    if (HOP_BY_HOP.has(name) || named?.has(name) || name === extraName) continue;
    const value = headers[name];
    if (typeof value === 'string') out.push(name, value);
    else if (value !== undefined) for (const v of value) out.push(name, v);
  }
  out.push(extraName, extraValue);
  return out;
}

/**
 * Appends the client to X-Forwarded-For and records the original Host and protocol. When the
 * client is not trusted (`trusted` false: the first hop), whatever it claimed is replaced.
 */
export function addForwarded(out: MutableHeaderBag, clientAddress: string | undefined, host: string | undefined, proto: string, trusted = true): void {
  if (!trusted) {
    delete out['x-forwarded-for'];
    delete out['x-forwarded-host'];
    delete out['x-forwarded-proto'];
    delete out['forwarded'];
  }
  const prior = out['x-forwarded-for'];
  if (clientAddress !== undefined) {
    out['x-forwarded-for'] = prior === undefined ? clientAddress : `${Array.isArray(prior) ? prior.join(', ') : String(prior)}, ${clientAddress}`;
  }
  if (out['x-forwarded-host'] === undefined && host !== undefined) out['x-forwarded-host'] = host;
  if (out['x-forwarded-proto'] === undefined) out['x-forwarded-proto'] = proto;
}

/** Counts Host headers in the raw list: two of them is a request smuggling shape, refused with 400. */
export function hostHeaderCount(rawHeaders: readonly string[]): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') count++;
  }
  return count;
}
