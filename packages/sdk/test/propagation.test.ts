/*
 * Sidecar-less propagation: services call each other by address and the SDK only carries the key
 * (a sidecar, when there is one, does the routing). Patches globals: runs in its own process.
 */
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request as undiciRequest } from 'undici';
import { baggageValues } from '@devstack/core';
import { getRoutingKey, init, withRoutingKey } from '@devstack/sdk';
import { getJson, hops, startA, startB, startC, startD, type Running } from './fleet.ts';

const sdk = init();
t.teardown(() => sdk.close());

const servers: Running[] = [];
t.teardown(() => Promise.all(servers.map((s) => s.close())));
const d = await startD('base');
const c = await startC('base', () => d.url);
const b = await startB('base', () => c.url);
const a = await startA('base', () => b.url);
servers.push(a, b, c, d);

t.test('the key survives every hop, from whichever carrier it arrived in', async (t) => {
  const carriers: Array<[string, Record<string, string>]> = [
    ['plain header', { 'uber-ctx-key': 'feature1' }],
    ['baggage', { baggage: 'team=pay,uber-ctx-key=feature1;prop=x' }],
    ['jaeger', { 'uberctx-uber-ctx-key': 'feature1' }],
  ];
  for (const [name, headers] of carriers) {
    const { status, body } = await getJson(a.url, headers);
    t.equal(status, 200, name);
    const chain = hops(body);
    t.same(chain.map((h) => h.service), ['a', 'b', 'c', 'd'], `${name}: every service answered`);
    for (const h of chain) {
      t.equal(h.key, 'feature1', `${name}: ${h.service} sees the key in context`);
      if (h.service === 'a') continue;
      t.equal(h.plain, 'feature1', `${name}: ${h.service} got the plain header`);
      t.same(h.entries, ['feature1'], `${name}: ${h.service} got exactly one baggage entry`);
    }
  }
});

t.test('no key in, no key out', async (t) => {
  const { body } = await getJson(a.url);
  for (const h of hops(body)) {
    t.equal(h.key, null, h.service);
    t.equal(h.plain, null, h.service);
    t.same(h.entries, [], h.service);
  }
});

t.test('inbound responses say which lane served them', async (t) => {
  const { lane, body } = await getJson(a.url, { 'uber-ctx-key': 'feature1' });
  t.equal(lane, 'base');
  t.equal(body.nextLane, 'base', 'Express sets it');
  t.equal(body.next?.nextLane, 'base', 'Fastify sets it');
});

t.test('malformed carriers never throw and never become a key', async (t) => {
  const bad: Array<Record<string, string>> = [
    { 'uber-ctx-key': 'Feature_1!' },
    { 'uber-ctx-key': 'feature1, feature2' },
    { 'uber-ctx-key': 'x'.repeat(500) },
    { 'uber-ctx-key': '' },
    { baggage: 'uber-ctx-key=%E0%A4%A' },
    { baggage: 'uber-ctx-key=feature1,uber-ctx-key=feature2' },
    { baggage: ',,;=;,==,uber-ctx-key' },
    { 'uberctx-uber-ctx-key': '%zz' },
    // An invalid deciding carrier is not rescued by a valid lower one.
    { 'uber-ctx-key': 'BAD', baggage: 'uber-ctx-key=feature1' },
  ];
  for (const headers of bad) {
    const { status, body } = await getJson(a.url, headers);
    t.equal(status, 200, JSON.stringify(headers));
    for (const h of hops(body)) t.equal(h.key, null, `${h.service} has no key for ${JSON.stringify(headers).slice(0, 60)}`);
  }
});

t.test('a POST body parsed by Express does not lose the key', async (t) => {
  const res = await withRoutingKey('feature7', () =>
    fetch(b.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ big: 'x'.repeat(200_000) }) }),
  );
  const body = (await res.json()) as Parameters<typeof hops>[0];
  t.same(hops(body).map((h) => h.key), ['feature7', 'feature7', 'feature7']);
});

t.test('hundreds of interleaved requests never see each other\'s key', async (t) => {
  const keys = Array.from({ length: 300 }, (_, i) => (i % 7 === 0 ? undefined : `k${i % 41}`));
  const results = await Promise.all(
    keys.map((key, i) => {
      // Alternate between a client-sent header and a key set in this process's context.
      if (i % 2 === 0) return getJson(a.url, key === undefined ? {} : { 'uber-ctx-key': key });
      return withRoutingKey(key, async () => {
        await new Promise((r) => setImmediate(r));
        return getJson(a.url, key === undefined ? {} : { 'uber-ctx-key': getRoutingKey()! });
      });
    }),
  );
  let wrong = 0;
  results.forEach(({ body }, i) => {
    for (const h of hops(body)) if (h.key !== (keys[i] ?? null) || h.entries.length > 1) wrong++;
  });
  t.equal(wrong, 0, 'every hop of every request saw its own key');
});

t.test('withRoutingKey returns what fn returns and scopes the key', async (t) => {
  t.equal(getRoutingKey(), undefined);
  t.equal(withRoutingKey('job1', () => 42), 42);
  const seen = await withRoutingKey('job1', async () => {
    const inner = withRoutingKey('job2', () => getRoutingKey());
    await new Promise((r) => setTimeout(r, 1));
    const later = await new Promise<string | undefined>((r) => setTimeout(() => r(getRoutingKey()), 1));
    return [getRoutingKey(), inner, later, withRoutingKey(undefined, () => getRoutingKey()), withRoutingKey('Not A Key', () => getRoutingKey())];
  });
  t.same(seen, ['job1', 'job2', 'job1', undefined, undefined]);
  t.equal(getRoutingKey(), undefined);
});

t.test('no key leaks to a host outside the allow-list', async (t) => {
  const received: http.IncomingHttpHeaders[] = [];
  const third = http.createServer((req, res) => {
    received.push(req.headers);
    res.end('ok');
  });
  await new Promise<void>((r) => third.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => third.close(() => r())));
  const port = (third.address() as AddressInfo).port;
  // Public-looking and cluster-local names, both answered by the server on 127.0.0.1.
  const lookup = (_host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) =>
    options.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4);
  const agent = new Agent({ connect: { lookup: lookup as never } });
  t.teardown(() => agent.close());
  const viaHttp = (host: string, headers: Record<string, string> = {}) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(`http://${host}:${port}/`, { lookup: lookup as never, headers }, (res) => res.resume().on('end', resolve));
      req.on('error', reject);
      req.end();
    });
  await withRoutingKey('feature1', async () => {
    await (await fetch(`http://api.example.com:${port}/`, { dispatcher: agent } as RequestInit)).text();
    await (await undiciRequest(`http://api.example.com:${port}/`, { dispatcher: agent })).body.text();
    await viaHttp('api.example.com');
    // The app's own baggage entries still reach the third party; only ours is taken out.
    await viaHttp('api.example.com', { baggage: 'team=pay,uber-ctx-key=feature1', 'uberctx-uber-ctx-key': 'feature1' });
    await (await fetch(`http://orders.shop.svc.cluster.local:${port}/`, { dispatcher: agent } as RequestInit)).text();
    await viaHttp('orders.shop.svc.cluster.local');
  });
  t.equal(received.length, 6);
  for (const h of received.slice(0, 4)) {
    t.equal(h['uber-ctx-key'], undefined, 'no plain header');
    t.equal(h['uberctx-uber-ctx-key'], undefined, 'no jaeger header');
    t.same(baggageValues(h.baggage, 'uber-ctx-key'), [], 'no baggage entry');
  }
  t.equal(received[3]!.baggage, 'team=pay');
  for (const h of received.slice(4)) {
    t.equal(h['uber-ctx-key'], 'feature1', 'cluster-local names get the key');
    t.same(baggageValues(h.baggage, 'uber-ctx-key'), ['feature1']);
  }
});
