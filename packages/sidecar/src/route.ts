import { describeUntrusted, HOPS_HEADER, INVALID_KEY, normalizeHost, resolve, type KeyCodec, type Lane, type Snapshot, type Target } from '@devstack/core';
import type { Exchange, Stage } from './exchange.js';
import { addForwarded, hostHeaderCount, endToEndHeaders } from './headers.js';

export type SnapshotRef = () => Snapshot | undefined;

/** The Host the client meant: the absolute-form authority if given (RFC 9112 §3.2.2), else the Host header. */
export const readTarget: Stage = (ex) => {
  const { req } = ex;
  if (hostHeaderCount(req.rawHeaders) > 1) return ex.fail('DEVSTACK_DUPLICATE_HOST', 'more than one Host header');
  const url = ex.path;
  if (url.charCodeAt(0) !== 47 /* '/' */ && /^https?:\/\//i.test(url)) {
    const start = url.indexOf('//') + 2;
    let end = start;
    while (end < url.length && url[end] !== '/' && url[end] !== '?' && url[end] !== '#') end++;
    ex.host = url.slice(start, end);
    ex.path = end < url.length ? (url[end] === '/' ? url.slice(end) : `/${url.slice(end)}`) : '/';
  } else {
    ex.host = req.headers.host;
  }
  if (ex.host === undefined || ex.host.length === 0) return ex.fail('DEVSTACK_MISSING_HOST', 'the request names no service (no Host header)');
  // `*` (OPTIONS *) and authority-form targets name no resource to forward.
  if (ex.path.charCodeAt(0) !== 47) return ex.fail('DEVSTACK_BAD_REQUEST', 'the request target must be a path or an absolute http:// URL');
  ex.next();
};

/**
 * Which logical service a Host names: the name itself (`orders`, `orders:8080`) or a Kubernetes
 * service name (`orders.shop`, `orders.shop.svc`, `orders.shop.svc.cluster.local`). Anything else is
 * returned whole and will not be found: the sidecar never connects to what a Host names.
 */
export function serviceFromHost(host: string, snapshot: Snapshot, clusterDomain: string): string {
  const h = normalizeHost(host) ?? host;
  if (snapshot.services.has(h)) return h;
  const dot = h.indexOf('.');
  if (dot === -1) return h;
  const rest = h.slice(dot + 1);
  const ns = rest.indexOf('.');
  if (ns === -1 || rest.slice(ns + 1) === 'svc' || rest.slice(ns + 1) === `svc.${clusterDomain}`) return h.slice(0, dot);
  return h;
}

export function outboundService(snapshot: SnapshotRef, clusterDomain: string): Stage {
  return (ex) => {
    const snap = snapshot();
    if (snap === undefined) return ex.fail('DEVSTACK_NOT_READY', 'no registry snapshot yet');
    ex.service = serviceFromHost(ex.host!, snap, clusterDomain);
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
  /** Key for requests that arrive without one (a feature copy keeps its chain in its lane). */
  defaultKey?: string | undefined;
  /** Ignore keys in the client's headers; only the Host decides (an edge facing untrusted clients). */
  dropClientKeys?: boolean | undefined;
  onInvalid?: ((ex: Exchange) => void) | undefined;
}

export function extractKey(codec: KeyCodec, options: KeyStageOptions): Stage {
  const { defaultKey, dropClientKeys, onInvalid } = options;
  return (ex) => {
    const reading = dropClientKeys ? codec.readHost(ex.host) : codec.read(ex.req.headers);
    ex.reading = reading;
    if (reading.key !== undefined) ex.key = reading.key;
    else if (reading.problem !== undefined) onInvalid?.(ex);
    else ex.key = defaultKey;
    ex.next();
  };
}

export interface ResolveStageOptions {
  strict?: boolean | undefined;
}

const counters = new WeakMap<Lane, { n: number }>();

/** Round robin over a lane's ready targets; the counter lives with the (immutable) lane. */
export function pickTarget(lane: Lane): Target {
  const ready = lane.ready;
  if (ready.length === 1) return ready[0]!;
  let counter = counters.get(lane);
  if (counter === undefined) counters.set(lane, (counter = { n: 0 }));
  return ready[counter.n++ % ready.length]!;
}

/** The ready target after `current`, for a retry that should not hit the same failed target. */
export function nextTarget(lane: Lane, current: Target | undefined): Target {
  const ready = lane.ready;
  const at = current === undefined ? -1 : ready.indexOf(current);
  return ready[(at + 1) % ready.length]!;
}

export function resolveLane(snapshot: SnapshotRef, options: ResolveStageOptions): Stage {
  const resolveOptions = { strict: options.strict === true };
  return (ex) => {
    const snap = snapshot();
    if (snap === undefined) return ex.fail('DEVSTACK_NOT_READY', 'no registry snapshot yet');
    const key = ex.reading?.problem !== undefined ? INVALID_KEY : ex.key;
    const decision = resolve(snap, ex.service!, key, resolveOptions);
    ex.decision = decision;
    if (decision.outcome === 'reject') {
      if (decision.reason === 'unknown-service') {
        // A name from the request is not a metric label: only registry names are.
        const asked = ex.service;
        ex.service = undefined;
        return ex.fail('DEVSTACK_UNKNOWN_SERVICE', `no service named ${describeUntrusted(asked)} in the registry`);
      }
      if (decision.lane !== undefined) ex.lane = decision.lane.name;
      return ex.fail('DEVSTACK_NO_FEATURE_COPY', `strict mode: no ready copy of ${decision.service} for the key (${decision.reason})`);
    }
    const lane = decision.lane!;
    ex.lane = lane.name;
    if (lane.ready.length === 0) return ex.fail('DEVSTACK_NO_READY_UPSTREAM', `no ready target in lane ${lane.name} of ${lane.service}`);
    ex.target = pickTarget(lane);
    ex.next();
  };
}

/** Refuses requests that have passed through devstack listeners too often: a routing loop. */
export function loopGuard(maxHops: number): Stage {
  return (ex) => {
    const raw = ex.req.headers[HOPS_HEADER];
    const hops = typeof raw === 'string' ? Number.parseInt(raw, 10) : 0;
    if (hops >= maxHops) return ex.fail('DEVSTACK_LOOP_DETECTED', `request passed ${hops} devstack hops: a routing loop`);
    ex.next();
  };
}

export interface HeaderStageOptions {
  /** Count this pass in the hop header (routing listeners do; the inbound listener cannot loop). */
  countHop: boolean;
  dropClientKeys?: boolean | undefined;
}

/** Builds the upstream request headers: end-to-end headers, the key in every carrier, forwarding info. */
export function rewriteHeaders(codec: KeyCodec, options: HeaderStageOptions): Stage {
  const { countHop, dropClientKeys } = options;
  return (ex) => {
    const { req } = ex;
    const out = endToEndHeaders(req.headers);
    if (dropClientKeys || (ex.reading?.problem !== undefined && ex.key === undefined)) codec.strip(out);
    if (ex.key !== undefined) codec.write(out, ex.key);
    if (countHop) {
      const raw = req.headers[HOPS_HEADER];
      out[HOPS_HEADER] = String((typeof raw === 'string' ? Number.parseInt(raw, 10) || 0 : 0) + 1);
    }
    addForwarded(out, req.socket.remoteAddress, ex.host, 'encrypted' in req.socket ? 'https' : 'http');
    if (ex.host !== undefined) out['host'] = ex.host;
    ex.headers = out;
    ex.next();
  };
}
