import { connect, createServer, type ClientHttp2Session, type Http2Server, type ServerHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Tap } from './helpers.ts';

export interface H2Reply {
  status: number;
  headers: IncomingHttpHeaders;
  /** Whether the response was one HEADERS frame that ended the stream (gRPC's trailers-only form). */
  headersOnly: boolean;
  body: string;
  trailers: IncomingHttpHeaders | undefined;
}

/** An h2c upstream on port 0; by default it answers with its name, what it received, and a trailer. */
export async function h2Upstream(t: Tap, name: string, handler?: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void): Promise<{ server: Http2Server; origin: string; streams: ServerHttp2Stream[] }> {
  const server = createServer();
  const streams: ServerHttp2Stream[] = [];
  server.on('stream', (stream, headers) => {
    streams.push(stream);
    stream.on('error', () => undefined);
    if (handler) return handler(stream, headers);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      // A stream the sidecar cancelled right behind its request ends here already reset.
      if (stream.destroyed || stream.closed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-upstream': name }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'x-checksum': `${name}-ok` }));
      stream.end(JSON.stringify({ name, headers: { ...headers }, body: Buffer.concat(chunks).toString() }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  t.teardown(() => {
    sessions.forEach((s) => s.destroy());
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, streams };
}

/** One h2c session to a sidecar listener, closed at teardown. */
export function h2Client(t: Tap, port: number): ClientHttp2Session {
  const session = connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  return session;
}

/** One request on a session; resolves with the whole answer once the stream ends. */
export function h2Send(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string | Buffer): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': body === undefined ? 'GET' : 'POST', ':path': '/', ...headers }, { endStream: body === undefined });
    let reply: Omit<H2Reply, 'body' | 'trailers'> | undefined;
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    stream.on('response', (h, flags) => {
      reply = { status: Number(h[':status']), headers: h, headersOnly: (flags & 1) === 1 };
    });
    stream.on('trailers', (h) => {
      trailers = h;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      if (reply === undefined) return reject(new Error('stream ended without a response'));
      resolve({ ...reply, body: Buffer.concat(chunks).toString(), trailers });
    });
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

/** A gRPC frame (uncompressed) around a payload. */
export function grpcFrame(payload: Buffer | string): Buffer {
  const data = Buffer.from(payload);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}
