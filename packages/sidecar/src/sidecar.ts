import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Agent } from 'undici';
import { trace } from '@opentelemetry/api';
import { createKeyCodec, describeUntrusted, DEFAULT_MAX_HOPS, type Snapshot } from '@devstack/core';
import type { RegistrySource } from '@devstack/registry';
import { compose, Exchange, type Direction, type Stage } from './exchange.js';
import { ListenError, rawErrorResponse, sendError } from './errors.js';
import { extractKey, edgeService, loopGuard, outboundService, readTarget, resolveLane, rewriteHeaders, serviceFromHost } from './route.js';
import { forward } from './forward.js';
import { forwardUpgrade } from './upgrade.js';
import { measure, traceExchange } from './observe.js';
import { SidecarMetrics } from './metrics.js';
import { adminHandler } from './admin.js';
import { createLogger, type Logger } from './log.js';

export interface ListenOptions {
  port: number;
  /** Address to bind. Default 127.0.0.1 (outbound) or 0.0.0.0 (the others). */
  host?: string;
}

export interface SidecarOptions {
  source: RegistrySource;
  outbound?: ListenOptions;
  inbound?: ListenOptions & { appPort: number; appHost?: string };
  edge?: ListenOptions & { domains: readonly string[]; entry: string; dropClientKeys?: boolean };
  admin?: ListenOptions;
  /** Key for outbound calls that arrive without one; also this copy's lane on inbound. */
  defaultKey?: string;
  strict?: boolean;
  /** The key's name in every carrier. Default `uber-ctx-key`. */
  keyName?: string;
  /** Base domains whose first label the inbound listener reads as a key. */
  domains?: readonly string[];
  clusterDomain?: string;
  maxHops?: number;
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** How long in-flight requests may take to finish after close() begins. */
  shutdownTimeoutMs?: number;
  maxHeaderSize?: number;
  /** Upstream connections kept per origin. */
  connections?: number;
  logger?: Logger;
  metrics?: SidecarMetrics;
  /** Trace requests (when an OpenTelemetry SDK is running). */
  tracing?: boolean;
}

export interface SidecarAddresses {
  outbound?: AddressInfo;
  inbound?: AddressInfo;
  edge?: AddressInfo;
  admin?: AddressInfo;
}

type Name = keyof SidecarAddresses;

export class Sidecar {
  readonly metrics: SidecarMetrics;
  readonly addresses: SidecarAddresses = {};
  readonly #options: SidecarOptions;
  readonly #log: Logger;
  readonly #agent: Agent;
  readonly #servers = new Map<Name, Server>();
  /** Upgraded connections (WebSockets): the HTTP server no longer tracks them, so shutdown must. */
  readonly #upgraded = new Set<Duplex>();
  #snapshot: Snapshot | undefined;
  #draining = false;
  #closing: Promise<void> | undefined;
  #unsubscribe: (() => void)[] = [];

  constructor(options: SidecarOptions) {
    this.#options = options;
    this.#log = options.logger ?? createLogger('info');
    this.metrics = options.metrics ?? new SidecarMetrics();
    this.#agent = new Agent({
      connections: options.connections ?? 128,
      connectTimeout: options.connectTimeoutMs ?? 5_000,
      headersTimeout: options.headersTimeoutMs ?? 60_000,
      bodyTimeout: options.idleTimeoutMs ?? 60_000,
      keepAliveTimeout: 4_000,
    });
  }

  snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  ready(): boolean {
    return this.#snapshot !== undefined && !this.#draining;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Loads the first snapshot, then opens every configured listener. */
  async start(): Promise<SidecarAddresses> {
    const { source } = this.#options;
    this.#unsubscribe.push(
      source.subscribe((snapshot) => this.#publish(snapshot)),
      source.onError((error) => {
        this.metrics.registryError(source.kind);
        this.#log.error('registry update refused; keeping the last good snapshot', { source: source.kind, error: error.message, code: (error as { code?: string }).code });
      }),
    );
    this.#publish(await source.start());
    const o = this.#options;
    if (o.admin) await this.#listen('admin', o.admin, '0.0.0.0', adminHandler({ snapshot: () => this.#snapshot, ready: () => this.ready(), strict: o.strict === true, metrics: this.metrics }));
    if (o.outbound) await this.#listenProxy('outbound', o.outbound, '127.0.0.1', this.#routingStages('outbound'));
    if (o.inbound) await this.#listenProxy('inbound', o.inbound, '0.0.0.0', this.#inboundStages(o.inbound));
    if (o.edge) await this.#listenProxy('edge', o.edge, '0.0.0.0', this.#routingStages('edge'));
    return this.addresses;
  }

  #publish(snapshot: Snapshot): void {
    this.#snapshot = snapshot;
    this.metrics.snapshot(snapshot);
    this.#log.info('registry snapshot', { source: snapshot.source, version: snapshot.version, services: snapshot.services.size, keys: snapshot.keys.size });
  }

  #common(direction: Direction) {
    const o = this.#options;
    return {
      codec: createKeyCodec({ name: o.keyName, domains: direction === 'edge' ? o.edge?.domains : o.domains }),
      onInvalid: (ex: Exchange) => this.metrics.invalidKey(direction, ex.reading?.carrier ?? 'unknown', ex.reading?.problem ?? 'malformed'),
      tracing: o.tracing ? [traceExchange(trace.getTracer('devstack-sidecar'), `devstack.key`)] : [],
      forward: forward(this.#agent, {
        draining: () => this.#draining,
        onUpstreamError: (ex, code) => this.metrics.upstreamError(ex.direction, ex.service, code),
      }),
    };
  }

  /** Outbound and edge share the routing path; they differ in how the service is found. */
  #routingStages(direction: 'outbound' | 'edge'): { stages: Stage[]; upgrade: Stage[] } {
    const o = this.#options;
    const c = this.#common(direction);
    const snap = () => this.#snapshot;
    const edge = direction === 'edge' ? o.edge : undefined;
    const dropClientKeys = edge?.dropClientKeys;
    const route = [
      readTarget,
      loopGuard(o.maxHops ?? DEFAULT_MAX_HOPS),
      edge ? edgeService(c.codec, edge.entry) : outboundService(snap, o.clusterDomain ?? 'cluster.local'),
      extractKey(c.codec, { defaultKey: edge ? undefined : o.defaultKey, dropClientKeys, onInvalid: c.onInvalid }),
      resolveLane(snap, { strict: o.strict }),
      rewriteHeaders(c.codec, { countHop: true, dropClientKeys }),
      ...c.tracing,
    ];
    return { stages: [measure(this.metrics), ...route, c.forward], upgrade: route };
  }

  #inboundStages(inbound: NonNullable<SidecarOptions['inbound']>): { stages: Stage[]; upgrade: Stage[] } {
    const o = this.#options;
    const c = this.#common('inbound');
    const app = Object.freeze({ origin: `http://${inbound.appHost ?? '127.0.0.1'}:${inbound.appPort}`, ready: true });
    const lane = o.defaultKey ?? 'base';
    const toApp: Stage = (ex) => {
      ex.host = ex.req.headers.host;
      ex.service = 'app';
      ex.lane = lane;
      ex.target = app;
      ex.next();
    };
    const route = [toApp, extractKey(c.codec, { defaultKey: o.defaultKey, onInvalid: c.onInvalid }), rewriteHeaders(c.codec, { countHop: false }), ...c.tracing];
    return { stages: [measure(this.metrics), ...route, c.forward], upgrade: route };
  }

  async #listenProxy(name: Name, listen: ListenOptions, defaultHost: string, pipeline: { stages: Stage[]; upgrade: Stage[] }): Promise<void> {
    const handle = compose(name as Direction, pipeline.stages);
    const server = await this.#listen(name, listen, defaultHost, (req, res) => {
      if (this.#draining) res.shouldKeepAlive = false;
      handle(req, res);
    });
    const timeout = this.#options.connectTimeoutMs ?? 5_000;
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const res = new ServerResponse(req);
      res.assignSocket(socket as Socket);
      res.shouldKeepAlive = false;
      // Nothing but this response owns the socket now: close it once an answer is complete.
      res.on('finish', () => socket.end());
      socket.on('end', () => socket.end());
      this.#upgraded.add(socket);
      socket.once('close', () => this.#upgraded.delete(socket));
      new Exchange(req, res, name as Direction, [...pipeline.upgrade, forwardUpgrade(socket, head, timeout)]).next();
    });
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#tunnel(name, server, req, socket, head));
  }

  /**
   * `CONNECT orders:80` from clients that tunnel plain HTTP through a proxy (undici's ProxyAgent,
   * Node's NODE_USE_ENV_PROXY): the tunnel is accepted only for a registry service, and the HTTP
   * inside it is then handled by this listener like any other request, so routing is unchanged.
   * TLS inside a tunnel cannot be routed by key and is refused.
   */
  #tunnel(name: Name, server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const authority = req.url ?? '';
    const snapshot = this.#snapshot;
    if (name !== 'outbound' || /:443$/.test(authority)) {
      socket.end(rawErrorResponse('DEVSTACK_METHOD_NOT_ALLOWED', 'CONNECT is only for plain HTTP to registry services; call http://<service> instead'));
      return;
    }
    if (snapshot === undefined || !snapshot.services.has(serviceFromHost(authority, snapshot, this.#options.clusterDomain ?? 'cluster.local'))) {
      socket.end(rawErrorResponse('DEVSTACK_UNKNOWN_SERVICE', `no service named ${describeUntrusted(authority)} in the registry`));
      return;
    }
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);
    server.emit('connection', socket);
  }

  async #listen(name: Name, listen: ListenOptions, defaultHost: string, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
    const server = createServer({ maxHeaderSize: this.#options.maxHeaderSize ?? 32 * 1024, requireHostHeader: false }, handler);
    // Node answers an unknown Expect with a bare 417; this one carries the JSON error like the rest.
    server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => sendError(res, 'DEVSTACK_EXPECTATION_FAILED', 'only Expect: 100-continue is supported', 'none'));
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
      if (!socket.writable || error.code === 'ECONNRESET') return socket.destroy();
      const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
      socket.end(rawErrorResponse(tooLarge ? 'DEVSTACK_HEADERS_TOO_LARGE' : 'DEVSTACK_BAD_REQUEST', tooLarge ? 'request headers are too large' : `malformed request (${describeUntrusted(error.code ?? 'parse error')})`));
    });
    const host = listen.host ?? defaultHost;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((error: NodeJS.ErrnoException) => {
      const why = error.code === 'EADDRINUSE' ? `port ${listen.port} is already in use` : error.code === 'EACCES' ? `no permission to listen on port ${listen.port}` : error.message;
      throw new ListenError(`${name} listener on ${host}:${listen.port}: ${why}`, { cause: error });
    });
    this.#servers.set(name, server);
    const address = server.address() as AddressInfo;
    this.addresses[name] = address;
    this.#log.info('listening', { listener: name, address: address.address, port: address.port });
    return server;
  }

  /**
   * Graceful stop: readiness turns false at once, listeners stop accepting, in-flight requests get
   * until the shutdown timeout to finish, then whatever is left is cut.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#draining = true;
    const deadline = this.#options.shutdownTimeoutMs ?? 25_000;
    const proxies = [...this.#servers].filter(([name]) => name !== 'admin').map(([, server]) => server);
    const closed = proxies.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    // Keep-alive connections that finish their last request are closed as they go idle.
    const sweep = setInterval(() => proxies.forEach((s) => s.closeIdleConnections()), 50);
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), deadline);
    });
    const timedOut = await Promise.race([Promise.all(closed).then(() => false), expired]);
    clearInterval(sweep);
    clearTimeout(timer);
    if (timedOut) {
      this.#log.warn('shutdown deadline reached; closing remaining connections', { deadlineMs: deadline });
      proxies.forEach((s) => s.closeAllConnections());
      this.#upgraded.forEach((socket) => socket.destroy());
      await Promise.all(closed);
    }
    const admin = this.#servers.get('admin');
    if (admin) {
      admin.closeAllConnections();
      await new Promise<void>((resolve) => admin.close(() => resolve()));
    }
    this.#unsubscribe.forEach((off) => off());
    await this.#agent.close().catch(() => undefined);
    await this.#options.source.close();
    this.#log.info('stopped');
  }
}
