import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { LANE_HEADER } from '@devstack/core';
import { h1, requestHasBody } from './downstream.js';
import type { Exchange, Stage } from './exchange.js';
import type { ProxyErrorCode } from './errors.js';
import { endToEndHeaders } from './headers.js';

export interface UpgradeOptions {
  /** Until the upstream connection is open. */
  connectTimeoutMs: number;
  /** From the open connection until the upstream answers the handshake (101 or any other status). */
  headersTimeoutMs: number;
  /** Called once the upstream's 101 has been relayed: the exchange is answered and the tunnel opens. */
  onOpen?: (ex: Exchange) => void;
  /** Called when the upstream could not be reached or did not answer, as for ordinary requests. */
  onUpstreamError?: (ex: Exchange, code: ProxyErrorCode) => void;
}

function statusLine(res: IncomingMessage, lane: string): string {
  const lines = [`HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}`];
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    // The hop before may have named its own lane: the client hears this sidecar's, once.
    if (res.rawHeaders[i]!.toLowerCase() === LANE_HEADER) continue;
    lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
  }
  lines.push(`${LANE_HEADER}: ${lane}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function join(a: Duplex, b: Duplex): void {
  const close = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', close).on('close', close);
  b.on('error', close).on('close', close);
  a.pipe(b);
  b.pipe(a);
}

class UpgradeTimeout extends Error {
  readonly devstackCode: ProxyErrorCode;

  constructor(code: ProxyErrorCode, message: string) {
    super(message);
    this.devstackCode = code;
  }
}

function failureCode(error: NodeJS.ErrnoException): ProxyErrorCode {
  if (error instanceof UpgradeTimeout) return error.devstackCode;
  if (error.code === 'ECONNRESET' || error.code === 'EPIPE') return 'DEVSTACK_UPSTREAM_RESET';
  return 'DEVSTACK_UPSTREAM_UNREACHABLE';
}

/**
 * Two deadlines in turn, as for every other exchange: the connect timeout until the upstream
 * connection is open, then the headers timeout until it answers. (node:http's `timeout` option
 * is a socket idle timer and cannot tell the two apart.)
 */
function deadlines(upstream: ClientRequest, options: UpgradeOptions): () => void {
  let timer = setTimeout(() => upstream.destroy(new UpgradeTimeout('DEVSTACK_UPSTREAM_CONNECT_TIMEOUT', `no connection within ${options.connectTimeoutMs} ms`)), options.connectTimeoutMs);
  upstream.once('socket', (socket: Socket) => {
    const connected = () => {
      clearTimeout(timer);
      timer = setTimeout(() => upstream.destroy(new UpgradeTimeout('DEVSTACK_UPSTREAM_TIMEOUT', `no answer to the upgrade within ${options.headersTimeoutMs} ms`)), options.headersTimeoutMs);
    };
    if (socket.connecting) socket.once('connect', connected);
    else connected();
  });
  return () => clearTimeout(timer);
}

/**
 * The last stage for `Upgrade` requests (WebSocket and others): the handshake goes to the routed
 * target on a dedicated connection, and after a 101 the two sockets are joined byte for byte.
 * `socket` and `head` come from the server's 'upgrade' event; errors before the 101 and a
 * declined upgrade are answered through the exchange's response like any other.
 */
export function forwardUpgrade(socket: Duplex, head: Buffer, options: UpgradeOptions): Stage {
  return (ex) => {
    // Only HTTP/1.1 has upgrades: the server's 'upgrade' event is this stage's only caller.
    const http1 = h1(ex.req, ex.res)!;
    if (requestHasBody(http1.req)) {
      // Only a Node without `shouldUpgradeCallback` hands such a request here, with its body unparsed.
      ex.fail('DEVSTACK_BAD_REQUEST', 'an Upgrade request with a body needs the sidecar on Node 22.21 or 24.9 or newer');
      return;
    }
    const target = new URL(ex.target!.origin);
    const headers = ex.headers!;
    headers['connection'] = 'upgrade';
    headers['upgrade'] = ex.req.headers.upgrade;
    const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const upstream = request({ host: target.hostname, port: target.port, method: ex.req.method, path: ex.path, headers: headers as Record<string, string | string[]>, agent: false });
    const settle = deadlines(upstream, options);
    // A client that leaves before the answer takes the upstream attempt with it.
    const abandon = () => upstream.destroy();
    socket.once('close', abandon);
    upstream.on('upgrade', (res, upstreamSocket, upstreamHead) => {
      settle();
      socket.off('close', abandon);
      ex.res.statusCode = 101;
      http1.res.detachSocket(socket as Socket);
      socket.write(statusLine(res, ex.lane));
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      if (head.length > 0) upstreamSocket.write(head);
      join(socket, upstreamSocket);
      options.onOpen?.(ex);
    });
    upstream.on('response', (res) => {
      settle();
      // The upstream declined the upgrade: relay its answer as a normal response.
      const out = endToEndHeaders(res.headers);
      out[LANE_HEADER] = ex.lane;
      out['connection'] = 'close';
      ex.res.writeHead(res.statusCode ?? 502, out);
      res.pipe(ex.res);
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      settle();
      if (ex.res.headersSent || socket.destroyed) return socket.destroy();
      const code = failureCode(error);
      options.onUpstreamError?.(ex, code);
      ex.fail(code, `upgrade to ${ex.target!.origin} failed: ${error instanceof UpgradeTimeout ? error.message : (error.code ?? error.message)}`);
    });
    upstream.end();
  };
}
