import type { ServerResponse } from 'node:http';
import type { RegistrySource, Snapshot } from '@devstack/core';
import { changedMembers, changedStacks, encodeDelta, encodeSnapshot, encodeStatus } from '@devstack/registry-relay';

/** What a channel counts, for metrics. */
export interface ChannelEvents {
  sent(type: 'snapshot' | 'delta' | 'resumed' | 'heartbeat', bytes: number): void;
  coalesced(): void;
  stalled(): void;
}

/**
 * One subscriber's place in its channel: what it was sent last (a snapshot shared with everyone
 * at that version) and whether its socket is taking writes. No queue: while the socket is full,
 * `pending` only says that something newer exists, and when it drains the subscriber gets one
 * message that takes it from what it has to the newest state (Linkerd's one-slot channels).
 */
export interface Subscriber {
  readonly res: ServerResponse;
  sent: { version: number; snapshot: Snapshot } | undefined;
  sentStale: boolean;
  blocked: boolean;
  pending: boolean;
  stallTimer: NodeJS.Timeout | undefined;
}

export interface ChannelOptions {
  namespace: string;
  epoch: string;
  source: RegistrySource;
  /** Snapshots kept to resume from with a delta. */
  history: number;
  /** A subscriber whose socket stays full this long is ended (it resumes when it reads again). */
  stallTimeoutMs: number;
  events: ChannelEvents;
  onError(namespace: string, error: Error): void;
}

/**
 * One namespace's registry as the relay serves it: the Kubernetes source's snapshots, numbered,
 * the last few kept to resume from, and the subscribers following it.
 */
export class Channel {
  readonly namespace: string;
  readonly subscribers = new Set<Subscriber>();
  readonly #o: ChannelOptions;
  readonly #history = new Map<number, Snapshot>();
  #version = 0;
  #snapshot: Snapshot | undefined;
  #stale = false;
  #lastSync: number | null = null;
  /** Encodings of this version, shared by every subscriber: the snapshot, and deltas by version sent. */
  #encodedSnapshot: string | undefined;
  readonly #encodedDeltas = new Map<number, string>();
  #heartbeat: string | undefined;
  #started: Promise<void> | undefined;

  constructor(options: ChannelOptions) {
    this.namespace = options.namespace;
    this.#o = options;
  }

  get version(): number {
    return this.#version;
  }

  get snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  get stale(): boolean {
    return this.#stale;
  }

  get source(): RegistrySource {
    return this.#o.source;
  }

  start(): Promise<void> {
    this.#started ??= (async () => {
      this.#o.source.onError((error) => this.#o.onError(this.namespace, error));
      this.#o.source.subscribe((snapshot) => this.#publish(snapshot));
      const first = await this.#o.source.start();
      if (this.#snapshot === undefined) this.#publish(first);
    })();
    return this.#started;
  }

  #common() {
    return { epoch: this.#o.epoch, version: this.#version, stale: this.#stale, lastSync: this.#lastSync };
  }

  #refresh(): boolean {
    const status = this.#o.source.status?.();
    const stale = status?.stale === true;
    const lastSync = status?.lastSync ?? null;
    const changed = stale !== this.#stale;
    if (changed || lastSync !== this.#lastSync) {
      // Every encoding carries the state: none made before this change may go out after it.
      this.#heartbeat = undefined;
      this.#encodedSnapshot = undefined;
      this.#encodedDeltas.clear();
    }
    this.#stale = stale;
    this.#lastSync = lastSync;
    return changed;
  }

  #publish(snapshot: Snapshot): void {
    this.#version++;
    this.#snapshot = snapshot;
    this.#history.set(this.#version, snapshot);
    for (const old of this.#history.keys()) {
      if (this.#history.size <= this.#o.history) break;
      this.#history.delete(old);
    }
    this.#encodedSnapshot = undefined;
    this.#encodedDeltas.clear();
    this.#heartbeat = undefined;
    this.#refresh();
    for (const sub of this.subscribers) this.#offer(sub);
  }

  /**
   * A new subscriber, from nothing or from a version it holds: current means nothing is resent,
   * a version still in the history a delta, anything else (another relay's epoch, a version too
   * old, a later one) a full snapshot. Before the first sync it waits for it.
   */
  add(sub: Subscriber, resume: { epoch: string; since: number } | undefined): void {
    this.subscribers.add(sub);
    if (this.#snapshot === undefined) return;
    this.#refresh();
    if (resume !== undefined && resume.epoch === this.#o.epoch) {
      if (resume.since === this.#version) {
        sub.sent = { version: this.#version, snapshot: this.#snapshot };
        sub.sentStale = this.#stale;
        this.#write(sub, encodeStatus('resumed', this.#common()), 'resumed');
        return;
      }
      const held = this.#history.get(resume.since);
      if (held !== undefined) sub.sent = { version: resume.since, snapshot: held };
    }
    this.#offer(sub);
  }

  remove(sub: Subscriber): void {
    this.subscribers.delete(sub);
    clearTimeout(sub.stallTimer);
  }

  /** Heartbeats to every subscriber that can take one; a stale flip goes out as a heartbeat at once. */
  tick(): void {
    if (this.#snapshot === undefined) return;
    this.#refresh();
    for (const sub of this.subscribers) {
      if (sub.blocked) continue;
      this.#offer(sub, true);
    }
  }

  /** The stale state changed (polled more often than heartbeats): tell only that. */
  poll(): void {
    if (this.#snapshot === undefined) return;
    if (!this.#refresh()) return;
    for (const sub of this.subscribers) this.#offer(sub);
  }

  #offer(sub: Subscriber, heartbeat = false): void {
    if (this.#snapshot === undefined) return;
    if (sub.blocked) {
      if (sub.pending) this.#o.events.coalesced();
      sub.pending = true;
      return;
    }
    const sent = sub.sent;
    if (sent === undefined) {
      this.#encodedSnapshot ??= encodeSnapshot(this.#snapshot, this.#common());
      this.#send(sub, this.#encodedSnapshot, 'snapshot');
      return;
    }
    if (sent.version === this.#version) {
      if (!heartbeat && sub.sentStale === this.#stale) return;
      this.#heartbeat ??= encodeStatus('heartbeat', this.#common());
      this.#send(sub, this.#heartbeat, 'heartbeat');
      return;
    }
    let delta = this.#encodedDeltas.get(sent.version);
    if (delta === undefined) {
      delta = encodeDelta(changedMembers(sent.snapshot, this.#snapshot), sent.version, this.#common(), changedStacks(sent.snapshot, this.#snapshot));
      // Subscribers are mostly one version behind: one encoding serves them all.
      this.#encodedDeltas.set(sent.version, delta);
    }
    this.#send(sub, delta, 'delta');
  }

  #send(sub: Subscriber, line: string, type: 'snapshot' | 'delta' | 'heartbeat'): void {
    sub.sent = { version: this.#version, snapshot: this.#snapshot! };
    sub.sentStale = this.#stale;
    this.#write(sub, line, type);
  }

  #write(sub: Subscriber, line: string, type: 'snapshot' | 'delta' | 'resumed' | 'heartbeat'): void {
    const res = sub.res;
    if (res.destroyed || res.writableEnded) return;
    this.#o.events.sent(type, Buffer.byteLength(line));
    if (res.write(line)) return;
    // The socket is full: hold nothing more than this line (already in the socket's buffer).
    sub.blocked = true;
    sub.stallTimer = setTimeout(() => {
      this.#o.events.stalled();
      res.destroy();
    }, this.#o.stallTimeoutMs);
    sub.stallTimer.unref();
    res.once('drain', () => {
      clearTimeout(sub.stallTimer);
      sub.blocked = false;
      if (!sub.pending) return;
      sub.pending = false;
      this.#offer(sub);
    });
  }

  async close(): Promise<void> {
    await this.#o.source.close();
  }
}
