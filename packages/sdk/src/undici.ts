import dc from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { diag } from '@opentelemetry/api';
import { getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';
import { LANE_HEADER, REFUSALS, upstreamFailure } from '@devstack/core';
import { getRoutingKey, outboundKey } from './context.js';
import { RoutingRejectedError } from './errors.js';
import { applyKey, headerBag, rewriteFlat } from './headers.js';
import { mayCarryKey, normalizeHostname } from './hosts.js';
import type { Metrics } from './metrics.js';
import type { Route } from './router.js';
import { runtime } from './runtime.js';
import { unroutedHandler } from './unrouted.js';

interface OriginInfo {
  /** Lower-case hostname, no brackets: what the allow-list and the registry are asked about. */
  readonly hostname: string;
  /** `host[:port]` as the app wrote it: the Host header a rewritten call keeps. */
  readonly host: string;
}

// Apps talk to a handful of origins; parsing each once keeps URL parsing off the hot path.
const origins = new Map<string, OriginInfo | null>();

function originInfo(origin: unknown): OriginInfo | undefined {
  if (origin instanceof URL) return { hostname: normalizeHostname(origin.hostname), host: origin.host };
  if (typeof origin !== 'string') return undefined;
  let info = origins.get(origin);
  if (info === undefined) {
    try {
      const url = new URL(origin);
      info = { hostname: normalizeHostname(url.hostname), host: url.host };
    } catch {
      info = null;
    }
    if (origins.size >= 1024) origins.clear();
    origins.set(origin, info);
  }
  return info ?? undefined;
}

interface UndiciRequest {
  origin?: unknown;
  path?: unknown;
  headers?: unknown;
  addHeader?: (name: string, value: string) => unknown;
}

/**
 * Every undici request, whichever dispatcher sends it (global fetch, `undici.request`, a custom
 * Agent): the key is written when the host may have it, and every carrier is stripped when it may
 * not, key in context or not (an app forwarding its incoming headers passes on carriers the SDK
 * read no key from). Later writers (OpenTelemetry's undici instrumentation appends a `baggage`
 * line) go through `addHeader`, which is wrapped on this request only so their line is merged
 * instead of repeated, or stripped.
 */
function onRequestCreate(message: unknown): void {
  try {
    const request = (message as { request: UndiciRequest }).request;
    const headers = request.headers;
    if (!Array.isArray(headers)) return;
    const rt = runtime();
    const may = mayCarryKey(rt.allowed, originInfo(request.origin)?.hostname, request.path);
    const give = may ? outboundKey() : undefined;
    if (may && give === undefined) return;
    rewriteFlat(headers, rt.codec, give);
    const original = request.addHeader;
    if (typeof original !== 'function') return;
    const codec = rt.codec;
    request.addHeader = function addHeader(this: UndiciRequest, name: string, value: string) {
      original.call(this, name, value);
      const lower = String(name).toLowerCase();
      if ((lower === 'baggage' || lower === codec.name || lower === codec.jaegerHeader) && Array.isArray(this.headers)) rewriteFlat(this.headers, codec, give);
      return this;
    };
  } catch (error) {
    diag.error(`devstack: could not set the routing key on an undici request: ${(error as Error).message}`);
  }
}

type Handler = Dispatcher.DispatchHandler & Record<string, unknown>;
const METHODS = [
  'onConnect', 'onError', 'onUpgrade', 'onResponseStarted', 'onHeaders', 'onData', 'onComplete', 'onBodySent',
  'onRequestStart', 'onRequestUpgrade', 'onResponseStart', 'onResponseData', 'onResponseEnd', 'onResponseError',
] as const;

function fail(handler: Handler, error: Error): void {
  if (typeof handler.onRequestStart === 'function' && typeof handler.onResponseError === 'function') {
    handler.onResponseError(null as unknown as Dispatcher.DispatchController, error);
  } else {
    handler.onError?.(error);
  }
}

function withLane(raw: Buffer[], lane: string): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.toString('latin1').toLowerCase() === LANE_HEADER) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  out.push(Buffer.from(LANE_HEADER), Buffer.from(lane));
  return out;
}

/**
 * The app's handler, seeing the routed lane in `x-devstack-lane` as it would behind the sidecar,
 * and feeding the sidecar's metrics: one count when the response ends or fails (core's METRICS).
 * Only the methods the app's handler has are offered, so undici still tells its legacy and current
 * handler styles apart.
 */
function routedHandler(handler: Handler, route: Route, metrics: Metrics | undefined): Handler {
  const out: Record<string, unknown> = {};
  for (const m of METHODS) {
    const fn = handler[m];
    if (typeof fn === 'function') out[m] = fn.bind(handler);
  }
  let status = 0;
  let counted = false;
  const record = (final: number | 'aborted'): void => {
    if (counted) return;
    counted = true;
    metrics?.outbound(route.service, route.lane, final, (performance.now() - route.started) / 1000);
  };
  const failed = (error: Error): void => {
    if (counted) return;
    const failure = upstreamFailure(error);
    metrics?.upstreamError(route.service, failure.code);
    record(status >= 200 ? 'aborted' : failure.status);
  };
  if (out['onHeaders'] !== undefined) {
    out['onHeaders'] = (code: number, raw: Buffer[], resume: () => void, text: string) => {
      if (code >= 200) status = code;
      return handler.onHeaders!(code, withLane(raw, route.lane), resume, text);
    };
  }
  if (out['onResponseStart'] !== undefined) {
    out['onResponseStart'] = (c: Dispatcher.DispatchController, code: number, headers: Record<string, string | string[]>, text?: string) => {
      if (code >= 200) status = code;
      return handler.onResponseStart!(c, code, { ...headers, [LANE_HEADER]: route.lane }, text);
    };
  }
  if (out['onComplete'] !== undefined) out['onComplete'] = (trailers: unknown) => (record(status), handler.onComplete!(trailers as never));
  if (out['onResponseEnd'] !== undefined) {
    out['onResponseEnd'] = (c: Dispatcher.DispatchController, trailers: Record<string, string | string[]>) => (record(status), handler.onResponseEnd!(c, trailers));
  }
  if (out['onError'] !== undefined) out['onError'] = (e: Error) => (failed(e), handler.onError!(e));
  if (out['onResponseError'] !== undefined) {
    out['onResponseError'] = (c: Dispatcher.DispatchController, e: Error) => (failed(e), handler.onResponseError!(c, e));
  }
  return out as Handler;
}

// headerBag and the codec only ever store strings.
type UndiciHeaderRecord = Record<string, string | string[]>;
type Plan = { opts: Dispatcher.DispatchOptions; handler: Handler } | { error: Error };

function plan(opts: Dispatcher.DispatchOptions, handler: Handler): Plan | undefined {
  const rt = runtime();
  const info = originInfo(opts.origin);
  if (info === undefined) return undefined;
  const service = rt.router?.serviceFor(info.hostname);
  const route = service === undefined ? undefined : rt.router!.route(service, getRoutingKey());
  if (route === undefined) {
    const may = mayCarryKey(rt.allowed, info.hostname, opts.path);
    const key = may ? outboundKey() : undefined;
    if (may && key === undefined) return undefined;
    const headers = applyKey(headerBag(opts.headers), rt.codec, key);
    return { opts: { ...opts, headers: headers as UndiciHeaderRecord }, handler };
  }
  if (route.target === undefined) {
    rt.metrics?.outbound(route.service, route.lane, REFUSALS[route.refusal!].status, (performance.now() - route.started) / 1000);
    return { error: new RoutingRejectedError(route.service, route.refusal!) };
  }
  const headers = headerBag(opts.headers);
  headers['host'] ??= info.host;
  if (route.key !== undefined) applyKey(headers, rt.codec, route.key);
  return { opts: { ...opts, origin: route.target.origin, headers: headers as UndiciHeaderRecord }, handler: routedHandler(handler, route, rt.metrics) };
}

/**
 * An undici interceptor (`agent.compose(routingInterceptor())`): carries the key to allowed hosts
 * and, in proxyless mode, sends calls addressed to a registry service to the lane's target,
 * keeping the Host the app meant. `init()` composes it onto the global dispatcher in proxyless
 * mode; compose it yourself onto Agents you create.
 */
export function routingInterceptor(): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) =>
    function devstackDispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      let p: Plan | undefined;
      try {
        p = plan(opts, handler as Handler);
      } catch (error) {
        diag.error(`devstack: undici call left unrouted: ${(error as Error).message}`);
      }
      if (p === undefined) return dispatch(opts, unroutedHandler(opts, handler));
      if ('error' in p) {
        fail(handler as Handler, p.error);
        return true;
      }
      return dispatch(p.opts, p.handler === handler ? unroutedHandler(p.opts, handler) : p.handler);
    };
}

const CREATE = 'undici:request:create';

/** Starts propagation on every undici request; in proxyless mode also routes global fetch. */
export function installUndici(proxyless: boolean): () => void {
  dc.subscribe(CREATE, onRequestCreate);
  let restore = (): void => {};
  if (proxyless) {
    const previous = getGlobalDispatcher();
    const composed = previous.compose(routingInterceptor());
    setGlobalDispatcher(composed);
    restore = () => {
      if (getGlobalDispatcher() === composed) setGlobalDispatcher(previous);
    };
  }
  return () => {
    dc.unsubscribe(CREATE, onRequestCreate);
    restore();
  };
}
