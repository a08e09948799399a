import type { Registry } from 'prom-client';
import { DURATION_BUCKETS } from '@devstack/core';
import type { Direction } from './exchange.js';

// The contract's buckets: the SDK's proxyless histogram uses the same ones.
const BUCKETS = DURATION_BUCKETS;

class LaneStats {
  readonly labels: { direction: string; service: string; lane: string };
  readonly statuses = new Map<number | string, number>();
  readonly buckets = new Float64Array(BUCKETS.length);
  sum = 0;
  count = 0;

  constructor(direction: string, service: string, lane: string) {
    this.labels = { direction, service, lane };
  }
}

interface MetricValue {
  metricName?: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * Request counts and latencies, kept in plain maps and numbers and turned into Prometheus series
 * only when scraped. prom-client's `inc`/`observe` hash their label set on every call (about 0.7 µs
 * a request here); this is a few map lookups and additions.
 */
export class RequestStats {
  readonly #lanes = new Map<string, Map<string, Map<string, LaneStats>>>();

  record(direction: Direction, service: string, lane: string, status: number | string, seconds: number): void {
    const stats = this.#stats(direction, service, lane);
    stats.statuses.set(status, (stats.statuses.get(status) ?? 0) + 1);
    stats.sum += seconds;
    stats.count++;
    for (let i = 0; i < BUCKETS.length; i++) {
      if (seconds <= BUCKETS[i]!) {
        stats.buckets[i]!++;
        break;
      }
    }
  }

  /**
   * Counts an answer without a duration: requests refused before they were parsed (or on the admin
   * listener) have no start time worth a latency observation.
   */
  count(direction: Direction | 'admin', service: string, lane: string, status: number): void {
    const stats = this.#stats(direction, service, lane);
    stats.statuses.set(status, (stats.statuses.get(status) ?? 0) + 1);
  }

  #stats(direction: string, service: string, lane: string): LaneStats {
    let services = this.#lanes.get(direction);
    if (services === undefined) this.#lanes.set(direction, (services = new Map()));
    let lanes = services.get(service);
    if (lanes === undefined) services.set(service, (lanes = new Map()));
    let stats = lanes.get(lane);
    if (stats === undefined) lanes.set(lane, (stats = new LaneStats(direction, service, lane)));
    return stats;
  }

  *#all(): Generator<LaneStats> {
    for (const services of this.#lanes.values()) for (const lanes of services.values()) yield* lanes.values();
  }

  /** Registers `requests` (counter) and `duration` (histogram) in a prom-client registry. */
  register(registry: Registry, names: { requests: string; duration: string }): void {
    const requests = {
      name: names.requests,
      help: 'Requests handled, by direction, logical service, lane and status',
      type: 'counter',
      get: () => {
        const values: MetricValue[] = [];
        for (const s of this.#all()) for (const [status, count] of s.statuses) values.push({ labels: { ...s.labels, status: String(status) }, value: count });
        return { name: names.requests, help: requests.help, type: 'counter', values, aggregator: 'sum' };
      },
    };
    const duration = {
      name: names.duration,
      help: 'Time from request received to response finished, in seconds',
      type: 'histogram',
      get: () => {
        const values: MetricValue[] = [];
        for (const s of this.#all()) {
          if (s.count === 0) continue; // only counted refusals: no latency to report
          let cumulative = 0;
          BUCKETS.forEach((le, i) => {
            cumulative += s.buckets[i]!;
            values.push({ metricName: `${names.duration}_bucket`, labels: { le, ...s.labels }, value: cumulative });
          });
          values.push({ metricName: `${names.duration}_bucket`, labels: { le: '+Inf', ...s.labels }, value: s.count });
          values.push({ metricName: `${names.duration}_sum`, labels: s.labels, value: s.sum });
          values.push({ metricName: `${names.duration}_count`, labels: s.labels, value: s.count });
        }
        return { name: names.duration, help: duration.help, type: 'histogram', values, aggregator: 'sum' };
      },
    };
    registry.registerMetric(requests as never);
    registry.registerMetric(duration as never);
  }
}
