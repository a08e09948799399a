import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { RequestStats } from './request-stats.js';
import { METRICS, type Snapshot } from '@devstack/core';
import type { Direction, Exchange } from './exchange.js';

/** The sidecar's Prometheus metrics; the per-request ones are kept by RequestStats. */
export class SidecarMetrics {
  readonly registry: Registry;
  readonly #requests = new RequestStats();
  readonly #upstreamErrors: Counter<'direction' | 'service' | 'code'>;
  readonly #invalidKeys: Counter<'direction' | 'carrier' | 'problem'>;
  readonly #registryServices: Gauge;
  readonly #registryLastUpdate: Gauge;
  readonly #registryErrors: Counter<'source'>;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    this.#requests.register(this.registry, { requests: METRICS.requests, duration: METRICS.duration });
    this.#upstreamErrors = new Counter({ name: METRICS.upstreamErrors, help: 'Failed upstream attempts, by error code', labelNames: ['direction', 'service', 'code'], registers });
    this.#invalidKeys = new Counter({ name: METRICS.invalidKeys, help: 'Requests whose routing key was malformed or conflicting', labelNames: ['direction', 'carrier', 'problem'], registers });
    this.#registryServices = new Gauge({ name: METRICS.registryServices, help: 'Logical services in the current registry snapshot', registers });
    this.#registryLastUpdate = new Gauge({ name: METRICS.registryLastUpdate, help: 'Unix time of the current registry snapshot, in seconds', registers });
    this.#registryErrors = new Counter({ name: METRICS.registryErrors, help: 'Registry updates refused (the last good snapshot was kept)', labelNames: ['source'], registers });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'devstack_sidecar_' });
  }

  request(ex: Exchange, status: number | 'aborted'): void {
    this.#requests.record(ex.direction, ex.service ?? 'none', ex.lane, status, (performance.now() - ex.started) / 1000);
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
