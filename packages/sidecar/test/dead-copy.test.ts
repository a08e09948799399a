import t from 'tap';
import { createServer as createHttpServer, request, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { h2Client, h2Send, h2Upstream, grpcFrame } from './h2-helpers.ts';
import { send, sidecar, upstream, writeRegistry, type Tap } from './helpers.ts';

const KEY = { 'uber-ctx-key': 'feature1' };

/** A copy that answers with its name, on a port it can be stopped on and started on again. */
async function copy(t: Tap): Promise<{ origin: string; stop(): Promise<void>; start(): Promise<void>; hits(): number }> {
  let hits = 0;
  let server: Server | undefined;
  let port = 0;
  const start = async () => {
    server = createHttpServer((req, res) => {
      hits++;
      req.resume();
      req.on('end', () => res.end(JSON.stringify({ name: 'copy' })));
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  };
  const stop = () => {
    const s = server;
    server = undefined;
    if (s === undefined) return Promise.resolve();
    s.closeAllConnections();
    return new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await start();
  t.teardown(stop);
  return { origin: `http://127.0.0.1:${port}`, stop, start, hits: () => hits };
}

/** A copy that accepts every connection and resets it at the first byte it receives. */
async function resetting(t: Tap): Promise<{ origin: string; connections(): number }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('data', () => socket.resetAndDestroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    sockets.forEach((s) => s.destroy());
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections };
}

async function metric(s: { metrics: { registry: { getSingleMetricAsString(name: string): Promise<string> } } }, name: string): Promise<string> {
  return s.metrics.registry.getSingleMetricAsString(name);
}

t.test('a copy that dies mid-run: every method answers from base, and the copy is used again once back', async (t) => {
  const base = await upstream(t, 'base');
  const feature = await copy(t);
  let now = 1_000_000;
  const s = await sidecar(t, writeRegistry(t.testdir(), { orders: { base: base.origin, features: { feature1: feature.origin } } }), { passiveHealth: { now: () => now } });
  const port = s.addresses.outbound!.port;

  const before = await send(port, { headers: { host: 'orders', ...KEY } });
  t.equal(before.headers['x-devstack-lane'], 'feature1');
  t.equal(before.json()['name'], 'copy');

  await feature.stop();
  for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    const body = method === 'POST' || method === 'PUT' || method === 'PATCH' ? '{"order":1}' : undefined;
    const reply = await send(port, { method, headers: { host: 'orders', ...KEY, ...(body ? { 'content-type': 'application/json' } : {}) }, body });
    t.equal(reply.status, 200, `${method} answered`);
    t.equal(reply.headers['x-devstack-lane'], 'base', `${method} says the lane that served it`);
    t.equal(reply.headers['x-upstream'], 'base', `${method} from base`);
    if (body !== undefined) t.equal(reply.json()['body'], body, `${method}'s body reached base whole`);
  }
  const routes = await send(s.addresses.admin!.port, { path: '/routes' });
  const health = routes.json()['health'] as { origin: string; ejectedUntil?: number }[];
  t.equal(health.length, 1);
  t.equal(health[0]!.origin, feature.origin);
  t.ok(health[0]!.ejectedUntil! > now, 'shown ejected in /routes');
  t.match(await metric(s, 'devstack_upstream_ejections_total'), /devstack_upstream_ejections_total\{direction="outbound",service="orders",lane="feature1"\} 1$/m);
  t.match(await metric(s, 'devstack_upstream_failovers_total'), /\{direction="outbound",service="orders",from="feature1",to="base"\} 1$/m, 'one failover: the ejected copy is passed over afterwards');

  await feature.start();
  const hits = feature.hits();
  now += 20_000; // past the longest ejection
  const back = await send(port, { headers: { host: 'orders', ...KEY } });
  t.equal(back.headers['x-devstack-lane'], 'feature1', 'the copy serves its key again');
  t.equal(back.json()['name'], 'copy');
  t.equal(feature.hits(), hits + 1);
  const after = await send(s.addresses.admin!.port, { path: '/routes' });
  t.same(after.json()['health'], [], 'its record is cleared by the connection made');
});

t.test('without passive health a dead copy still falls back, and is tried again by every call', async (t) => {
  const base = await upstream(t, 'base');
  const feature = await copy(t);
  const s = await sidecar(t, writeRegistry(t.testdir(), { orders: { base: base.origin, features: { feature1: feature.origin } } }), { passiveHealth: false });
  await feature.stop();
  for (let i = 0; i < 2; i++) {
    const reply = await send(s.addresses.outbound!.port, { headers: { host: 'orders', ...KEY } });
    t.equal(reply.headers['x-devstack-lane'], 'base');
  }
  t.match(await metric(s, 'devstack_upstream_failovers_total'), /to="base"\} 2$/m, 'each call found it dead');
  t.notMatch(await metric(s, 'devstack_upstream_ejections_total'), /\} \d/, 'nothing ejected');
  const routes = await send(s.addresses.admin!.port, { path: '/routes' });
  t.same(routes.json()['health'], []);
});

t.test('strict mode: a dead copy is 503 DEVSTACK_NO_READY_UPSTREAM, never base', async (t) => {
  const base = await upstream(t, 'base');
  const feature = await copy(t);
  const s = await sidecar(t, writeRegistry(t.testdir(), { orders: { base: base.origin, features: { feature1: feature.origin } } }), { strict: true });
  await feature.stop();
  for (let i = 0; i < 2; i++) {
    const reply = await send(s.addresses.outbound!.port, { headers: { host: 'orders', ...KEY } });
    t.equal(reply.status, 503);
    t.equal((reply.json()['error'] as { code: string }).code, 'DEVSTACK_NO_READY_UPSTREAM');
    t.equal(reply.headers['x-devstack-lane'], 'feature1');
  }
  t.equal(base.hits, 0);
});

t.test('a second ready target of the lane is tried before base', async (t) => {
  const base = await upstream(t, 'base');
  const dead = await copy(t);
  const alive = await upstream(t, 'copy-2');
  const s = await sidecar(t, writeRegistry(t.testdir(), { orders: { base: base.origin, features: { feature1: [dead.origin, alive.origin] } } }));
  await dead.stop();
  for (let i = 0; i < 4; i++) {
    const reply = await send(s.addresses.outbound!.port, { headers: { host: 'orders', ...KEY } });
    t.equal(reply.headers['x-upstream'], 'copy-2');
    t.equal(reply.headers['x-devstack-lane'], 'feature1');
  }
  t.equal(base.hits, 0);
});

t.test('a copy that accepts and resets: GET goes on to base, a POST whose body was partly sent does not', async (t) => {
  const base = await upstream(t, 'base');
  const feature = await resetting(t);
  const s = await sidecar(t, writeRegistry(t.testdir(), { orders: { base: base.origin, features: { feature1: feature.origin } } }));
  const port = s.addresses.outbound!.port;

  const get = await send(port, { headers: { host: 'orders', ...KEY } });
  t.equal(get.status, 200);
  t.equal(get.headers['x-upstream'], 'base');
  t.equal(get.headers['x-devstack-lane'], 'base');
  t.equal(base.hits, 1);

  // Half the body now, the rest never: the copy has received the request's first bytes.
  const reply = await new Promise<{ status: number; code: unknown }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { host: 'orders', ...KEY, 'content-length': '100' }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode!, code: (JSON.parse(Buffer.concat(chunks).toString()) as { error: { code: unknown } }).error.code });
        req.destroy();
      });
    });
    req.on('error', reject);
    req.write('x'.repeat(50));
  });
  t.equal(reply.status, 502, 'the failure is answered');
  t.match(reply.code, /^DEVSTACK_UPSTREAM_/);
  t.equal(base.hits, 1, 'the POST never reached base');
});

t.test('gRPC to a dead copy falls back to base with its whole body', async (t) => {
  const base = await h2Upstream(t, 'base');
  const dead = await h2Upstream(t, 'copy');
  const deadOrigin = dead.origin;
  const s = await sidecar(t, writeRegistry(t.testdir(), { inventory: { base: [{ url: base.origin, protocol: 'h2c' }], features: { feature1: [{ url: deadOrigin, protocol: 'h2c' }] } } }));
  await new Promise<void>((resolve) => dead.server.close(() => resolve()));
  const session = h2Client(t, s.addresses.outbound!.port);
  const frame = grpcFrame('order-1');
  for (let i = 0; i < 2; i++) {
    const reply = await h2Send(session, { ':method': 'POST', ':path': '/shop.Inventory/Get', ':authority': 'inventory', 'content-type': 'application/grpc', te: 'trailers', ...KEY }, frame);
    t.equal(reply.status, 200);
    t.equal(reply.headers['x-devstack-lane'], 'base');
    t.equal(reply.headers['x-upstream'], 'base');
    t.equal((JSON.parse(reply.body) as { body: string }).body, frame.toString(), 'the call reached base whole');
  }
  t.equal(dead.streams.length, 0);
});
