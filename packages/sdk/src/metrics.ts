import { createRequire } from 'node:module';
import { diag } from '@opentelemetry/api';
import { METRICS, type Snapshot } from '@devstack/core';

/** The subset of the sidecar's metrics that an in-process router can observe. */
export interface Metrics {
  outbound(service: string, lane: string, status: number, seconds: number): void;
  upstreamError(service: string, code: string): void;
  invalidKey(direction: 'inbound' | 'outbound', carrier: string, problem: string): void;
  snapshot(snapshot: Snapshot): void;
}

interface PromRegistry {
  getSingleMetric(name: string): unknown;
}

interface PromClient {
  Counter: new (config: { name: string; help: string; labelNames: string[]; registers: unknown[] }) => unknown;
  Gauge: new (config: { name: string; help: string; labelNames?: string[]; registers: unknown[] }) => unknown;
  Histogram: new (config: { name: string; help: string; labelNames: string[]; registers: unknown[] }) => unknown;
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
    return new prom[kind]({ name, help, labelNames, registers: [registry] }) as T;
  }
  const requests = metric<Inc>('Counter', METRICS.requests, 'Requests routed by devstack', ['direction', 'service', 'lane', 'status']);
  const duration = metric<Observe>('Histogram', METRICS.duration, 'Time to response headers, seconds', ['direction', 'service', 'lane']);
  const errors = metric<Inc>('Counter', METRICS.upstreamErrors, 'Calls that got no response', ['direction', 'service', 'code']);
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
    invalidKey(direction, carrier, problem) {
      invalid.inc({ direction, carrier, problem });
    },
    snapshot(snapshot) {
      services.set(snapshot.services.size);
      updated.set(snapshot.createdAt / 1000);
    },
  };
}
