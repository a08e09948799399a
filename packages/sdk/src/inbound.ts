import type { IncomingMessage, ServerResponse } from 'node:http';
import { context, diag, type Context } from '@opentelemetry/api';
import { ConfigError, LANE_HEADER, describeUntrusted, isValidKey, type HeaderBag } from '@devstack/core';
import { contextWithRoutingKey, ensureContextManager } from './context.js';
import { ensurePropagation } from './otel-globals.js';
import { withInboundBaggage } from './passthrough.js';
import { runtime } from './runtime.js';

export interface InboundOptions {
  /**
   * The lane this server is: `base` or a feature copy's key (default: `init({ lane })`, else
   * `base`). It is the response's `x-devstack-lane` unless the app sets one, and a feature copy's
   * key is the routing key of requests that arrive without a valid one, so its calls stay in lane.
   */
  lane?: string;
}

export function checkLane(lane: string | undefined, what: string): void {
  if (lane !== undefined && lane !== 'base' && !isValidKey(lane)) {
    throw new ConfigError([`${what}: lane ${describeUntrusted(lane)} must be 'base' or a routing key (DNS-1123 label)`]);
  }
}

/**
 * The context for an inbound request: `parent` with the key read from the headers (same carriers,
 * precedence and conflict rule as the sidecar) in its baggage. A bad carrier yields no key, is
 * counted and reported through `diag`, and never throws.
 */
export function extractRoutingContext(headers: HeaderBag, parent: Context = context.active(), lane?: string): Context {
  const rt = runtime();
  const reading = rt.codec.read(headers);
  if (reading.problem !== undefined) {
    rt.metrics?.invalidKey('inbound', reading.carrier ?? 'unknown', reading.problem);
    diag.debug(`devstack: ignored a ${reading.problem} routing key in the ${reading.carrier} carrier`);
  }
  const own = lane ?? rt.lane;
  return contextWithRoutingKey(withInboundBaggage(parent, headers, rt.codec.name), reading.key ?? (own === 'base' ? rt.defaultKey : own));
}

/** Runs `next` in the request's routing context; event listeners added later run in it too. */
export function enter<T>(req: IncomingMessage, res: ServerResponse, lane: string | undefined, setLane: (lane: string) => void, next: () => T): T {
  let ctx: Context;
  try {
    ensureContextManager();
    ctx = extractRoutingContext(req.headers, context.active(), lane);
    setLane(lane ?? runtime().lane);
    // Body parsers read in `data`/`end` listeners, which otherwise run in the socket's context.
    context.bind(ctx, req);
    context.bind(ctx, res);
  } catch (error) {
    diag.error(`devstack: inbound routing skipped: ${(error as Error).message}`);
    return next();
  }
  return context.with(ctx, next);
}

function rawLane(res: ServerResponse): (lane: string) => void {
  return (lane) => {
    if (!res.headersSent && !res.hasHeader(LANE_HEADER)) res.setHeader(LANE_HEADER, lane);
  };
}

/** Wraps a `node:http` request handler: `http.createServer(withRouting((req, res) => ...))`. */
export function withRouting<Req extends IncomingMessage, Res extends ServerResponse, R>(
  handler: (req: Req, res: Res) => R,
  options: InboundOptions = {},
): (req: Req, res: Res) => R {
  checkLane(options.lane, 'withRouting');
  // Before the first request: OpenTelemetry's http instrumentation extracts before any handler runs.
  ensurePropagation();
  const lane = options.lane;
  return (req, res) => enter(req, res, lane, rawLane(res), () => handler(req, res));
}

/** Express/Connect middleware: `app.use(routingMiddleware())`, before body parsers and routes. */
export function routingMiddleware(options: InboundOptions = {}): (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void {
  checkLane(options.lane, 'routingMiddleware');
  // Express instrumentation runs `next` in the context from before this middleware: the key must
  // already be in the one OpenTelemetry's http instrumentation extracted.
  ensurePropagation();
  const lane = options.lane;
  return (req, res, next) => enter(req, res, lane, rawLane(res), () => next());
}
