import { ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Agent as UndiciAgent } from 'undici';
import { Agent } from './undici.js';
import { trace } from '@opentelemetry/api';
import { ConfigError, createKeyCodec, describeUntrusted, DEFAULT_MAX_HOPS, PassiveHealth, serviceForAuthority, type PassiveHealthOptions, type RegistrySource, type Snapshot } from '@devstack/core';
import { isLoopbackBind, passthroughTarget } from './passthrough.js';
import { compose, Exchange, type Direction, type FaultHandler, type Stage } from './exchange.js';
import { Guard } from './guard.js';
import { extractKey, edgeService, loopGuard, outboundService, readTarget, requestAuthority, resolveLane, rewriteHeaders } from './route.js';
import { forward } from './forward.js';
import { releasingConnector } from './release.js';
import { grpcDeadline } from './grpc.js';
import { acceptH2, type H2Side } from './h2-listener.js';
import { H2Sessions } from './h2-upstream.js';
import { forwardUpgrade } from './upgrade.js';
import { openListener } from './listener.js';
import { ClientTimeouts } from './client-timeouts.js';
import { InFlight } from './overload.js';
import { cancelOnClientLeave, measure, traceExchange } from './observe.js';
import { SidecarMetrics } from './metrics.js';
import { adminHandler } from './admin.js';
import { createLogger, LineBudget, type Logger } from './log.js';

export interface ListenOptions {
  port: number;
  /** Address to bind. Default 127.0.0.1 (outbound) or 0.0.0.0 (the others). */
  host?: string;
}

export interface SidecarOptions {
  source: RegistrySource;
  outbound?: ListenOptions;
  inbound?: ListenOptions & {
    appPort: number;
    appHost?: string;
    /** What the app speaks: `http1` (default), or `h2c` (HTTP/2 with prior knowledge, e.g. a gRPC server). */
    appProtocol?: 'http1' | 'h2c';
  };
  edge?: ListenOptions & { domains: readonly string[]; entry: string; dropClientKeys?: boolean };
  admin?: ListenOptions & {
    /** Answer `/routes` and `/resolve` to every client; by default only loopback clients get them. */
    exposeRoutes?: boolean;
    /** Which client addresses count as local for `/routes` and `/resolve`. Default: loopback. */
    isLocal?: (address: string | undefined) => boolean;
  };
  /**
   * Outbound calls for hosts outside the registry go to the host they name, with the key stripped,
   * instead of a 404 (for apps whose every plain-HTTP call is sent here by `HTTP_PROXY`). Only for
   * an outbound listener bound to loopback: never an open proxy to the network.
   */
  passthrough?: boolean;
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
  /** A client's request headers must arrive within this (then 408). Default 10 s. */
  requestHeadersTimeoutMs?: number;
  /** No request body byte from the client for this long: 408, or a cut once the response began. Default 30 s. */
  requestBodyTimeoutMs?: number;
  /** The client takes none of the response for this long while the upstream waits for it: cut. Default 30 s. */
  responseDrainTimeoutMs?: number;
  /**
   * Upstream HTTP/1.1 connections per origin; more requests wait for one. Default 256. `null`: no
   * limit, one connection per concurrent request (one client could then open thousands).
   */
  connections?: number | null;
  /** Requests carried at once, every listener together; the next are shed (503, REFUSED_STREAM). Default 1024. */
  maxInFlight?: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS for clients: streams one connection may have open. Default 100. */
  maxConcurrentStreams?: number;
  /** Streams a client may reset before their response began, per connection and 10 s; then GOAWAY. Default 200. */
  maxClientResets?: number;
  /** Invalid HTTP/2 frames a client connection may send before it is ended. Default 100. */
  maxInvalidFrames?: number;
  /**
   * Passive health checking of upstream targets: a target whose connection fails before any request
   * byte went out is ejected for a while and its calls go to the lane's other targets, then base
   * (not in strict mode). Default on, with core's defaults; `false` turns it off (a failed connect
   * is then an error answer, as before).
   */
  passiveHealth?: boolean | PassiveHealthOptions;
  logger?: Logger;
  /** The clock of the sidecar's own bookkeeping (the snapshot log line's budget). Default `Date.now`. */
  now?: () => number;
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

/**
 * The defaults of the bounds on what clients can make the sidecar hold. Envoy's circuit breakers
 * allow 1024 requests per cluster (256 connections per origin served 1.3-1.9x the requests of 1024
 * with 1000 concurrent HTTP/2 streams: fewer connections opened at once, reused); nginx and Envoy advertise 100-128 concurrent HTTP/2 streams;
 * nghttp2's rapid-reset limit is a burst of 1000 then 33 per second (for the sidecar a budget of
 * 200 per 10 s: gRPC cancellations are far rarer than that on one connection).
 */
export const DEFAULT_LIMITS = Object.freeze({ maxInFlight: 1024, connections: 256, maxConcurrentStreams: 100, maxClientResets: 200, maxInvalidFrames: 100 });
/** The window the client reset budget refills over. */
const RESET_WINDOW_MS = 10_000;

export class Sidecar {
  readonly metrics: SidecarMetrics;
  readonly addresses: SidecarAddresses = {};
  readonly #options: SidecarOptions;
  readonly #log: Logger;
  readonly #agent: UndiciAgent;
  /** HTTP/2 sessions to upstreams that speak h2c. */
  readonly #h2: H2Sessions;
  readonly #servers = new Map<Name, Server>();
  /** The HTTP/2 side of each routing listener. */
  readonly #h2Sides: H2Side[] = [];
  /** Upgraded connections (WebSockets): the HTTP server no longer tracks them, so shutdown must. */
  readonly #upgraded = new Set<Duplex>();
  #snapshot: Snapshot | undefined;
  #draining = false;
  #closing: Promise<void> | undefined;
  #unsubscribe: (() => void)[] = [];
  readonly #guard: Guard;
  readonly #clientTimeouts: ClientTimeouts;
  readonly #inFlight: InFlight;
  /** Undefined when passive health is off. */
  readonly health: PassiveHealth | undefined;
  /** At most one snapshot line a second. */
  readonly #snapshotLines: LineBudget;
  readonly #onFault: FaultHandler = (ex, error) => this.#guard.report(ex.direction, error);

  constructor(options: SidecarOptions) {
    if (options.passthrough === true && (options.outbound === undefined || !isLoopbackBind(options.outbound.host ?? '127.0.0.1'))) {
      throw new ConfigError(['passthrough needs an outbound listener bound to loopback (127.0.0.1 or ::1): the sidecar is never an open proxy to the network']);
    }
    this.#options = options;
    this.#log = options.logger ?? createLogger('info');
    this.metrics = options.metrics ?? new SidecarMetrics();
    this.#guard = new Guard(this.#log, this.metrics);
    this.#clientTimeouts = new ClientTimeouts({
      bodyTimeoutMs: options.requestBodyTimeoutMs ?? 30_000,
      drainTimeoutMs: options.responseDrainTimeoutMs ?? 30_000,
      onTimeout: (ex, stall) => this.metrics.clientTimeout(ex.direction, stall),
    });
    this.#inFlight = new InFlight({
      limit: options.maxInFlight ?? DEFAULT_LIMITS.maxInFlight,
      onShed: (ex) => {
        this.metrics.shed(ex.direction, ex.h2 ? 'h2' : 'http1');
        if (!ex.h2) this.metrics.refused(ex.direction, 503);
      },
    });
    this.metrics.inFlight(() => this.#inFlight.count);
    this.#agent = new Agent({
      connections: options.connections === undefined ? DEFAULT_LIMITS.connections : options.connections,
      connect: releasingConnector({ timeout: options.connectTimeoutMs ?? 5_000 }),
      headersTimeout: options.headersTimeoutMs ?? 60_000,
      bodyTimeout: options.idleTimeoutMs ?? 60_000,
      keepAliveTimeout: 4_000,
    });
    this.#h2 = new H2Sessions({ connectTimeoutMs: options.connectTimeoutMs ?? 5_000 });
    this.#snapshotLines = new LineBudget(1000, options.now);
    const health = options.passiveHealth ?? true;
    this.health = health === false ? undefined : new PassiveHealth(health === true ? {} : health);
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

  /**
   * Opens the admin listener (so probes see "not ready" while the registry syncs), loads the first
   * snapshot, then opens the routing listeners.
   */
  async start(): Promise<SidecarAddresses> {
    const { source } = this.#options;
    this.#unsubscribe.push(
      source.subscribe((snapshot) => this.#publish(snapshot)),
      source.onError((error) => {
        this.metrics.registryError(source.kind);
        this.#log.error('registry update refused; keeping the last good snapshot', { source: source.kind, error: error.message, code: (error as { code?: string }).code });
      }),
    );
    const o = this.#options;
    this.metrics.source(source);
    if (o.admin) {
      const registry = source.status === undefined ? undefined : () => source.status!();
      await this.#listen('admin', o.admin, '0.0.0.0', adminHandler({ snapshot: () => this.#snapshot, health: this.health, ready: () => this.ready(), strict: o.strict === true, metrics: this.metrics, registry, exposeRoutes: o.admin.exposeRoutes, isLocal: o.admin.isLocal }));
    }
    const first = await source.start();
    // close() may have begun while the source was syncing: then nothing more opens.
    if (this.#draining) return this.addresses;
    this.#publish(first);
    if (o.outbound) await this.#listenProxy('outbound', o.outbound, '127.0.0.1', this.#routingStages('outbound'));
    if (o.inbound) await this.#listenProxy('inbound', o.inbound, '0.0.0.0', this.#inboundStages(o.inbound));
    if (o.edge) await this.#listenProxy('edge', o.edge, '0.0.0.0', this.#routingStages('edge'));
    return this.addresses;
  }

  #publish(snapshot: Snapshot): void {
    this.#snapshot = snapshot;
    this.metrics.snapshot(snapshot);
    const held = this.#snapshotLines.take();
    if (held === undefined) return;
    this.#log.info('registry snapshot', { source: snapshot.source, version: snapshot.version, services: snapshot.services.size, keys: snapshot.keys.size, ...(held > 0 ? { snapshotsSinceLastLine: held } : {}) });
  }

  #common(direction: Direction) {
    const o = this.#options;
    return {
      codec: createKeyCodec({ name: o.keyName, domains: direction === 'edge' ? o.edge?.domains : o.domains }),
      onInvalid: (ex: Exchange) => this.metrics.invalidKey(direction, ex.reading?.carrier ?? 'unknown', ex.reading?.problem ?? 'malformed'),
      tracing: o.tracing ? [traceExchange(trace.getTracer('devstack-sidecar'), `devstack.key`)] : [],
      forward: forward(this.#agent, {
        h2: this.#h2,
        snapshot: () => this.#snapshot,
        step: { defaultKey: direction === 'edge' ? undefined : o.defaultKey, strict: o.strict === true, health: this.health },
        health: this.health,
        onEjected: (ex) => this.metrics.ejection(ex.direction, ex.service, ex.lane),
        onFailOver: (ex, from) => this.metrics.failover(ex.direction, ex.service, from, ex.lane),
        headersTimeoutMs: this.#options.headersTimeoutMs,
        draining: () => this.#draining,
        onUpstreamError: (ex, code) => this.metrics.upstreamError(ex.direction, ex.service, code),
        idleTimeoutMs: this.#options.idleTimeoutMs,
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
    // The edge is a first hop: no copy's key stands in for a missing one there.
    const defaultKey = edge ? undefined : o.defaultKey;
    const route = [
      readTarget,
      loopGuard(o.maxHops ?? DEFAULT_MAX_HOPS),
      edge ? edgeService(c.codec, edge.entry) : outboundService(snap, o.clusterDomain ?? 'cluster.local', o.passthrough === true),
      extractKey(c.codec, { defaultKey, dropClientKeys, onInvalid: c.onInvalid }),
      resolveLane(snap, { defaultKey, strict: o.strict, health: this.health }),
      rewriteHeaders(c.codec, { countHop: true, dropClientKeys, trustForwarded: !edge }),
      ...c.tracing,
    ];
    return { stages: [measure(this.metrics), cancelOnClientLeave, ...route, grpcDeadline, c.forward], upgrade: route };
  }

  #inboundStages(inbound: NonNullable<SidecarOptions['inbound']>): { stages: Stage[]; upgrade: Stage[] } {
    const o = this.#options;
    const c = this.#common('inbound');
    const app = Object.freeze({ origin: `http://${inbound.appHost ?? '127.0.0.1'}:${inbound.appPort}`, ready: true, protocol: inbound.appProtocol ?? 'http1' });
    const lane = o.defaultKey ?? 'base';
    const toApp: Stage = (ex) => {
      ex.host = requestAuthority(ex);
      ex.service = 'app';
      ex.lane = lane;
      ex.target = app;
      ex.next();
    };
    const route = [toApp, extractKey(c.codec, { defaultKey: o.defaultKey, onInvalid: c.onInvalid }), rewriteHeaders(c.codec, { countHop: false }), ...c.tracing];
    return { stages: [measure(this.metrics), cancelOnClientLeave, ...route, grpcDeadline, c.forward], upgrade: route };
  }

  async #listenProxy(name: Name, listen: ListenOptions, defaultHost: string, pipeline: { stages: Stage[]; upgrade: Stage[] }): Promise<void> {
    const handle = compose(name as Direction, [this.#inFlight.stage, this.#clientTimeouts.stage, ...pipeline.stages], this.#onFault);
    const server = await this.#listen(name, listen, defaultHost, (req, res) => {
      if (this.#draining) res.shouldKeepAlive = false;
      handle(req, res);
    });
    this.#h2Sides.push(acceptH2(name, server, handle, {
      guard: this.#guard,
      metrics: this.metrics,
      maxHeaderSize: this.#options.maxHeaderSize ?? 32 * 1024,
      headersTimeoutMs: this.#options.requestHeadersTimeoutMs ?? 10_000,
      idleSessionMs: this.#options.idleTimeoutMs ?? 60_000,
      maxConcurrentStreams: this.#options.maxConcurrentStreams ?? DEFAULT_LIMITS.maxConcurrentStreams,
      maxResets: this.#options.maxClientResets ?? DEFAULT_LIMITS.maxClientResets,
      resetWindowMs: RESET_WINDOW_MS,
      maxInvalidFrames: this.#options.maxInvalidFrames ?? DEFAULT_LIMITS.maxInvalidFrames,
      overloaded: () => this.#inFlight.full(),
    }));
    // Upgrades are measured like other exchanges, but a tunnel's answer is its 101 (see observe.ts).
    const measured = measure(this.metrics);
    const upgrade = {
      connectTimeoutMs: this.#options.connectTimeoutMs ?? 5_000,
      headersTimeoutMs: this.#options.headersTimeoutMs ?? 60_000,
      onOpen: (ex: Exchange) => this.metrics.request(ex, 101),
      onUpstreamError: (ex: Exchange, code: string) => this.metrics.upstreamError(ex.direction, ex.service, code),
    };
    server.on('upgrade', this.#guard.socket(name, (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const res = new ServerResponse(req);
      res.assignSocket(socket as Socket);
      res.shouldKeepAlive = false;
      // Nothing but this response owns the socket now: close it once an answer is complete.
      res.on('finish', () => socket.end());
      socket.on('end', () => socket.end());
      this.#upgraded.add(socket);
      socket.once('close', () => this.#upgraded.delete(socket));
      new Exchange(req, res, name as Direction, [measured, ...pipeline.upgrade, forwardUpgrade(socket, head, upgrade)], this.#onFault).next();
    }));
    server.on('connect', this.#guard.socket(name, (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#tunnel(name, server, req, socket, head)));
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
      this.#guard.refuse(name, socket, 'DEVSTACK_METHOD_NOT_ALLOWED', 'CONNECT is only for plain HTTP to registry services; call http://<service> instead');
      return;
    }
    const known = snapshot !== undefined && serviceForAuthority(snapshot, authority, this.#options.clusterDomain ?? 'cluster.local') !== undefined;
    // With passthrough, a tunnel to another host carries plain HTTP that is then passed through.
    if (!known && !(this.#options.passthrough === true && snapshot !== undefined && passthroughTarget(authority) !== null)) {
      this.#guard.refuse(name, socket, 'DEVSTACK_UNKNOWN_SERVICE', `no service named ${describeUntrusted(authority)} in the registry`);
      return;
    }
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);
    server.emit('connection', socket);
  }

  async #listen(name: Name, listen: ListenOptions, defaultHost: string, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
    const server = await openListener(name, listen, defaultHost, handler, {
      guard: this.#guard,
      metrics: this.metrics,
      maxHeaderSize: this.#options.maxHeaderSize ?? 32 * 1024,
      headersTimeoutMs: this.#options.requestHeadersTimeoutMs ?? 10_000,
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
    // HTTP/2 clients are told by GOAWAY: no new streams on their sessions, open ones finish.
    this.#h2Sides.forEach((side) => side.drain());
    const closed = proxies.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    // Keep-alive connections that finish their last request are closed as they go idle.
    const sweep = setInterval(() => proxies.forEach((s) => s.closeIdleConnections()), 50);
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), deadline);
    });
    // Once the listeners are closed no new upstream request can start; the agent then waits for the last ones.
    const drained = Promise.all(closed).then(() => Promise.all([this.#agent.close(), this.#h2.close()])).then(() => false, () => false);
    const timedOut = await Promise.race([drained, expired]);
    clearInterval(sweep);
    clearTimeout(timer);
    if (timedOut) await this.#cut(deadline, proxies, closed);
    const admin = this.#servers.get('admin');
    if (admin) {
      admin.closeAllConnections();
      await new Promise<void>((resolve) => admin.close(() => resolve()));
    }
    this.#unsubscribe.forEach((off) => off());
    await this.#options.source.close();
    this.#clientTimeouts.close();
    this.#log.info('stopped');
  }

  /** The shutdown deadline: whatever is still open is destroyed, and the log says how much. */
  async #cut(deadline: number, proxies: Server[], closed: Promise<void>[]): Promise<void> {
    const open = await Promise.all(proxies.map((s) => new Promise<number>((resolve) => s.getConnections((_error, n) => resolve(n ?? 0)))));
    let upstreamRequests = 0;
    for (const stats of Object.values(this.#agent.stats)) upstreamRequests += (stats as { size?: number }).size ?? 0;
    upstreamRequests += this.#h2.streams;
    const sessions = this.#h2Sides.reduce((n, side) => n + side.sessions, 0);
    const connections = open.reduce((a, b) => a + b, 0);
    this.#log.warn('shutdown deadline reached; cutting what is left', { deadlineMs: deadline, connections, h2Sessions: sessions, upgraded: this.#upgraded.size, upstreamRequests });
    proxies.forEach((s) => s.closeAllConnections());
    this.#h2Sides.forEach((side) => side.destroy());
    this.#h2.destroy();
    this.#upgraded.forEach((socket) => socket.destroy());
    // Requests still waiting on an upstream (connecting, queued, or whose client is gone) would hold close() forever.
    await this.#agent.destroy().catch(() => undefined);
    await Promise.all(closed);
  }
}
