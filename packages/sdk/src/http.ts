import dc from 'node:diagnostics_channel';
import http, { type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { syncBuiltinESMExports } from 'node:module';
import { performance } from 'node:perf_hooks';
import { urlToHttpOptions } from 'node:url';
import { diag } from '@opentelemetry/api';
import { LANE_HEADER, REFUSALS, retryable, upstreamFailure, type MutableHeaderBag } from '@devstack/core';
import { getRoutingKey, outboundKey } from './context.js';
import { RoutingRejectedError } from './errors.js';
import { applyKey, headerBag, rewriteRendered } from './headers.js';
import { mayCarryKey, normalizeHostname } from './hosts.js';
import type { ParsedTarget, Route } from './router.js';
import { runtime } from './runtime.js';
import { unroutedRequest } from './unrouted.js';

/**
 * The key each request was created with (undefined: none), read in the app's context when the
 * request was made; its rendering, often later and elsewhere, writes that one.
 */
const createdWith = new WeakMap<ClientRequest, string | undefined>();

/**
 * Every node:http(s) client request, published from the ClientRequest constructor after
 * OpenTelemetry's http instrumentation has injected its headers: the key is merged into whatever is
 * there (one `baggage` line, one entry) for a host that may have it. For any other host every
 * carrier is stripped, whether or not there is a key in context: an app that forwards its incoming
 * headers passes on a key the SDK never read (an invalid plain header decides, so a valid baggage
 * entry behind it is no key here, yet it is one to whoever reads baggage next).
 */
function onRequestCreated(message: unknown): void {
  try {
    const req = (message as { request: ClientRequest }).request;
    // Raw-array headers and `Expect` were rendered in the constructor, by renderedHeaders below.
    if (req.headersSent) return;
    const { codec, allowed } = runtime();
    const may = mayCarryKey(allowed, req.host, req.path);
    const give = may ? outboundKey() : undefined;
    createdWith.set(req, give);
    if (may && give === undefined) return;
    const names = [codec.name, 'baggage', codec.jaegerHeader];
    const bag: MutableHeaderBag = {};
    for (const name of names) bag[name] = req.getHeader(name);
    applyKey(bag, codec, give);
    for (const name of names) {
      const value = bag[name];
      if (value === undefined) req.removeHeader(name);
      else req.setHeader(name, value);
    }
  } catch (error) {
    diag.error(`devstack: could not set the routing key on a node:http request: ${(error as Error).message}`);
  }
}

/**
 * The headers a request is rendered with. Rendering is the last point before they are queued for
 * the socket, and it happens in the constructor (before the created channel) for raw-array headers
 * and `Expect`, else at the first write, after any `setHeader` the app made since. So it strips
 * every carrier for a host that may not have the key, whatever set it and whenever, and writes the
 * key over carriers set after creation (forwarded, stale) and into requests the created channel
 * could not reach.
 */
function renderedHeaders(req: ClientRequest, headers: unknown): unknown {
  const { codec, allowed } = runtime();
  if (!mayCarryKey(allowed, req.host, req.path)) return rewriteRendered(headers, codec, undefined);
  const key = createdWith.has(req) ? createdWith.get(req) : outboundKey();
  return key === undefined ? headers : rewriteRendered(headers, codec, key);
}

type StoreHeader = (this: ClientRequest, firstLine: string, headers: unknown) => unknown;

/**
 * Wraps `ClientRequest.prototype._storeHeader`, node:http's (internal, long-stable) rendering step,
 * shared by http and https and reached by every way of making a request: a function captured
 * before `init()`, `new ClientRequest()`, a library's own reference. Returns the unwrapping.
 */
function hookRendering(): () => void {
  const proto = http.ClientRequest.prototype as unknown as { _storeHeader?: StoreHeader };
  const original = proto._storeHeader;
  if (typeof original !== 'function') {
    diag.warn('devstack: this Node.js has no ClientRequest rendering step to hook: node:http requests with raw-array headers or Expect, or headers set after creation, keep their carriers');
    return () => {};
  }
  const own = Object.hasOwn(proto, '_storeHeader');
  const hooked: StoreHeader = function _storeHeader(this: ClientRequest, firstLine: string, headers: unknown) {
    let out = headers;
    try {
      out = renderedHeaders(this, headers);
    } catch (error) {
      diag.error(`devstack: could not set the routing key on a node:http request: ${(error as Error).message}`);
    }
    return Reflect.apply(original, this, [firstLine, out]);
  };
  proto._storeHeader = hooked;
  return () => {
    if (proto._storeHeader !== hooked) return;
    if (own) proto._storeHeader = original;
    else delete proto._storeHeader;
  };
}

interface Routed {
  /** The route of the attempt under way: a connection that fails moves it on (core's failOver). */
  route: Route;
  responded: boolean;
  counted: boolean;
}

/** The routed call a connection is made for, on the options node:http hands the agent's createConnection. */
const ROUTED = Symbol('devstack.routed');
/** Sockets connected to another target than the one the agent pooled them under: never kept alive. */
const moved = new WeakSet<net.Socket>();

type Oncreate = (error: Error | null, socket?: net.Socket) => void;
type ConnectOptions = Record<string | symbol, unknown>;

function socketTo(target: ParsedTarget, options: ConnectOptions): net.Socket {
  const o = { ...options, host: target.hostname, port: target.port, path: undefined } as ConnectOptions;
  // A target's scheme decides, not the module the call was made with: base may be https where the copy is not.
  return target.protocol === 'https:' ? tls.connect(o as unknown as tls.ConnectionOptions) : net.connect(o as unknown as net.NetConnectOpts);
}

/**
 * Connects a routed call: nothing of the request is written before the socket is handed over, so a
 * connection that fails (refused, reset, timed out) carries no byte of it, and the call moves on to
 * the lane's next target, then base (core's failOver), its lane header following. Strict mode with
 * nothing left fails the call with a RoutingRejectedError (`DEVSTACK_NO_READY_UPSTREAM`).
 */
function connectRouted(record: Routed, options: ConnectOptions, oncreate: Oncreate): void {
  const router = runtime().router;
  let first = true;
  const attempt = (): void => {
    const target = record.route.target!;
    const socket = socketTo(target, options);
    const fresh = first;
    first = false;
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const kind = retryable(error, { sent: false, responded: false, method: undefined, replayable: false });
      const next = kind === false || router === undefined ? undefined : router.failOver(record.route, kind);
      if (next?.target !== undefined) {
        runtime().metrics?.upstreamError(record.route.service, upstreamFailure(error).code);
        record.route = next;
        return attempt();
      }
      if (next !== undefined) {
        runtime().metrics?.upstreamError(record.route.service, upstreamFailure(error).code);
        record.route = next;
        return oncreate(new RoutingRejectedError(next.service, next.refusal!, { cause: error }));
      }
      oncreate(error);
    };
    // Node leaves a connect to the system (minutes); the sidecar's --connect-timeout default instead.
    const timer = setTimeout(() => fail(Object.assign(new Error(`connect ETIMEDOUT ${target.hostname}:${target.port}`), { code: 'ETIMEDOUT' })), router?.connectTimeoutMs ?? 5000);
    socket.once('error', fail);
    socket.once(target.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('error', fail);
      router?.connected(record.route);
      if (!fresh) moved.add(socket);
      oncreate(null, socket);
    });
  };
  attempt();
}

type CreateConnection = (this: http.Agent, options: ConnectOptions, oncreate: Oncreate) => net.Socket | undefined;
type KeepSocketAlive = (this: http.Agent, socket: net.Socket) => boolean;

const fitted = new WeakSet<http.Agent>();

/**
 * Makes `agent` connect routed calls through connectRouted, leaving every other call of it alone:
 * the app's own agents (keep-alive, TLS settings) and the global ones keep their pools. An agent
 * that makes its connections its own way (a proxy agent) is left as it is: its calls do not fail over.
 */
function fit(agent: http.Agent): boolean {
  if (fitted.has(agent)) return true;
  const a = agent as unknown as { createConnection: CreateConnection; keepSocketAlive: KeepSocketAlive };
  const own = a.createConnection;
  const stock = [http.Agent.prototype, https.Agent.prototype].some((p) => (p as unknown as { createConnection: CreateConnection }).createConnection === own);
  if (!stock || typeof a.keepSocketAlive !== 'function') return false;
  const keep = a.keepSocketAlive;
  a.createConnection = function createConnection(this: http.Agent, options: ConnectOptions, oncreate: Oncreate) {
    const record = options[ROUTED] as Routed | undefined;
    if (record === undefined || record.route.target === undefined) return Reflect.apply(own, this, [options, oncreate]) as net.Socket | undefined;
    connectRouted(record, options, oncreate);
    return undefined;
  };
  a.keepSocketAlive = function keepSocketAlive(this: http.Agent, socket: net.Socket) {
    return moved.has(socket) ? false : (Reflect.apply(keep, this, [socket]) as boolean);
  };
  fitted.add(agent);
  return true;
}

/** The agent a routed call is sent with: the app's (fitted), the module's global one, or, for `agent: false`, one of its own. */
function agentFor(agent: unknown, protocol: 'http:' | 'https:'): http.Agent | false | undefined {
  const Agent = protocol === 'https:' ? https.Agent : http.Agent;
  const chosen = agent === undefined || agent === null ? (protocol === 'https:' ? https.globalAgent : http.globalAgent) : agent === false ? new Agent() : agent;
  if (!(chosen instanceof http.Agent)) return agent as undefined;
  fit(chosen);
  return chosen;
}

const routed = new WeakMap<ClientRequest, Routed>();

/** Counts a routed call once, when its response ends (or it fails): the meaning core's METRICS gives. */
function count(r: Routed, status: number | 'aborted'): void {
  if (r.counted) return;
  r.counted = true;
  runtime().metrics?.outbound(r.route.service, r.route.lane, status, (performance.now() - r.route.started) / 1000);
}

function onResponse(message: unknown): void {
  const { request, response } = message as { request: ClientRequest; response: IncomingMessage };
  const r = routed.get(request);
  if (r === undefined) return;
  // Published before the app's 'response' listeners run, so the app sees what the sidecar would add.
  response.headers[LANE_HEADER] = r.route.lane;
  r.responded = true;
  response.once('close', () => count(r, response.complete ? (response.statusCode ?? 0) : 'aborted'));
}

function onError(message: unknown): void {
  const { request, error } = message as { request: ClientRequest; error: Error & { code?: string } };
  const r = routed.get(request);
  if (r === undefined || r.counted) return;
  // Strict mode, the copy unreachable: the connect failure is counted, the call answered as refused.
  const refused = error instanceof RoutingRejectedError ? error : undefined;
  const failure = upstreamFailure(refused?.cause ?? error);
  runtime().metrics?.upstreamError(r.route.service, failure.code);
  // A failure once the response has started reaches the app as an aborted response.
  count(r, r.responded ? 'aborted' : (refused?.status ?? failure.status));
}

type RequestFn = (...args: unknown[]) => ClientRequest;
type Callback = (res: IncomingMessage) => void;

interface Plan {
  readonly protocol: 'http:' | 'https:';
  readonly options: RequestOptions;
  readonly callback: Callback | undefined;
  readonly route: Route;
  /** A routed call's record, there before its connection is made (undefined: refused). */
  readonly record: Routed | undefined;
}

/** The call rewritten for a registry service, or undefined to leave it exactly as the app made it. */
function plan(args: unknown[], moduleProtocol: 'http:' | 'https:'): Plan | undefined {
  const router = runtime().router;
  if (router?.snapshot === undefined) return undefined;
  let input: unknown;
  let options: RequestOptions | undefined;
  let callback: unknown;
  if (typeof args[0] === 'string' || args[0] instanceof URL) {
    input = args[0];
    if (typeof args[1] === 'function') callback = args[1];
    else [options, callback] = [args[1] as RequestOptions | undefined, args[2]];
  } else {
    [options, callback] = [args[0] as RequestOptions | undefined, args[1]];
  }
  const fromUrl = input === undefined ? {} : urlToHttpOptions(typeof input === 'string' ? new URL(input) : (input as URL));
  const merged: RequestOptions = { ...fromUrl, ...options };
  const raw = merged.hostname ?? merged.host;
  if (typeof raw !== 'string' || merged.socketPath !== undefined) return undefined;
  const service = router.serviceFor(normalizeHostname(raw));
  if (service === undefined) return undefined;
  const route = router.route(service, getRoutingKey());
  if (route === undefined) return undefined;
  const defaultPort = moduleProtocol === 'https:' ? 443 : 80;
  const port = merged.port === undefined || merged.port === null || merged.port === '' ? defaultPort : Number(merged.port);
  const headers = headerBag(merged.headers);
  headers['host'] ??= port === defaultPort ? raw : `${raw}:${port}`;
  const cb = typeof callback === 'function' ? (callback as Callback) : undefined;
  const target = route.target;
  if (target === undefined) {
    const error = new RoutingRejectedError(route.service, route.refusal!);
    // The refusal arrives as the request's 'error' event, as a failed connection would.
    const lookup = (_h: string, _o: unknown, done: (e: Error) => void): void => done(error);
    return { protocol: moduleProtocol, options: { ...merged, headers, agent: false, lookup: lookup as RequestOptions['lookup'] }, callback: cb, route, record: undefined };
  }
  const agent = target.protocol === moduleProtocol ? merged.agent : undefined;
  const record: Routed = { route, responded: false, counted: false };
  // With passive health the connection is made through connectRouted, which can move it on.
  const failover = router.health === undefined ? agent : agentFor(agent, target.protocol);
  return {
    protocol: target.protocol,
    options: { ...merged, protocol: target.protocol, hostname: target.hostname, host: target.hostname, port: target.port, headers, agent: failover, [ROUTED]: record } as RequestOptions,
    callback: cb,
    route,
    record,
  };
}

type Originals = { [K in 'httpRequest' | 'httpGet' | 'httpsRequest' | 'httpsGet']: RequestFn };

function routedFn(originals: Originals, moduleProtocol: 'http:' | 'https:', get: boolean): RequestFn {
  const own = originals[`${moduleProtocol === 'https:' ? 'https' : 'http'}${get ? 'Get' : 'Request'}`];
  return function request(this: unknown, ...args: unknown[]): ClientRequest {
    let p: Plan | undefined;
    try {
      p = plan(args, moduleProtocol);
    } catch (error) {
      // Bad arguments get Node's own error from the original function, not one of ours.
      diag.debug(`devstack: node:http call left unrouted: ${(error as Error).message}`);
    }
    if (p === undefined) return unroutedRequest(Reflect.apply(own, this, args));
    const send = p.protocol === 'https:' ? originals.httpsRequest : originals.httpRequest;
    const req = send(p.options, p.callback);
    if (p.record !== undefined) routed.set(req, p.record);
    else runtime().metrics?.outbound(p.route.service, p.route.lane, REFUSALS[p.route.refusal!].status, (performance.now() - p.route.started) / 1000);
    if (get) req.end();
    return req;
  };
}

const CREATED = 'http.client.request.created';
const RESPONSE = 'http.client.response.finish';
const ERROR = 'http.client.request.error';

/**
 * Starts propagation on node:http(s) requests and, in proxyless mode, routes calls addressed to a
 * registry service. Routing must change the destination before the socket is chosen, which no
 * diagnostics channel allows, so `request`/`get` are wrapped (and ESM named imports re-synced).
 */
export function installHttp(proxyless: boolean): () => void {
  dc.subscribe(CREATED, onRequestCreated);
  const unhook = hookRendering();
  if (!proxyless) {
    return () => {
      dc.unsubscribe(CREATED, onRequestCreated);
      unhook();
    };
  }
  const httpMod = http as unknown as Record<'request' | 'get', RequestFn>;
  const httpsMod = https as unknown as Record<'request' | 'get', RequestFn>;
  const originals: Originals = { httpRequest: httpMod.request, httpGet: httpMod.get, httpsRequest: httpsMod.request, httpsGet: httpsMod.get };
  const ours = {
    httpRequest: routedFn(originals, 'http:', false),
    httpGet: routedFn(originals, 'http:', true),
    httpsRequest: routedFn(originals, 'https:', false),
    httpsGet: routedFn(originals, 'https:', true),
  };
  httpMod.request = ours.httpRequest;
  httpMod.get = ours.httpGet;
  httpsMod.request = ours.httpsRequest;
  httpsMod.get = ours.httpsGet;
  syncBuiltinESMExports();
  dc.subscribe(RESPONSE, onResponse);
  dc.subscribe(ERROR, onError);
  return () => {
    dc.unsubscribe(CREATED, onRequestCreated);
    unhook();
    dc.unsubscribe(RESPONSE, onResponse);
    dc.unsubscribe(ERROR, onError);
    // Only our own wrappers are taken off: something patched on top of them stays in charge.
    if (httpMod.request === ours.httpRequest) httpMod.request = originals.httpRequest;
    if (httpMod.get === ours.httpGet) httpMod.get = originals.httpGet;
    if (httpsMod.request === ours.httpsRequest) httpsMod.request = originals.httpsRequest;
    if (httpsMod.get === ours.httpsGet) httpsMod.get = originals.httpsGet;
    syncBuiltinESMExports();
  };
}
