import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { METRICS, type Snapshot } from '@devstack/core';
import type { Direction, Exchange } from './exchange.js';

type Child<T> = T extends Counter<string> ? ReturnType<T['labels']> : never;

/**
 * The sidecar's Prometheus metrics. Label children are cached by label values, so recording a
 * request is two Map lookups and no label-object hashing on the hot path.
 */
export class SidecarMetrics {
  readonly registry: Registry;
  readonly #requests: Counter<'direction' | 'service' | 'lane' | 'status'>;
  readonly #duration: Histogram<'direction' | 'service' | 'lane'>;
  readonly #upstreamErrors: Counter<'direction' | 'service' | 'code'>;
  readonly #invalidKeys: Counter<'direction' | 'carrier' | 'problem'>;
  readonly #registryServices: Gauge;
  readonly #registryLastUpdate: Gauge;
  readonly #registryErrors: Counter<'source'>;
  readonly #children = new Map<string, { count: Child<Counter<string>>; duration: ReturnType<Histogram<string>['labels']> }>();

  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    this.#requests = new Counter({ name: METRICS.requests, help: 'Requests handled, by direction, logical service, lane and status', labelNames: ['direction', 'service', 'lane', 'status'], registers });
    this.#duration = new Histogram({
      name: METRICS.duration,
      help: 'Time from request received to response finished, in seconds',
      labelNames: ['direction', 'service', 'lane'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#upstreamErrors = new Counter({ name: METRICS.upstreamErrors, help: 'Failed upstream attempts, by error code', labelNames: ['direction', 'service', 'code'], registers });
    this.#invalidKeys = new Counter({ name: METRICS.invalidKeys, help: 'Requests whose routing key was malformed or conflicting', labelNames: ['direction', 'carrier', 'problem'], registers });
    this.#registryServices = new Gauge({ name: METRICS.registryServices, help: 'Logical services in the current registry snapshot', registers });
    this.#registryLastUpdate = new Gauge({ name: METRICS.registryLastUpdate, help: 'Unix time of the current registry snapshot, in seconds', registers });
    this.#registryErrors = new Counter({ name: METRICS.registryErrors, help: 'Registry updates refused (the last good snapshot was kept)', labelNames: ['source'], registers });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'devstack_sidecar_' });
  }

  request(ex: Exchange, status: number | 'aborted'): void {
    const service = ex.service ?? 'none';
    const id = `${ex.direction}\u0000${service}\u0000${ex.lane}\u0000${status}`;
    let child = this.#children.get(id);
    if (child === undefined) {
      child = {
        count: this.#requests.labels(ex.direction, service, ex.lane, String(status)),
        duration: this.#duration.labels(ex.direction, service, ex.lane),
      };
      this.#children.set(id, child);
    }
    child.count.inc();
    child.duration.observe((performance.now() - ex.started) / 1000);
  }

  upstreamError(direction: Direction, service: string | undefined, code: string): void {
    this.#upstreamErrors.labels(direction, service ?? 'none', code).inc();
  }

  invalidKey(direction: Direction, carrier: string, problem: string): void {
    this.#invalidKeys.labels(direction, carrier, problem).inc();
  }

  snapshot(snapshot: Snapshot): void {
    this.#registryServices.set(snapshot.services.size);
    this.#registryLastUpdate.set(snapshot.createdAt / 1000);
  }

  registryError(source: string): void {
    this.#registryErrors.labels(source).inc();
  }
}
