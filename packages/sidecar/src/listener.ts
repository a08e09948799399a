import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { describeUntrusted } from '@devstack/core';
import { ListenError, sendError } from './errors.js';
import type { Guard } from './guard.js';
import type { Listener, SidecarMetrics } from './metrics.js';
import { requestHasBody } from './downstream.js';

export interface ListenerDeps {
  guard: Guard;
  metrics: SidecarMetrics;
  maxHeaderSize: number;
  /** A client's request headers must arrive within this (then 408). */
  headersTimeoutMs: number;
}

/**
 * One HTTP server of the sidecar, listening: every handler behind the guard (nothing a client
 * sends can end the process), every answer the server would make on its own (a parse error, an
 * unknown Expect, slow headers) made as a counted JSON error with the lane header instead.
 */
export async function openListener(
  name: Listener,
  listen: { port: number; host?: string | undefined },
  defaultHost: string,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  deps: ListenerDeps,
): Promise<Server> {
  const { guard, metrics, headersTimeoutMs } = deps;
  const server: Server = createServer(
    {
      maxHeaderSize: deps.maxHeaderSize,
      requireHostHeader: false,
      // Slow request headers end in 408 (clientError below). No deadline for a whole request: it
      // would cut large uploads that are slow but moving; a stalled body has its own timeout.
      headersTimeout: headersTimeoutMs,
      requestTimeout: 0,
      connectionsCheckingInterval: Math.min(1000, Math.max(5, Math.floor(headersTimeoutMs / 4))),
      // A request with a body is not taken as an upgrade (`Upgrade: h2c` on a POST): it is forwarded
      // as an ordinary request, the offer declined on the upstream's behalf, so its body arrives.
      shouldUpgradeCallback: (req) => server.listenerCount('upgrade') > 0 && !requestHasBody(req),
    },
    guard.request(name, handler),
  );
  // Node answers an unknown Expect with a bare 417; this one carries the JSON error like the rest.
  server.on('checkExpectation', guard.request(name, (_req: IncomingMessage, res: ServerResponse) => {
    metrics.refused(name, 417);
    sendError(res, 'DEVSTACK_EXPECTATION_FAILED', 'only Expect: 100-continue is supported', 'none');
  }));
  server.on('clientError', guard.socket(name, (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (error.code === 'ECONNRESET') return socket.destroy();
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      metrics.clientTimeout(name, 'headers');
      return guard.refuse(name, socket, 'DEVSTACK_CLIENT_TIMEOUT', `request headers not received within ${headersTimeoutMs} ms`);
    }
    const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
    guard.refuse(name, socket, tooLarge ? 'DEVSTACK_HEADERS_TOO_LARGE' : 'DEVSTACK_BAD_REQUEST', tooLarge ? 'request headers are too large' : `malformed request (${describeUntrusted(error.code ?? 'parse error')})`);
  }));
  // Without a handler Node drops a CONNECT without a word; proxies install their own (the tunnel).
  if (name === 'admin') server.on('connect', guard.socket(name, (_req: IncomingMessage, socket: Duplex) => guard.refuse(name, socket, 'DEVSTACK_METHOD_NOT_ALLOWED', 'the admin endpoints answer GET only')));
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
  return server;
}
