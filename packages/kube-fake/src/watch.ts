import type { ServerResponse } from 'node:http';
import type { KubeObject, ResourceType, WatchEventType } from './types.js';
import type { Store, StoreEvent } from './store.js';
import type { Matcher } from './selectors.js';
import { KubeApiError } from './status.js';
import { groupVersion, storageKey } from './resources.js';
import { clone } from './canonical.js';
import { toTable } from './table.js';

/** What a test can see of an open watch (also the payload of the server's `watch` event). */
export interface WatchInfo {
  readonly id: number;
  readonly path: string;
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly labelSelector: string | undefined;
  readonly fieldSelector: string | undefined;
  /** The `resourceVersion` asked for; undefined when absent. */
  readonly resourceVersion: string | undefined;
  readonly allowWatchBookmarks: boolean;
  readonly timeoutSeconds: number | undefined;
  readonly sendInitialEvents: boolean;
}

export interface WatchSpec {
  info: WatchInfo;
  type: ResourceType;
  matches: { label: Matcher; field: Matcher };
  bookmarkIntervalMs: number;
  /** How a too-old resourceVersion is answered: an ERROR event in a 200 stream (the watch cache), or HTTP 410. */
  expired: 'event' | 'status';
  /** Events carry one-row Tables (kubectl get -w), the first one with the column definitions. */
  table: { includeObject: string | undefined } | undefined;
}

/** Present an object in the version the client asked for, as the real server converts on the way out. */
export function present(type: ResourceType, object: KubeObject): KubeObject {
  const out = clone(object);
  out.apiVersion = groupVersion(type);
  out.kind = type.kind;
  return out;
}

/** A chunked stream of newline-delimited watch events, as `?watch=1` answers. */
export class WatchStream {
  #hung = false;
  #headersSent = false;
  #closed = false;
  #unsubscribe: (() => void) | undefined;
  readonly #timers: NodeJS.Timeout[] = [];

  readonly info: WatchInfo;

  constructor(
    private readonly spec: WatchSpec,
    private readonly res: ServerResponse,
    private readonly store: Store,
    private readonly onClose: (watch: WatchStream) => void,
  ) {
    this.info = Object.freeze({ ...spec.info });
    res.on('close', () => this.#cleanup());
  }

  #matches(object: KubeObject | undefined): boolean {
    if (!object) return false;
    const { type, matches } = this.spec;
    const { namespace } = this.info;
    if (type.namespaced && namespace !== undefined && object.metadata?.namespace !== namespace) return false;
    return matches.label(object) && matches.field(object);
  }

  /** Answers and starts streaming; throws a 410 before any byte when `expired` is 'status'. */
  start(): void {
    const { type } = this.spec;
    const { resourceVersion, allowWatchBookmarks, sendInitialEvents } = this.info;
    const storage = storageKey(type);
    const from = resourceVersion === undefined || resourceVersion === '' ? 0 : Number(resourceVersion);
    let backlog: StoreEvent[] | undefined;
    let expiredError: KubeApiError | undefined;
    if (from > 0) {
      try {
        backlog = this.store.since(storage, from);
      } catch (error) {
        if (!(error instanceof KubeApiError) || this.spec.expired === 'status') throw error;
        expiredError = error;
      }
    }
    this.res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    this.res.flushHeaders();
    if (expiredError) {
      this.#write('ERROR', expiredError.status as unknown as KubeObject);
      this.res.end();
      return;
    }
    if (backlog && !sendInitialEvents) {
      for (const event of backlog) this.#deliver(event);
    } else {
      // Absent or "0" (or sendInitialEvents): the current state as synthetic ADDED events first.
      for (const object of this.store.current(storage)) if (this.#matches(object)) this.#write('ADDED', object);
      if (sendInitialEvents && allowWatchBookmarks) this.bookmark({ 'k8s.io/initial-events-end': 'true' });
    }
    this.#unsubscribe = this.store.subscribe((event) => {
      if (event.storage === storage) this.#deliver(event);
    });
    if (allowWatchBookmarks) this.#timers.push(setInterval(() => this.bookmark(), this.spec.bookmarkIntervalMs));
    // Without timeoutSeconds the real server picks 30-60 minutes; the stream then ends cleanly.
    const seconds = this.info.timeoutSeconds ?? 1800 + Math.floor(Math.random() * 1800);
    // A hung watch is a black hole: not even its end reaches the client.
    this.#timers.push(setTimeout(() => !this.#hung && this.close(), seconds * 1000));
  }

  /** The watch cache's rule: an object that starts matching is ADDED, one that stops is DELETED. */
  #deliver(event: StoreEvent): void {
    const now = event.type !== 'DELETED' && this.#matches(event.object);
    const before = event.type !== 'ADDED' && this.#matches(event.previous);
    if (now && !before) this.#write('ADDED', event.object);
    else if (now && before) this.#write('MODIFIED', event.object);
    else if (before && event.type === 'DELETED') this.#write('DELETED', event.object);
    else if (before) {
      // Stopped matching: its last matching state, at the version of the change.
      const gone = clone(event.previous!);
      gone.metadata!.resourceVersion = String(event.rv);
      this.#write('DELETED', gone);
    }
  }

  #write(type: WatchEventType, object: KubeObject): void {
    if (this.#hung || this.#closed) return;
    let payload = type === 'ERROR' || type === 'BOOKMARK' ? object : present(this.spec.type, object);
    const table = this.spec.table;
    if (table && type !== 'ERROR' && type !== 'BOOKMARK') {
      payload = toTable(this.spec.type, [payload], { resourceVersion: payload.metadata?.resourceVersion }, table.includeObject, !this.#headersSent);
      this.#headersSent = true;
    }
    this.res.write(`${JSON.stringify({ type, object: payload })}\n`);
  }

  /** A BOOKMARK at the store's current version: only kind, apiVersion and the version. */
  bookmark(annotations?: Record<string, string>): void {
    if (!this.info.allowWatchBookmarks) return;
    const metadata: Record<string, unknown> = { resourceVersion: String(this.store.resourceVersion) };
    if (annotations) metadata.annotations = annotations;
    this.#write('BOOKMARK', { kind: this.spec.type.kind, apiVersion: groupVersion(this.spec.type), metadata });
  }

  /** From now on nothing more is sent, not even bookmarks, and the connection stays open. */
  hang(): void {
    this.#hung = true;
  }

  get hung(): boolean {
    return this.#hung;
  }

  /** Ends the stream cleanly (a closed chunked response), or resets the connection. */
  close(abrupt = false): void {
    if (this.#closed) return;
    if (abrupt) this.res.socket?.resetAndDestroy();
    else this.res.end();
    this.#cleanup();
  }

  #cleanup(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    for (const timer of this.#timers) clearTimeout(timer);
    this.onClose(this);
  }
}
