/*
 * One real call through a path, before and after its load: h2load counts HTTP statuses only,
 * and a gRPC failure is an HTTP 200 whose trailers carry grpc-status, so a path that answers
 * fast but breaks gRPC would otherwise get a good number. Two clients: node:http2 (status, lane,
 * body, trailers, exactly) before and after every run, and @grpc/grpc-js, a real gRPC stack,
 * once per path at the start and at the end.
 */
import { Client, credentials, Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import { connect as h2connect, constants } from 'node:http2';
import { connect as tcpConnect } from 'node:net';
import { GRPC_CONTENT_TYPE, GRPC_METHOD, GRPC_REQUEST, GRPC_REQUEST_FRAME, GRPC_RESPONSE, unframe } from './grpc-message.ts';
import type { H2PathId, H2ScenarioId } from './h2-options.ts';

export interface H2Scenario {
  id: H2ScenarioId;
  label: string;
  method: 'GET' | 'POST';
  path: string;
  /** Extra request headers (the gRPC ones). */
  headers: Record<string, string>;
  body: Buffer | undefined;
  /** Size of the expected response body (GET). */
  responseBytes: number;
}

export function h2Scenarios(ids: readonly H2ScenarioId[], getBody: number): H2Scenario[] {
  const all: H2Scenario[] = [
    {
      id: 'grpc',
      label: `unary gRPC (${GRPC_REQUEST.length} B request, ${GRPC_RESPONSE.length} B response message)`,
      method: 'POST',
      path: GRPC_METHOD,
      headers: { 'content-type': GRPC_CONTENT_TYPE, te: 'trailers' },
      body: GRPC_REQUEST_FRAME,
      responseBytes: GRPC_RESPONSE.length + 5,
    },
    { id: 'get', label: `HTTP/2 GET, ${getBody} B response`, method: 'GET', path: `/bytes/${getBody}`, headers: {}, body: undefined, responseBytes: getBody },
  ];
  return all.filter((s) => ids.includes(s.id));
}

export interface H2Binding {
  id: H2PathId;
  port: number;
  /** `:authority` of every call. */
  authority: string;
  headers: Record<string, string>;
  /** The lane (`x-upstream`) every answer must come from. */
  expectUpstream: string;
  /** The first is the path's own process (the proxy); the rest are reported for context. */
  procs: { role: string; pid: number }[];
}

export interface H2Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  trailers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request on a fresh h2c connection (prior knowledge), closed afterwards. */
export function h2Call(port: number, authority: string, method: string, path: string, headers: Record<string, string>, body?: Buffer, timeoutMs = 5000): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const session = h2connect(`http://127.0.0.1:${port}`);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      session.destroy();
      reject(error);
    };
    session.on('error', fail);
    const stream = session.request({ ':method': method, ':path': path, ':authority': authority, ':scheme': 'http', ...headers }, { endStream: body === undefined });
    let answer: Omit<H2Answer, 'body' | 'trailers'> | undefined;
    let trailers: H2Answer['trailers'] = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      answer = { status: Number(h[constants.HTTP2_HEADER_STATUS]), headers: h };
    });
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', fail);
    stream.on('close', () => {
      if (!answer) return fail(new Error(`stream closed without a response (code ${stream.rstCode ?? 'none'})`));
      clearTimeout(timer);
      session.close();
      resolve({ ...answer, trailers, body: Buffer.concat(chunks) });
    });
    if (body !== undefined) stream.end(body);
  });
}

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** Why the answer is wrong for the call, or undefined when it is right. */
export function judge(answer: H2Answer, s: H2Scenario, expectUpstream: string): string | undefined {
  const grpcStatus = first(answer.trailers['grpc-status']) ?? first(answer.headers['grpc-status']);
  const grpcMessage = first(answer.trailers['grpc-message']) ?? first(answer.headers['grpc-message']);
  if (answer.status !== 200) return `answered HTTP ${answer.status}${grpcStatus === undefined ? '' : ` (grpc-status ${grpcStatus})`}: ${answer.body.toString('utf8').slice(0, 200)}`;
  const upstream = first(answer.headers['x-upstream']);
  if (upstream !== expectUpstream) return `reached lane ${JSON.stringify(upstream)}, expected ${JSON.stringify(expectUpstream)}`;
  if (s.id === 'grpc') {
    const type = first(answer.headers['content-type']) ?? '';
    if (!type.startsWith(GRPC_CONTENT_TYPE)) return `content-type ${JSON.stringify(type)}, expected ${GRPC_CONTENT_TYPE}`;
    if (grpcStatus === undefined) return 'no grpc-status in the trailers (or a trailers-only answer)';
    if (grpcStatus !== '0') return `grpc-status ${grpcStatus}${grpcMessage ? ` (${decodeURIComponent(grpcMessage)})` : ''}`;
    if (first(answer.trailers['grpc-status']) === undefined) return 'grpc-status 0 in the headers, not in trailers: the response message was dropped';
    let messages: Buffer[];
    try {
      messages = unframe(answer.body);
    } catch (error) {
      return `response body: ${(error as Error).message}`;
    }
    if (messages.length !== 1 || !messages[0]!.equals(GRPC_RESPONSE)) return `expected one ${GRPC_RESPONSE.length} B response message, got ${messages.length} message(s), ${answer.body.length} body bytes`;
    return undefined;
  }
  if (answer.body.length !== s.responseBytes) return `body of ${answer.body.length} bytes, expected ${s.responseBytes}`;
  return undefined;
}

/**
 * What a server that fails the h2c check says to the HTTP/2 connection preface: an HTTP/1.1
 * server answers it with an HTTP/1.1 error, which names the missing support better than the
 * HTTP/2 client's "protocol error".
 */
export function prefaceAnswer(port: number, timeoutMs = 2000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    let got = '';
    const done = (v: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(got === '' ? undefined : got), timeoutMs);
    socket.on('connect', () => socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])])));
    socket.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.includes('\r\n')) done(got);
    });
    socket.on('error', () => done(undefined));
    socket.on('close', () => done(got === '' ? undefined : got));
  });
}

export async function checkH2(b: H2Binding, s: H2Scenario): Promise<string | undefined> {
  let answer: H2Answer;
  try {
    answer = await h2Call(b.port, b.authority, s.method, s.path, { ...b.headers, ...s.headers }, s.body);
  } catch (error) {
    const said = await prefaceAnswer(b.port);
    if (said?.startsWith('HTTP/1.')) return `not h2c: the HTTP/2 preface was answered with HTTP/1.1 "${said.split('\r\n')[0]}" (${(error as Error).message})`;
    return `h2c call failed: ${(error as Error).message}`;
  }
  return judge(answer, s, b.expectUpstream);
}

/** One unary call with @grpc/grpc-js; undefined when it ended OK, from the expected lane, with the expected message. */
export function grpcJsCall(b: H2Binding, timeoutMs = 5000): Promise<string | undefined> {
  // The sidecar, nginx or the upstream is the target itself: no proxy from the environment in between.
  const client = new Client(`127.0.0.1:${b.port}`, credentials.createInsecure(), { 'grpc.default_authority': b.authority, 'grpc.enable_http_proxy': 0 });
  const metadata = new Metadata();
  for (const [k, v] of Object.entries(b.headers)) metadata.set(k, v);
  return new Promise<string | undefined>((resolve) => {
    let lane: string | undefined;
    const call = client.makeUnaryRequest(GRPC_METHOD, (m: Buffer) => m, (m: Buffer) => m, GRPC_REQUEST, metadata, { deadline: Date.now() + timeoutMs }, (error, value) => {
      if (error) return resolve(`grpc-js: ${GrpcStatus[error.code] ?? error.code} ${error.details}`);
      if (lane !== b.expectUpstream) return resolve(`grpc-js: reached lane ${JSON.stringify(lane)}, expected ${JSON.stringify(b.expectUpstream)}`);
      if (!value || !value.equals(GRPC_RESPONSE)) return resolve(`grpc-js: unexpected response message (${value?.length ?? 0} bytes)`);
      resolve(undefined);
    });
    call.on('metadata', (m: Metadata) => {
      const v = m.get('x-upstream')[0];
      lane = v === undefined ? undefined : String(v);
    });
  }).finally(() => client.close());
}
