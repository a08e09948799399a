import type { KeyReading } from './carriers.js';
import { normalizeHost } from './carriers.js';
import { resolve, INVALID_KEY, type Decision } from './resolve.js';
import type { Lane, Snapshot, Target } from './snapshot.js';
import type { PassiveHealth } from './health.js';

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
  /**
   * Passive health: ejected targets are passed over, a feature lane whose every ready target is
   * ejected goes to base (not in strict mode), and `failOver` moves a call on after a connect
   * failure. Without it the step picks by round robin alone.
   */
  readonly health?: PassiveHealth | undefined;
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

/**
 * Round robin over a lane's ready targets; the counter lives beside the (immutable) lane. With a
 * passive health tracker, ejected targets are passed over; undefined when all of them are.
 */
export function pickTarget(lane: Lane, health?: PassiveHealth): Target | undefined {
  const ready = lane.ready;
  if (health === undefined || health.size === 0) {
    if (ready.length <= 1) return ready[0];
  } else if (ready.length <= 1) {
    return ready[0] !== undefined && !health.ejected(ready[0].origin) ? ready[0] : undefined;
  }
  let counter = counters.get(lane);
  if (counter === undefined) counters.set(lane, (counter = { n: 0 }));
  const start = counter.n;
  counter.n = (counter.n + 1) & 0x3fffffff;
  if (health === undefined || health.size === 0) return ready[start % ready.length];
  for (let i = 0; i < ready.length; i++) {
    const target = ready[(start + i) % ready.length]!;
    if (!health.ejected(target.origin)) return target;
  }
  return undefined;
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
  const lane = decision.lane!;
  const health = options.health;
  const target = health === undefined || health.size === 0 ? pickTarget(lane) : (pickTarget(lane, health) ?? choose(snapshot, lane, options, NONE_TRIED));
  out.target = target;
  // Every ready target of the copy is ejected: base serves, and the lane header says so.
  if (target !== undefined && !lane.ready.includes(target)) out.lane = BASE_LANE;
  out.refusal = target === undefined ? 'no-ready-target' : undefined;
  return target !== undefined;
}

const NONE_TRIED: readonly Target[] = Object.freeze([]);
const BASE_LANE = 'base';

function tried(list: readonly Target[], target: Target): boolean {
  for (const t of list) if (t.origin === target.origin) return true;
  return false;
}

/** The first target of `lane` from `start` on, not tried, ejected or not as asked. */
function scan(lane: Lane, start: number, done: readonly Target[], health: PassiveHealth | undefined, ejected: boolean): Target | undefined {
  const ready = lane.ready;
  for (let i = 0; i < ready.length; i++) {
    const target = ready[(start + i) % ready.length]!;
    if (tried(done, target) || (health?.ejected(target.origin) ?? false) !== ejected) continue;
    return target;
  }
  return undefined;
}

/** Where the round robin of `lane` stands, taking a turn of it. */
function turn(lane: Lane): number {
  if (lane.ready.length <= 1) return 0;
  let counter = counters.get(lane);
  if (counter === undefined) counters.set(lane, (counter = { n: 0 }));
  const n = counter.n;
  counter.n = (counter.n + 1) & 0x3fffffff;
  return n;
}

/**
 * The next target for a call in `lane` that has tried `done`: the lane's other ready targets that
 * are not ejected (in round-robin order after the last one tried), then base's (a feature lane,
 * not strict), then, only when every one left is ejected, the ejected ones in the same order: a
 * fleet whose every target failed lately is still tried rather than refused.
 */
function choose(snapshot: Snapshot, lane: Lane, options: RouteStepOptions, done: readonly Target[]): Target | undefined {
  const health = options.health;
  const last = done.length === 0 ? undefined : done[done.length - 1];
  const at = last === undefined ? -1 : lane.ready.findIndex((t) => t.origin === last.origin);
  const from = at === -1 ? turn(lane) : at + 1;
  const base = options.strict === true || lane.key === null ? undefined : snapshot.services.get(lane.service)?.base;
  const baseFrom = base === undefined ? 0 : turn(base);
  return (
    scan(lane, from, done, health, false) ??
    (base === undefined ? undefined : scan(base, baseFrom, done, health, false)) ??
    (health === undefined ? undefined : scan(lane, from, done, health, true) ?? (base === undefined ? undefined : scan(base, baseFrom, done, health, true)))
  );
}

/**
 * After an attempt on `out.target` failed in a way `retryable` allows, moves `out` on to the next
 * target `choose` gives and its lane (`base` when it fell back), adding the failed one to `done`,
 * which the caller keeps for the call. `kind` is `retryable`'s answer: after `idempotent` (the
 * target accepted the connection, then reset it unanswered: most often an idle keep-alive
 * connection it had closed) the same target is tried once more, on a new connection, before the
 * call moves on. Returns false when none is left: `out.refusal` is then `no-ready-target` in strict
 * mode for a feature lane (answer 503), else undefined (report the failure itself); `out.target`
 * stays the failed one. Record a connect failure in the tracker first (`health.failure`): it decides
 * whether the target is ejected for later calls, not which target this call tries next.
 */
export function failOver(snapshot: Snapshot, out: RouteFields, options: RouteStepOptions, done: Target[], kind: 'connect' | 'idempotent' = 'connect'): boolean {
  const lane = out.decision?.lane;
  if (out.target !== undefined && !tried(done, out.target)) {
    done.push(out.target);
    if (kind === 'idempotent' && out.decision?.outcome !== 'reject') return true;
  }
  if (lane === undefined || out.decision?.outcome === 'reject') return false;
  // The lane as the snapshot at hand has it: the call may have waited across a registry update.
  const current = snapshot.services.get(lane.service);
  const now = current === undefined ? lane : lane.key === null ? current.base : (current.features.get(lane.key) ?? lane);
  const next = choose(snapshot, now, options, done);
  if (next === undefined) {
    out.refusal = options.strict === true && lane.key !== null ? 'no-ready-target' : undefined;
    return false;
  }
  out.target = next;
  out.lane = now.ready.includes(next) ? now.name : BASE_LANE;
  out.refusal = undefined;
  return true;
}
