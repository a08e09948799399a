import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { RequestStats } from './request-stats.js';
import { METRICS, type RegistrySource, type Snapshot } from '@devstack/core';
import type { Direction, Exchange } from './exchange.js';

/** A listener as a metric label: the three routing directions and the admin listener. */
export type Listener = Direction | 'admin';

/** Not part of the shared contract: only the sidecar has stages that can fail this way. */
const INTERNAL_ERRORS = 'devstack_internal_errors_total';
const CLIENT_TIMEOUTS = 'devstack_client_timeouts_total';
const SHED = 'devstack_overload_shed_total';
const IN_FLIGHT = 'devstack_in_flight';
const ABUSIVE = 'devstack_h2_connections_ended_total';
const UNUSABLE_OBJECTS = 'devstack_registry_unusable_objects';

/** Why the sidecar ended a client's HTTP/2 connection: streams reset before their answers, or invalid frames. */
export type AbuseReason = 'resets' | 'invalid_frames';

/** The sidecar's Prometheus metrics; the per-request ones are kept by RequestStats. */
export class SidecarMetrics {
  readonly registry: Registry;
  readonly #requests = new RequestStats();
  readonly #upstreamErrors: Counter<'direction' | 'service' | 'code'>;
  readonly #invalidKeys: Counter<'direction' | 'carrier' | 'problem'>;
  readonly #registryServices: Gauge;
  readonly #registryLastUpdate: Gauge;
  readonly #stackProblems: Gauge;
  readonly #registryErrors: Counter<'source'>;
  readonly #internalErrors: Counter<'direction'>;
  readonly #clientTimeouts: Counter<'direction' | 'stall'>;
  readonly #shed: Counter<'direction' | 'protocol'>;
  readonly #abusive: Counter<'direction' | 'reason'>;
  readonly #ejections: Counter<'direction' | 'service' | 'lane'>;
  readonly #failovers: Counter<'direction' | 'service' | 'from' | 'to'>;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    this.#requests.register(this.registry, { requests: METRICS.requests, duration: METRICS.duration });
    this.#upstreamErrors = new Counter({ name: METRICS.upstreamErrors, help: 'Failed upstream attempts, by error code', labelNames: ['direction', 'service', 'code'], registers });
    this.#invalidKeys = new Counter({ name: METRICS.invalidKeys, help: 'Requests whose routing key was malformed or conflicting', labelNames: ['direction', 'carrier', 'problem'], registers });
    this.#registryServices = new Gauge({ name: METRICS.registryServices, help: 'Logical services in the current registry snapshot', registers });
    this.#registryLastUpdate = new Gauge({ name: METRICS.registryLastUpdate, help: 'Unix time of the current registry snapshot, in seconds', registers });
    this.#stackProblems = new Gauge({ name: METRICS.registryStackProblems, help: 'Stacks the current registry snapshot refused (a cycle or too deep); their keys resolve unstacked', registers });
    this.#registryErrors = new Counter({ name: METRICS.registryErrors, help: 'Registry updates refused (the last good snapshot was kept)', labelNames: ['source'], registers });
    this.#internalErrors = new Counter({ name: INTERNAL_ERRORS, help: 'Requests a sidecar stage or handler failed on (answered 500 or cut), by listener', labelNames: ['direction'], registers });
    this.#clientTimeouts = new Counter({ name: CLIENT_TIMEOUTS, help: 'Clients that stalled past a timeout: request headers, request body, or not reading the response (drain)', labelNames: ['direction', 'stall'], registers });
    this.#shed = new Counter({ name: SHED, help: 'Requests refused because the sidecar already carried --max-in-flight (HTTP/1.1: 503 DEVSTACK_OVERLOADED, HTTP/2: RST_STREAM REFUSED_STREAM)', labelNames: ['direction', 'protocol'], registers });
    this.#abusive = new Counter({ name: ABUSIVE, help: 'Client HTTP/2 connections ended with GOAWAY for abuse: streams reset before their response over the budget (resets), or invalid frames', labelNames: ['direction', 'reason'], registers });
    this.#ejections = new Counter({ name: METRICS.upstreamEjections, help: 'Targets ejected by passive health after consecutive connect failures', labelNames: ['direction', 'service', 'lane'], registers });
    this.#failovers = new Counter({ name: METRICS.upstreamFailovers, help: 'Calls moved to another target after a failed attempt, by lane', labelNames: ['direction', 'service', 'from', 'to'], registers });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'devstack_sidecar_' });
  }

  request(ex: Exchange, status: number | 'aborted'): void {
    this.#requests.record(ex.direction, ex.service ?? 'none', ex.lane, status, (performance.now() - ex.started) / 1000);
  }

  /** An answer the sidecar made before any lane or service was chosen (a raw refusal, an admin error). */
  refused(direction: Listener, status: number): void {
    this.#requests.count(direction, 'none', 'none', status);
  }

  /** A client that stalled: answered 408 when a status could still be sent, otherwise cut. */
  clientTimeout(direction: Listener, stall: 'headers' | 'body' | 'drain'): void {
    this.#clientTimeouts.labels(direction, stall).inc();
  }

  /** A request refused by the in-flight limit. */
  shed(direction: Direction, protocol: 'http1' | 'h2'): void {
    this.#shed.labels(direction, protocol).inc();
  }

  /** A client's HTTP/2 connection ended for going over one of its budgets. */
  abusiveSession(direction: Listener, reason: AbuseReason): void {
    this.#abusive.labels(direction, reason).inc();
  }

  /** The exchanges in flight, read at scrape time. */
  inFlight(read: () => number): void {
    if (this.registry.getSingleMetric(IN_FLIGHT) !== undefined) return;
    new Gauge({
      name: IN_FLIGHT,
      help: 'Requests the sidecar is carrying now, every listener together (bounded by --max-in-flight)',
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  internalError(direction: Listener): void {
    this.#internalErrors.labels(direction).inc();
  }

  upstreamError(direction: Direction, service: string | undefined, code: string): void {
    this.#upstreamErrors.labels(direction, service ?? 'none', code).inc();
  }

  /** A target ejected by passive health (its lane: the one the failed call was in). */
  ejection(direction: Direction, service: string | undefined, lane: string): void {
    this.#ejections.labels(direction, service ?? 'none', lane).inc();
  }

  /** A call moved on to another target after a failed attempt, from one lane to another (or the same). */
  failover(direction: Direction, service: string | undefined, from: string, to: string): void {
    this.#failovers.labels(direction, service ?? 'none', from, to).inc();
  }

  invalidKey(direction: Direction, carrier: string, problem: string): void {
    this.#invalidKeys.labels(direction, carrier, problem).inc();
  }

  snapshot(snapshot: Snapshot): void {
    this.#registryServices.set(snapshot.services.size);
    this.#registryLastUpdate.set(snapshot.createdAt / 1000);
    this.#stackProblems.set(snapshot.stackProblems.length);
  }

  registryError(source: string): void {
    this.#registryErrors.labels(source).inc();
  }

  /**
   * Gauges read from the source's status at scrape time, for sources that report one: when the
   * data was last known current, whether it is stale now, and how many list/watch attempts failed.
   */
  source(source: RegistrySource): void {
    if (source.status === undefined || this.registry.getSingleMetric(METRICS.registryLastSync) !== undefined) return;
    const status = () => source.status!();
    const registers = [this.registry];
    new Gauge({
      name: METRICS.registryLastSync,
      help: 'Unix time (seconds) the registry source last had complete, current data (0 before its first sync)',
      registers,
      collect() {
        this.set((status().lastSync ?? 0) / 1000);
      },
    });
    new Gauge({
      name: METRICS.registryStale,
      help: '1 while the registry source cannot reach what it watches (routing goes on from the last snapshot)',
      registers,
      collect() {
        this.set(status().stale ? 1 : 0);
      },
    });
    const counted = new Map<string, number>();
    new Counter({
      name: METRICS.registryFailures,
      help: 'Failed list or watch attempts of the registry source (each retried), by reason',
      labelNames: ['reason'],
      registers,
      collect() {
        const now = status();
        const byReason = now['failuresByReason'] as Record<string, unknown> | undefined;
        const counts: [string, number][] = byReason !== undefined && typeof byReason === 'object' ? Object.entries(byReason).map(([r, n]) => [r, Number(n) || 0]) : [['unknown', Number(now['failures'] ?? 0)]];
        for (const [reason, n] of counts) {
          const before = counted.get(reason) ?? 0;
          if (n > before) this.labels(reason).inc(n - before);
          counted.set(reason, Math.max(before, n));
        }
      },
    });
    new Gauge({
      name: UNUSABLE_OBJECTS,
      help: 'Registry objects the source left out as unusable (a malformed label or address), now',
      registers,
      collect() {
        this.set(Number(status()['unusableObjects'] ?? 0));
      },
    });
  }
}
