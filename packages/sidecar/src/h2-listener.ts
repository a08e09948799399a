import type { Server } from 'node:http';
import { constants, createServer as createH2Server, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { clientGone, type DownstreamRequest, type DownstreamResponse } from './downstream.js';
import type { Direction } from './exchange.js';
import type { Guard } from './guard.js';
import type { Listener, SidecarMetrics } from './metrics.js';
import { ResetBudget, resetBeforeResponse } from './overload.js';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_REFUSED_STREAM } = constants;

const BUDGET = Symbol('devstack.h2.resetBudget');
const OWNER = Symbol('devstack.h2.session');
type Budgeted = ServerHttp2Session & { [BUDGET]?: ResetBudget };
/** A stream's session, kept for its 'close' (node:http2 may have let go of it by then). */
type Owned = ServerHttp2Stream & { [OWNER]?: Budgeted };

/** The client connection preface of HTTP/2 with prior knowledge (RFC 9113 §3.4). */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export type ConnectionProtocol = 'http1' | 'h2';

const RST_STREAM = 0x3;

/** How many RST_STREAM frames the complete frames after the preface in `bytes` hold. */
export function resetFrames(bytes: Buffer): number {
  let resets = 0;
  for (let at = PREFACE.length; at + 9 <= bytes.length; at += 9 + bytes.readUIntBE(at, 3)) {
    if (bytes[at + 3] === RST_STREAM) resets++;
  }
  return resets;
}

/** The server's connection preface (an empty SETTINGS frame), then GOAWAY ENHANCE_YOUR_CALM, last stream 0. */
const REFUSE_SESSION = (() => {
  const bytes = Buffer.alloc(9 + 9 + 8);
  bytes[3] = 0x4; // SETTINGS, empty
  bytes.writeUIntBE(8, 9, 3);
  bytes[12] = 0x7; // GOAWAY on stream 0
  bytes.writeUInt32BE(constants.NGHTTP2_ENHANCE_YOUR_CALM, 22);
  return bytes;
})();

/**
 * Which protocol a connection speaks, from its first bytes: the HTTP/2 preface, or anything else
 * (HTTP/1.1, whose parser then judges it). Undefined while the bytes so far are a strict prefix of
 * the preface and more must be read.
 */
export function sniff(seen: Buffer): ConnectionProtocol | undefined {
  const n = Math.min(seen.length, PREFACE.length);
  if (seen.compare(PREFACE, 0, n, 0, n) !== 0) return 'http1';
  return seen.length >= PREFACE.length ? 'h2' : undefined;
}

export interface H2ListenerDeps {
  guard: Guard;
  metrics: SidecarMetrics;
  maxHeaderSize: number;
  /** The first bytes of a connection must arrive within this (then 408, as for slow HTTP/1.1 headers). */
  headersTimeoutMs: number;
  /** A session with no traffic for this long is sent GOAWAY (its open streams still finish). */
  idleSessionMs: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS: streams one client connection may have open at once. */
  maxConcurrentStreams: number;
  /** Streams a client may reset before their response began, per connection per `resetWindowMs`; then GOAWAY. */
  maxResets: number;
  resetWindowMs: number;
  /** Invalid frames one connection may send before it is ended (node:http2's `maxSessionInvalidFrames`). */
  maxInvalidFrames: number;
  /** True while the sidecar carries as many requests as it may: a new stream is refused at once. */
  overloaded?: () => boolean;
}

/** The HTTP/2 side of one listener, for shutdown: GOAWAY to drain, destroy at the deadline. */
export interface H2Side {
  readonly server: Http2Server;
  /** Sends GOAWAY on every session: no new streams, open ones finish. New sessions get it at once. */
  drain(): void;
  /** Open sessions (each one connection). */
  readonly sessions: number;
  destroy(): void;
}

/**
 * Serves HTTP/2 with prior knowledge (h2c) on an HTTP/1.1 server's port: every connection, from the
 * listener or from a CONNECT tunnel (`server.emit('connection')`), is read until its first bytes
 * tell the protocol, then handed to the HTTP/1.1 parser or to an HTTP/2 session whose requests
 * reach the same handler.
 */
export function acceptH2(name: Listener, server: Server, handler: (req: DownstreamRequest, res: DownstreamResponse) => void, deps: H2ListenerDeps): H2Side {
  const { guard, metrics } = deps;
  const h2 = createH2Server({
    settings: { maxConcurrentStreams: deps.maxConcurrentStreams, maxHeaderListSize: deps.maxHeaderSize, enablePush: false },
    maxHeaderListPairs: 256,
    maxSessionInvalidFrames: deps.maxInvalidFrames,
  });
  const sessions = new Set<ServerHttp2Session>();
  // A client that resets streams before their answers faster than its budget allows is ending
  // requests it never wanted: the connection goes (GOAWAY ENHANCE_YOUR_CALM), its streams with it.
  // One function for every stream of the listener, the budget in its session's slot.
  function resetClosed(this: Owned): void {
    const session = this[OWNER];
    if (session === undefined || session.destroyed || !resetBeforeResponse(this) || session[BUDGET]?.spend() !== false) return;
    metrics.abusiveSession(name, 'resets');
    session.destroy(new Error('too many streams reset before their response'), NGHTTP2_ENHANCE_YOUR_CALM);
  }
  function watchResets(this: Budgeted, stream: Owned): void {
    stream[OWNER] = this;
    stream.once('close', resetClosed);
  }
  // Connections whose first bytes have not told the protocol yet: neither parser owns them, so
  // the shutdown deadline must reach them here.
  const sniffing = new Set<Duplex>();
  let draining = false;
  // Past the in-flight limit a stream is refused as it opens, before it costs a request and a
  // response object and a pass through the stages: refusing must stay much cheaper than serving.
  const overloaded = deps.overloaded;
  function refuseOverLimit(stream: ServerHttp2Stream): void {
    if (overloaded === undefined || !overloaded()) return;
    metrics.shed(name as Direction, 'h2');
    stream.close(NGHTTP2_REFUSED_STREAM);
  }
  h2.on('request', guard.request(name, (req: DownstreamRequest, res: DownstreamResponse) => {
    if (!clientGone(res)) handler(req, res);
  }));
  h2.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    (session as Budgeted)[BUDGET] = new ResetBudget({ budget: deps.maxResets, windowMs: deps.resetWindowMs });
    session.prependListener('stream', refuseOverLimit);
    session.on('stream', watchResets);
    session.once('close', () => sessions.delete(session));
    session.on('error', () => undefined);
    session.setTimeout(deps.idleSessionMs, () => session.close());
    if (draining) session.close();
  });
  // Protocol errors end that session (GOAWAY) inside node:http2; nothing is left to answer.
  h2.on('sessionError', (error: NodeJS.ErrnoException) => {
    if (error.code === 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES') metrics.abusiveSession(name, 'invalid_frames');
  });

  const http1 = server.listeners('connection') as ((socket: Duplex) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Duplex) => {
    let seen: Buffer | undefined;
    const timer = setTimeout(() => {
      done();
      metrics.clientTimeout(name, 'headers');
      guard.refuse(name, socket, 'DEVSTACK_CLIENT_TIMEOUT', `request not received within ${deps.headersTimeoutMs} ms`);
    }, deps.headersTimeoutMs);
    // Until a parser owns the socket, a client's reset must not be an unhandled 'error', and a
    // client that ends before a request (the server allows half-open sockets) is closed at once
    // rather than held until the headers timeout.
    const destroy = () => socket.destroy();
    const done = () => {
      clearTimeout(timer);
      sniffing.delete(socket);
      socket.off('data', onData);
      socket.off('close', done);
      socket.off('end', destroy);
      socket.off('error', destroy);
    };
    const onData = (chunk: Buffer) => {
      seen = seen === undefined ? chunk : Buffer.concat([seen, chunk]);
      const protocol = sniff(seen);
      if (protocol === undefined) return;
      done();
      if (protocol === 'h2' && resetFrames(seen) > deps.maxResets) {
        // node:http2 takes the bytes read with the preface in one call, every stream of them
        // created before any handler runs (about 2000 HEADERS + RST_STREAM pairs in 64 KiB):
        // over the reset budget already, the connection is refused before it becomes a session.
        metrics.abusiveSession(name, 'resets');
        socket.end(REFUSE_SESSION);
        socket.resume();
        return;
      }
      socket.pause();
      socket.unshift(seen);
      if (protocol === 'h2') {
        // The HTTP/1.1 server accepts half-open connections; an HTTP/2 session must end with the
        // client's, or a client that leaves would hold its streams (and their upstreams) open.
        (socket as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = false;
        h2.emit('connection', socket);
        return;
      }
      for (const listener of http1) listener.call(server, socket);
      // The parser reads the socket's handle directly; the bytes read here are still in the
      // stream's buffer and reach it as 'data' once the stream flows again.
      socket.resume();
    };
    sniffing.add(socket);
    socket.on('error', destroy);
    socket.once('end', destroy);
    socket.on('data', onData);
    socket.once('close', done);
  });

  return {
    server: h2,
    drain() {
      draining = true;
      for (const session of sessions) session.close();
    },
    get sessions() {
      return sessions.size;
    },
    destroy() {
      for (const session of sessions) session.destroy();
      for (const socket of sniffing) socket.destroy();
    },
  };
}
