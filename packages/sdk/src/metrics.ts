import { createRequire } from 'node:module';
import { diag } from '@opentelemetry/api';
import { DURATION_BUCKETS, METRICS, type Snapshot } from '@devstack/core';

/** The subset of the sidecar's metrics that an in-process router can observe. */
export interface Metrics {
  /** One routed call, counted when its response ends (see METRICS in core for the meaning). */
  outbound(service: string, lane: string, status: number | 'aborted', seconds: number): void;
  upstreamError(service: string, code: string): void;
  /** A target ejected by passive health; `lane` is the target's. */
  ejection(service: string, lane: string): void;
  /** A call moved on after a failed attempt (`to` is `none` when no target was left). */
  failover(service: string, from: string, to: string): void;
  invalidKey(direction: 'inbound' | 'outbound', carrier: string, problem: string): void;
  snapshot(snapshot: Snapshot): void;
}

interface PromRegistry {
  getSingleMetric(name: string): unknown;
}

interface PromClient {
  Counter: new (config: { name: string; help: string; labelNames: string[]; registers: unknown[] }) => unknown;
  Gauge: new (config: { name: string; help: string; labelNames?: string[]; registers: unknown[] }) => unknown;
  Histogram: new (config: { name: string; help: string; labelNames: string[]; buckets?: readonly number[]; registers: unknown[] }) => unknown;
}

interface Inc {
  inc(labels: Record<string, string>): void;
}
interface Observe {
  observe(labels: Record<string, string>, value: number): void;
}
interface Set0 {
  set(value: number): void;
}

/**
 * prom-client metrics under the names the sidecar uses, registered in the app's registry. prom-client
 * is an optional peer: it is loaded only when a registry is given, so apps without it pay nothing.
 */
export function createMetrics(registry: unknown): Metrics | undefined {
  let prom: PromClient;
  try {
    prom = createRequire(import.meta.url)('prom-client') as PromClient;
  } catch {
    diag.warn('devstack: a metrics registry was given but prom-client cannot be loaded; metrics are off');
    return undefined;
  }
  const reg = registry as PromRegistry;
  function metric<T>(kind: 'Counter' | 'Gauge' | 'Histogram', name: string, help: string, labelNames: string[]): T {
    const existing = reg.getSingleMetric(name);
    if (existing !== undefined) return existing as T;
    const buckets = kind === 'Histogram' ? { buckets: [...DURATION_BUCKETS] } : {};
    return new prom[kind]({ name, help, labelNames, ...buckets, registers: [registry] }) as T;
  }
  const requests = metric<Inc>('Counter', METRICS.requests, 'Requests handled, by direction, logical service, lane and status', ['direction', 'service', 'lane', 'status']);
  const duration = metric<Observe>('Histogram', METRICS.duration, 'Time from request received to response finished, in seconds', ['direction', 'service', 'lane']);
  const errors = metric<Inc>('Counter', METRICS.upstreamErrors, 'Failed upstream attempts, by error code', ['direction', 'service', 'code']);
  const ejections = metric<Inc>('Counter', METRICS.upstreamEjections, 'Targets ejected by passive health after consecutive connect failures', ['direction', 'service', 'lane']);
  const failovers = metric<Inc>('Counter', METRICS.upstreamFailovers, 'Calls moved to another target after a failed attempt, by lane', ['direction', 'service', 'from', 'to']);
  const invalid = metric<Inc>('Counter', METRICS.invalidKeys, 'Routing keys ignored as invalid', ['direction', 'carrier', 'problem']);
  const services = metric<Set0>('Gauge', METRICS.registryServices, 'Logical services in the current snapshot', []);
  const updated = metric<Set0>('Gauge', METRICS.registryLastUpdate, 'Unix time of the current snapshot, seconds', []);
  return {
    outbound(service, lane, status, seconds) {
      requests.inc({ direction: 'outbound', service, lane, status: String(status) });
      duration.observe({ direction: 'outbound', service, lane }, seconds);
    },
    upstreamError(service, code) {
      errors.inc({ direction: 'outbound', service, code });
    },
    ejection(service, lane) {
      ejections.inc({ direction: 'outbound', service, lane });
    },
    failover(service, from, to) {
      failovers.inc({ direction: 'outbound', service, from, to });
    },
    invalidKey(direction, carrier, problem) {
      invalid.inc({ direction, carrier, problem });
    },
    snapshot(snapshot) {
      services.set(snapshot.services.size);
      updated.set(snapshot.createdAt / 1000);
    },
  };
}
