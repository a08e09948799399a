import { describeUntrusted, effectiveKey, HOPS_HEADER, normalizeHost, routeStep, serviceForAuthority, type KeyCodec, type PassiveHealth, type Refusal, type Snapshot } from '@devstack/core';
import type { ProxyErrorCode } from './errors.js';
import type { Exchange, Stage } from './exchange.js';
import { addForwarded, hostHeaderCount, endToEndHeaders } from './headers.js';
import { PASSTHROUGH_LANE, passthroughHeaders, passthroughTarget } from './passthrough.js';

export type SnapshotRef = () => Snapshot | undefined;

/** The authority of a request in origin form: HTTP/2 names it in `:authority` (RFC 9113 §8.3.1), Host being only its fallback. */
export function requestAuthority(ex: Exchange): string | undefined {
  const { headers } = ex.req;
  return ex.h2 ? ((headers[':authority'] as string | undefined) ?? headers.host) : headers.host;
}

/** The Host the client meant: the absolute-form authority if given (RFC 9112 §3.2.2), else the Host header. */
export const readTarget: Stage = (ex) => {
  const { req } = ex;
  if (hostHeaderCount(req.rawHeaders) > 1) return ex.fail('DEVSTACK_DUPLICATE_HOST', 'more than one Host header');
  // HTTP/1.1 CONNECT never gets here (the server's 'connect' event takes it); HTTP/2's would name no path.
  if (req.method === 'CONNECT') return ex.fail('DEVSTACK_METHOD_NOT_ALLOWED', 'CONNECT over HTTP/2 is not supported; send the request itself');
  const url = ex.path;
  if (url.charCodeAt(0) !== 47 /* '/' */ && /^https?:\/\//i.test(url)) {
    const start = url.indexOf('//') + 2;
    let end = start;
    while (end < url.length && url[end] !== '/' && url[end] !== '?' && url[end] !== '#') end++;
    ex.host = url.slice(start, end);
    ex.path = end < url.length ? (url[end] === '/' ? url.slice(end) : `/${url.slice(end)}`) : '/';
  } else {
    ex.host = requestAuthority(ex);
  }
  if (ex.host === undefined || ex.host.length === 0) return ex.fail('DEVSTACK_MISSING_HOST', 'the request names no service (no Host header)');
  // `*` (OPTIONS *) and authority-form targets name no resource to forward.
  if (ex.path.charCodeAt(0) !== 47) return ex.fail('DEVSTACK_BAD_REQUEST', 'the request target must be a path or an absolute http:// URL');
  ex.next();
};

/**
 * Which registry service the request is for. A host outside the registry is refused by the routing
 * step, or, with `passthrough` (a loopback outbound listener only), sent on to the host it names.
 */
export function outboundService(snapshot: SnapshotRef, clusterDomain: string, passthrough = false): Stage {
  return (ex) => {
    const snap = snapshot();
    if (snap === undefined) return ex.fail('DEVSTACK_NOT_READY', 'no registry snapshot yet');
    ex.service = serviceForAuthority(snap, ex.host!, clusterDomain);
    if (ex.service === undefined && passthrough) {
      const target = passthroughTarget(ex.host!);
      if (target === null) return ex.fail('DEVSTACK_BAD_REQUEST', `cannot pass through to ${describeUntrusted(ex.host)}: not a host[:port]`);
      if (/^https:/i.test(ex.req.url ?? '')) return ex.fail('DEVSTACK_BAD_REQUEST', 'https:// cannot be passed through as plain HTTP; call it directly');
      ex.passthrough = true;
      ex.lane = PASSTHROUGH_LANE;
      ex.target = target;
    }
    ex.next();
  };
}

/** Edge: `<domain>` and `<key>.<domain>` are the entry service; other hosts are not served. */
export function edgeService(codec: KeyCodec, entry: string): Stage {
  const domains = new Set(codec.domains);
  return (ex) => {
    const host = normalizeHost(ex.host!);
    // A malformed first label still belongs to the edge: it is served by base as an invalid key.
    if (host !== undefined && (domains.has(host) || codec.readHost(host).carrier === 'host')) {
      ex.service = entry;
      return ex.next();
    }
    ex.fail('DEVSTACK_UNKNOWN_HOST', `this edge serves ${codec.domains.join(', ')} and their first-level subdomains`);
  };
}

export interface KeyStageOptions {
  /** Key for requests that arrive without a valid one (a feature copy keeps its chain in its lane). */
  defaultKey?: string | undefined;
  /** Ignore keys in the client's headers; only the Host decides (an edge facing untrusted clients). */
  dropClientKeys?: boolean | undefined;
  onInvalid?: ((ex: Exchange) => void) | undefined;
}

/** Reads the key from the carriers, the Host carrier from the authority the request is routed by. */
export function extractKey(codec: KeyCodec, options: KeyStageOptions): Stage {
  const { defaultKey, dropClientKeys, onInvalid } = options;
  return (ex) => {
    const reading = dropClientKeys ? codec.readHost(ex.host) : codec.read(ex.req.headers, ex.host);
    ex.reading = reading;
    ex.key = effectiveKey(reading, defaultKey);
    if (reading.problem !== undefined) onInvalid?.(ex);
    ex.next();
  };
}

export interface ResolveStageOptions {
  defaultKey?: string | undefined;
  strict?: boolean | undefined;
  health?: PassiveHealth | undefined;
}

const REFUSAL_CODES: Record<Refusal, ProxyErrorCode> = {
  'unknown-service': 'DEVSTACK_UNKNOWN_SERVICE',
  'no-feature-copy': 'DEVSTACK_NO_FEATURE_COPY',
  'no-ready-target': 'DEVSTACK_NO_READY_UPSTREAM',
};

/** The shared routing step (core's `routeStep`): lane and target, or the refusal as a JSON error. */
export function resolveLane(snapshot: SnapshotRef, options: ResolveStageOptions): Stage {
  const step = { defaultKey: options.defaultKey, strict: options.strict === true, health: options.health };
  return (ex) => {
    if (ex.passthrough) return ex.next();
    const snap = snapshot();
    if (snap === undefined) return ex.fail('DEVSTACK_NOT_READY', 'no registry snapshot yet');
    if (routeStep(snap, ex.service, ex.reading, step, ex)) return ex.next();
    const refusal = ex.refusal!;
    const message =
      refusal === 'unknown-service'
        ? `no service named ${describeUntrusted(ex.host)} in the registry`
        : refusal === 'no-feature-copy'
          ? `strict mode: no ready copy of ${ex.service} for the key (${ex.decision!.reason})`
          : `no ready target in lane ${ex.lane} of ${ex.service}`;
    ex.fail(REFUSAL_CODES[refusal], message);
  };
}

/**
 * The hop count a request arrived with: 0 when absent, -1 when it is not a plain non-negative
 * integer (a repeated header, a sign, anything else), which is never trusted.
 */
export function readHops(raw: string | string[] | undefined): number {
  if (raw === undefined) return 0;
  if (typeof raw !== 'string' || !/^[0-9]{1,9}$/.test(raw)) return -1;
  return Number(raw);
}

/**
 * Refuses requests that have passed through devstack listeners too often (a routing loop: 508), and
 * a hop count that is not a non-negative integer (400: a client could otherwise reset the count
 * and loop a request through the fleet).
 */
export function loopGuard(maxHops: number): Stage {
  return (ex) => {
    const hops = readHops(ex.req.headers[HOPS_HEADER]);
    ex.hops = hops;
    if (hops === -1) return ex.fail('DEVSTACK_INVALID_HOPS', `${HOPS_HEADER} must be one non-negative integer`);
    if (hops >= maxHops) return ex.fail('DEVSTACK_LOOP_DETECTED', `request passed ${hops} devstack hops: a routing loop`);
    ex.next();
  };
}

export interface HeaderStageOptions {
  /** Count this pass in the hop header (routing listeners do; the inbound listener cannot loop). */
  countHop: boolean;
  dropClientKeys?: boolean | undefined;
  /**
   * Whether X-Forwarded-* from the client are kept and appended to. The edge is the first hop and
   * faces untrusted clients: it sets them itself.
   */
  trustForwarded?: boolean | undefined;
}

/** Builds the upstream request headers: end-to-end headers, the key in every carrier, forwarding info. */
export function rewriteHeaders(codec: KeyCodec, options: HeaderStageOptions): Stage {
  const { countHop, dropClientKeys } = options;
  const trustForwarded = options.trustForwarded !== false;
  return (ex) => {
    const { req } = ex;
    const out = endToEndHeaders(req.headers);
    if (ex.passthrough) {
      ex.headers = out;
      passthroughHeaders(ex, codec);
      return ex.next();
    }
    // The raw value of an invalid key never travels on; a default key, if any, replaces it below.
    if (dropClientKeys || ex.reading?.problem !== undefined) codec.strip(out);
    if (ex.key !== undefined) codec.write(out, ex.key);
    // The loop guard before this stage has read and checked the count.
    if (countHop) out[HOPS_HEADER] = String(ex.hops + 1);
    addForwarded(out, req.socket.remoteAddress, ex.host, 'encrypted' in req.socket ? 'https' : 'http', trustForwarded);
    if (ex.host !== undefined) out['host'] = ex.host;
    ex.headers = out;
    ex.next();
  };
}
