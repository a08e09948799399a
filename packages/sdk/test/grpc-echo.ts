/*
 * A gRPC echo service for the SDK's gRPC tests, with no .proto file: JSON messages through
 * grpc-js's generic client constructor. Every method answers with what the server saw: the key's
 * carriers in the request metadata and the routing key in context inside the handler.
 */
import * as grpc from '@grpc/grpc-js';
import { getRoutingKey } from '@devstack/sdk';

export interface Seen {
  /** The server's name (its lane, in the proxyless tests). */
  server: string;
  /** getRoutingKey() inside the handler. */
  key: string | null;
  /** Every `uber-ctx-key` metadata value received. */
  plain: string[];
  /** Every `baggage` metadata value received. */
  baggage: string[];
  /** Every Jaeger `uberctx-uber-ctx-key` metadata value received. */
  jaeger: string[];
  /** Other metadata the client sent, to check it is kept. */
  other: string[];
  /** The call's authority (`:authority`). */
  authority: string;
  /** What a nested call made by the handler reported, when the request asked for one. */
  nested?: unknown;
  /** For streams: how many request messages the server read, each in the key's context. */
  keysWhileReading?: (string | null)[];
}

export interface Ask {
  /** Make a nested call from inside the handler and report its result. */
  nested?: boolean;
}

const serialize = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const deserialize = (buffer: Buffer): unknown => JSON.parse(buffer.toString('utf8'));

function method(name: string, requestStream: boolean, responseStream: boolean) {
  return {
    path: `/devstack.test.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  };
}

export const ECHO = {
  unary: method('Unary', false, false),
  serverStream: method('ServerStream', false, true),
  clientStream: method('ClientStream', true, false),
  bidi: method('Bidi', true, true),
} satisfies grpc.ServiceDefinition;

export const EchoClient = grpc.makeGenericClientConstructor(ECHO, 'Echo');

function strings(metadata: grpc.Metadata, name: string): string[] {
  return metadata.get(name).map(String);
}

/** What the server reports for a call with this metadata, in the handler's context. */
async function seen(server: string, call: { metadata: grpc.Metadata; getHost(): string }, ask: Ask | undefined, nested: (() => Promise<unknown>) | undefined): Promise<Seen> {
  const metadata = call.metadata;
  const out: Seen = {
    server,
    key: getRoutingKey() ?? null,
    plain: strings(metadata, 'uber-ctx-key'),
    baggage: strings(metadata, 'baggage'),
    jaeger: strings(metadata, 'uberctx-uber-ctx-key'),
    other: strings(metadata, 'x-app'),
    authority: call.getHost(),
  };
  if (ask?.nested === true && nested !== undefined) out.nested = await nested();
  return out;
}

export interface EchoServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Starts the echo service on 127.0.0.1, port 0 unless told (a server started again where it was). `nested` is called from inside a handler when a
 * request asks for it (`{ nested: true }`), to check what the handler's own calls carry.
 */
export async function startEcho(name: string, options: grpc.ServerOptions = {}, nested?: () => Promise<unknown>, port = 0): Promise<EchoServer> {
  const server = new grpc.Server(options);
  server.addService(ECHO, {
    unary(call: grpc.ServerUnaryCall<Ask, Seen>, callback: grpc.sendUnaryData<Seen>) {
      seen(name, call, call.request, nested).then((s) => callback(null, s), (e: Error) => callback(e));
    },
    serverStream(call: grpc.ServerWritableStream<Ask, Seen>) {
      void seen(name, call, call.request, nested).then((s) => {
        call.write(s);
        call.write(s);
        call.end();
      });
    },
    clientStream(call: grpc.ServerReadableStream<Ask, Seen>, callback: grpc.sendUnaryData<Seen>) {
      const keys: (string | null)[] = [];
      call.on('data', () => keys.push(getRoutingKey() ?? null));
      call.on('end', () => {
        seen(name, call, undefined, nested).then((s) => callback(null, { ...s, keysWhileReading: keys }), (e: Error) => callback(e));
      });
    },
    bidi(call: grpc.ServerDuplexStream<Ask, Seen>) {
      const answers: Promise<void>[] = [];
      call.on('data', () => answers.push(seen(name, call, undefined, nested).then((s) => void call.write(s))));
      call.on('end', () => void Promise.all(answers).then(() => call.end()));
    },
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${bound}`,
    port: bound,
    // Calls still open (a test that failed half way) must not hold the process: no graceful wait.
    close: async () => server.forceShutdown(),
  };
}

export type Echo = InstanceType<typeof EchoClient>;

export interface Reply<T> {
  value?: T;
  error?: grpc.ServiceError;
  /** The response metadata (headers), or the status metadata of a trailers-only answer. */
  metadata?: grpc.Metadata;
}

type Options = grpc.CallOptions;

export function unary(client: Echo, request: Ask = {}, metadata = new grpc.Metadata(), options: Options = {}): Promise<Reply<Seen>> {
  return new Promise((resolve) => {
    let headers: grpc.Metadata | undefined;
    const call = client['unary']!(request, metadata, options, (error: grpc.ServiceError | null, value?: Seen) =>
      resolve(error ? { error, metadata: headers ?? error.metadata } : { value: value!, metadata: headers }),
    ) as grpc.ClientUnaryCall;
    call.on('metadata', (m: grpc.Metadata) => (headers = m));
  });
}

function collect<T>(stream: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>): Promise<Reply<T[]>> {
  return new Promise((resolve) => {
    const values: T[] = [];
    let headers: grpc.Metadata | undefined;
    stream.on('metadata', (m: grpc.Metadata) => (headers = m));
    stream.on('data', (v: T) => values.push(v));
    stream.on('error', (error: grpc.ServiceError) => resolve({ error, metadata: headers ?? error.metadata }));
    stream.on('end', () => resolve({ value: values, metadata: headers }));
  });
}

export function serverStream(client: Echo, metadata = new grpc.Metadata()): Promise<Reply<Seen[]>> {
  return collect(client['serverStream']!({}, metadata) as grpc.ClientReadableStream<Seen>);
}

export function clientStream(client: Echo, metadata = new grpc.Metadata()): Promise<Reply<Seen>> {
  return new Promise((resolve) => {
    let headers: grpc.Metadata | undefined;
    const call = client['clientStream']!(metadata, (error: grpc.ServiceError | null, value?: Seen) =>
      resolve(error ? { error, metadata: headers ?? error.metadata } : { value: value!, metadata: headers }),
    ) as grpc.ClientWritableStream<Ask>;
    call.on('metadata', (m: grpc.Metadata) => (headers = m));
    call.write({});
    call.write({});
    call.end();
  });
}

export function bidi(client: Echo, metadata = new grpc.Metadata()): Promise<Reply<Seen[]>> {
  const call = client['bidi']!(metadata) as grpc.ClientDuplexStream<Ask, Seen>;
  const done = collect(call);
  call.write({});
  call.write({});
  call.end();
  return done;
}

/** Every kind of call, each resolving to what the server saw (the first message of a stream). */
export const CALLS: ReadonlyArray<readonly [string, (client: Echo, metadata?: grpc.Metadata) => Promise<Reply<Seen | Seen[]>>]> = [
  ['unary', (c, m) => unary(c, {}, m)],
  ['server streaming', serverStream],
  ['client streaming', clientStream],
  ['bidi streaming', bidi],
];

/** The first Seen of a reply, whichever kind of call made it. */
export function first(reply: Reply<Seen | Seen[]>): Seen | undefined {
  return Array.isArray(reply.value) ? reply.value[0] : reply.value;
}
