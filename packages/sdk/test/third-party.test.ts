/*
 * The key never leaves the fleet: a fleet app that forwards its incoming request headers verbatim
 * (the way teams write proxies) to a third party, through every client the SDK covers. The third
 * party is a real node:http server on 127.0.0.1, reached under a public name through a lookup
 * that answers 127.0.0.1. Patches globals: runs in its own process.
 */
import t from 'tap';
import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import express from 'express';
import { Agent, interceptors, request as undiciRequest, stream as undiciStream, type Dispatcher } from 'undici';
import * as grpc from '@grpc/grpc-js';
import { init, routingMiddleware, withRoutingKey } from '@devstack/sdk';
import { grpcInterceptor } from '@devstack/sdk/grpc';
import { EchoClient, startEcho, unary } from './grpc-echo.ts';

const sdk = init();
t.teardown(() => sdk.close());

interface Received {
  headers: IncomingHttpHeaders;
  /** Every header name as it arrived, lower-cased, repeats included. */
  names: string[];
  url: string;
}

// The third party: records what reached it, by the request id the test sent.
const received = new Map<string, Received>();
const third = http.createServer((req, res) => {
  // A fleet service that sends its caller on to the third party.
  if (req.url === '/moved') return void res.writeHead(302, { location: `http://${THIRD}/landed` }).end();
  const id = req.headers['x-request-id'];
  if (typeof id === 'string') received.set(id, { headers: req.headers, names: req.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase()), url: req.url ?? '' });
  req.resume().on('end', () => res.end('ok'));
});
const thirdPort = await listen(third);
t.teardown(() => close(third));

// The same third party over h2c, for node:http2 clients.
const third2 = http2.createServer();
third2.on('stream', (stream, headers) => {
  const id = headers['x-request-id'];
  const names = Object.keys(headers);
  if (typeof id === 'string') received.set(id, { headers: headers as IncomingHttpHeaders, names, url: String(headers[':path']) });
  stream.respond({ ':status': 200 });
  stream.end('ok');
});
const third2Port = await new Promise<number>((resolve) => third2.listen(0, '127.0.0.1', () => resolve((third2.address() as AddressInfo).port)));
t.teardown(() => new Promise<void>((resolve) => third2.close(() => resolve())));
const sessions = new Set<http2.ClientHttp2Session>();
t.teardown(() => sessions.forEach((session) => session.destroy()));

function h2(host: string, headers: http2.OutgoingHttpHeaders): Promise<void> {
  const session = http2.connect(`http://${host.split(':')[0]}:${third2Port}`, { lookup: lookup as never });
  sessions.add(session);
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': '/h2', ...headers });
    stream.on('error', reject);
    stream.resume().on('end', () => {
      session.close();
      resolve();
    });
  });
}

type Test = Parameters<Parameters<typeof t.test>[0]>[0];
type Lookup = (host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => void;
const lookup: Lookup = (_host, options, cb) => (options.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4));
const agent = new Agent({ connect: { lookup: lookup as never } });
t.teardown(() => agent.close());

const THIRD = `api.example.com:${thirdPort}`;
// A cluster-local name, answered by the same server: the fleet, which may have the key.
const FLEET = `orders.shop.svc.cluster.local:${thirdPort}`;

/** The incoming request's headers, minus what is the connection's own. */
function forwarded(req: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name === 'host' || name === 'connection' || name === 'content-length') continue;
    out[name] = value;
  }
  return out;
}

function done(req: http.ClientRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    req.on('response', (res) => res.resume().on('end', resolve));
    req.on('error', reject);
  });
}

function sink(): Writable {
  return new Writable({ write: (_chunk, _encoding, next) => next() });
}

function dispatch(url: URL, headers: Record<string, string | string[]>): Promise<void> {
  return new Promise((resolve, reject) => {
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart: () => {},
      onResponseStart: () => {},
      onResponseData: () => {},
      onResponseError: (_c, error) => reject(error),
      onResponseEnd: () => resolve(),
    };
    agent.dispatch({ origin: url.origin, path: url.pathname, method: 'GET', headers }, handler);
  });
}

type Forward = (req: IncomingMessage, host: string) => Promise<void>;

/** Every way the app can send the headers on. `host` is where to; the path names the client. */
const CLIENTS: Record<string, Forward> = {
  fetch: async (req, host) => void (await (await fetch(`http://${host}/fetch`, { headers: forwarded(req), dispatcher: agent } as RequestInit)).text()),
  'undici.request': async (req, host) => void (await (await undiciRequest(`http://${host}/request`, { headers: forwarded(req), dispatcher: agent })).body.text()),
  'undici.stream': async (req, host) => void (await undiciStream(`http://${host}/stream`, { method: 'GET', headers: forwarded(req), dispatcher: agent }, () => sink())),
  'Agent.dispatch': (req, host) => dispatch(new URL(`http://${host}/dispatch`), forwarded(req)),
  'Agent.request': async (req, host) => void (await (await agent.request({ origin: `http://${host}`, path: '/agent', method: 'GET', headers: forwarded(req) })).body.text()),
  'http.request': (req, host) => {
    const out = http.request(`http://${host}/http`, { headers: forwarded(req), lookup: lookup as never });
    out.end();
    return done(out);
  },
  'http.get': (req, host) => done(http.get(`http://${host}/get`, { headers: forwarded(req), lookup: lookup as never })),
  'setHeader after creation': (req, host) => {
    const out = http.request(`http://${host}/set`, { lookup: lookup as never });
    for (const [name, value] of Object.entries(forwarded(req))) out.setHeader(name, value);
    out.end();
    return done(out);
  },
  'raw headers': (req, host) => {
    // rawHeaders as they came, names in the client's case; Node adds no Host to a raw list.
    const out = http.request(`http://${host}/raw`, { headers: req.rawHeaders as unknown as OutgoingHttpHeaders, lookup: lookup as never });
    out.end();
    return done(out);
  },
  'header pairs': (req, host) => {
    const pairs = [['Host', host], ...Object.entries(forwarded(req))];
    const out = http.request(`http://${host}/pairs`, { headers: pairs as unknown as OutgoingHttpHeaders, lookup: lookup as never });
    out.end();
    return done(out);
  },
  'https.request': (req, host) => {
    // A plain socket stands in for TLS: what is tested is the request https.request builds.
    const out = https.request(`https://${host}/https`, { headers: forwarded(req), createConnection: () => net.connect(thirdPort, '127.0.0.1') });
    out.end();
    return done(out);
  },
  'https.get': (req, host) => done(https.get(`https://${host}/https-get`, { headers: forwarded(req), createConnection: () => net.connect(thirdPort, '127.0.0.1') })),
  'http2 session.request': (req, host) => h2(host, forwarded(req)),
  'Expect: 100-continue': (req, host) => {
    const out = http.request(`http://${host}/expect`, { method: 'POST', headers: { ...forwarded(req), expect: '100-continue', 'content-type': 'text/plain' }, lookup: lookup as never });
    out.on('continue', () => out.end('body'));
    return done(out);
  },
};

// The fleet app: Express, forwarding what it got to where the query says, with the client the path names.
const app = express();
app.use(routingMiddleware());
app.get('/:client', async (req, res) => {
  try {
    await CLIENTS[req.params.client]!(req, String(req.query['to']));
    res.end('forwarded');
  } catch (error) {
    res.status(502).end(String((error as Error).stack));
  }
});
const fleet = http.createServer(app);
const fleetPort = await listen(fleet);
t.teardown(() => close(fleet));

let ids = 0;
async function forward(client: string, to: string, headers: Record<string, string>): Promise<Received> {
  const id = `r-${++ids}`;
  const [status, text] = await new Promise<[number, string]>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: fleetPort, path: `/${encodeURIComponent(client)}?to=${encodeURIComponent(to)}`, headers: { ...headers, 'X-Request-Id': id } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve([res.statusCode ?? 0, body]));
    });
    req.on('error', reject);
  });
  if (status !== 200) throw new Error(`${client}: the fleet app answered ${status}: ${text}`);
  const got = received.get(id);
  if (got === undefined) throw new Error(`${client}: nothing reached the other end`);
  return got;
}

const OTHER_BAGGAGE = 'team=pay, tenant=t%201;prop=x';
// The key's entries (one percent-encoded) sit between the app's own: those must arrive byte for
// byte, in order.
const BAGGAGE = 'team=pay, uber-ctx-key=feature1;ttl=5 , tenant=t%201;prop=x,uber%2Dctx%2Dkey=feature1';

const INBOUND: Record<string, Record<string, string>> = {
  // An invalid plain header decides: the app has no key, yet baggage and Jaeger still carry one.
  'invalid plain header, valid baggage and Jaeger': { 'Uber-Ctx-Key': 'Not A Key!', Baggage: BAGGAGE, 'Uberctx-Uber-Ctx-Key': 'feature1', 'X-Team': 'pay' },
  'empty plain header, valid baggage': { 'uber-ctx-key': '', baggage: BAGGAGE, 'x-team': 'pay' },
  'conflicting baggage entries, valid Jaeger': { baggage: `${BAGGAGE},uber-ctx-key=feature2`, 'uberctx-uber-ctx-key': 'feature1', 'x-team': 'pay' },
  'a valid key in every carrier': { 'uber-ctx-key': 'feature1', baggage: BAGGAGE, 'uberctx-uber-ctx-key': 'feature1', 'x-team': 'pay' },
  'a valid Jaeger header only': { 'uberctx-uber-ctx-key': 'feature1', baggage: 'team=pay', 'x-team': 'pay' },
};

function assertClean(t: Test, got: Received, what: string, baggage: string): void {
  t.notOk(got.names.includes('uber-ctx-key'), `${what}: no plain header`);
  t.notOk(got.names.includes('uberctx-uber-ctx-key'), `${what}: no Jaeger header`);
  t.equal(got.headers['baggage'], baggage, `${what}: every other baggage entry, byte for byte and in order`);
  t.equal(got.headers['x-team'], 'pay', `${what}: other headers kept`);
}

t.test('a third party never receives a carrier of the key, whatever the app forwards and however', async (t) => {
  for (const [carriers, headers] of Object.entries(INBOUND)) {
    const baggage = headers['baggage'] ?? headers['Baggage'] ?? '';
    const expected = baggage === 'team=pay' ? 'team=pay' : OTHER_BAGGAGE;
    for (const client of Object.keys(CLIENTS)) assertClean(t, await forward(client, THIRD, headers), `${carriers}, ${client}`, expected);
  }
});

t.test('a baggage line with nothing but the key is dropped, not sent empty', async (t) => {
  for (const client of ['fetch', 'raw headers', 'Expect: 100-continue']) {
    const got = await forward(client, THIRD, { 'uber-ctx-key': 'BAD', baggage: 'uber-ctx-key=feature1', 'x-team': 'pay' });
    t.notOk(got.names.includes('baggage'), `${client}: no baggage header`);
    t.notOk(got.names.includes('uber-ctx-key'), `${client}: no plain header`);
  }
});

t.test('fleet hosts get the key on raw-header and Expect requests too', async (t) => {
  for (const client of ['raw headers', 'header pairs', 'Expect: 100-continue', 'setHeader after creation', 'http.request', 'fetch']) {
    const got = await forward(client, FLEET, { 'uber-ctx-key': 'feature1', baggage: `${OTHER_BAGGAGE},uber-ctx-key=stale`, 'x-team': 'pay' });
    t.equal(got.headers['uber-ctx-key'], 'feature1', `${client}: the plain header`);
    t.equal(got.headers['baggage'], `${OTHER_BAGGAGE},uber-ctx-key=feature1`, `${client}: the entry replaced in place`);
    t.equal(got.names.filter((n) => n === 'uber-ctx-key').length, 1, `${client}: one plain header`);
  }
  // A key set in the process (a job), on a request whose headers are rendered in its constructor.
  const id = `r-${++ids}`;
  await withRoutingKey('feature9', () => {
    const out = http.request(`http://${FLEET}/job`, { method: 'POST', headers: { expect: '100-continue', 'x-request-id': id }, lookup: lookup as never });
    out.on('continue', () => out.end('body'));
    return done(out);
  });
  t.equal(received.get(id)?.headers['uber-ctx-key'], 'feature9', 'Expect: the key in context is written');
  t.equal(received.get(id)?.headers['baggage'], 'uber-ctx-key=feature9');
});

t.test('a redirect from the fleet to a third party: the request that follows it has no carrier', async (t) => {
  const headers = { 'uber-ctx-key': 'BAD', baggage: BAGGAGE, 'uberctx-uber-ctx-key': 'feature1', 'x-team': 'pay' };
  // No key in context: the invalid plain header decided, as for an app forwarding what it got.
  const followed = (id: string, send: (h: Record<string, string>) => Promise<void>) => send({ ...headers, 'x-request-id': id });
  await followed('redirect-fetch', async (h) => void (await (await fetch(`http://${FLEET}/moved`, { headers: h, dispatcher: agent } as RequestInit)).text()));
  const redirecting = agent.compose(interceptors.redirect({ maxRedirections: 1 }));
  await followed('redirect-undici', async (h) => void (await (await undiciRequest(`http://${FLEET}/moved`, { headers: h, dispatcher: redirecting })).body.text()));
  for (const id of ['redirect-fetch', 'redirect-undici']) {
    const got = received.get(id)!;
    t.equal(got.url, '/landed', `${id}: the redirect was followed`);
    assertClean(t, got, id, OTHER_BAGGAGE);
  }
});

t.test('a request sent through a forward proxy is judged by the host it names', async (t) => {
  // The proxy (127.0.0.1) is inside the fleet; the absolute-form target it passes the request to is not.
  const viaProxy = (id: string) => {
    const out = http.request({ host: '127.0.0.1', port: thirdPort, path: 'http://api.example.com/through', headers: { 'x-request-id': id, baggage: BAGGAGE } });
    out.end();
    return done(out);
  };
  await withRoutingKey('feature1', () => viaProxy('proxy-http'));
  const ids = ['proxy-http', 'proxy-undici'];
  await withRoutingKey('feature1', async () => {
    const { body } = await agent.request({ origin: `http://127.0.0.1:${thirdPort}`, path: 'http://api.example.com/through', method: 'GET', headers: { 'x-request-id': ids[1]!, baggage: BAGGAGE } });
    await body.text();
  });
  for (const id of ids) {
    const got = received.get(id)!;
    t.equal(got.url, 'http://api.example.com/through', `${id}: the proxy was sent the absolute form`);
    t.notOk(got.names.includes('uber-ctx-key'), `${id}: no plain header`);
    t.equal(got.headers['baggage'], OTHER_BAGGAGE, `${id}: the key's baggage entries stripped`);
  }
});

t.test('node:http2 sessions: no carrier for a host outside the fleet, requests to the fleet as the app wrote them', async (t) => {
  const forwardedHeaders = { 'uber-ctx-key': 'BAD', baggage: BAGGAGE, 'uberctx-uber-ctx-key': 'feature1', 'x-team': 'pay' };
  await h2(THIRD, { ...forwardedHeaders, 'x-request-id': 'h2-third' });
  assertClean(t, received.get('h2-third')!, 'http2 to a third party', OTHER_BAGGAGE);
  await h2(FLEET, { ...forwardedHeaders, 'x-request-id': 'h2-fleet' });
  const fleetGot = received.get('h2-fleet')!;
  t.same([fleetGot.headers['uber-ctx-key'], fleetGot.headers['baggage']], ['BAD', BAGGAGE], 'the fleet gets the headers unchanged');
  // A session opened for a fleet name, a request naming a third party in :authority.
  await h2(FLEET, { ...forwardedHeaders, ':authority': 'api.example.com', 'x-request-id': 'h2-authority' });
  assertClean(t, received.get('h2-authority')!, 'http2 with a third-party :authority', OTHER_BAGGAGE);
});

t.test('a grpc-js client the SDK does not instrument: metadata for a third-party authority loses the key', async (t) => {
  const echo = await startEcho('third');
  t.teardown(() => echo.close());
  const client = new EchoClient(echo.address, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'api.example.com' });
  t.teardown(() => client.close());
  const metadata = new grpc.Metadata();
  metadata.set('uber-ctx-key', 'feature1');
  metadata.set('baggage', BAGGAGE);
  metadata.set('uberctx-uber-ctx-key', 'feature1');
  metadata.set('x-app', 'mine');
  const seen = (await withRoutingKey('feature1', () => unary(client, {}, metadata))).value;
  t.same([seen?.plain, seen?.baggage, seen?.jaeger, seen?.other], [[], [OTHER_BAGGAGE], [], ['mine']], 'metadata the app set');
  // grpcInterceptor cannot see the target and writes the key; the transport below it still strips it.
  const intercepted = new EchoClient(echo.address, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'api.example.com', interceptors: [grpcInterceptor(grpc)] });
  t.teardown(() => intercepted.close());
  const written = (await withRoutingKey('feature1', () => unary(intercepted))).value;
  t.same([written?.plain, written?.baggage], [[], []], 'the key grpcInterceptor wrote');
});

// Last: it closes the SDK.
t.test('sdk.close() takes every hook off: headers go out as the app wrote them', async (t) => {
  await sdk.close();
  t.notOk(Object.hasOwn(http.ClientRequest.prototype, '_storeHeader'), 'node:http renders with its own step again');
  const headers = { 'uber-ctx-key': 'BAD', baggage: BAGGAGE, 'x-team': 'pay' };
  for (const client of ['raw headers', 'Expect: 100-continue', 'http2 session.request', 'fetch']) {
    const got = await forward(client, THIRD, headers);
    t.same([got.headers['uber-ctx-key'], got.headers['baggage']], ['BAD', BAGGAGE], client);
  }
});

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
