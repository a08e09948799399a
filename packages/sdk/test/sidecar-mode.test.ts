/*
 * Sidecar mode: the SDK only carries the key (`init()`, no registry) and every service calls the
 * next one by its registry name (`http://b/`) through a real outbound sidecar used as an HTTP proxy:
 * a with fetch (ProxyAgent, absolute-form), b with undici (ProxyAgent, CONNECT tunnel), c with
 * http.request (absolute-form). Requests come in through the same sidecar's edge listener, or
 * straight to a copy. Both the SDK and the sidecar write the key: every hop must get it once.
 * Patches globals: runs in its own process.
 */
import t from 'tap';
import dc from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ProxyAgent } from 'undici';
import { FileSource } from '@devstack/registry-file';
import { LANE_HEADER, baggageValues } from '@devstack/core';
import { Sidecar, createLogger } from '@devstack/sidecar';
import { getRoutingKey, init } from '@devstack/sdk';
import { CHAIN_BY_KEY, ROUTING_TABLE, getJson, hops, lanes, startA, startB, startC, startD, type Hop, type Running, type Via } from './fleet.ts';

const sdk = init();
t.teardown(() => sdk.close());

// How each caller reaches the sidecar; filled in once it listens (the services read it per call).
const via: Record<'a' | 'b' | 'c', Via> = { a: {}, b: {}, c: {} };

// Copies: a has feature1 and feature2, b only feature1, c only feature2, d only feature1.
const copies: Record<string, string[]> = { a: ['feature1', 'feature2'], b: ['feature1'], c: ['feature2'], d: ['feature1'] };
const servers: Record<string, Running> = {};
t.teardown(() => Promise.all(Object.values(servers).map((s) => s.close())));
for (const lane of ['base', ...copies['d']!]) servers[`d:${lane}`] = await startD(lane);
for (const lane of ['base', ...copies['c']!]) servers[`c:${lane}`] = await startC(lane, () => 'http://d/', via.c);
for (const lane of ['base', ...copies['b']!]) servers[`b:${lane}`] = await startB(lane, () => 'http://c/', via.b);
for (const lane of ['base', ...copies['a']!]) servers[`a:${lane}`] = await startA(lane, () => 'http://b/', via.a);

const services = Object.fromEntries(
  Object.entries(copies).map(([name, features]) => [
    name,
    { base: servers[`${name}:base`]!.url, features: Object.fromEntries(features.map((f) => [f, servers[`${name}:${f}`]!.url])) },
  ]),
);
const path = join(t.testdir({}), 'registry.json');
await writeFile(path, JSON.stringify({ services }));

const sidecar = new Sidecar({
  source: new FileSource({ path, persistent: false }),
  outbound: { port: 0 },
  edge: { port: 0, host: '127.0.0.1', domains: ['example.com'], entry: 'a' },
  logger: createLogger('silent'),
});
const { outbound, edge } = await sidecar.start();
t.teardown(() => sidecar.close());
const proxyUri = `http://127.0.0.1:${outbound!.port}`;
via.a.dispatcher = new ProxyAgent({ uri: proxyUri, proxyTunnel: false });
via.b.dispatcher = new ProxyAgent({ uri: proxyUri, proxyTunnel: true });
via.c.proxy = { host: '127.0.0.1', port: outbound!.port };
t.teardown(() => Promise.all([via.a.dispatcher!.close(), via.b.dispatcher!.close()]));
const edgeUrl = `http://127.0.0.1:${edge!.port}/`;

type Check = Pick<typeof t, 'equal' | 'same'>;

/**
 * The key in context at every hop, and once in the plain header and once in `baggage` (or in
 * neither) on every request a sidecar forwarded: all of them, or all but the first when the test
 * called the first service directly (`direct`).
 */
function onceEverywhere(t: Check, body: Hop, key: string | null, name: string, direct = false): void {
  for (const [i, h] of hops(body).entries()) {
    t.equal(h.key, key, `${name}: ${h.service} sees ${key ?? 'no key'} in context`);
    if (direct && i === 0) continue;
    t.equal(h.plain, key, `${name}: ${h.service} got ${key === null ? 'no plain header' : 'one plain header'}`);
    t.same(h.entries, key === null ? [] : [key], `${name}: ${h.service} got ${key === null ? 'no' : 'one'} baggage entry`);
  }
}

/** Every caller saw, in `x-devstack-lane`, the lane that served it. */
function laneHeaders(t: Check, body: Hop, name: string): void {
  const chain = hops(body);
  for (let i = 0; i + 1 < chain.length; i++) {
    t.equal(chain[i]!.nextLane, chain[i + 1]!.lane, `${name}: ${chain[i]!.service} -> ${chain[i + 1]!.service} ${LANE_HEADER}`);
  }
}

t.test('the DESIGN.md routing table and the chain rule, through the sidecar at every hop', async (t) => {
  for (const [name, headers, expected, key] of ROUTING_TABLE) {
    const { status, lane, body } = await getJson(edgeUrl, headers);
    t.equal(status, 200, name);
    t.same(lanes(body), expected, `${name}: ${expected.join(' -> ')}`);
    t.equal(lane, expected[0]!.split(':')[1], `${name}: the client sees the lane in ${LANE_HEADER}`);
    onceEverywhere(t, body, key, name);
    laneHeaders(t, body, name);
  }
});

t.test('the key survives every hop whatever carrier it entered with', async (t) => {
  const carriers: Array<[string, Record<string, string>]> = [
    ['plain header', { 'uber-ctx-key': 'feature1' }],
    ['baggage', { baggage: 'team=pay,uber-ctx-key=feature1;prop=x' }],
    ['jaeger', { 'uberctx-uber-ctx-key': 'feature1' }],
    ['all three', { 'uber-ctx-key': 'feature1', baggage: 'uber-ctx-key=feature1', 'uberctx-uber-ctx-key': 'feature1' }],
  ];
  for (const [name, headers] of carriers) {
    // Through the edge: the sidecar normalises the carrier before a's SDK reads it.
    const viaEdge = await getJson(edgeUrl, { host: 'example.com', ...headers });
    t.same(lanes(viaEdge.body), ['a:feature1', 'b:feature1', 'c:base', 'd:feature1'], `edge, ${name}: routed by the key`);
    onceEverywhere(t, viaEdge.body, 'feature1', `edge, ${name}`);
    // Straight to a's base copy: a's SDK reads the carrier itself; the sidecar routes from b on.
    const direct = await getJson(servers['a:base']!.url, headers);
    t.same(lanes(direct.body), ['a:base', 'b:feature1', 'c:base', 'd:feature1'], `direct, ${name}: routed from the second hop`);
    onceEverywhere(t, direct.body, 'feature1', `direct, ${name}`, true);
    laneHeaders(t, direct.body, `direct, ${name}`);
  }
  // The sidecar merges the key into the client's baggage without dropping the other entries.
  const { body } = await getJson(edgeUrl, { host: 'example.com', baggage: 'team=pay,uber-ctx-key=feature1' });
  t.match(body.baggage, /(^|,)\s*team=pay\s*(,|$)/, 'other baggage entries reach a');
});

t.test('a feature copy keeps calls in its lane when the request arrives without a key', async (t) => {
  // No sidecar default key here: the SDK's lane (b's feature1 copy) is the key its calls carry.
  const b1 = await getJson(servers['b:feature1']!.url);
  t.same(lanes(b1.body), ['b:feature1', 'c:base', 'd:feature1']);
  onceEverywhere(t, b1.body, 'feature1', 'b:feature1', true);
  const c2 = await getJson(servers['c:feature2']!.url);
  t.same(lanes(c2.body), ['c:feature2', 'd:base']);
  onceEverywhere(t, c2.body, 'feature2', 'c:feature2', true);
  // A key the request does bring wins over the copy's own.
  const b2 = await getJson(servers['b:feature1']!.url, { 'uber-ctx-key': 'feature2' });
  t.same(lanes(b2.body), ['b:feature1', 'c:feature2', 'd:base']);
  onceEverywhere(t, b2.body, 'feature2', 'b:feature1 called with feature2', true);
});

t.test('what the SDK hands the sidecar: the key once, in one header and one baggage line', async (t) => {
  // Every request the outbound listener receives, as it came off the wire (the CONNECT tunnel's too).
  const seen: Array<{ url: string; raw: string[] }> = [];
  const onRequest = (m: unknown): void => {
    const { request } = m as { request: IncomingMessage };
    if (request.socket.localPort === outbound!.port) seen.push({ url: request.url ?? '', raw: request.rawHeaders });
  };
  const connects: string[] = [];
  // The sidecar runs in this process: its own upstream calls must not get the key from the SDK.
  const upstreams = new Set(Object.values(servers).map((s) => s.url));
  const forwarded: Array<string | undefined> = [];
  const onCreate = (m: unknown): void => {
    const { request } = m as { request: { method: string; path: string; origin: unknown } };
    if (request.method === 'CONNECT') connects.push(request.path);
    if (upstreams.has(String(request.origin))) forwarded.push(getRoutingKey());
  };
  dc.subscribe('http.server.request.start', onRequest);
  dc.subscribe('undici:request:create', onCreate);
  // A fresh tunnel, so this request's CONNECT is seen (the file's teardown closes the new one).
  const used = via.b.dispatcher!;
  via.b.dispatcher = new ProxyAgent({ uri: proxyUri, proxyTunnel: true });
  await used.close();
  try {
    const { body } = await getJson(edgeUrl, { host: 'example.com', baggage: 'team=pay,uber-ctx-key=feature1' });
    t.same(lanes(body), ['a:feature1', 'b:feature1', 'c:base', 'd:feature1']);
  } finally {
    dc.unsubscribe('http.server.request.start', onRequest);
    dc.unsubscribe('undici:request:create', onCreate);
  }
  t.same(connects, ['c:80'], 'b reached the sidecar through a CONNECT tunnel');
  t.same(forwarded, [undefined, undefined, undefined, undefined], 'the sidecar forwards with no key in the SDK context');
  t.same(seen.map((r) => r.url), ['http://b/', '/', 'http://d/'], 'a and c sent absolute-form, b tunnelled');
  for (const { url, raw } of seen) {
    const values = (name: string) => raw.filter((_, i) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === name);
    t.same(values('uber-ctx-key'), ['feature1'], `${url}: one plain header`);
    const baggage = values('baggage');
    t.equal(baggage.length, 1, `${url}: one baggage line`);
    t.same([...baggageValues(baggage.join(','), 'uber-ctx-key')], ['feature1'], `${url}: one baggage entry`);
    t.same(values('uberctx-uber-ctx-key'), [], `${url}: no Jaeger header added`);
  }
});

t.test('concurrent requests with different keys are each routed by their own key', async (t) => {
  const keys = ['feature1', 'feature2', 'feature9', undefined];
  const expected = CHAIN_BY_KEY;
  const results = await Promise.all(
    Array.from({ length: 120 }, async (_, i) => {
      const key = keys[i % keys.length];
      const { body } = await getJson(edgeUrl, key === undefined ? { host: 'example.com' } : { host: `${key}.example.com` });
      return { key: key ?? 'none', body };
    }),
  );
  const wrong = results.filter(({ key, body }) => {
    const seen = hops(body);
    return lanes(body).join(',') !== expected[key] || seen.some((h) => (h.key ?? 'none') !== key || h.entries.length > 1);
  });
  t.equal(wrong.length, 0, 'every hop of every request was routed by, and saw, its own key');
});
