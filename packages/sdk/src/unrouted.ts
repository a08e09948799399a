import type { ClientRequest } from 'node:http';
import type { Dispatcher } from 'undici';
import { runtime } from './runtime.js';

/*
 * Proxyless mode before (or without) a first snapshot cannot tell a registry service from any other
 * host, so such calls go out as the app made them and `http://payments/` fails to resolve. Only
 * that failure is replaced, by the SDK's RegistryUnavailableError, so the app sees the real cause
 * instead of ENOTFOUND; every other outcome is left alone.
 */

const NOT_FOUND = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME']);

function waiting(): boolean {
  const router = runtime().router;
  return router !== undefined && router.snapshot === undefined;
}

function explain(error: unknown, host: () => string): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !NOT_FOUND.has(code)) return error;
  return runtime().unrouted(host()) ?? error;
}

function hostOf(origin: unknown): string {
  try {
    return new URL(String(origin)).host;
  } catch {
    return String(origin);
  }
}

/** The undici handler of an unrouted call, its DNS failure explained while there is no snapshot. */
export function unroutedHandler(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): Dispatcher.DispatchHandler {
  if (!waiting()) return handler;
  const host = () => hostOf(opts.origin);
  const target = handler as Record<string, unknown>;
  return new Proxy(handler, {
    get(_, name) {
      const value = target[name as string];
      if (typeof value !== 'function') return value;
      if (name === 'onError') return (e: Error) => value.call(handler, explain(e, host));
      if (name === 'onResponseError') return (c: unknown, e: Error) => value.call(handler, c, explain(e, host));
      return value.bind(handler);
    },
  });
}

/** A node:http request of an unrouted call, its DNS failure explained while there is no snapshot. */
export function unroutedRequest(req: ClientRequest): ClientRequest {
  if (!waiting()) return req;
  const emit = req.emit;
  req.emit = function (this: ClientRequest, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error') args[0] = explain(args[0], () => req.host);
    return Reflect.apply(emit, this, [event, ...args]) as boolean;
  } as ClientRequest['emit'];
  return req;
}
