import { diag } from '@opentelemetry/api';
import {
  failOver,
  NO_LANE,
  PassiveHealth,
  REFUSALS,
  resolve,
  routeStep,
  serviceForAuthority,
  type Decision,
  type KeyReading,
  type PassiveHealthOptions,
  type Refusal,
  type RegistrySource,
  type RouteFields,
  type Snapshot,
  type Target,
  type TargetHealth,
} from '@devstack/core';
import { normalizeHostname } from './hosts.js';

export interface ParsedTarget {
  readonly origin: string;
  readonly protocol: 'http:' | 'https:';
  readonly hostname: string;
  readonly port: number;
}

export interface Route {
  /** The registry service the call is for. */
  readonly service: string;
  /** The key the call carries on (the context's, else the default key). */
  readonly key: string | undefined;
  readonly decision: Decision;
  /** Where to send the call; undefined when it must be refused (strict mode, no ready target). */
  readonly target: ParsedTarget | undefined;
  /** What the lane response header says: `base`, the key, or `none`. */
  readonly lane: string;
  /** Why a refused call was refused; its status and code are in core's REFUSALS. */
  readonly refusal: Refusal | undefined;
  /** When the call was routed (performance.now()), for the duration metric. */
  readonly started: number;
}

const parsed = new WeakMap<Target, ParsedTarget>();

function parseTarget(target: Target): ParsedTarget {
  let p = parsed.get(target);
  if (p === undefined) {
    const url = new URL(target.origin);
    const protocol = url.protocol === 'https:' ? 'https:' : 'http:';
    p = Object.freeze({
      origin: target.origin,
      protocol,
      hostname: normalizeHostname(url.hostname),
      port: url.port === '' ? (protocol === 'https:' ? 443 : 80) : Number(url.port),
    });
    parsed.set(target, p);
  }
  return p;
}

function hostsOf(snapshot: Snapshot): Set<string> {
  const hosts = new Set<string>();
  for (const [name, entry] of snapshot.services) {
    hosts.add(name);
    for (const t of entry.base.targets) hosts.add(parseTarget(t).hostname);
    for (const lane of entry.features.values()) for (const t of lane.targets) hosts.add(parseTarget(t).hostname);
  }
  return hosts;
}

const NO_KEY: KeyReading = Object.freeze({ key: undefined, carrier: undefined, problem: undefined });

export interface RouterOptions {
  strict?: boolean | undefined;
  /** The copy's own key, for calls made with no key in context. */
  defaultKey?: string | undefined;
  /** Kubernetes cluster domain of `<service>.<namespace>.svc.<domain>` names. */
  clusterDomain?: string | undefined;
  onSnapshot?: ((snapshot: Snapshot) => void) | undefined;
  /**
   * Passive health (core's PassiveHealth): a target whose connections fail is passed over for a
   * while, and a call that could not connect goes to the lane's next target, then base. `false`
   * turns it off (a failed connection is then the app's error, as without the SDK).
   */
  passiveHealth?: PassiveHealthOptions | false | undefined;
  /** node:http(s) and gRPC calls: a connection not made within this has failed. Default 5000, as the sidecar's --connect-timeout. */
  connectTimeoutMs?: number | undefined;
  /** A target was ejected (`lane` is its lane), for the ejections metric. */
  onEjected?: ((service: string, lane: string, origin: string, until: number | undefined) => void) | undefined;
  /** A call moved on after a failed attempt: from the lane that failed to the one tried next (`none`: nothing left). */
  onFailover?: ((service: string, from: string, to: string) => void) | undefined;
}

/** What a routed call needs to move on to another target: the fields it was routed with, the targets it tried. */
interface Attempts {
  readonly snapshot: Snapshot;
  readonly fields: RouteFields;
  readonly done: Target[];
}

/**
 * Proxyless routing: the sidecar's outbound routing step (core's `routeStep`), made in-process
 * from the same registry source. Holds the latest snapshot; everything derived from a snapshot is
 * computed when it arrives, not per call.
 */
export class Router {
  readonly source: RegistrySource;
  readonly strict: boolean;
  readonly #step: { strict: boolean; defaultKey: string | undefined; health: PassiveHealth | undefined };
  readonly #clusterDomain: string;
  #snapshot: Snapshot | undefined;
  #hosts: ReadonlySet<string> = new Set();
  readonly #unsubscribe: Array<() => void> = [];
  readonly #onSnapshot: ((snapshot: Snapshot) => void) | undefined;
  readonly #options: RouterOptions;
  readonly #attempts = new WeakMap<Route, Attempts>();
  /** Passive health of the targets calls went to; undefined when turned off. */
  readonly health: PassiveHealth | undefined;
  readonly connectTimeoutMs: number;

  constructor(source: RegistrySource, options: RouterOptions = {}) {
    this.source = source;
    this.strict = options.strict ?? false;
    this.health = options.passiveHealth === false ? undefined : new PassiveHealth(options.passiveHealth ?? {});
    this.#step = { strict: this.strict, defaultKey: options.defaultKey, health: this.health };
    this.#options = options;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.#clusterDomain = options.clusterDomain ?? 'cluster.local';
    this.#onSnapshot = options.onSnapshot;
    this.#unsubscribe.push(
      source.subscribe((s) => this.#use(s)),
      source.onError((e) => diag.warn(`devstack: registry update refused, keeping the last good snapshot: ${e.message}`)),
    );
    const first = source.current();
    if (first !== undefined) this.#use(first);
  }

  /** Resolves once a first snapshot is in use; the SDK keeps working (unrouted) if it never comes. */
  async start(): Promise<void> {
    if (this.#snapshot !== undefined) return;
    this.#use(await this.source.start());
  }

  get snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  /** Service names and target hosts of the current snapshot (they may receive the key). */
  hosts(): ReadonlySet<string> {
    return this.#hosts;
  }

  /**
   * The registry service a hostname (lower-case, no port) names, as the sidecar reads a Host:
   * `orders` or `orders.<namespace>.svc[.<cluster domain>]`. Undefined: the call is not routed.
   */
  serviceFor(hostname: string): string | undefined {
    const snapshot = this.#snapshot;
    return snapshot === undefined ? undefined : serviceForAuthority(snapshot, hostname, this.#clusterDomain);
  }

  /** Routes a call to `service` made with `key` in context (undefined: none). */
  route(service: string, key: string | undefined): Route | undefined {
    const snapshot = this.#snapshot;
    if (snapshot === undefined) return undefined;
    const reading = key === undefined ? NO_KEY : { key, carrier: 'baggage' as const, problem: undefined };
    const out = { service: undefined as string | undefined, reading: undefined as KeyReading | undefined, key: undefined as string | undefined, decision: undefined as Decision | undefined, lane: NO_LANE, target: undefined as Target | undefined, refusal: undefined as Refusal | undefined };
    routeStep(snapshot, service, reading, this.#step, out);
    if (out.service === undefined || out.decision === undefined) return undefined;
    const route: Route = {
      service: out.service,
      key: out.key,
      decision: out.decision,
      target: out.target === undefined ? undefined : parseTarget(out.target),
      lane: out.lane,
      refusal: out.refusal,
      started: performance.now(),
    };
    if (out.target !== undefined && this.health !== undefined) this.#attempts.set(route, { snapshot, fields: out, done: [] });
    return route;
  }

  /** A connection to the route's target was made: its passive health record is cleared. */
  connected(route: Route): void {
    const health = this.health;
    if (health === undefined || health.size === 0 || route.target === undefined) return;
    health.success(route.target.origin);
  }

  /**
   * A routed call's attempt failed: `connect` (nothing reached the target: a passive health
   * failure) or `idempotent` (sent, unanswered, safe to send again). Returns the route of the next
   * attempt (another target of the lane, or base), a refused route (strict mode, no target left:
   * `no-ready-target`), or undefined when the failure is the call's answer.
   */
  failOver(route: Route, kind: 'connect' | 'idempotent'): Route | undefined {
    const a = this.#attempts.get(route);
    const health = this.health;
    if (a === undefined || health === undefined || a.fields.target === undefined) return undefined;
    const failed = a.fields.target;
    if (kind === 'connect' && health.failure(failed.origin)) {
      const until = health.status().find((s) => s.origin === failed.origin)?.ejectedUntil;
      diag.warn(`devstack: ${failed.origin} (${route.service}, lane ${route.lane}) could not be connected to: passed over until ${until === undefined ? 'now' : new Date(until).toISOString()}`);
      this.#options.onEjected?.(route.service, route.lane, failed.origin, until);
    }
    const moved = failOver(a.snapshot, a.fields, this.#step, a.done, kind);
    // The same target once more (a reset after sending) is a retry, not a move to another.
    if (!moved || a.fields.target !== failed) this.#options.onFailover?.(route.service, route.lane, moved ? a.fields.lane : NO_LANE);
    if (!moved && a.fields.refusal === undefined) return undefined;
    const next: Route = { ...route, target: moved ? parseTarget(a.fields.target) : undefined, lane: a.fields.lane, refusal: a.fields.refusal };
    if (moved) this.#attempts.set(next, a);
    return next;
  }

  /** Every target with a connect failure on record, ejected ones with when they are tried again. */
  healthStatus(): TargetHealth[] {
    return this.health?.status() ?? [];
  }

  /**
   * Where a call to `service` made now with `key` would go, without taking a turn of the round
   * robin: the chosen lane's first ready target, or undefined when the call would be refused. For
   * questions about a destination (is its connection up?) that must not skew the rotation.
   */
  peek(service: string, key: string | undefined): ParsedTarget | undefined {
    const snapshot = this.#snapshot;
    if (snapshot === undefined || !snapshot.services.has(service)) return undefined;
    const decision = resolve(snapshot, service, key ?? this.#step.defaultKey, { strict: this.strict });
    const target = decision.outcome === 'reject' ? undefined : decision.lane?.ready[0];
    return target === undefined ? undefined : parseTarget(target);
  }

  close(): void {
    for (const off of this.#unsubscribe) off();
  }

  #use(snapshot: Snapshot): void {
    this.#hosts = hostsOf(snapshot);
    this.#snapshot = snapshot;
    this.#onSnapshot?.(snapshot);
  }
}

/** The status and code a refused call reports (a refusal the sidecar would answer with). */
export function refusalOf(route: Route): (typeof REFUSALS)[Refusal] | undefined {
  return route.refusal === undefined ? undefined : REFUSALS[route.refusal];
}
