/*
 * A dead copy falls back: a feature copy the registry still lists ready but whose process is gone
 * (its server closed mid-run, the registry unchanged) or broken (it accepts and resets). Proxyless
 * calls of every client (fetch, undici, node:http) answer from base, the copy is passed over for a
 * while (a fake clock for the tracker) and used again once it is back. Patches globals: runs in its
 * own process.
 */
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { request as undiciRequest } from 'undici';
import { Registry } from 'prom-client';
import { LANE_HEADER, METRICS, StaticSource, buildSnapshot } from '@devstack/core';
import { RoutingRejectedError, init, withRoutingKey, type DevstackSdk, type InitOptions } from '@devstack/sdk';

interface Lane {
  readonly port: number;
  /** Requests it answered: method and body. */
  readonly seen: string[];
  close(): Promise<void>;
}

/** A service lane answering `{ lane }`; `port` 0 picks one, else listens there again. */
async function serve(lane: string, port = 0, seen: string[] = []): Promise<Lane> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push(`${req.method ?? ''} ${body}`);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ lane }));
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const bound = (server.address() as net.AddressInfo).port;
  return {
    port: bound,
    seen,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      // Two turns of the loop: the clients have read the end of their idle connections to it.
      await new Promise(setImmediate);
      await new Promise(setImmediate);
    },
  };
}

/** A copy that accepts, reads `after` bytes of the request, and resets the connection: no response byte. */
async function resetting(after: number): Promise<{ port: number; received: () => number; close: () => Promise<void> }> {
  let received = 0;
  const server = net.createServer((socket) => {
    let got = 0;
    socket.on('data', (chunk) => {
      got += chunk.length;
      received += chunk.length;
      if (got >= after) socket.resetAndDestroy();
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, received: () => received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

let now = 1_000_000;
const clock = { now: () => now };

const base = await serve('base');
let copy = await serve('feature1');
const copyPort = copy.port;
const broken = await resetting(1);
t.teardown(async () => {
  await base.close();
  await copy.close();
  await broken.close();
});

const source = new StaticSource(
  buildSnapshot({
    services: {
      orders: { base: `http://127.0.0.1:${base.port}`, features: { feature1: `http://127.0.0.1:${copyPort}` } },
      // A copy that accepts and resets every connection.
      stock: { base: `http://127.0.0.1:${base.port}`, features: { feature1: `http://127.0.0.1:${broken.port}` } },
    },
  }),
);
const metrics = new Registry();
let sdk: DevstackSdk = init({ registry: source, metrics, passiveHealth: { now: clock.now } });
t.teardown(() => sdk.close());
t.equal(await sdk.ready, true);

async function reinit(options: InitOptions): Promise<void> {
  await sdk.close();
  sdk = init(options);
  await sdk.ready;
}

type Client = 'fetch' | 'undici' | 'node:http';
const CLIENTS: Client[] = ['fetch', 'undici', 'node:http'];

/** One call to `service` with the key feature1, by `client`: its status and lane, or its error. */
function call(client: Client, service: string, method = 'GET', body?: string): Promise<{ status: number; lane: string | undefined; served: string } | { error: Error }> {
  return withRoutingKey('feature1', async () => {
    const url = `http://${service}/`;
    try {
      if (client === 'fetch') {
        const r = await fetch(url, { method, body });
        return { status: r.status, lane: r.headers.get(LANE_HEADER) ?? undefined, served: ((await r.json()) as { lane: string }).lane };
      }
      if (client === 'undici') {
        const r = await undiciRequest(url, { method: method as 'GET', body });
        return { status: r.statusCode, lane: r.headers[LANE_HEADER] as string | undefined, served: ((await r.body.json()) as { lane: string }).lane };
      }
      return await new Promise((resolve, reject) => {
        const req = http.request(url, { method }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, lane: res.headers[LANE_HEADER] as string | undefined, served: (JSON.parse(text) as { lane: string }).lane }));
        });
        req.on('error', reject);
        req.end(body);
      });
    } catch (error) {
      return { error: error as Error };
    }
  });
}

async function metric(name: string): Promise<Array<{ labels: Record<string, string | number>; value: number }>> {
  const m = metrics.getSingleMetric(name);
  return m === undefined ? [] : ((await m.get()).values as Array<{ labels: Record<string, string | number>; value: number }>);
}

t.test('a live copy serves its key', async (t) => {
  for (const client of CLIENTS) t.match(await call(client, 'orders'), { status: 200, lane: 'feature1', served: 'feature1' }, client);
});

t.test('the copy dies, the registry unchanged: every keyed call answers from base, none fails', async (t) => {
  await copy.close();
  for (let round = 0; round < 3; round++) {
    for (const client of CLIENTS) {
      for (const method of ['GET', 'POST', 'DELETE']) {
        const got = await call(client, 'orders', method, method === 'POST' ? '{"order":1}' : undefined);
        t.match(got, { status: 200, lane: 'base', served: 'base' }, `${client} ${method}, round ${round}`);
      }
    }
  }
  const health = sdk.health().find((h) => h.origin === `http://127.0.0.1:${copyPort}`);
  t.ok(health?.ejectedUntil !== undefined && health.ejectedUntil > now, 'sdk.health() shows the copy ejected');
  t.ok(health!.consecutiveFailures >= 1);
  const ejections = await metric(METRICS.upstreamEjections);
  t.match(ejections, [{ labels: { direction: 'outbound', service: 'orders', lane: 'feature1' } }], 'the ejection is counted');
  // The first connection refused ejected the copy: the calls after it went to base at once. (A
  // client's idle keep-alive connection to the copy may have been reused as it closed: reset, a GET
  // is sent again; so at most one call per client moved on.)
  const failovers = await metric(METRICS.upstreamFailovers);
  t.match(failovers, [{ labels: { service: 'orders', from: 'feature1', to: 'base' } }], 'calls moved on from the copy to base');
  t.ok(failovers[0]!.value >= 1 && failovers[0]!.value <= CLIENTS.length, `few calls tried the copy (${failovers[0]!.value} of ${CLIENTS.length * 9})`);
  const errors = await metric(METRICS.upstreamErrors);
  t.ok(errors.some((e) => e.labels['service'] === 'orders' && e.labels['code'] === 'DEVSTACK_UPSTREAM_UNREACHABLE' && e.value === 1), 'the refused connection is counted, once');
});

t.test('the copy comes back: once its ejection ends, calls go to it again', async (t) => {
  copy = await serve('feature1', copyPort);
  for (const client of CLIENTS) t.match(await call(client, 'orders'), { lane: 'base' }, `${client}: still passed over while ejected`);
  now += 10_000;
  for (const client of CLIENTS) t.match(await call(client, 'orders'), { status: 200, lane: 'feature1', served: 'feature1' }, `${client}: back in its lane`);
  t.same(sdk.health(), [], 'a connection made clears its record');
});

t.test('dead again: ejected at once, then back by itself, with a longer ejection each time in a row', async (t) => {
  await copy.close();
  // Bounded: a keep-alive connection reset as the copy closed is not a connect failure.
  for (let i = 0; i < 3 && sdk.health().length === 0; i++) t.match(await call('fetch', 'orders'), { lane: 'base' });
  const first = sdk.health()[0]!;
  t.equal(first.ejections, 1);
  now = first.ejectedUntil!;
  t.match(await call('fetch', 'orders'), { lane: 'base' }, 'tried after its ejection, still dead: base');
  const second = sdk.health()[0]!;
  t.equal(second.ejections, 2);
  t.equal(second.ejectedUntil! - now, 2000, 'the second ejection is twice the first (1 s)');
  copy = await serve('feature1', copyPort);
  now = second.ejectedUntil!;
  t.match(await call('fetch', 'orders'), { lane: 'feature1' }, 'back');
});

t.test('a copy that accepts and resets before answering', async (t) => {
  for (const client of ['fetch', 'undici'] as const) {
    const before = base.seen.length;
    t.match(await call(client, 'stock', 'GET'), { status: 200, lane: 'base', served: 'base' }, `${client}: an idempotent GET is sent again, to base`);
    t.equal(base.seen.length, before + 1);
  }
  const before = base.seen.length;
  const sentBefore = broken.received();
  const got = await withRoutingKey('feature1', async () => {
    // A body that streams: the copy read part of the request before it reset.
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"order":'));
      },
      pull() {
        return new Promise(() => {});
      },
    });
    try {
      await fetch('http://stock/', { method: 'POST', body, duplex: 'half' } as RequestInit);
      return undefined;
    } catch (error) {
      return error as Error;
    }
  });
  t.ok(got instanceof Error, 'a POST whose request reached the copy fails');
  t.ok(broken.received() > sentBefore, 'the copy had bytes of it');
  t.equal(base.seen.length, before, 'and it was not sent again anywhere');
  const nodeGet = await call('node:http', 'stock', 'GET');
  t.ok('error' in nodeGet, 'node:http: a request written is not sent again (the request cannot be replayed)');
});

t.test('never ejected (ejectAfter 1000): each call tries the dead copy first, and base gets the whole request', async (t) => {
  await copy.close();
  await reinit({ registry: source, metrics, passiveHealth: { ejectAfter: 1000, now: clock.now } });
  const count = async (name: string, labels: Record<string, string>) =>
    (await metric(name)).filter((m) => Object.entries(labels).every(([k, v]) => m.labels[k] === v)).reduce((n, m) => n + m.value, 0);
  const movedBefore = await count(METRICS.upstreamFailovers, { from: 'feature1', to: 'base' });
  const ejectedBefore = await count(METRICS.upstreamEjections, {});
  for (const client of CLIENTS) {
    for (const method of ['POST', 'PUT', 'GET']) {
      const body = method === 'GET' ? undefined : `{"client":"${client}","method":"${method}"}`;
      const before = base.seen.length;
      t.match(await call(client, 'orders', method, body), { status: 200, lane: 'base', served: 'base' }, `${client} ${method}`);
      t.same(base.seen.slice(before), [`${method} ${body ?? ''}`], `${client} ${method}: base got it once, body and all`);
    }
  }
  t.equal((await count(METRICS.upstreamFailovers, { from: 'feature1', to: 'base' })) - movedBefore, CLIENTS.length * 3, 'every call moved on');
  t.equal((await count(METRICS.upstreamEjections, {})) - ejectedBefore, 0, 'and none ejected it');
  copy = await serve('feature1', copyPort);
});

t.test('strict: a dead copy is DEVSTACK_NO_READY_UPSTREAM, not base', async (t) => {
  await copy.close();
  await reinit({ registry: source, strict: true, passiveHealth: { now: clock.now } });
  for (const client of CLIENTS) {
    for (let round = 0; round < 2; round++) {
      // GET: a POST on a keep-alive connection the copy closed as it died would fail with its reset.
      const got = await call(client, 'orders', 'GET');
      t.ok('error' in got, `${client}: fails`);
      const error = (got as { error: Error }).error;
      const rejected = error instanceof RoutingRejectedError ? error : (error.cause as Error | undefined);
      t.ok(rejected instanceof RoutingRejectedError, `${client}, round ${round}: a RoutingRejectedError`);
      t.equal((rejected as RoutingRejectedError).code, 'DEVSTACK_NO_READY_UPSTREAM');
      t.equal((rejected as RoutingRejectedError).status, 503);
    }
  }
  copy = await serve('feature1', copyPort);
});

t.test('passiveHealth: false leaves a dead copy the app\'s error, as before', async (t) => {
  await copy.close();
  await reinit({ registry: source, passiveHealth: false });
  const got = await call('fetch', 'orders');
  t.ok('error' in got);
  t.match(((got as { error: Error }).error.cause as { code?: string }).code, 'ECONNREFUSED');
  copy = await serve('feature1', copyPort);
});
