import { diag } from '@opentelemetry/api';
import { resolve, type Decision, type Snapshot, type Target } from '@devstack/core';
import type { RegistrySource } from '@devstack/registry';
import { normalizeHostname } from './hosts.js';

export interface ParsedTarget {
  readonly origin: string;
  readonly protocol: 'http:' | 'https:';
  readonly hostname: string;
  readonly port: number;
}

export interface Route {
  readonly service: string;
  readonly decision: Decision;
  /** Where to send the call; undefined when it must be refused (strict mode, no ready target). */
  readonly target: ParsedTarget | undefined;
  /** What the lane response header says: `base` or the key. */
  readonly lane: string;
  /** Why a refused call was refused. */
  readonly refusal: string | undefined;
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

/**
 * Proxyless routing: the sidecar's outbound decision made in-process from the same registry
 * source and the same `resolve`. Holds the latest snapshot; everything derived from a snapshot is
 * computed when it arrives, not per call.
 */
export class Router {
  readonly source: RegistrySource;
  readonly strict: boolean;
  #snapshot: Snapshot | undefined;
  #hosts: ReadonlySet<string> = new Set();
  #next = 0;
  readonly #unsubscribe: Array<() => void> = [];
  readonly #onSnapshot: ((snapshot: Snapshot) => void) | undefined;

  constructor(source: RegistrySource, options: { strict?: boolean; onSnapshot?: (snapshot: Snapshot) => void } = {}) {
    this.source = source;
    this.strict = options.strict ?? false;
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

  /** Whether calls to `hostname` (lower-case, no port) are routed. */
  isService(hostname: string): boolean {
    return this.#snapshot?.services.has(hostname) ?? false;
  }

  route(service: string, key: string | undefined): Route | undefined {
    const snapshot = this.#snapshot;
    if (snapshot === undefined) return undefined;
    const decision = resolve(snapshot, service, key, { strict: this.strict });
    const lane = decision.lane?.name ?? 'base';
    if (decision.outcome === 'reject') return { service, decision, target: undefined, lane, refusal: decision.reason };
    const ready = decision.lane!.ready;
    if (ready.length === 0) return { service, decision, target: undefined, lane, refusal: 'no-ready-target' };
    const target = ready.length === 1 ? ready[0]! : ready[this.#next++ % ready.length]!;
    if (this.#next > 0x3fffffff) this.#next = 0;
    return { service, decision, target: parseTarget(target), lane, refusal: undefined };
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
