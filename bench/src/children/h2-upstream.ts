/*
 * The HTTP/2 upstream stub of the h2 suite: cleartext HTTP/2 with prior knowledge (h2c), as a gRPC
 * server listens. One process, one listener per lane, on node:http2's stream API (the cheapest
 * Node has), answering:
 *   POST /devstack.bench.Echo/Unary  -> the unary gRPC call: a 64 B message, then trailers
 *                                       grpc-status 0 (3 if the request message is not the
 *                                       expected one, so a proxy that mangles bodies is caught)
 *   GET /bytes/<n>                   -> n bytes
 * Every answer names its lane in `x-upstream`, which is how the harness checks the routing.
 */
import { constants, createServer, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { GRPC_CONTENT_TYPE, GRPC_METHOD, GRPC_REQUEST, GRPC_RESPONSE_FRAME, unframe } from '../grpc-message.ts';
import { body, requestedSize } from './bodies.ts';
import { announce, exitWithParent, listen, settings } from './ipc.ts';

const { lanes = ['base', 'feature1'], maxStreams = 1000 } = settings<{ lanes?: string[]; maxStreams?: number }>();
const MAX_GRPC_REQUEST = 64 * 1024;
const { HTTP2_HEADER_STATUS: STATUS, HTTP2_HEADER_CONTENT_TYPE: CONTENT_TYPE, HTTP2_HEADER_CONTENT_LENGTH: CONTENT_LENGTH } = constants;

/** A gRPC error goes as a trailers-only answer: one HEADERS frame with the status, no body. */
function grpcError(stream: ServerHttp2Stream, lane: string, code: number, message: string): void {
  if (stream.destroyed || stream.closed) return;
  stream.respond({ [STATUS]: 200, [CONTENT_TYPE]: GRPC_CONTENT_TYPE, 'grpc-status': String(code), 'grpc-message': encodeURIComponent(message), 'x-upstream': lane }, { endStream: true });
}

function unary(stream: ServerHttp2Stream, lane: string): void {
  const chunks: Buffer[] = [];
  let size = 0;
  stream.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_GRPC_REQUEST) chunks.push(chunk);
  });
  stream.on('end', () => {
    let message: Buffer | undefined;
    try {
      const messages = unframe(Buffer.concat(chunks));
      if (messages.length === 1) message = messages[0];
    } catch {
      // a malformed body is answered below like any other wrong request
    }
    // 'end' can come after the client reset the stream (h2load does at the end of a run), and
    // respond() on a destroyed stream throws: that would end the process.
    if (stream.destroyed || stream.closed) return;
    if (size > MAX_GRPC_REQUEST || !message || !message.equals(GRPC_REQUEST)) {
      return grpcError(stream, lane, 3, `expected one ${GRPC_REQUEST.length}-byte request message, got ${size} body bytes`);
    }
    stream.respond({ [STATUS]: 200, [CONTENT_TYPE]: GRPC_CONTENT_TYPE, 'x-upstream': lane }, { waitForTrailers: true });
    stream.once('wantTrailers', () => {
      if (!stream.destroyed && !stream.closed) stream.sendTrailers({ 'grpc-status': '0' });
    });
    stream.end(GRPC_RESPONSE_FRAME);
  });
}

function handler(lane: string) {
  return (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    // A client that resets a stream (h2load at the end of a run) must not take the process down.
    stream.on('error', () => undefined);
    const method = headers[':method'];
    const path = headers[':path'] ?? '';
    if (method === 'POST') {
      const type = String(headers[CONTENT_TYPE] ?? '');
      if (path !== GRPC_METHOD) {
        stream.resume();
        return grpcError(stream, lane, 12, `unknown method ${path.slice(0, 100)}`);
      }
      if (!type.startsWith(GRPC_CONTENT_TYPE)) {
        stream.resume();
        stream.respond({ [STATUS]: 415, 'x-upstream': lane }, { endStream: true });
        return;
      }
      return unary(stream, lane);
    }
    const size = requestedSize(path);
    if (method !== 'GET' || size === undefined) {
      stream.resume();
      stream.respond({ [STATUS]: 404, [CONTENT_TYPE]: 'text/plain', [CONTENT_LENGTH]: 9, 'x-upstream': lane });
      stream.end('not found');
      return;
    }
    stream.respond({ [STATUS]: 200, [CONTENT_TYPE]: 'application/octet-stream', [CONTENT_LENGTH]: size, 'x-upstream': lane });
    stream.end(body(size));
  };
}

exitWithParent();
const ports: Record<string, number> = {};
for (const lane of lanes) {
  // No idle timeout (a run keeps every connection open); enough concurrent streams that the
  // client's streams per connection, not this server, set the concurrency.
  const server = createServer({ settings: { maxConcurrentStreams: maxStreams }, peerMaxConcurrentStreams: maxStreams });
  server.on('stream', handler(lane));
  server.on('sessionError', () => undefined);
  ports[lane] = await listen(server);
}
announce(ports);
