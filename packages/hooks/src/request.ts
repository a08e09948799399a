import type * as Http from 'node:http';
import type * as Https from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import type { KubeConnection } from './connection.js';
import { BadResponseError, KubeCallError, RequestTimeoutError } from './errors.js';

/*
 * Each protocol's module is loaded when a server needs it, and as a CommonJS object: an ESM import
 * of node:http evaluates its lazy WebSocket exports, which load undici (about 15 MiB), and https
 * brings TLS, which a plain-http test server does not need.
 */
const http = () => process.getBuiltinModule('node:http') as typeof Http;
const https = () => process.getBuiltinModule('node:https') as typeof Https;

const WRITE_PIECE = 64 * 1024;

/** Per request, from its first byte sent to its last byte read (kubectl's `--request-timeout`). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * The largest answer read (`--max-response-size`): etcd refuses objects over 1.5 MiB by default
 * and an API server Secrets over 1 MiB, so 8 MiB is room for any object and stops a server that
 * streams without end before it fills the Job's memory.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

export interface Limits {
  timeoutMs: number;
  maxResponseBytes: number;
}

export interface Answer {
  status: number;
  /** The media type without parameters, lower case (`application/json`), or '' when none. */
  type: string;
  body: string;
}

/**
 * One request with a deadline for the whole exchange: a server that accepts and never answers, or
 * answers a byte a minute, ends in a `RequestTimeoutError` instead of holding the Job until its
 * `activeDeadlineSeconds`. A connection that fails is a `KubeCallError` without a status.
 */
export function send(connection: KubeConnection, what: string, method: string, path: string, body: unknown, limits: Limits): Promise<Answer> {
  const { timeoutMs, maxResponseBytes } = limits;
  const url = new URL(connection.server + path);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const secure = url.protocol === 'https:';
  const options: Https.RequestOptions = {
    method,
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port || (secure ? 443 : 80),
    path: url.pathname + url.search,
    headers: {
      ...connection.headers,
      accept: 'application/json',
      'user-agent': 'devstack-hooks',
      ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
    },
    agent: false,
    ...(secure ? { ca: connection.ca, cert: connection.cert, key: connection.key, rejectUnauthorized: connection.rejectUnauthorized, servername: connection.servername } : {}),
  };
  return new Promise<Answer>((resolve, reject) => {
    const request = (secure ? https() : http()).request(options, (response) => {
      // Decoded as it arrives, into V8 strings: a large Secret read into one Buffer and then a
      // string is held twice outside the heap (node makes strings over 1 MiB external), and external
      // garbage is collected late (V8 waits for 64 MiB of it), which is most of a Job's limit.
      const tooLarge = () => request.destroy(new BadResponseError(what, response.statusCode ?? 0, `an answer over ${maxResponseBytes} bytes (--max-response-size)`));
      if (Number(response.headers['content-length']) > maxResponseBytes) return void tooLarge();
      const decoder = new StringDecoder('utf8');
      let bytes = 0;
      let body = '';
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > maxResponseBytes) tooLarge();
        else body += decoder.write(chunk);
      });
      response.on('end', () => {
        clearTimeout(timer);
        body += decoder.end();
        const type = String(response.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        resolve({ status: response.statusCode ?? 0, type, body });
      });
      response.on('error', fail);
    });
    const timer = setTimeout(() => {
      request.destroy(new RequestTimeoutError(what, timeoutMs));
    }, timeoutMs);
    function fail(error: Error) {
      clearTimeout(timer);
      if (error instanceof RequestTimeoutError || error instanceof BadResponseError) reject(error);
      else {
        reject(new KubeCallError(what, undefined, error.message, { cause: error }));
      }
    }
    request.on('error', fail);
    // In pieces, each written when the socket has taken the last: a large Secret is then not
    // converted to one Buffer and encrypted into another at once.
    let offset = 0;
    const pump = () => {
      while (payload !== undefined && offset < payload.length) {
        const piece = payload.slice(offset, offset + WRITE_PIECE);
        offset += WRITE_PIECE;
        if (!request.write(piece)) {
          request.once('drain', pump);
          return;
        }
      }
      request.end();
    };
    pump();
  });
}
