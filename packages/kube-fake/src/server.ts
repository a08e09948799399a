import { once } from 'node:events';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { Socket } from 'node:net';
import { type ClusterOptions, FakeCluster } from './cluster.js';
import { Faults, type FailOptions, type FaultKind, type RequestInfo } from './faults.js';
import { expired } from './status.js';
import { type RouteContext, route } from './routes.js';
import { sendError } from './http.js';
import { type WatchInfo, type WatchSpec, WatchStream } from './watch.js';
import { type KubeconfigOptions, kubeconfigYaml, writeKubeconfig } from './kubeconfig.js';

export interface FakeApiServerOptions extends ClusterOptions {
  /** How often watches that asked for bookmarks get one (the real server: about a minute). */
  bookmarkIntervalMs?: number;
  /**
   * How a watch from a compacted resourceVersion is refused: `event` (default, as the watch
   * cache does: HTTP 200 and one ERROR event with a 410 Status) or `status` (HTTP 410).
   */
  expiredWatch?: 'event' | 'status';
}

const REQUEST_LOG = 1000;

/**
 * A Kubernetes API server on 127.0.0.1 that speaks enough of the real protocol for kubectl and
 * @kubernetes/client-node, with fault injection. Emits `request` (RequestInfo), `watch`
 * (WatchInfo, once its stream is open) and `watchClosed` (WatchInfo).
 */
export class FakeApiServer extends FakeCluster {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #watches = new Set<WatchStream>();
  readonly #faults = new Faults();
  readonly #requests: RequestInfo[] = [];
  /** Requests a `hang` fault accepted and never answers. */
  readonly #held = new Set<ServerResponse>();
  #port = 0;
  #watchIds = 0;
  #hangNew = false;
  readonly #context: RouteContext;
  bookmarkIntervalMs: number;
  expiredWatch: 'event' | 'status';

  constructor(options: FakeApiServerOptions = {}) {
    super(options);
    this.bookmarkIntervalMs = options.bookmarkIntervalMs ?? 60_000;
    this.expiredWatch = options.expiredWatch ?? 'event';
    this.#context = {
      store: this.store,
      objects: this.objects,
      apply: this.applier,
      types: this.types,
      faults: this.#faults,
      // Read when a watch opens, so a test may change them on a running server.
      bookmarkIntervalMs: () => this.bookmarkIntervalMs,
      expiredWatch: () => this.expiredWatch,
      address: () => `127.0.0.1:${this.#port}`,
      nextWatchId: () => ++this.#watchIds,
      openWatch: (spec, res) => this.#openWatch(spec, res),
    };
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const info: RequestInfo = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query,
      watch: query.watch === '1' || query.watch === 'true' || url.pathname.includes('/watch/'),
    };
    this.#requests.push(info);
    if (this.#requests.length > REQUEST_LOG) this.#requests.shift();
    this.emit('request', info);
    try {
      const fault = this.#faults.take(info);
      if (fault === 'reset') return void req.socket.resetAndDestroy();
      if (fault === 'hang') return void this.#held.add(res.once('close', () => this.#held.delete(res)));
      if (fault === 'gone') return this.#gone(info, res);
      if (fault) throw fault;
      await route(this.#context, req, res, info);
    } catch (error) {
      sendError(res, error);
    }
  }

  /** 410 Expired as after a compaction: for a watch in the form `expiredWatch` says, else HTTP 410. */
  #gone(info: RequestInfo, res: ServerResponse): void {
    const error = expired(Number(info.query.resourceVersion) || 0, this.store.compactedResourceVersion + 1);
    if (!info.watch || this.expiredWatch === 'status') throw error;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    res.end(`${JSON.stringify({ type: 'ERROR', object: error.status })}\n`);
  }

  #openWatch(spec: WatchSpec, res: ServerResponse): WatchStream {
    const stream = new WatchStream(spec, res, this.store, (w) => {
      if (this.#watches.delete(w)) this.emit('watchClosed', w.info);
    });
    if (this.#hangNew) stream.hang();
    stream.start();
    if (res.writableEnded) return stream;
    this.#watches.add(stream);
    this.emit('watch', stream.info);
    return stream;
  }

  async listen(port = 0): Promise<this> {
    this.#server.listen(port, '127.0.0.1');
    await once(this.#server, 'listening');
    this.#port = (this.#server.address() as { port: number }).port;
    return this;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** The latest requests (up to 1000), oldest first. */
  get requests(): readonly RequestInfo[] {
    return this.#requests;
  }

  get watches(): WatchInfo[] {
    return [...this.#watches].map((w) => w.info);
  }

  /** Resolves with an open watch `filter` accepts: one already open, else the next one opened. */
  waitForWatch(filter: (watch: WatchInfo) => boolean = () => true): Promise<WatchInfo> {
    const open = this.watches.find(filter);
    if (open) return Promise.resolve(open);
    return new Promise((resolve) => {
      const onWatch = (watch: WatchInfo) => {
        if (!filter(watch)) return;
        this.off('watch', onWatch);
        resolve(watch);
      };
      this.on('watch', onWatch);
    });
  }

  kubeconfigYaml(options: KubeconfigOptions = {}): string {
    return kubeconfigYaml(this.url, options);
  }

  /** Writes a kubeconfig whose only cluster is this server over plain http; returns `path`. */
  kubeconfig(path: string, options: KubeconfigOptions = {}): Promise<string> {
    return writeKubeconfig(path, this.url, options);
  }

  /** Ends every open watch: cleanly (the chunked stream is closed), or by resetting the connection. */
  closeWatches(options: { abrupt?: boolean } = {}): number {
    const open = [...this.#watches];
    for (const w of open) w.close(options.abrupt);
    return open.length;
  }

  /** Open watches go silent (no event, no bookmark) with their connection left open; `newWatches` too until `unhangWatches()`. */
  hangWatches(options: { newWatches?: boolean } = {}): number {
    if (options.newWatches) this.#hangNew = true;
    let count = 0;
    for (const w of this.#watches) {
      if (w.hung) continue;
      w.hang();
      count++;
    }
    return count;
  }

  unhangWatches(): void {
    this.#hangNew = false;
  }

  /**
   * Answers the next `count` requests (those `options.match` accepts) with a `status` error, resets
   * their connection (`reset`), never answers them (`hang`), or answers 410 Expired (`gone`).
   * `count` may be `Infinity` (a storm, until `clearFaults()`).
   */
  failNext(count: number, status: FaultKind, options: FailOptions = {}): void {
    this.#faults.failNext(count, status, options);
  }

  /** Forgets every pending `failNext` rule (ends a storm); requests already held stay held. */
  clearFaults(): void {
    this.#faults.clear();
  }

  /** How many requests a `hang` fault holds unanswered now. */
  get heldRequests(): number {
    return this.#held.size;
  }

  /** Sends a bookmark on every watch that asked for them, now (no need to wait for the interval). */
  sendBookmarks(): void {
    for (const w of this.#watches) w.bookmark();
  }

  /** Stops listening and drops every connection: clients get connection refused until `restart()`. */
  async stop(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = once(this.#server, 'close');
    this.#server.close();
    for (const socket of this.#sockets) socket.destroy();
    this.#held.clear();
    await closed;
  }

  /** Listens again on the same port, with the same objects and history. */
  async restart(): Promise<void> {
    if (this.#server.listening) return;
    await this.listen(this.#port);
  }

  async close(): Promise<void> {
    this.#faults.clear();
    await this.stop();
  }
}

export async function startFakeApiServer(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  return new FakeApiServer(options).listen();
}
