import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { METRICS } from '@devstack/core';
import type { Channel, ChannelEvents } from './channel.js';

/** Why the relay refused a connection or a request. */
export type RejectReason = 'connections' | 'admin_connections' | 'header_size' | 'timeout' | 'bad_request' | 'not_found' | 'method' | 'not_served';

/** The relay's Prometheus metrics; per-namespace state is read from the channels at scrape time. */
export class RelayMetrics {
  readonly registry = new Registry();
  readonly #messages: Counter<'type'>;
  readonly #bytes: Counter<'type'>;
  readonly #coalesced: Counter;
  readonly #stalled: Counter;
  readonly #rejected: Counter<'reason'>;
  readonly channelEvents: ChannelEvents;

  constructor(channels: () => Channel[]) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.#messages = new Counter({ name: 'devstack_relay_messages_total', help: 'Stream messages written, by type (snapshot, delta, resumed, heartbeat)', labelNames: ['type'], registers });
    this.#bytes = new Counter({ name: 'devstack_relay_sent_bytes_total', help: 'Bytes of stream messages written, by type', labelNames: ['type'], registers });
    this.#coalesced = new Counter({ name: 'devstack_relay_coalesced_total', help: 'Changes a slow subscriber skipped: it gets the newest state when its socket drains', registers });
    this.#stalled = new Counter({ name: 'devstack_relay_stalled_ended_total', help: 'Streams ended because the subscriber read nothing for the stall timeout', registers });
    this.#rejected = new Counter({ name: 'devstack_relay_rejected_total', help: 'Connections and requests refused, by reason', labelNames: ['reason'], registers });
    new Gauge({
      name: 'devstack_relay_subscribers',
      help: 'Open streams, by namespace',
      labelNames: ['namespace'],
      registers,
      collect() {
        this.reset();
        for (const c of channels()) this.set({ namespace: c.namespace }, c.subscribers.size);
      },
    });
    new Gauge({
      name: 'devstack_relay_version',
      help: 'The version the relay serves, by namespace',
      labelNames: ['namespace'],
      registers,
      collect() {
        this.reset();
        for (const c of channels()) this.set({ namespace: c.namespace }, c.version);
      },
    });
    new Gauge({
      name: METRICS.registryServices,
      help: 'Logical services in the current snapshot, by namespace',
      labelNames: ['namespace'],
      registers,
      collect() {
        this.reset();
        for (const c of channels()) this.set({ namespace: c.namespace }, c.snapshot?.services.size ?? 0);
      },
    });
    new Gauge({
      name: METRICS.registryLastSync,
      help: 'Unix time (seconds) the namespace last had complete, current data (0 before its first sync)',
      labelNames: ['namespace'],
      registers,
      collect() {
        this.reset();
        for (const c of channels()) this.set({ namespace: c.namespace }, (c.source.status?.().lastSync ?? 0) / 1000);
      },
    });
    new Gauge({
      name: METRICS.registryStale,
      help: '1 while the relay cannot reach the API server for the namespace (it serves its last snapshot, marked stale)',
      labelNames: ['namespace'],
      registers,
      collect() {
        this.reset();
        for (const c of channels()) this.set({ namespace: c.namespace }, c.source.status?.().stale ? 1 : 0);
      },
    });
    const counted = new Map<string, number>();
    new Counter({
      name: METRICS.registryFailures,
      help: 'Failed list or watch attempts of the relay against the API server (each retried), by namespace',
      labelNames: ['namespace'],
      registers,
      collect() {
        for (const c of channels()) {
          const failures = Number(c.source.status?.()['failures'] ?? 0);
          const before = counted.get(c.namespace) ?? 0;
          if (failures > before) this.inc({ namespace: c.namespace }, failures - before);
          counted.set(c.namespace, Math.max(before, failures));
        }
      },
    });
    this.channelEvents = {
      sent: (type, bytes) => {
        this.#messages.inc({ type });
        this.#bytes.inc({ type }, bytes);
      },
      coalesced: () => this.#coalesced.inc(),
      stalled: () => this.#stalled.inc(),
    };
  }

  rejected(reason: RejectReason): void {
    this.#rejected.inc({ reason });
  }
}
