/*
 * Rapid reset (CVE-2023-44487): a client that sends HEADERS and RST_STREAM pairs costs the server a
 * request each and itself nothing. Streams reset before they were forwarded never reach the
 * upstream, a connection over its reset budget is ended with GOAWAY ENHANCE_YOUR_CALM (counted),
 * and everyone else is still served: outbound, edge and inside CONNECT.
 */
import t from 'tap';
import { constants } from 'node:http2';
import type { Socket } from 'node:net';
import { sidecar, writeRegistry } from './helpers.ts';
import { h2Client, h2Send } from './h2-helpers.ts';
import { CANCEL, ENHANCE_YOUR_CALM, headersFrame, rawH2, rstFrame, tunnel } from './h2-raw.ts';
import { heldUpstream, metric } from './held.ts';

const PAIRS = 30;
const BUDGET = 10;

t.test('HEADERS + RST_STREAM pairs: nothing forwarded, the connection ended with GOAWAY, the rest served', async (t) => {
  const orders = await heldUpstream(t);
  orders.release();
  const registry = writeRegistry(t.testdir(), { orders: { base: orders.origin } });
  const s = await sidecar(t, registry, { maxClientResets: BUDGET, edge: { port: 0, domains: ['example.test'], entry: 'orders' } });
  const out = s.addresses.outbound!.port;
  const admin = s.addresses.admin!.port;
  const targets: [string, string, () => Promise<number | Socket>][] = [
    ['outbound', 'orders', async () => out],
    ['edge', 'example.test', async () => s.addresses.edge!.port],
    ['outbound', 'orders', () => tunnel(out, 'orders:80')],
  ];
  let round = 0;
  for (const [direction, authority, open] of targets) {
    const client = await rawH2(await open());
    t.teardown(() => client.socket.destroy());
    // Every pair in one write, as an attacker sends them: the reset is read right behind its request.
    const pairs = Array.from({ length: PAIRS }, (_, i) => Buffer.concat([headersFrame(2 * i + 1, authority), rstFrame(2 * i + 1, CANCEL)]));
    client.socket.write(Buffer.concat(pairs));
    await client.closed;
    t.equal(client.goaway, ENHANCE_YOUR_CALM, `${direction}${round === 2 ? ' (CONNECT)' : ''}: GOAWAY ENHANCE_YOUR_CALM`);
    t.equal(client.answered.size, 0, 'no stream was answered');
    t.equal(orders.hits, round, 'no reset stream reached the upstream');
    // An ordinary client on the same listener is served.
    const session = h2Client(t, s.addresses[direction as 'outbound' | 'edge']!.port);
    t.equal((await h2Send(session, { ':authority': authority })).status, 200, 'another client is served');
    round++;
  }
  t.equal(await metric(admin, 'devstack_h2_connections_ended_total', { direction: 'outbound', reason: 'resets' }), 2, 'counted, by listener');
  t.equal(await metric(admin, 'devstack_h2_connections_ended_total', { direction: 'edge', reason: 'resets' }), 1);
  t.equal(await metric(admin, 'devstack_in_flight', {}), 0, 'no exchange is left in flight');
});

t.test('pairs sent once the session is up end it as well, and the pairs read after that cost nothing', async (t) => {
  const orders = await heldUpstream(t);
  orders.release();
  const registry = writeRegistry(t.testdir(), { orders: { base: orders.origin } });
  const s = await sidecar(t, registry, { maxClientResets: BUDGET });
  const out = s.addresses.outbound!.port;
  for (const [via, open] of [['direct', async () => out], ['CONNECT', () => tunnel(out, 'orders:80')]] as const) {
    const client = await rawH2(await open());
    t.teardown(() => client.socket.destroy());
    // One ordinary request first: the session is set up before the pairs arrive.
    client.socket.write(headersFrame(1, 'orders'));
    await client.until(() => client.answered.has(1));
    const pairs = Array.from({ length: 2000 }, (_, i) => Buffer.concat([headersFrame(2 * i + 3, 'orders'), rstFrame(2 * i + 3, CANCEL)]));
    client.socket.write(Buffer.concat(pairs));
    await client.closed;
    t.equal(client.goaway, ENHANCE_YOUR_CALM, `${via}: GOAWAY ENHANCE_YOUR_CALM`);
  }
  t.equal(orders.hits, 2, 'only the two ordinary requests reached the upstream');
  t.equal(await metric(s.addresses.admin!.port, 'devstack_h2_connections_ended_total', { direction: 'outbound', reason: 'resets' }), 2);
  // Requests counted as aborted: the streams the sidecar handled before it ended each connection,
  // the budget and the few already read behind the one over it; not the 4000 sent.
  const aborted = await metric(s.addresses.admin!.port, 'devstack_requests_total', { direction: 'outbound', status: 'aborted' });
  t.ok(aborted <= 4 * BUDGET, `${aborted} streams handled of 4000 sent`);
});

t.test('resets within the budget cost the connection nothing', async (t) => {
  const orders = await heldUpstream(t);
  orders.release();
  const registry = writeRegistry(t.testdir(), { orders: { base: orders.origin } });
  const s = await sidecar(t, registry, { maxClientResets: BUDGET });
  const client = await rawH2(s.addresses.outbound!.port);
  t.teardown(() => client.socket.destroy());
  client.socket.write(Buffer.concat(Array.from({ length: BUDGET }, (_, i) => Buffer.concat([headersFrame(2 * i + 1, 'orders'), rstFrame(2 * i + 1)]))));
  client.socket.write(headersFrame(2 * BUDGET + 1, 'orders'));
  await client.until(() => client.answered.has(2 * BUDGET + 1));
  t.equal(client.goaway, undefined, 'no GOAWAY');
  t.equal(orders.hits, 1, 'only the stream that was not reset reached the upstream');
});

t.test('a stream reset while its request waits for an upstream connection is never sent', async (t) => {
  const orders = await heldUpstream(t);
  const registry = writeRegistry(t.testdir(), { orders: { base: orders.origin } });
  const s = await sidecar(t, registry, { connections: 1 });
  const session = h2Client(t, s.addresses.outbound!.port);
  const first = session.request({ ':authority': 'orders', ':path': '/' });
  first.on('error', () => undefined);
  await orders.arrived(1);
  // The only connection is taken: the second request waits in the pool, and its client leaves.
  const second = session.request({ ':authority': 'orders', ':path': '/' });
  second.on('error', () => undefined);
  // Both in flight (a scrape takes longer than the turn before a stream is dispatched).
  for (let i = 0; i < 100 && (await metric(s.addresses.admin!.port, 'devstack_in_flight', {})) < 2; i++);
  second.close(constants.NGHTTP2_CANCEL);
  await new Promise((resolve) => second.once('close', resolve));
  const third = h2Send(session, { ':authority': 'orders' });
  orders.release();
  t.equal((await third).status, 200, 'the next request is served');
  t.equal(orders.hits, 2, 'the reset stream never reached the upstream');
  first.close(constants.NGHTTP2_CANCEL);
});
