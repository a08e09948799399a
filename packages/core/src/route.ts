import type { KeyReading } from './carriers.js';
import { normalizeHost } from './carriers.js';
import { resolve, INVALID_KEY, type Decision } from './resolve.js';
import type { Lane, Snapshot, Target } from './snapshot.js';

/**
 * Why a routed call is answered with an error instead of being forwarded, with the HTTP status and
 * stable code both the sidecar (its JSON error) and the SDK (RoutingRejectedError) report.
 */
export const REFUSALS = Object.freeze({
  /** The Host or URL names no service in the registry. */
  'unknown-service': Object.freeze({ status: 404, code: 'DEVSTACK_UNKNOWN_SERVICE' }),
  /** Strict mode: the key has no ready copy of this service (`unknown-key`, `not-ready`). */
  'no-feature-copy': Object.freeze({ status: 503, code: 'DEVSTACK_NO_FEATURE_COPY' }),
  /** The chosen lane has no ready target at all. */
  'no-ready-target': Object.freeze({ status: 503, code: 'DEVSTACK_NO_READY_UPSTREAM' }),
});

export type Refusal = keyof typeof REFUSALS;

/** The lane label of a call that no lane served (an unknown service, a refusal before a lane). */
export const NO_LANE = 'none';

/**
 * One routing decision, filled in by `routeStep`. The sidecar's per-request exchange object is one
 * of these, so the hot path allocates nothing for it; the SDK passes a fresh object.
 */
export interface RouteFields {
  /** The registry service (never a name from the request that the registry does not know). */
  service: string | undefined;
  reading: KeyReading | undefined;
  /** The key the call carries on: the valid key read, else the default key, else none. */
  key: string | undefined;
  decision: Decision | undefined;
  /** What `x-devstack-lane` says and the metrics' `lane` label: `base`, a key, or `none`. */
  lane: string;
  target: Target | undefined;
  refusal: Refusal | undefined;
}

export interface RouteStepOptions {
  /** The copy's own key: carried by calls that arrive with no valid key. */
  readonly defaultKey?: string | undefined;
  readonly strict?: boolean | undefined;
}

/**
 * Which registry service an authority (`Host` header, or a URL's `host[:port]`) names: the service
 * name itself, or its Kubernetes DNS names (`orders.shop`, `orders.shop.svc`,
 * `orders.shop.svc.<cluster domain>`). Undefined for anything else: nothing a request names is ever
 * a destination unless the registry knows it.
 */
export function serviceForAuthority(snapshot: Snapshot, authority: string, clusterDomain = 'cluster.local'): string | undefined {
  const h = normalizeHost(authority);
  if (h === undefined) return undefined;
  if (snapshot.services.has(h)) return h;
  const dot = h.indexOf('.');
  if (dot === -1) return undefined;
  const rest = h.slice(dot + 1);
  const ns = rest.indexOf('.');
  if (ns !== -1 && rest.slice(ns + 1) !== 'svc' && rest.slice(ns + 1) !== `svc.${clusterDomain}`) return undefined;
  const name = h.slice(0, dot);
  return snapshot.services.has(name) ? name : undefined;
}

/**
 * The key a call carries on. An invalid key is not a key: it is counted where it was read and then
 * treated as absent, so a feature copy's default key keeps the chain in its lane and elsewhere the
 * call goes to base.
 */
export function effectiveKey(reading: KeyReading | undefined, defaultKey: string | undefined): string | undefined {
  return reading?.key ?? defaultKey;
}

const counters = new WeakMap<Lane, { n: number }>();

/** Round robin over a lane's ready targets; the counter lives beside the (immutable) lane. */
export function pickTarget(lane: Lane): Target | undefined {
  const ready = lane.ready;
  if (ready.length <= 1) return ready[0];
  let counter = counters.get(lane);
  if (counter === undefined) counters.set(lane, (counter = { n: 0 }));
  const target = ready[counter.n % ready.length];
  counter.n = (counter.n + 1) & 0x3fffffff;
  return target;
}

/** The ready target after `current`: a retry should not hit the target that just failed. */
export function nextTarget(lane: Lane, current: Target | undefined): Target | undefined {
  const ready = lane.ready;
  if (ready.length === 0) return undefined;
  const at = current === undefined ? -1 : ready.indexOf(current);
  return ready[(at + 1) % ready.length];
}

/**
 * The routing step shared by the sidecar and the SDK's proxyless mode: from the registry service
 * (already found by `serviceForAuthority`, or fixed, as at the edge; undefined when the request
 * named none) and the key reading, decide the key carried on, the lane, the target or the refusal.
 * Writes into `out` and returns whether the call may be forwarded.
 */
export function routeStep(snapshot: Snapshot, service: string | undefined, reading: KeyReading | undefined, options: RouteStepOptions, out: RouteFields): boolean {
  out.reading = reading;
  const key = effectiveKey(reading, options.defaultKey);
  out.key = key;
  if (service === undefined || !snapshot.services.has(service)) {
    out.service = undefined;
    out.decision = undefined;
    out.lane = NO_LANE;
    out.target = undefined;
    out.refusal = 'unknown-service';
    return false;
  }
  out.service = service;
  // Resolution sees an invalid key only when no default key stands in for it.
  const asked = key ?? (reading?.problem !== undefined ? INVALID_KEY : undefined);
  const decision = resolve(snapshot, service, asked, { strict: options.strict === true });
  out.decision = decision;
  out.lane = decision.lane?.name ?? NO_LANE;
  if (decision.outcome === 'reject') {
    out.target = undefined;
    out.refusal = 'no-feature-copy';
    return false;
  }
  out.target = pickTarget(decision.lane!);
  out.refusal = out.target === undefined ? 'no-ready-target' : undefined;
  return out.target !== undefined;
}
