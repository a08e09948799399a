import { diag } from '@opentelemetry/api';
import { NO_LANE, REFUSALS, resolve, routeStep, serviceForAuthority, type Decision, type KeyReading, type Refusal, type RegistrySource, type Snapshot, type Target } from '@devstack/core';
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
}

/**
 * Proxyless routing: the sidecar's outbound routing step (core's `routeStep`), made in-process
 * from the same registry source. Holds the latest snapshot; everything derived from a snapshot is
 * computed when it arrives, not per call.
 */
export class Router {
  readonly source: RegistrySource;
  readonly strict: boolean;
  readonly #step: { strict: boolean; defaultKey: string | undefined };
  readonly #clusterDomain: string;
  #snapshot: Snapshot | undefined;
  #hosts: ReadonlySet<string> = new Set();
  readonly #unsubscribe: Array<() => void> = [];
  readonly #onSnapshot: ((snapshot: Snapshot) => void) | undefined;

  constructor(source: RegistrySource, options: RouterOptions = {}) {
    this.source = source;
    this.strict = options.strict ?? false;
    this.#step = { strict: this.strict, defaultKey: options.defaultKey };
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
    return {
      service: out.service,
      key: out.key,
      decision: out.decision,
      target: out.target === undefined ? undefined : parseTarget(out.target),
      lane: out.lane,
      refusal: out.refusal,
      started: performance.now(),
    };
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
