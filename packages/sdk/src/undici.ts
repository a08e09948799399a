import dc from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { context, diag } from '@opentelemetry/api';
import type * as Undici from 'undici';
import type { Dispatcher } from 'undici';
import { LANE_HEADER, REFUSALS, retryable, upstreamFailure } from '@devstack/core';
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

/** Sends an attempt: the next dispatcher of the chain, in the context the app made the call in. */
type Send = (opts: Dispatcher.DispatchOptions, handler: Handler) => void;

/** A body undici can send again as it is: none, or held whole in memory (not a stream it consumed). */
function replayable(body: unknown): boolean {
  return body === null || body === undefined || typeof body === 'string' || body instanceof Uint8Array;
}

/**
 * The one controller the app's handler is given for a call of several attempts: it acts on the
 * attempt under way, and an abort from the app ends the call, so nothing is retried after it.
 */
class CallController {
  current: Dispatcher.DispatchController | undefined;
  abortedByApp = false;
  #reason: Error | null = null;

  abort(reason: Error): void {
    this.abortedByApp = true;
    this.#reason = reason;
    this.current?.abort(reason);
  }
  pause(): void {
    this.current?.pause();
  }
  resume(): void {
    this.current?.resume();
  }
  get paused(): boolean {
    return this.current?.paused ?? false;
  }
  get aborted(): boolean {
    return this.abortedByApp || (this.current?.aborted ?? false);
  }
  get reason(): Error | null {
    return this.#reason ?? this.current?.reason ?? null;
  }
}

/**
 * The app's handler, seeing the routed lane in `x-devstack-lane` as it would behind the sidecar,
 * and feeding the sidecar's metrics: one count when the response ends or fails (core's METRICS).
 * Only the methods the app's handler has are offered, so undici still tells its legacy and current
 * handler styles apart. A failed attempt goes to the next target (core's `failOver`) when nothing
 * reached its target, or when the method is idempotent, its body can be sent again and no byte of
 * an answer came; the app's handler sees one call, started once, answered by the lane that served
 * it.
 */
function routedHandler(handler: Handler, first: Route, metrics: Metrics | undefined, opts: Dispatcher.DispatchOptions, send: Send): Handler {
  const router = runtime().router;
  const out: Record<string, unknown> = {};
  for (const m of METHODS) {
    const fn = handler[m];
    if (typeof fn === 'function') out[m] = fn.bind(handler);
  }
  let route = first;
  let status = 0;
  let counted = false;
  /** The app's handler was told the call started (onConnect / onRequestStart), once. */
  let started = false;
  /** This attempt began writing the request. */
  let sent = false;
  let responded = false;
  let appAbort: ((reason?: Error) => void) | undefined;
  let attemptAbort: ((reason?: Error) => void) | undefined;
  let abortedByApp = false;
  const controller = new CallController();
  const record = (final: number | 'aborted'): void => {
    if (counted) return;
    counted = true;
    metrics?.outbound(route.service, route.lane, final, (performance.now() - route.started) / 1000);
  };
  /** True when the failure was taken over by another attempt (or answered as a refusal). */
  const retried = (error: Error): boolean => {
    if (counted) return false;
    metrics?.upstreamError(route.service, upstreamFailure(error).code);
    if (router === undefined || abortedByApp || controller.abortedByApp) return false;
    const kind = retryable(error, { sent, responded, method: opts.method, replayable: replayable(opts.body) });
    if (kind === false) return false;
    const next = router.failOver(route, kind);
    if (next === undefined) return false;
    route = next;
    if (next.target === undefined) {
      const refusal = new RoutingRejectedError(next.service, next.refusal!, { cause: error });
      record(REFUSALS[next.refusal!].status);
      if (typeof handler.onResponseError === 'function') handler.onResponseError(controller as unknown as Dispatcher.DispatchController, refusal);
      else handler.onError?.(refusal);
      return true;
    }
    sent = false;
    status = 0;
    send({ ...opts, origin: next.target.origin }, wrapped);
    return true;
  };
  const failed = (error: Error): void => {
    if (counted) return;
    record(status >= 200 ? 'aborted' : upstreamFailure(error).status);
  };
  if (out['onConnect'] !== undefined) {
    out['onConnect'] = (abort: (reason?: Error) => void, context: unknown) => {
      sent = true;
      attemptAbort = abort;
      router?.connected(route);
      if (abortedByApp) return abort();
      if (started) return;
      started = true;
      appAbort = (reason?: Error) => {
        abortedByApp = true;
        attemptAbort?.(reason);
      };
      return (handler.onConnect as (abort: (reason?: Error) => void, context: unknown) => void)(appAbort, context);
    };
  }
  if (out['onRequestStart'] !== undefined) {
    out['onRequestStart'] = (c: Dispatcher.DispatchController, context: unknown) => {
      sent = true;
      controller.current = c;
      router?.connected(route);
      if (controller.abortedByApp) return c.abort(controller.reason ?? new Error('aborted'));
      if (started) return;
      started = true;
      return handler.onRequestStart!(controller as unknown as Dispatcher.DispatchController, context as never);
    };
  }
  if (out['onHeaders'] !== undefined) {
    out['onHeaders'] = (code: number, raw: Buffer[], resume: () => void, text: string) => {
      responded = true;
      if (code >= 200) status = code;
      return handler.onHeaders!(code, withLane(raw, route.lane), resume, text);
    };
  }
  if (out['onResponseStart'] !== undefined) {
    out['onResponseStart'] = (c: Dispatcher.DispatchController, code: number, headers: Record<string, string | string[]>, text?: string) => {
      controller.current = c;
      responded = true;
      if (code >= 200) status = code;
      return handler.onResponseStart!(controller as unknown as Dispatcher.DispatchController, code, { ...headers, [LANE_HEADER]: route.lane }, text);
    };
  }
  if (out['onResponseData'] !== undefined) out['onResponseData'] = (c: Dispatcher.DispatchController, chunk: Buffer) => ((controller.current = c), handler.onResponseData!(controller as unknown as Dispatcher.DispatchController, chunk));
  if (out['onRequestUpgrade'] !== undefined) {
    out['onRequestUpgrade'] = (_c: Dispatcher.DispatchController, ...rest: unknown[]) => {
      responded = true;
      return (handler.onRequestUpgrade as (...a: unknown[]) => void)(controller, ...rest);
    };
  }
  if (out['onUpgrade'] !== undefined) {
    out['onUpgrade'] = (...rest: unknown[]) => {
      responded = true;
      return (handler.onUpgrade as (...a: unknown[]) => void)(...rest);
    };
  }
  if (out['onComplete'] !== undefined) out['onComplete'] = (trailers: unknown) => (record(status), handler.onComplete!(trailers as never));
  if (out['onResponseEnd'] !== undefined) {
    out['onResponseEnd'] = (_c: Dispatcher.DispatchController, trailers: Record<string, string | string[]>) => (record(status), handler.onResponseEnd!(controller as unknown as Dispatcher.DispatchController, trailers));
  }
  if (out['onError'] !== undefined) {
    out['onError'] = (e: Error) => {
      if (retried(e)) return;
      failed(e);
      return handler.onError!(e);
    };
  }
  if (out['onResponseError'] !== undefined) {
    out['onResponseError'] = (_c: Dispatcher.DispatchController, e: Error) => {
      if (retried(e)) return;
      failed(e);
      return handler.onResponseError!(controller as unknown as Dispatcher.DispatchController, e);
    };
  }
  const wrapped = out as Handler;
  return wrapped;
}

// headerBag and the codec only ever store strings.
type UndiciHeaderRecord = Record<string, string | string[]>;
type Plan = { opts: Dispatcher.DispatchOptions; handler: Handler } | { error: Error };

function plan(opts: Dispatcher.DispatchOptions, handler: Handler, send: Send): Plan | undefined {
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
  const routed = { ...opts, origin: route.target.origin, headers: headers as UndiciHeaderRecord };
  return { opts: routed, handler: routedHandler(handler, route, rt.metrics, routed, send) };
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
      // A later attempt is sent from undici's callbacks: in the app's context, so the key is its own.
      const saved = context.active();
      const send: Send = (o, h) => {
        setImmediate(() => {
          try {
            context.with(saved, () => dispatch(o, h));
          } catch (error) {
            h.onResponseError?.(null as unknown as Dispatcher.DispatchController, error as Error);
            if (typeof h.onResponseError !== 'function') h.onError?.(error as Error);
          }
        });
      };
      try {
        p = plan(opts, handler as Handler, send);
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

/**
 * Starts propagation on every undici request; in proxyless mode also routes global fetch.
 * Propagation needs only the diagnostics channel, which Node's own fetch and every copy of undici
 * publish to, so the undici package (about 100 ms and 30 MiB of start-up) is loaded only when a
 * dispatcher has to be composed, synchronously, so it is in place before the app's first call.
 */
export function installUndici(proxyless: boolean): () => void {
  dc.subscribe(CREATE, onRequestCreate);
  let restore = (): void => {};
  if (proxyless) {
    const { getGlobalDispatcher, setGlobalDispatcher } = createRequire(import.meta.url)('undici') as typeof Undici;
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
