import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import { LANE_HEADER } from '@devstack/core';
import type { Stage } from './exchange.js';
import { endToEndHeaders } from './headers.js';

function statusLine(res: IncomingMessage, lane: string): string {
  const lines = [`HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}`];
  for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
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

/**
 * The last stage for `Upgrade` requests (WebSocket and others): the handshake goes to the routed
 * target on a dedicated connection, and after a 101 the two sockets are joined byte for byte.
 * `socket` and `head` come from the server's 'upgrade' event; errors before the 101 are answered
 * through the exchange's response like any other.
 */
export function forwardUpgrade(socket: Duplex, head: Buffer, timeoutMs: number): Stage {
  return (ex) => {
    const target = new URL(ex.target!.origin);
    const headers = ex.headers!;
    headers['connection'] = 'upgrade';
    headers['upgrade'] = ex.req.headers.upgrade;
    const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const upstream = request({
      host: target.hostname,
      port: target.port,
      method: ex.req.method,
      path: ex.path,
      headers: headers as Record<string, string | string[]>,
      agent: false,
      timeout: timeoutMs,
    });
    upstream.on('upgrade', (res, upstreamSocket, upstreamHead) => {
      ex.res.detachSocket(socket as never);
      socket.write(statusLine(res, ex.lane));
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      if (head.length > 0) upstreamSocket.write(head);
      join(socket, upstreamSocket);
    });
    upstream.on('response', (res) => {
      // The upstream declined the upgrade: relay its answer as a normal response.
      const out = endToEndHeaders(res.headers);
      out[LANE_HEADER] = ex.lane;
      out['connection'] = 'close';
      ex.res.writeHead(res.statusCode ?? 502, out);
      res.pipe(ex.res);
    });
    upstream.on('timeout', () => upstream.destroy(Object.assign(new Error('upstream timed out'), { code: 'UND_ERR_CONNECT_TIMEOUT' })));
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (ex.res.headersSent || socket.destroyed) return socket.destroy();
      ex.fail(error.code === 'UND_ERR_CONNECT_TIMEOUT' ? 'DEVSTACK_UPSTREAM_CONNECT_TIMEOUT' : 'DEVSTACK_UPSTREAM_UNREACHABLE', `upgrade to ${ex.target!.origin} failed: ${error.code ?? error.message}`);
    });
    upstream.end();
  };
}
