/*
 * The routing key as an OpenTelemetry propagator: a table of carriers through the W3C composite
 * with the SDK's RoutingPropagator, and the SDK's own middleware and gRPC server interceptor giving
 * the same key under OpenTelemetry's express and grpc instrumentations (which run handlers in a
 * context of their own: `next` in the context from before the middleware, gRPC handlers in
 * `propagation.extract(ROOT_CONTEXT, metadata)`). A NodeSDK starts after `init()` in this process,
 * with no duplicate registration. Own process: it patches http, express and grpc-js.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import t from 'tap';
import { DiagLogLevel, ROOT_CONTEXT, defaultTextMapGetter, defaultTextMapSetter, diag } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import type * as grpcTypes from '@grpc/grpc-js';
import type expressTypes from 'express';
import { baggageValues } from '@devstack/core';
import { RoutingPropagator, getRoutingKey, init, routingMiddleware } from '@devstack/sdk';
import { grpcServerInterceptor } from '@devstack/sdk/grpc';
import { EchoClient, startEcho, unary } from './grpc-echo.ts';

const problems: string[] = [];
const keep = (m: string) => void problems.push(m);
diag.setLogger({ verbose() {}, debug() {}, info() {}, warn: keep, error: keep }, DiagLogLevel.WARN);

process.env['OTEL_METRICS_EXPORTER'] = 'none';
process.env['OTEL_LOGS_EXPORTER'] = 'none';
const sdk = init();
t.teardown(() => sdk.close());
const dropSpans = { onStart() {}, onEnd() {}, forceFlush: async () => {}, shutdown: async () => {} };
const otel = new NodeSDK({
  instrumentations: [new HttpInstrumentation(), new ExpressInstrumentation(), new GrpcInstrumentation(), new UndiciInstrumentation()],
  resourceDetectors: [],
  spanProcessors: [dropSpans],
});
otel.start();
t.teardown(() => otel.shutdown());
// The instrumentations patch on require.
const require = createRequire(import.meta.url);
require('http');
const express = require('express') as typeof expressTypes;
const grpc = require('@grpc/grpc-js') as typeof grpcTypes;

t.test('the propagator in the W3C composite: a table of carriers', async (t) => {
  const composite = new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator(), new RoutingPropagator()] });
  const rows: Array<{ name: string; carrier: Record<string, string>; key: string | undefined; other?: Record<string, string> }> = [
    { name: 'plain header', carrier: { 'uber-ctx-key': 'feature1' }, key: 'feature1' },
    { name: 'baggage', carrier: { baggage: 'uber-ctx-key=feature1' }, key: 'feature1' },
    { name: 'Jaeger header', carrier: { 'uberctx-uber-ctx-key': 'feature1' }, key: 'feature1' },
    { name: 'Jaeger, percent-encoded', carrier: { 'uberctx-uber-ctx-key': 'feature%31' }, key: 'feature1' },
    { name: 'plain header over baggage', carrier: { 'uber-ctx-key': 'feature1', baggage: 'uber-ctx-key=nope,team=pay' }, key: 'feature1', other: { team: 'pay' } },
    { name: 'baggage over Jaeger', carrier: { baggage: 'uber-ctx-key=feature1', 'uberctx-uber-ctx-key': 'nope' }, key: 'feature1' },
    { name: 'an invalid plain header decides', carrier: { 'uber-ctx-key': 'Feature_1', baggage: 'uber-ctx-key=feature1,team=pay' }, key: undefined, other: { team: 'pay' } },
    { name: 'conflicting plain values', carrier: { 'uber-ctx-key': 'feature1,feature2' }, key: undefined },
    { name: 'conflicting baggage entries', carrier: { baggage: 'uber-ctx-key=feature1,uber-ctx-key=feature2' }, key: undefined },
    { name: 'none', carrier: {}, key: undefined },
  ];
  for (const row of rows) {
    const ctx = composite.extract(ROOT_CONTEXT, row.carrier, defaultTextMapGetter);
    t.equal(getRoutingKey(ctx), row.key, `${row.name}: extracted`);
    const out: Record<string, string> = {};
    composite.inject(ctx, out, defaultTextMapSetter);
    t.equal(out['uber-ctx-key'], row.key, `${row.name}: plain header injected`);
    t.same(baggageValues(out['baggage'], 'uber-ctx-key'), row.key === undefined ? [] : [row.key], `${row.name}: one baggage entry injected (${out['baggage']})`);
    for (const [name, value] of Object.entries(row.other ?? {})) t.same(baggageValues(out['baggage'], name), [value], `${row.name}: ${name} kept`);
  }
});

t.test('inject merges into the baggage already in the carrier, every other entry as it was', async (t) => {
  const ours = new RoutingPropagator();
  const ctx = ours.extract(ROOT_CONTEXT, { 'uber-ctx-key': 'feature1' }, defaultTextMapGetter);
  const carrier: Record<string, string> = { baggage: 'a=1;p=2, b=%20x,uber-ctx-key=stale' };
  ours.inject(ctx, carrier, defaultTextMapSetter);
  t.equal(carrier['baggage'], 'a=1;p=2, b=%20x,uber-ctx-key=feature1');
  t.equal(carrier['uber-ctx-key'], 'feature1');
  const metadata = new grpc.Metadata();
  metadata.set('baggage', 'a=1');
  ours.inject(ctx, metadata, { set: (m, k, v) => m.set(k, v) });
  t.same(metadata.get('baggage'), ['a=1,uber-ctx-key=feature1'], 'gRPC Metadata is read as a carrier too');
});

// A leaf that reports what it received.
const leaf = http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ plain: req.headers['uber-ctx-key'] ?? null, baggage: req.headers['baggage'] ?? null }));
});
await new Promise<void>((r) => leaf.listen(0, '127.0.0.1', r));
t.teardown(() => new Promise<void>((r) => leaf.close(() => r())));
const leafUrl = `http://127.0.0.1:${(leaf.address() as AddressInfo).port}/`;

function get(url: string, headers: Record<string, string>): Promise<{ key: string | null; leaf: { plain: string | null; baggage: string | null } }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve(JSON.parse(text) as never));
    });
    req.on('error', reject);
  });
}

t.test('routingMiddleware under express instrumentation', async (t) => {
  const app = express();
  app.use(routingMiddleware());
  app.use((_req, _res, next) => next());
  app.get('/', async (_req, res) => {
    const key = getRoutingKey() ?? null;
    res.json({ key, leaf: await (await fetch(leafUrl)).json() });
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const rows: Array<{ name: string; headers: Record<string, string>; key: string | null }> = [
    { name: 'plain header', headers: { 'uber-ctx-key': 'feature1' }, key: 'feature1' },
    { name: 'plain header over a disagreeing baggage entry', headers: { 'uber-ctx-key': 'feature1', baggage: 'uber-ctx-key=nope' }, key: 'feature1' },
    { name: 'baggage', headers: { baggage: 'uber-ctx-key=feature1,team=pay' }, key: 'feature1' },
    { name: 'invalid plain header before a valid baggage entry', headers: { 'uber-ctx-key': 'Feature_1', baggage: 'uber-ctx-key=feature1' }, key: null },
  ];
  for (const row of rows) {
    const got = await get(url, row.headers);
    t.equal(got.key, row.key, `${row.name}: the handler's key`);
    t.equal(got.leaf.plain, row.key, `${row.name}: carried on`);
    t.same(baggageValues(got.leaf.baggage ?? undefined, 'uber-ctx-key'), row.key === null ? [] : [row.key], `${row.name}: in baggage (${got.leaf.baggage})`);
  }
});

t.test('grpcServerInterceptor under grpc instrumentation', async (t) => {
  const server = await startEcho('echo', { interceptors: [grpcServerInterceptor(grpc)] });
  t.teardown(() => server.close());
  const client = new EchoClient(server.address, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  for (const [name, entries, key] of [
    ['plain header', { 'uber-ctx-key': 'feature1' }, 'feature1'],
    ['plain header over a disagreeing baggage entry', { 'uber-ctx-key': 'feature1', baggage: 'uber-ctx-key=nope' }, 'feature1'],
    ['Jaeger header', { 'uberctx-uber-ctx-key': 'feature1' }, 'feature1'],
  ] as const) {
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(entries)) metadata.set(k, v);
    const reply = await unary(client, {}, metadata);
    t.equal(reply.value?.key, key, `${name}: the handler's key`);
  }
});

t.test('no duplicate registration, nothing reported', async (t) => {
  t.same(problems, []);
});
