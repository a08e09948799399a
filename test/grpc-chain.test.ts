/*
 * The chain rule across gRPC and HTTP hops, with real grpc-js servers and clients and real sidecars:
 *
 *   a (HTTP) --gRPC--> b (gRPC) --HTTP--> c (HTTP) --gRPC--> d (gRPC)
 *
 * Every copy of every service runs behind its own sidecar: the inbound listener in front of the
 * app (HTTP/2 with prior knowledge to the gRPC apps) and the outbound listener for the app's calls,
 * made by logical name (`Host: c`, `:authority: b`). The registry lists the inbound listeners, the
 * gRPC services' as `protocol: h2c`. The test's own calls enter through a sidecar of their own
 * (outbound only, no default key), or straight into a copy's inbound listener.
 *
 * The apps propagate the key with the SDK (`init()` without a registry: the sidecars route):
 * `withRouting` and `grpcServerInterceptor` on their servers, `grpcInterceptor` (a) or
 * `grpcClientOptions` (c) on their gRPC clients, its node:http hook on their HTTP calls (b).
 *
 * feature1 has copies of the gRPC services only, feature2 of the HTTP ones only, so each key has
 * to cross base hops of the other protocol. The feature3 copies' apps do not propagate: their
 * servers are not wrapped by the SDK and their clients have no interceptor, so their calls leave
 * without a key and only their sidecars' default key keeps the chain in its lane. (The SDK's
 * node:http hook is active in this process, but a silent app's handler has no key in its context,
 * so the hook has nothing to add: the same as an app without the SDK.)
 *
 * Every app answers what it received (the plain key header, the key's baggage entries, the key in
 * its handler's context) and what its own call returned, including the x-devstack-lane its sidecar
 * answered with; the whole path is compared with what the chain rule predicts.
 */
import http, { type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { LANE_HEADER, StaticSource, baggageValues, buildSnapshot, type RegistryInput } from '@devstack/core';
import { Sidecar, createLogger } from '@devstack/sidecar';
import { getRoutingKey, init, withRouting } from '@devstack/sdk';
import { grpcClientOptions, grpcInterceptor, grpcServerInterceptor } from '@devstack/sdk/grpc';
import { unaryMethod } from './helpers/grpc-json.ts';
import type { Test } from './helpers/tap.ts';

const KEY = 'uber-ctx-key';
type Service = 'a' | 'b' | 'c' | 'd';
const PROTOCOL: Record<Service, 'http' | 'grpc'> = { a: 'http', b: 'grpc', c: 'http', d: 'grpc' };
const NEXT: Record<Service, Service | undefined> = { a: 'b', b: 'c', c: 'd', d: undefined };
const COPIES: Record<string, readonly Service[]> = { feature1: ['b', 'd'], feature2: ['a', 'c'], feature3: ['b', 'c', 'd'] };
/** The lane whose apps do not propagate the key. */
const SILENT = 'feature3';

/** What an app answers: where the call landed, what it carried, and what the app's own call returned. */
interface Hop {
  at: string;
  /** Every `uber-ctx-key` header (metadata) value the app received. */
  plain: string[];
  /** Every `uber-ctx-key` entry of the `baggage` it received. */
  baggage: string[];
  /** getRoutingKey() in the handler: null without a key, and always in a silent app. */
  key: string | null;
  next?: Next;
}

interface Next {
  /** Every x-devstack-lane of the answer (response metadata for gRPC), as the calling app saw it. */
  lanes: string[];
  hop?: Hop;
  error?: string;
}

// ---- the chain rule, as data -------------------------------------------------------------------

function laneOf(service: Service, key: string | undefined): string {
  return key !== undefined && COPIES[key]?.includes(service) === true ? key : 'base';
}

/** What `service` answers when a call carrying `key` (or none) reaches it. */
function expectedHop(service: Service, key: string | undefined): Hop {
  const lane = laneOf(service, key);
  const own = lane === 'base' ? undefined : lane;
  const silent = lane === SILENT;
  const hop: Hop = { at: `${service}@${lane}`, plain: key === undefined ? [] : [key], baggage: key === undefined ? [] : [key], key: silent ? null : (key ?? own ?? null) };
  const next = NEXT[service];
  if (next !== undefined) {
    // An app carries the key it received (else its copy's lane); a silent one carries nothing, and
    // its sidecar's default key (the copy's lane) stands in.
    const sent = silent ? own : (key ?? own);
    hop.next = { lanes: [laneOf(next, sent)], hop: expectedHop(next, sent) };
  }
  return hop;
}

/** The instances a path went through, in order. */
function path(hop: Hop | undefined): string[] {
  return hop === undefined ? [] : [hop.at, ...path(hop.next?.hop)];
}

// ---- the apps -----------------------------------------------------------------------------------

const sdk = init();
const insecure = grpc.credentials.createInsecure();
// The test's own clients are made through these: no proxy from the environment, ever.
const NO_PROXY: grpc.ChannelOptions = { 'grpc.enable_http_proxy': 0 };

const CHAIN = { call: unaryMethod('/devstack.test.Chain/Call') } satisfies grpc.ServiceDefinition;
const ChainClient = grpc.makeGenericClientConstructor(CHAIN, 'Chain');
type Chain = InstanceType<typeof ChainClient>;

/** Every app call, in order: which instances a request reached, each once. */
const reached: string[] = [];

function callGrpc(client: Chain, metadata = new grpc.Metadata()): Promise<Next> {
  return new Promise((resolve) => {
    let lanes: string[] | undefined;
    const call = client['call']!({}, metadata, { deadline: Date.now() + 5_000 }, (error: grpc.ServiceError | null, hop?: Hop) => {
      // A trailers-only answer (an error) has its one header block in the status metadata.
      const seen = lanes ?? error?.metadata?.get(LANE_HEADER).map(String) ?? [];
      resolve(error === null ? { lanes: seen, hop } : { lanes: seen, error: `${grpc.status[error.code]}: ${error.details}` });
    }) as grpc.ClientUnaryCall;
    call.on('metadata', (m: grpc.Metadata) => (lanes = m.get(LANE_HEADER).map(String)));
  });
}

function callHttp(port: number, headers: Record<string, string>): Promise<Next> {
  return new Promise((resolve) => {
    // agent: false: no keep-alive socket of an app outlives the test.
    const req = http.request({ host: '127.0.0.1', port, path: '/', headers, agent: false, timeout: 5_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const lanes = [...(res.headersDistinct[LANE_HEADER] ?? [])];
        resolve(res.statusCode === 200 ? { lanes, hop: JSON.parse(text) as Hop } : { lanes, error: `HTTP ${res.statusCode}: ${text}` });
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', (error) => resolve({ lanes: [], error: error.message }));
    req.end();
  });
}

function received(id: string, headerValues: (name: string) => string[]): Hop {
  reached.push(id);
  return { at: id, plain: headerValues(KEY), baggage: [...baggageValues(headerValues('baggage'), KEY)], key: getRoutingKey() ?? null };
}

interface Instance {
  service: Service;
  lane: string;
  id: string;
  silent: boolean;
  app: { port: number; close(): Promise<void> };
  sidecar?: Sidecar;
  source?: StaticSource;
  /** The app's call to the next service, through its sidecar's outbound listener (set once that listens). */
  callNext?: () => Promise<Next>;
}

async function httpApp(instance: Omit<Instance, 'app'>): Promise<Instance['app']> {
  const handler = (req: IncomingMessage, res: http.ServerResponse) => {
    const hop = received(instance.id, (name) => [...(req.headersDistinct[name] ?? [])]);
    void (instance.callNext?.() ?? Promise.resolve(undefined)).then((next) => {
      const text = JSON.stringify(next === undefined ? hop : { ...hop, next });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  };
  const server: HttpServer = http.createServer(instance.silent ? handler : withRouting(handler, { lane: instance.lane }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function grpcApp(instance: Omit<Instance, 'app'>): Promise<Instance['app']> {
  const server = new grpc.Server(instance.silent ? {} : { interceptors: [grpcServerInterceptor(grpc, { lane: instance.lane })] });
  server.addService(CHAIN, {
    call(call: grpc.ServerUnaryCall<unknown, Hop>, done: grpc.sendUnaryData<Hop>) {
      const hop = received(instance.id, (name) => call.metadata.get(name).map(String));
      void (instance.callNext?.() ?? Promise.resolve(undefined)).then((next) => done(null, next === undefined ? hop : { ...hop, next }));
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { port, close: () => new Promise((resolve) => server.tryShutdown(() => resolve())) };
}

// ---- the fleet ----------------------------------------------------------------------------------

const lanes = (service: Service) => ['base', ...Object.keys(COPIES).filter((k) => COPIES[k]!.includes(service))];
const instances: Instance[] = [];
const clients: grpc.Client[] = [];
const sidecars: Sidecar[] = [];
t.teardown(async () => {
  clients.forEach((c) => c.close());
  await Promise.all(sidecars.map((s) => s.close()));
  await Promise.all(instances.map((i) => i.app.close()));
  await sdk.close();
});

const empty = () => buildSnapshot({ services: {} });
for (const service of ['a', 'b', 'c', 'd'] as const) {
  for (const lane of lanes(service)) {
    const instance = { service, lane, id: `${service}@${lane}`, silent: lane === SILENT } as Instance;
    // The app reads instance.callNext per request: it is set once the sidecars listen.
    instance.app = await (PROTOCOL[service] === 'grpc' ? grpcApp(instance) : httpApp(instance));
    instance.source = new StaticSource(empty());
    instance.sidecar = new Sidecar({
      source: instance.source,
      inbound: { port: 0, host: '127.0.0.1', appPort: instance.app.port, appHost: '127.0.0.1', appProtocol: PROTOCOL[service] === 'grpc' ? 'h2c' : 'http1' },
      outbound: { port: 0, host: '127.0.0.1' },
      defaultKey: lane === 'base' ? undefined : lane,
      shutdownTimeoutMs: 1_000,
      logger: createLogger('silent'),
    });
    sidecars.push(instance.sidecar);
    await instance.sidecar.start();
    instances.push(instance);
  }
}
const entrySource = new StaticSource(empty());
const entry = new Sidecar({ source: entrySource, outbound: { port: 0, host: '127.0.0.1' }, shutdownTimeoutMs: 1_000, logger: createLogger('silent') });
sidecars.push(entry);
await entry.start();

const registry: RegistryInput = { services: {} };
for (const i of instances) {
  const url = `http://127.0.0.1:${i.sidecar!.addresses.inbound!.port}`;
  const target = PROTOCOL[i.service] === 'grpc' ? { url, protocol: 'h2c' as const } : url;
  const entryOf = ((registry.services as Record<string, { base: unknown; features: Record<string, unknown> }>)[i.service] ??= { base: undefined, features: {} });
  if (i.lane === 'base') entryOf.base = target;
  else entryOf.features[i.lane] = target;
}
const snapshot = buildSnapshot(registry);
for (const source of [...instances.map((i) => i.source!), entrySource]) source.publish(snapshot);

/** A gRPC client of `service` through a sidecar's outbound listener: the service named in the authority. */
function grpcClient(outbound: number, service: Service, options: grpc.ChannelOptions): Chain {
  const client = new ChainClient(`127.0.0.1:${outbound}`, insecure, { ...NO_PROXY, ...options, 'grpc.default_authority': service });
  clients.push(client);
  return client;
}

// Each app calls its next service through its own sidecar; the SDK apps propagate, each client kind once.
for (const i of instances) {
  const next = NEXT[i.service];
  if (next === undefined) continue;
  const outbound = i.sidecar!.addresses.outbound!.port;
  if (PROTOCOL[next] === 'http') {
    i.callNext = () => callHttp(outbound, { host: next });
  } else {
    // a: the client interceptor; c: the SDK's client options; silent copies: a plain client.
    const sdkOptions: grpc.ClientOptions = i.service === 'a' ? { interceptors: [grpcInterceptor(grpc)] } : grpcClientOptions(grpc, { 'grpc.default_authority': next });
    const client = grpcClient(outbound, next, i.silent ? {} : sdkOptions);
    i.callNext = () => callGrpc(client);
  }
}

const entryPort = entry.addresses.outbound!.port;
const entryB = grpcClient(entryPort, 'b', {});

function metadataOf(headers: Record<string, string>): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [name, value] of Object.entries(headers)) md.set(name, value);
  return md;
}


/** Sends one request, then compares the path, each hop's record and the lanes each sidecar answered with. */
async function check(t: Test, send: () => Promise<Next>, want: Next, what: string): Promise<void> {
  reached.length = 0;
  const got = await send();
  t.notOk(got.error, `${what}: no error`);
  const wanted = path(want.hop);
  t.same(path(got.hop), wanted, `${what}: ${wanted.join(' -> ')}`);
  t.same(reached, wanted, `${what}: each instance on the path got one call, and no other instance any`);
  // Hop by hop: the lanes the caller's sidecar answered with, then what the instance it reached received.
  let caller = 'the test';
  let g: Next | undefined = got;
  let w: Next | undefined = want;
  while (w?.hop !== undefined) {
    t.same(g?.lanes, w.lanes, `${what}: the sidecar ${caller} called through answers x-devstack-lane ${w.lanes.join(', ')}`);
    const { next: _got, ...gotHop } = g?.hop ?? ({} as Hop);
    const { next: _want, ...wantHop } = w.hop;
    t.same(gotHop, wantHop, `${what}: ${wantHop.at} received ${JSON.stringify({ plain: wantHop.plain, baggage: wantHop.baggage, key: wantHop.key })}`);
    caller = wantHop.at;
    g = g?.hop?.next;
    w = w.hop.next;
  }
}

const overHttp = (key: string | undefined): Next => ({ lanes: [laneOf('a', key)], hop: expectedHop('a', key) });
const overGrpc = (key: string | undefined): Next => ({ lanes: [laneOf('b', key)], hop: expectedHop('b', key) });

t.test('the model says what the issue says', async (t) => {
  t.same(path(expectedHop('a', undefined)), ['a@base', 'b@base', 'c@base', 'd@base']);
  t.same(path(expectedHop('a', 'feature1')), ['a@base', 'b@feature1', 'c@base', 'd@feature1']);
  t.same(path(expectedHop('a', 'feature2')), ['a@feature2', 'b@base', 'c@feature2', 'd@base']);
  t.same(path(expectedHop('a', 'feature3')), ['a@base', 'b@feature3', 'c@feature3', 'd@feature3']);
  t.same(expectedHop('b', 'feature3').next?.hop?.plain, ['feature3'], 'c gets the key from b\'s sidecar');
});

t.test('HTTP first: a (HTTP) -> b over gRPC -> c over HTTP -> d over gRPC', async (t) => {
  const send = (headers: Record<string, string>) => () => callHttp(entryPort, { host: 'a', ...headers });
  await check(t, send({}), overHttp(undefined), 'no key: base everywhere');
  await check(t, send({ [KEY]: 'feature1' }), overHttp('feature1'), 'feature1 (gRPC copies only)');
  await check(t, send({ baggage: `userId=7,${KEY}=feature2` }), overHttp('feature2'), 'feature2 by baggage (HTTP copies only)');
  await check(t, send({ [`uberctx-${KEY}`]: 'feature3' }), overHttp('feature3'), 'feature3 by the Jaeger header (its copies drop the key)');
  await check(t, send({ [KEY]: 'feature9' }), overHttp('feature9'), 'an unknown key: base everywhere, the key carried on');
  await check(t, send({ [KEY]: 'Feature_1!' }), overHttp(undefined), 'an invalid key: stripped, base everywhere');
});

t.test('gRPC first: b (gRPC) -> c over HTTP -> d over gRPC', async (t) => {
  const send = (headers: Record<string, string>) => () => callGrpc(entryB, metadataOf(headers));
  await check(t, send({}), overGrpc(undefined), 'no key: base everywhere');
  await check(t, send({ [KEY]: 'feature1' }), overGrpc('feature1'), 'feature1');
  await check(t, send({ baggage: `${KEY}=feature2;p=1` }), overGrpc('feature2'), 'feature2 by baggage');
  await check(t, send({ [KEY]: 'feature3' }), overGrpc('feature3'), 'feature3 (its copies drop the key)');
  await check(t, send({ [KEY]: 'feature9' }), overGrpc('feature9'), 'an unknown key');
});

t.test('a copy called without a key keeps the chain in its lane, whether or not its app propagates', async (t) => {
  for (const i of instances.filter((x) => x.lane !== 'base')) {
    const inbound = i.sidecar!.addresses.inbound!.port;
    // Its inbound listener gives the app the copy's key; from there on the chain rule applies.
    const want: Next = { lanes: [i.lane], hop: expectedHop(i.service, i.lane) };
    if (PROTOCOL[i.service] === 'http') {
      await check(t, () => callHttp(inbound, { host: i.service }), want, `${i.id}${i.silent ? ' (silent)' : ''}, over HTTP`);
    } else {
      const client = new ChainClient(`127.0.0.1:${inbound}`, insecure, NO_PROXY);
      clients.push(client);
      await check(t, () => callGrpc(client), want, `${i.id}${i.silent ? ' (silent)' : ''}, over gRPC`);
    }
  }
});

t.test('a gRPC call the sidecar cannot route ends with a gRPC status naming the devstack code', async (t) => {
  reached.length = 0;
  const nowhere = new ChainClient(`127.0.0.1:${entryPort}`, insecure, { ...NO_PROXY, 'grpc.default_authority': 'nowhere' });
  clients.push(nowhere);
  const got = await callGrpc(nowhere, metadataOf({ [KEY]: 'feature1' }));
  t.match(got.error, /^UNIMPLEMENTED: DEVSTACK_UNKNOWN_SERVICE: /, 'an unknown service');
  t.same(got.lanes, ['none'], 'no lane was chosen');
  t.same(reached, [], 'no app was called');
});
