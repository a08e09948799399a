/*
 * Proxyless mode: services address each other by registry name (`http://b/`) and the SDK routes
 * every call in-process. Base and feature copies are separate servers on 127.0.0.1. Patches
 * globals: runs in its own process.
 */
import t from 'tap';
import http from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { FileSource } from '@devstack/registry-file';
import { LANE_HEADER, METRICS } from '@devstack/core';
import { RoutingRejectedError, getRoutingKey, init, withRouting, withRoutingKey } from '@devstack/sdk';
import { CHAIN_BY_KEY, ROUTING_TABLE, getJson, hops, lanes, startA, startB, startC, startD, type Running } from './fleet.ts';

// Copies: a has feature1 and feature2, b only feature1, c only feature2, d only feature1.
const servers: Record<string, Running> = {};
t.teardown(() => Promise.all(Object.values(servers).map((s) => s.close())));
for (const lane of ['base', 'feature1']) servers[`d:${lane}`] = await startD(lane);
// c calls d with an explicit port: the Host header the app meant keeps it.
for (const lane of ['base', 'feature2']) servers[`c:${lane}`] = await startC(lane, () => 'http://d:8080/');
for (const lane of ['base', 'feature1']) servers[`b:${lane}`] = await startB(lane, () => 'http://c/');
for (const lane of ['base', 'feature1', 'feature2']) servers[`a:${lane}`] = await startA(lane, () => 'http://a-next/');

function registryYaml(extra = ''): string {
  const lines = ['services:'];
  const names = ['a', 'b', 'c', 'd'];
  for (const name of names) {
    lines.push(`  ${name}:`, `    base: ${servers[`${name}:base`]!.url}`, '    features:');
    for (const [id, s] of Object.entries(servers)) if (id.startsWith(`${name}:`) && !id.endsWith(':base')) lines.push(`      ${id.split(':')[1]}: ${s.url}`);
  }
  // a's next hop is b under another name, to show any registry name routes.
  lines.push('  a-next:', `    base: ${servers['b:base']!.url}`, '    features:', `      feature1: ${servers['b:feature1']!.url}`);
  return lines.join('\n') + '\n' + extra;
}

const dir = t.testdir({});
const path = join(dir, 'registry.yaml');
await writeFile(path, registryYaml());
const source = new FileSource({ path, persistent: false });
t.teardown(() => source.close());
const metrics = new Registry();
const sdk = init({ registry: source, domains: ['example.com'], metrics });
t.teardown(() => sdk.close());
t.equal(await sdk.ready, true, 'routing has a snapshot');

// The edge: reads the key (Host included) and calls `a` by name, like an ingress with the SDK.
const edge = http.createServer(
  withRouting(async (_req, res) => {
    const r = await fetch('http://a/');
    res.setHeader(LANE_HEADER, r.headers.get(LANE_HEADER) ?? 'none');
    res.setHeader('content-type', 'application/json');
    res.end(await r.text());
  }),
);
await new Promise<void>((r) => edge.listen(0, '127.0.0.1', r));
t.teardown(() => new Promise<void>((r) => edge.close(() => r())));
const edgeUrl = `http://127.0.0.1:${(edge.address() as { port: number }).port}/`;


t.test('the DESIGN.md routing table and the chain rule, end to end', async (t) => {
  for (const [name, headers, expected, key] of ROUTING_TABLE) {
    const { status, lane, body } = await getJson(edgeUrl, headers);
    t.equal(status, 200, name);
    t.same(lanes(body), expected, `${name}: ${expected.join(' -> ')}`);
    t.equal(lane, expected[0]!.split(':')[1], `${name}: the caller sees the lane in ${LANE_HEADER}`);
    for (const h of hops(body)) t.equal(h.key, key, `${name}: ${h.service} carries the key through base hops`);
    // Each client (fetch, undici, http.request) sees the lane it was routed to.
    const chain = hops(body);
    for (let i = 0; i + 1 < chain.length; i++) t.equal(chain[i]!.nextLane, chain[i + 1]!.lane, `${name}: ${chain[i]!.service} -> ${chain[i + 1]!.service} lane header`);
  }
});

t.test('the Host header the app meant is kept, port included', async (t) => {
  const { body } = await getJson(edgeUrl, { 'uber-ctx-key': 'feature1' });
  const chain = hops(body);
  t.equal(chain[1]!.host, 'a-next');
  t.equal(chain[2]!.host, 'c');
  t.equal(chain[3]!.host, 'd:8080');
});

t.test('a feature copy keeps calls in its lane when the request arrives without a key', async (t) => {
  // b's feature1 copy called directly, with no key: its default key routes c, d as feature1 would.
  const { body } = await getJson(servers['b:feature1']!.url);
  t.same(lanes(body), ['b:feature1', 'c:base', 'd:feature1']);
  t.same(hops(body).map((h) => h.key), ['feature1', 'feature1', 'feature1']);
});

t.test('concurrent requests with different keys are each routed by their own key', async (t) => {
  const keys = ['feature1', 'feature2', 'feature9', undefined];
  const expected = CHAIN_BY_KEY;
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) => {
      const key = keys[i % keys.length];
      return withRoutingKey(key, async () => ({ key: key ?? 'none', res: await (await fetch('http://a/')).json() }));
    }),
  );
  const wrong = results.filter(({ key, res }) => lanes(res as Parameters<typeof hops>[0]).join(',') !== expected[key]);
  t.equal(wrong.length, 0);
});

t.test('metrics use the sidecar names', async (t) => {
  const text = await metrics.metrics();
  t.match(text, new RegExp(`${METRICS.requests}\\{direction="outbound",service="a",lane="feature1",status="200"\\} \\d+`));
  t.match(text, new RegExp(`${METRICS.registryServices} 5`));
  t.match(text, METRICS.duration);
});

t.test('a registry change is used for the next call', async (t) => {
  await writeFile(path, registryYaml().replace(/( {2}d:\n {4}base: )\S+/, `$1${servers['d:feature1']!.url}`));
  await source.reload();
  const { body } = await getJson(edgeUrl, { 'uber-ctx-key': 'feature2' });
  t.equal(hops(body).at(-1)?.lane, 'feature1', 'd base now points at the other server');
  await writeFile(path, registryYaml());
  await source.reload();
});

t.test('hosts that are not registry services are left alone', async (t) => {
  const res = await withRoutingKey('feature1', () => fetch(`${servers['d:base']!.url}/`));
  const body = (await res.json()) as { lane: string; key: string };
  t.equal(body.lane, 'base');
  t.equal(body.key, 'feature1', 'still given the key: 127.0.0.1 is local');
  t.equal(res.headers.get(LANE_HEADER), 'base', 'its own inbound header, untouched');
});

t.test('strict mode refuses an unknown key through the error path, never a throw', async (t) => {
  await sdk.close();
  const strict = init({ registry: source, strict: true });
  t.teardown(() => strict.close());
  await strict.ready;
  await withRoutingKey('feature9', async () => {
    const error = await fetch('http://a/').then(
      () => undefined,
      (e: Error) => e,
    );
    t.type((error as Error & { cause?: unknown })?.cause, RoutingRejectedError, 'fetch rejects with the refusal as cause');
    t.equal(getRoutingKey(), 'feature9');
    const httpError = await new Promise<Error>((resolve) => {
      const req = http.get('http://b/', () => resolve(new Error('unexpected response')));
      req.on('error', resolve);
    });
    t.type(httpError, RoutingRejectedError, 'http.get emits it as an error event');
    t.equal((httpError as RoutingRejectedError).code, 'DEVSTACK_NO_FEATURE_COPY', 'the code the sidecar answers with');
    t.equal((httpError as RoutingRejectedError).status, 503, 'and its status');
  });
  const ok = await withRoutingKey('feature1', () => fetch('http://a/'));
  t.equal(ok.status, 200, 'keys with copies still route');
  await ok.arrayBuffer();
});
