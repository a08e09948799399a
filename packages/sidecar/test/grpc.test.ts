import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { sidecar, writeRegistry, type Tap } from './helpers.ts';

interface Reply {
  served: string;
  key: string | null;
  n?: number;
}

const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString()) as unknown,
};
const method = (path: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/inventory.Inventory/${path}`,
  requestStream,
  responseStream,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});
const DEFINITION = {
  get: method('Get', false, false),
  upload: method('Upload', true, false),
  watch: method('Watch', false, true),
  chat: method('Chat', true, true),
  hang: method('Hang', false, false),
  stream: method('Stream', false, true),
} satisfies grpc.ServiceDefinition;
const Inventory = grpc.makeGenericClientConstructor(DEFINITION, 'Inventory');
type Client = InstanceType<typeof Inventory> & Record<string, (...args: unknown[]) => unknown>;

interface Server {
  origin: string;
  cancelled: Promise<void>;
  server: grpc.Server;
}

/** A real grpc-js server on port 0 whose answers name it and the key it received. */
async function inventory(t: Tap, served: string): Promise<Server> {
  const server = new grpc.Server();
  let cancelled!: () => void;
  const cancel = new Promise<void>((resolve) => (cancelled = resolve));
  const key = (md: grpc.Metadata) => (md.get('uber-ctx-key')[0] as string | undefined) ?? null;
  const trailer = () => {
    const md = new grpc.Metadata();
    md.set('x-checksum', `${served}-ok`);
    return md;
  };
  server.addService(DEFINITION, {
    get: (call: grpc.ServerUnaryCall<unknown, Reply>, done: grpc.sendUnaryData<Reply>) => done(null, { served, key: key(call.metadata) }, trailer()),
    upload: (call: grpc.ServerReadableStream<unknown, Reply>, done: grpc.sendUnaryData<Reply>) => {
      let n = 0;
      call.on('data', () => n++);
      call.on('end', () => done(null, { served, key: key(call.metadata), n }));
    },
    watch: (call: grpc.ServerWritableStream<{ count: number }, Reply>) => {
      for (let i = 0; i < call.request.count; i++) call.write({ served, key: key(call.metadata), n: i });
      call.end();
    },
    chat: (call: grpc.ServerDuplexStream<unknown, Reply>) => {
      let n = 0;
      call.on('data', () => call.write({ served, key: key(call.metadata), n: n++ }));
      call.on('end', () => call.end());
    },
    hang: (call: grpc.ServerUnaryCall<unknown, Reply>) => call.on('cancelled', () => cancelled()),
    stream: (call: grpc.ServerWritableStream<unknown, Reply>) => {
      call.on('cancelled', () => cancelled());
      call.write({ served, key: key(call.metadata), n: 0 });
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))));
  t.teardown(() => server.forceShutdown());
  return { origin: `http://127.0.0.1:${port}`, cancelled: cancel, server };
}

function unary(client: Client, name: string, request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions = {}): Promise<{ reply: Reply; trailers: grpc.Metadata }> {
  return new Promise((resolve, reject) => {
    let trailers = new grpc.Metadata();
    const call = client[name]!(request, metadata, options, (error: grpc.ServiceError | null, reply: Reply) => (error ? reject(error) : setImmediate(() => resolve({ reply, trailers })))) as grpc.ClientUnaryCall;
    call.on('status', (status: grpc.StatusObject) => (trailers = status.metadata));
  });
}

function collect(stream: grpc.ClientReadableStream<Reply>): Promise<Reply[]> {
  return new Promise((resolve, reject) => {
    const out: Reply[] = [];
    stream.on('data', (r: Reply) => out.push(r));
    stream.on('end', () => resolve(out));
    stream.on('error', reject);
  });
}

const keyed = (key: string) => {
  const md = new grpc.Metadata();
  md.set('uber-ctx-key', key);
  return md;
};

async function fleet(t: Tap) {
  const base = await inventory(t, 'base');
  const feature = await inventory(t, 'feature1');
  const registry = writeRegistry(t.testdir(), {
    inventory: { base: [{ url: base.origin, protocol: 'h2c' }], features: { feature1: [{ url: feature.origin, protocol: 'h2c' }] } },
    gone: { base: [{ url: 'http://127.0.0.1:1', protocol: 'h2c' }] },
  });
  const s = await sidecar(t, registry);
  return { s, port: s.addresses.outbound!.port, base, feature };
}

/** The two ways a gRPC client reaches the sidecar: its outbound port with the service as authority, or grpc_proxy. */
const MODES = {
  direct: (port: number, service: string) => new Inventory(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': service }) as Client,
  'grpc_proxy': (port: number, service: string) => {
    process.env['grpc_proxy'] = `http://127.0.0.1:${port}`;
    try {
      return new Inventory(`${service}:50051`, grpc.credentials.createInsecure()) as Client;
    } finally {
      delete process.env['grpc_proxy'];
    }
  },
};

for (const [mode, connect] of Object.entries(MODES)) {
  t.test(`every kind of RPC through the sidecar (${mode})`, async (tt) => {
    const { port } = await fleet(tt);
    const client = connect(port, 'inventory');
    tt.teardown(() => client.close());

    const feature = await unary(client, 'get', {}, keyed('feature1'));
    tt.same(feature.reply, { served: 'feature1', key: 'feature1' }, 'unary: the key routes to the feature copy and travels on');
    tt.equal(feature.trailers.get('x-checksum')[0], 'feature1-ok', 'the server trailers reach the client');
    tt.equal(feature.trailers.get('x-devstack-lane')[0], undefined, 'the lane is a header, not a trailer');
    const base = await unary(client, 'get', {}, new grpc.Metadata());
    tt.same(base.reply, { served: 'base', key: null }, 'unary without a key: base');
    const unknownKey = await unary(client, 'get', {}, keyed('feature9'));
    tt.equal(unknownKey.reply.served, 'base', 'a key with no copy: base');

    const uploaded = await new Promise<Reply>((resolve, reject) => {
      const call = (client['upload']!(keyed('feature1'), (error: grpc.ServiceError | null, reply: Reply) => (error ? reject(error) : resolve(reply))) as grpc.ClientWritableStream<unknown>);
      for (let i = 0; i < 5; i++) call.write({ i });
      call.end();
    });
    tt.same(uploaded, { served: 'feature1', key: 'feature1', n: 5 }, 'client streaming');

    const watched = await collect(client['watch']!({ count: 4 }, keyed('feature1')) as grpc.ClientReadableStream<Reply>);
    tt.same(watched.map((r) => [r.served, r.n]), [['feature1', 0], ['feature1', 1], ['feature1', 2], ['feature1', 3]], 'server streaming');

    const chat = client['chat']!(keyed('feature1')) as grpc.ClientDuplexStream<unknown, Reply>;
    const replies = collect(chat);
    for (let i = 0; i < 3; i++) chat.write({ i });
    chat.end();
    tt.same((await replies).map((r) => [r.served, r.key, r.n]), [['feature1', 'feature1', 0], ['feature1', 'feature1', 1], ['feature1', 'feature1', 2]], 'bidi streaming');
  });
}

t.test('gRPC failures reach grpc-js clients as gRPC statuses with the devstack code', async (tt) => {
  const { port, base } = await fleet(tt);
  const unknown = MODES.direct(port, 'nowhere');
  const gone = MODES.direct(port, 'gone');
  const client = MODES.direct(port, 'inventory');
  tt.teardown(() => [unknown, gone, client].forEach((c) => c.close()));

  const notFound = await unary(unknown, 'get', {}, new grpc.Metadata()).then(() => undefined, (e: grpc.ServiceError) => e);
  tt.equal(notFound?.code, grpc.status.UNIMPLEMENTED, 'an unknown service: UNIMPLEMENTED');
  tt.match(notFound?.details, /^DEVSTACK_UNKNOWN_SERVICE: /);

  const unreachable = await unary(gone, 'get', {}, new grpc.Metadata()).then(() => undefined, (e: grpc.ServiceError) => e);
  tt.equal(unreachable?.code, grpc.status.UNAVAILABLE, 'no upstream listening: UNAVAILABLE');
  tt.match(unreachable?.details, /^DEVSTACK_UPSTREAM_UNREACHABLE: /);

  const late = await unary(client, 'hang', {}, new grpc.Metadata(), { deadline: Date.now() + 300 }).then(() => undefined, (e: grpc.ServiceError) => e);
  tt.equal(late?.code, grpc.status.DEADLINE_EXCEEDED, 'a deadline: DEADLINE_EXCEEDED');
  await base.cancelled;
  tt.pass('and the upstream call was cancelled');
});

t.test('a client cancel reaches the upstream; an upstream that dies mid-stream is UNAVAILABLE', async (tt) => {
  const { port, base } = await fleet(tt);
  const client = MODES.direct(port, 'inventory');
  tt.teardown(() => client.close());
  const call = client['stream']!({}, new grpc.Metadata()) as grpc.ClientReadableStream<Reply>;
  call.on('error', () => undefined);
  await new Promise<void>((resolve) => call.once('data', () => resolve()));
  call.cancel();
  await base.cancelled;
  tt.pass('the upstream saw the cancel');

  const dying = await inventory(tt, 'dying');
  const s = await sidecar(tt, writeRegistry(tt.testdir(), { inventory: { base: [{ url: dying.origin, protocol: 'h2c' }] } }));
  const viaDying = MODES.direct(s.addresses.outbound!.port, 'inventory');
  tt.teardown(() => viaDying.close());
  const stream = viaDying['stream']!({}, new grpc.Metadata()) as grpc.ClientReadableStream<Reply>;
  const failed = new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
  await new Promise<void>((resolve) => stream.once('data', () => resolve()));
  dying.server.forceShutdown();
  const error = await failed;
  tt.equal(error.code, grpc.status.UNAVAILABLE, 'UNAVAILABLE');
  tt.match(error.details, /^DEVSTACK_UPSTREAM_RESET: /, 'with the devstack code');
});
