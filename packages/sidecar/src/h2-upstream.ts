import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders as H2Headers, type OutgoingHttpHeaders } from 'node:http2';
import { LANE_HEADER, retryable, upstreamFailure, type UpstreamFailure } from '@devstack/core';
import { canAddTrailers, clientGone, h2Response, requestHasBody } from './downstream.js';
import type { Exchange } from './exchange.js';
import type { ProxyErrorCode } from './errors.js';
import { responseHeaderList } from './headers.js';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM } = constants;

export interface H2SessionOptions {
  /** Until the upstream's connection is open. */
  connectTimeoutMs: number;
  /** A session with no open stream is closed after this long without traffic. */
  idleSessionMs?: number;
}

interface Pooled {
  readonly session: ClientHttp2Session;
  streams: number;
}

/**
 * One HTTP/2 session per upstream origin, shared by every exchange to it (HTTP/2 multiplexes, so a
 * stalled stream holds its own flow-control window, never a connection). A session that closes or
 * receives GOAWAY is dropped; the next exchange opens a new one.
 */
export class H2Sessions {
  readonly #pool = new Map<string, Pooled>();
  readonly #all = new Set<Pooled>();
  readonly #options: H2SessionOptions;

  constructor(options: H2SessionOptions) {
    this.#options = options;
  }

  /** Streams open on every session: what the shutdown deadline would cut. */
  get streams(): number {
    let n = 0;
    for (const pooled of this.#all) n += pooled.streams;
    return n;
  }

  request(origin: string, headers: OutgoingHttpHeaders | string[], endStream: boolean): ClientHttp2Stream {
    const pooled = this.#session(origin);
    const stream = pooled.session.request(headers as OutgoingHttpHeaders, { endStream });
    pooled.streams++;
    stream.once('close', () => {
      pooled.streams--;
    });
    return stream;
  }

  #session(origin: string): Pooled {
    const current = this.#pool.get(origin);
    if (current !== undefined && !current.session.closed && !current.session.destroyed) return current;
    const session = connect(origin, { settings: { enablePush: false } });
    const pooled: Pooled = { session, streams: 0 };
    this.#pool.set(origin, pooled);
    this.#all.add(pooled);
    const forget = () => {
      if (this.#pool.get(origin) === pooled) this.#pool.delete(origin);
    };
    const { connectTimeoutMs } = this.#options;
    const timer = setTimeout(() => session.destroy(Object.assign(new Error(`no connection within ${connectTimeoutMs} ms`), { code: 'UND_ERR_CONNECT_TIMEOUT' })), connectTimeoutMs);
    // Each stream reports its own failure; the session's error only needs a listener.
    session.on('error', () => undefined);
    session.once('connect', () => clearTimeout(timer));
    session.once('goaway', forget);
    session.once('close', () => {
      clearTimeout(timer);
      forget();
      this.#all.delete(pooled);
    });
    session.setTimeout(this.#options.idleSessionMs ?? 60_000, () => {
      if (pooled.streams === 0) session.close();
    });
    return pooled;
  }

  /** Lets open streams finish, then closes every session. */
  close(): Promise<void> {
    const closing = [...this.#all].map((pooled) => new Promise<void>((resolve) => pooled.session.close(resolve)));
    this.#pool.clear();
    return Promise.all(closing).then(() => undefined);
  }

  destroy(): void {
    for (const pooled of this.#all) pooled.session.destroy();
    this.#pool.clear();
  }
}

const RESET = upstreamFailure({ code: 'ECONNRESET' });

type H2Error = Error & { code?: string; cause?: unknown };

/** A stream queued on a session that never connected carries the connection's error as its cause: that says why. */
function rootCause(error: H2Error): H2Error {
  return error.code === 'ERR_HTTP2_STREAM_CANCEL' && error.cause instanceof Error ? (error.cause as H2Error) : error;
}

/** How a failed HTTP/2 upstream stream is reported, in the terms of the contract's table. */
export function h2Failure(error: H2Error): UpstreamFailure {
  const cause = rootCause(error);
  if (cause === error && typeof error.code === 'string' && error.code.startsWith('ERR_HTTP2_')) return RESET;
  return upstreamFailure(cause);
}

export interface H2ForwardOptions {
  /** From the request until the upstream's response headers (not for gRPC: a call may answer at its end). */
  headersTimeoutMs: number;
  /** Upstream silence after the headers (not for gRPC, whose calls are bounded by their deadline). */
  idleTimeoutMs: number;
  draining(): boolean;
  onUpstreamError(ex: Exchange, code: ProxyErrorCode, error: Error): void;
  /** The stream to `ex.target` is open: a connection was made. */
  connected(ex: Exchange): void;
  /** Moves the exchange on to its next target and sends it there; false when there is none. */
  failOver(ex: Exchange, kind: 'connect' | 'idempotent'): boolean;
}

/** The request's HEADERS as a flat [name, value, ...] list: node:http2 takes it as it is, without building an object of its own. */
function upstreamHeaders(ex: Exchange): string[] {
  const out = [':method', ex.req.method ?? 'GET', ':path', ex.path, ':scheme', 'http', ':authority', ex.host ?? ''];
  const headers = ex.headers!;
  for (const name in headers) {
    const value = headers[name];
    if (name === 'host' || value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else if (Array.isArray(value)) for (const v of value) out.push(name, String(v));
    else out.push(name, String(value));
  }
  return out;
}

function plainTrailers(trailers: H2Headers): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in trailers) if (name.charCodeAt(0) !== 58 /* ':' */) out[name] = trailers[name];
  return out;
}

/** A response header list ([name, value, ...]) as the header object of one HEADERS frame. */
function headerObject(status: number, list: readonly string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':status': status };
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    const prior = out[name];
    out[name] = prior === undefined ? list[i + 1] : [...(Array.isArray(prior) ? prior : [String(prior)]), list[i + 1]!];
  }
  return out;
}

/**
 * Forwards one exchange over HTTP/2 (h2c) to a target that speaks it, from an HTTP/1.1 or an
 * HTTP/2 client. The request body and the response stream both ways with backpressure, so HTTP/2
 * flow control holds end to end: a slow reader slows the writer. Trailers pass; a response that is
 * only headers (gRPC's trailers-only errors) stays one HEADERS frame for an HTTP/2 client.
 */
export function forwardH2(ex: Exchange, sessions: H2Sessions, options: H2ForwardOptions): void {
  ex.attempts++;
  const { req, res } = ex;
  const hasBody = requestHasBody(req);
  let stream: ClientHttp2Stream;
  try {
    stream = sessions.request(ex.target!.origin, upstreamHeaders(ex), !hasBody);
  } catch (error) {
    // node:http2 refuses what HTTP/2 cannot carry (a header value it rejects) before any I/O.
    return ex.fail('DEVSTACK_BAD_REQUEST', `cannot forward this request: ${(error as Error).message}`);
  }
  let responded = false;
  /** The stream was opened on a connected session: its HEADERS, and maybe body bytes, may have reached the target. */
  let sent = false;
  let settled = false;
  let trailers: H2Headers | undefined;
  const timed = !ex.grpc;
  let headersTimer: NodeJS.Timeout | undefined;

  const cancel = () => {
    settled = true;
    clearTimeout(headersTimer);
    if (hasBody) req.unpipe(stream);
    if (!stream.closed) stream.close(NGHTTP2_CANCEL);
  };
  ex.cancel = cancel;

  const failed = (error: Error & { code?: string }) => {
    if (settled) return;
    settled = true;
    clearTimeout(headersTimer);
    if (hasBody) req.unpipe(stream);
    if (!stream.closed) stream.close(NGHTTP2_CANCEL);
    if (res.destroyed || res.writableEnded) return;
    const known = h2Failure(error);
    options.onUpstreamError(ex, known.code, error);
    const cause = rootCause(error);
    // A stream error of node:http2's own (a reset, a session gone) is the connection's reset.
    const kind = retryable(cause === error && known === RESET ? { code: 'ECONNRESET' } : cause, { sent, responded: responded || res.headersSent, method: req.method, replayable: !req.readableDidRead });
    if (kind !== false && options.failOver(ex, kind)) return;
    if (ex.refusal === 'no-ready-target') return ex.fail('DEVSTACK_NO_READY_UPSTREAM', `strict mode: no ready target left in lane ${ex.lane} of ${ex.service} (${ex.target?.origin ?? ''} failed: ${known.code})`);
    // A gRPC client is told in the trailers even mid-stream; anything else loses its connection.
    if ((responded || res.headersSent) && !ex.grpc) {
      ex.errorCode = known.code;
      res.destroy(error);
      return;
    }
    ex.fail(known.code, `upstream ${ex.target?.origin ?? ''} failed: ${known.code === 'DEVSTACK_UPSTREAM_ERROR' ? cause.message : (cause.code ?? cause.message)}`);
  };

  if (timed) {
    headersTimer = setTimeout(() => failed(Object.assign(new Error(`no response within ${options.headersTimeoutMs} ms`), { code: 'UND_ERR_HEADERS_TIMEOUT' })), options.headersTimeoutMs);
    stream.setTimeout(options.idleTimeoutMs, () => failed(Object.assign(new Error(`upstream silent for ${options.idleTimeoutMs} ms`), { code: 'UND_ERR_BODY_TIMEOUT' })));
  }

  stream.on('response', (headers, flags) => {
    clearTimeout(headersTimer);
    if (settled) return;
    // The sidecar answered already (a client that stalled, a passed deadline): this answer has no taker.
    if (res.headersSent) return cancel();
    responded = true;
    const status = Number(headers[':status']);
    const list = responseHeaderList(headers as Record<string, string | string[] | undefined>, LANE_HEADER, ex.lane);
    res.statusCode = status;
    if ((flags & NGHTTP2_FLAG_END_STREAM) !== 0) {
      settled = true;
      const h2 = h2Response(res);
      if (h2 !== undefined) {
        if (clientGone(res)) return cancel();
        return void h2.stream.respond(headerObject(status, list), { endStream: true });
      }
      res.writeHead(status, list);
      return void res.end();
    }
    if (!ex.h2 && options.draining()) list.push('connection', 'close');
    res.writeHead(status, list);
  });
  stream.on('data', (chunk: Buffer) => {
    if (res.write(chunk)) return;
    stream.pause();
    res.once('drain', () => stream.resume());
  });
  stream.on('trailers', (received) => {
    trailers = received;
  });
  stream.on('end', () => {
    if (settled) return;
    // A session that goes away mid-answer ends its streams too, but with an error code: the answer was cut.
    if ((stream.rstCode ?? 0) !== 0) return failed(Object.assign(new Error(`upstream ended the stream early (code ${stream.rstCode})`), { code: 'ERR_HTTP2_STREAM_ERROR' }));
    settled = true;
    if (trailers !== undefined && canAddTrailers(res) && req.method !== 'HEAD') res.addTrailers(plainTrailers(trailers));
    res.end();
  });
  stream.on('error', failed);
  stream.on('close', () => {
    // Reset by the upstream without an error event (RST_STREAM CANCEL): the answer is incomplete.
    if (!settled) failed(Object.assign(new Error(`upstream reset the stream (code ${stream.rstCode ?? 0})`), { code: 'ERR_HTTP2_STREAM_ERROR' }));
  });
  // The body waits for the stream: a call whose connection fails keeps it unread, so it can go
  // whole to the next target (a gRPC call to a dead copy is sent on to base).
  const ready = () => {
    sent = true;
    options.connected(ex);
    if (hasBody && !settled) req.pipe(stream);
  };
  // On a session already connected the stream is open at once; 'ready' has then been emitted.
  if (stream.pending) stream.once('ready', ready);
  else ready();
}
