import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Socket } from 'node:net';
import { isValidKey, type RegistrySource } from '@devstack/core';
import { NDJSON, RELAY_ERRORS, STREAM_PATH } from '@devstack/registry-relay';
import { Channel, type Subscriber } from './channel.js';
import { RelayMetrics } from './metrics.js';

export interface RelayLimits {
  /** A heartbeat on every idle stream this often. */
  heartbeatIntervalMs: number;
  /** A stream is ended after about this long (less up to `maxStreamAgeJitter` of it), so clients spread over replicas. */
  maxStreamAgeMs: number;
  /** The fraction of `maxStreamAgeMs` a stream's age is shortened by, at random. */
  maxStreamAgeJitter: number;
  /** Open connections on the stream port; more are closed at once. */
  maxConnections: number;
  /** Bytes of request line and headers; more is answered 431 and closed. */
  maxHeaderSize: number;
  /** A connection that has not sent its request headers by then is closed. */
  headersTimeoutMs: number;
  /** A subscriber whose socket stays full this long is ended. */
  stallTimeoutMs: number;
  /** Versions kept per namespace to resume from with a delta. */
  history: number;
  /** With all namespaces: namespaces opened at most (each one a list+watch of its own). */
  maxNamespaces: number;
  /** Open connections on the admin port (probes and scrapes need few); more are closed at once. */
  maxAdminConnections: number;
}

export const DEFAULT_LIMITS: Readonly<RelayLimits> = Object.freeze({
  heartbeatIntervalMs: 10_000,
  maxStreamAgeMs: 30 * 60_000,
  maxStreamAgeJitter: 0.2,
  maxConnections: 10_000,
  maxHeaderSize: 8192,
  headersTimeoutMs: 10_000,
  stallTimeoutMs: 120_000,
  history: 64,
  maxNamespaces: 1000,
  maxAdminConnections: 128,
});

export interface RelayLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export interface RelayOptions extends Partial<RelayLimits> {
  /** The namespaces served; undefined: every namespace, opened when first asked for. */
  namespaces: readonly string[] | undefined;
  /** Opens the registry source of one namespace (the Kubernetes source). */
  openSource(namespace: string): RegistrySource;
  port?: number;
  host?: string;
  adminPort?: number;
  adminHost?: string;
  /** A certificate and key (PEM) for the stream port: clients then use `https://`. */
  tls?: { cert: Buffer | string; key: Buffer | string };
  log?: RelayLog;
  random?: () => number;
}

const SILENT: RelayLog = { info: () => undefined, warn: () => undefined };

function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

function answer(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  const body = errorBody(code, message);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
  res.end(body);
}

/**
 * devstack-relay: watches the API server once for every namespace it serves and streams each
 * namespace's snapshots to any number of subscribers (sidecars, SDKs) over HTTP/1.1.
 */
export class Relay {
  readonly metrics: RelayMetrics;
  readonly epoch = randomBytes(6).toString('base64url');
  readonly #o: RelayOptions & RelayLimits;
  readonly #channels = new Map<string, Channel>();
  readonly #log: RelayLog;
  readonly #random: () => number;
  #stream: Server | undefined;
  #admin: Server | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #closing = false;

  constructor(options: RelayOptions) {
    this.#o = { ...DEFAULT_LIMITS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as RelayOptions & RelayLimits;
    this.#log = options.log ?? SILENT;
    this.#random = options.random ?? Math.random;
    this.metrics = new RelayMetrics(() => [...this.#channels.values()]);
    for (const ns of options.namespaces ?? []) this.#channel(ns);
  }

  get streamPort(): number {
    return (this.#stream?.address() as { port: number } | null)?.port ?? 0;
  }

  get adminPort(): number {
    return (this.#admin?.address() as { port: number } | null)?.port ?? 0;
  }

  /** Every served namespace has had its first sync (with all namespaces: every one opened so far). */
  get ready(): boolean {
    for (const c of this.#channels.values()) if (c.snapshot === undefined) return false;
    return true;
  }

  /** Listens on both ports at once, and opens the sources; resolves when listening, not when synced. */
  async listen(): Promise<void> {
    const http = { maxHeaderSize: this.#o.maxHeaderSize, headersTimeout: this.#o.headersTimeoutMs, requestTimeout: this.#o.headersTimeoutMs, keepAliveTimeout: 5000, connectionsCheckingInterval: Math.min(1000, this.#o.headersTimeoutMs) };
    const handle = (req: IncomingMessage, res: ServerResponse) => this.#handle(req, res);
    const tls = this.#o.tls;
    // A TLS handshake that does not finish is bounded like a request that does not come.
    const stream: Server = tls === undefined ? createServer(http, handle) : createTlsServer({ ...http, cert: tls.cert, key: tls.key, handshakeTimeout: this.#o.headersTimeoutMs }, handle);
    stream.maxConnections = this.#o.maxConnections;
    stream.on('drop', () => this.metrics.rejected('connections'));
    stream.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => this.#clientError(error, socket));
    stream.on('connection', (socket: Socket) => {
      socket.setNoDelay(true);
      // The headers timeout only counts from a request's first byte: a connection that sends
      // nothing is closed by this one (a stream lifts it once it is served).
      socket.setTimeout(this.#o.headersTimeoutMs);
    });
    const admin = createServer({ maxHeaderSize: 8192, headersTimeout: 10_000, requestTimeout: 10_000 }, (req, res) => void this.#handleAdmin(req, res));
    admin.maxConnections = this.#o.maxAdminConnections;
    admin.on('drop', () => this.metrics.rejected('admin_connections'));
    admin.on('clientError', (_error, socket: Socket) => socket.destroy());
    this.#stream = stream;
    this.#admin = admin;
    await Promise.all([
      new Promise<void>((resolve, reject) => stream.once('error', reject).listen(this.#o.port ?? 0, this.#o.host ?? '0.0.0.0', () => resolve())),
      new Promise<void>((resolve, reject) => admin.once('error', reject).listen(this.#o.adminPort ?? 0, this.#o.adminHost ?? '0.0.0.0', () => resolve())),
    ]);
    this.#heartbeat = setInterval(() => {
      for (const c of this.#channels.values()) c.tick();
    }, this.#o.heartbeatIntervalMs);
    this.#heartbeat.unref();
    // The source's stale state has no event: polled, so a lost API server reaches clients within a second.
    this.#poll = setInterval(() => {
      for (const c of this.#channels.values()) c.poll();
    }, Math.min(1000, this.#o.heartbeatIntervalMs));
    this.#poll.unref();
    for (const c of this.#channels.values()) this.#startChannel(c);
  }

  #channel(namespace: string): Channel {
    let channel = this.#channels.get(namespace);
    if (channel !== undefined) return channel;
    channel = new Channel({
      namespace,
      epoch: this.epoch,
      source: this.#o.openSource(namespace),
      history: this.#o.history,
      stallTimeoutMs: this.#o.stallTimeoutMs,
      events: this.metrics.channelEvents,
      onError: (ns, error) => this.#log.warn('registry', { namespace: ns, error: error.message, code: (error as { code?: string }).code }),
    });
    this.#channels.set(namespace, channel);
    return channel;
  }

  #startChannel(channel: Channel): void {
    channel.start().then(
      () => this.#log.info('synced', { namespace: channel.namespace, services: channel.snapshot?.services.size }),
      (error: Error) => this.#log.warn('source failed', { namespace: channel.namespace, error: error.message }),
    );
  }

  #clientError(error: NodeJS.ErrnoException, socket: Socket): void {
    const reason = error.code === 'HPE_HEADER_OVERFLOW' ? 'header_size' : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'timeout' : 'bad_request';
    this.metrics.rejected(reason);
    if (socket.writable && !(socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
      const status = reason === 'header_size' ? '431 Request Header Fields Too Large' : reason === 'timeout' ? '408 Request Timeout' : '400 Bad Request';
      const body = errorBody(RELAY_ERRORS.badRequest, reason === 'header_size' ? `request headers over ${this.#o.maxHeaderSize} bytes` : reason === 'timeout' ? 'request not received in time' : 'not an HTTP/1.1 request');
      socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    }
    socket.destroy();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.#closing) return answer(res, 503, RELAY_ERRORS.notReady, 'the relay is stopping', { connection: 'close' });
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://relay');
    } catch {
      this.metrics.rejected('bad_request');
      return answer(res, 400, RELAY_ERRORS.badRequest, 'not a request path');
    }
    const match = STREAM_PATH.exec(url.pathname);
    if (match === null) {
      this.metrics.rejected('not_found');
      return answer(res, 404, RELAY_ERRORS.notFound, 'the stream is GET /v1/namespaces/NAMESPACE/stream');
    }
    if (req.method !== 'GET') {
      this.metrics.rejected('method');
      return answer(res, 405, RELAY_ERRORS.method, 'the stream is a GET', { allow: 'GET' });
    }
    let namespace: string;
    try {
      namespace = decodeURIComponent(match[1]!);
    } catch {
      namespace = '';
    }
    // One answer for every namespace not served, existing or not, named well or not: it tells nothing.
    const served = isValidKey(namespace) && (this.#o.namespaces === undefined ? this.#channels.has(namespace) || this.#channels.size < this.#o.maxNamespaces : this.#channels.has(namespace));
    if (!served) {
      this.metrics.rejected('not_served');
      return answer(res, 404, RELAY_ERRORS.notServed, 'this relay does not serve that namespace');
    }
    const epoch = url.searchParams.get('epoch');
    const since = url.searchParams.get('since');
    let resume: { epoch: string; since: number } | undefined;
    if (epoch !== null || since !== null) {
      if (epoch === null || since === null || !/^[0-9]{1,15}$/.test(since)) {
        this.metrics.rejected('bad_request');
        return answer(res, 400, RELAY_ERRORS.badRequest, 'resume with both epoch and since (a version)');
      }
      resume = { epoch, since: Number(since) };
    }
    let channel = this.#channels.get(namespace);
    if (channel === undefined) {
      try {
        channel = this.#channel(namespace);
      } catch (error) {
        this.#log.warn('cannot open the namespace', { namespace, error: (error as Error).message });
        return answer(res, 503, RELAY_ERRORS.notReady, 'the relay cannot watch that namespace now');
      }
      this.#startChannel(channel);
    }
    this.#subscribe(channel, req, res, resume);
  }

  #subscribe(channel: Channel, req: IncomingMessage, res: ServerResponse, resume: { epoch: string; since: number } | undefined): void {
    res.writeHead(200, { 'content-type': NDJSON, 'cache-control': 'no-store', 'x-accel-buffering': 'no', 'x-devstack-relay-epoch': this.epoch });
    res.flushHeaders();
    const sub: Subscriber = { res, sent: undefined, sentStale: false, blocked: false, pending: false, stallTimer: undefined };
    const age = this.#o.maxStreamAgeMs * (1 - this.#o.maxStreamAgeJitter * this.#random());
    const ageTimer = setTimeout(() => res.end(), age);
    ageTimer.unref();
    res.on('close', () => {
      clearTimeout(ageTimer);
      channel.remove(sub);
    });
    req.socket.setTimeout(0);
    channel.add(sub, resume);
  }

  async #handleAdmin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, RELAY_ERRORS.method, 'GET only', { allow: 'GET, HEAD' });
    const json = (status: number, value: unknown) => {
      const body = JSON.stringify(value);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(body);
    };
    switch (path) {
      case '/healthz':
        return json(200, { status: 'ok' });
      case '/readyz':
        return this.ready ? json(200, { status: 'ready', namespaces: this.#channels.size }) : json(503, { error: { code: RELAY_ERRORS.notReady, message: 'waiting for the first sync of every namespace served' } });
      case '/status':
        return json(200, { epoch: this.epoch, ready: this.ready, namespaces: [...this.#channels.values()].map((c) => ({ namespace: c.namespace, version: c.version, subscribers: c.subscribers.size, services: c.snapshot?.services.size ?? 0, source: c.source.status?.() })) });
      case '/metrics': {
        try {
          const text = await this.metrics.registry.metrics();
          res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
          res.end(text);
        } catch (error) {
          answer(res, 500, 'DEVSTACK_RELAY_METRICS', (error as Error).message);
        }
        return;
      }
      default:
        return answer(res, 404, RELAY_ERRORS.notFound, 'admin paths: /healthz, /readyz, /status, /metrics');
    }
  }

  /** Stops listening, ends every stream (clients resume elsewhere) and closes the sources. */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#heartbeat);
    clearInterval(this.#poll);
    for (const c of this.#channels.values()) for (const sub of c.subscribers) sub.res.end();
    const closing = [this.#stream, this.#admin].map(
      (server) =>
        new Promise<void>((resolve) => {
          if (server === undefined || !server.listening) return resolve();
          server.close(() => resolve());
          server.closeIdleConnections();
          // A subscriber that does not read cannot take its end: dropped after a moment.
          setTimeout(() => server.closeAllConnections(), 1000).unref();
        }),
    );
    await Promise.all([...closing, ...[...this.#channels.values()].map((c) => c.close())]);
  }
}
