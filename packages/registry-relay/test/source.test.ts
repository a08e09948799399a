/*
 * The relay source against a scripted relay on loopback, with a fake clock for its watchdog and
 * backoff: what it keeps, when it resumes and when it starts over.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { ConfigError, registryKind } from '@devstack/core';
import { createRelaySource, type Clock, type RelaySource, type RelayStatus } from '@devstack/registry-relay';

class FakeClock implements Clock {
  #now = 1_000_000;
  #id = 0;
  readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    this.timers.set(++this.#id, { at: this.#now + ms, fn });
    return this.#id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  advance(ms: number): void {
    this.#now += ms;
    for (const [id, timer] of [...this.timers].sort((a, b) => a[1].at - b[1].at)) {
      if (timer.at > this.#now) continue;
      this.timers.delete(id);
      timer.fn();
    }
  }
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Tap {
  teardown(fn: () => unknown): void;
}

/** A relay that answers the n-th stream request with `handlers[n]` (the last one again after that). */
async function scriptedRelay(t: Tap, handlers: Handler[]): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    handlers[Math.min(requests.length - 1, handlers.length - 1)]!(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

const ndjson = (res: ServerResponse, ...messages: object[]) => {
  if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  for (const m of messages) res.write(`${JSON.stringify(m)}\n`);
};
const common = (version: number, epoch = 'e1') => ({ epoch, version, stale: false, lastSync: 5 });
const snapshot = (version: number, services: object, epoch = 'e1') => ({ type: 'snapshot', ...common(version, epoch), services });
const WEB = { web: { base: ['http://10.0.0.1:80'], features: {} } };
const WEB_F1 = { web: { base: ['http://10.0.0.1:80'], features: { f1: ['http://10.0.0.2:80'] } } };

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  if (!check()) throw new Error('condition never met');
}

function source(t: Tap, url: string, clock: FakeClock, extra: Record<string, unknown> = {}): RelaySource {
  const s = createRelaySource({ url, namespace: 'shop', clock, random: () => 1, idleTimeoutMs: 30_000, backoff: { initialMs: 100, maxMs: 1000 }, ...extra });
  t.teardown(() => s.close());
  return s;
}

t.test('a silent stream is dropped by the watchdog and resumed from the version held', async (t) => {
  const clock = new FakeClock();
  const relay = await scriptedRelay(t, [(_req, res) => ndjson(res, snapshot(3, WEB)), (_req, res) => ndjson(res, { type: 'resumed', ...common(3) })]);
  const s = source(t, relay.url, clock);
  const first = await s.start();
  t.same([...first.services.keys()], ['web']);
  const status = () => s.status() as RelayStatus;
  t.equal(status().stale, false);
  t.equal(status().lastSync, 5, 'the relay\'s last sync');
  clock.advance(30_000);
  await waitFor(() => status().failuresByReason.idle === 1);
  t.equal(status().stale, true, 'stale once the stream is lost');
  t.equal(s.current(), first, 'the last snapshot kept');
  clock.advance(100);
  await waitFor(() => relay.requests.length === 2);
  t.equal(relay.requests[1], '/v1/namespaces/shop/stream?epoch=e1&since=3', 'resumed from the version held');
  await waitFor(() => status().connected);
  t.equal(status().stale, false);
  t.equal(s.current(), first, 'nothing resent, nothing rebuilt');
});

t.test('a change on top of another version starts over with a full snapshot; a refused one keeps the last good', async (t) => {
  const clock = new FakeClock();
  const relay = await scriptedRelay(t, [
    (_req, res) => ndjson(res, snapshot(1, WEB), { type: 'delta', ...common(8), from: 7, services: WEB_F1 }),
    (_req, res) => ndjson(res, snapshot(9, { Bad_Name: { base: 'http://x:1' } })),
    (_req, res) => ndjson(res, snapshot(10, WEB_F1)),
  ]);
  const s = source(t, relay.url, clock);
  const errors: Error[] = [];
  s.onError((e) => errors.push(e));
  const snapshots: number[] = [];
  s.subscribe((snap) => snapshots.push(snap.version));
  const first = await s.start();
  const status = () => s.status() as RelayStatus;
  await waitFor(() => status().failuresByReason.protocol === 1);
  t.match(errors[0]?.message, /a change from version 7 on top of 1/);
  clock.advance(100);
  await waitFor(() => relay.requests.length === 2);
  t.equal(relay.requests[1], '/v1/namespaces/shop/stream', 'no resume after a protocol fault');
  await waitFor(() => status().failuresByReason.protocol === 2);
  t.equal(s.current(), first, 'a snapshot core refuses: the last good one kept');
  t.match(status().lastError, /Bad_Name|service name/);
  clock.advance(1000);
  await waitFor(() => s.current() !== first);
  t.equal(relay.requests[2], '/v1/namespaces/shop/stream');
  t.same([...s.current()!.services.get('web')!.features.keys()], ['f1']);
  t.same(snapshots, [2], 'one new snapshot published');
  t.equal(errors.length, 1, 'failures reported once per interval, all counted');
});

t.test('a namespace the relay does not serve: no snapshot, not synced, the relay\'s code in the status', async (t) => {
  const clock = new FakeClock();
  const body = JSON.stringify({ error: { code: 'DEVSTACK_RELAY_NAMESPACE_NOT_SERVED', message: 'this relay does not serve that namespace' } });
  const relay = await scriptedRelay(t, [(_req, res) => res.writeHead(404, { 'content-type': 'application/json' }).end(body)]);
  const s = source(t, relay.url, clock);
  const started = s.start();
  const status = () => s.status() as RelayStatus;
  await waitFor(() => status().failures === 1);
  t.equal(status().synced, false);
  t.equal(status().stale, true);
  t.match(status().lastError, /HTTP 404 DEVSTACK_RELAY_NAMESPACE_NOT_SERVED/);
  clock.advance(100);
  await waitFor(() => status().failures === 2);
  t.equal(status().failuresByReason.http, 2, 'retried with backoff');
  await s.close();
  await t.rejects(started, /closed before its first snapshot/);
});

t.test('heartbeats carry the relay\'s stale state; a line past the limit is a protocol fault', async (t) => {
  const clock = new FakeClock();
  let live: ServerResponse | undefined;
  const relay = await scriptedRelay(t, [
    (_req, res) => {
      live = res;
      ndjson(res, snapshot(1, WEB));
    },
  ]);
  const s = source(t, relay.url, clock, { maxMessageBytes: 1024 });
  await s.start();
  const status = () => s.status() as RelayStatus;
  ndjson(live!, { type: 'heartbeat', ...common(1), stale: true, lastSync: 4 });
  await waitFor(() => status().relayStale);
  t.equal(status().stale, true, 'the relay lost its API server: stale here too');
  ndjson(live!, { type: 'heartbeat', ...common(1) });
  await waitFor(() => !status().relayStale);
  live!.write('x'.repeat(5000));
  await waitFor(() => status().failuresByReason.protocol === 1);
  t.match(status().lastError, /longer than 1024 bytes/);
  t.ok(s.current() !== undefined);
});

t.test('options are checked, and the namespace may come from the environment', async (t) => {
  t.equal(registryKind('http://relay:7400'), 'relay');
  t.equal(registryKind('HTTPS://relay'), 'relay');
  t.equal(registryKind('./http.yaml'), 'file');
  const problems = (options: Parameters<typeof createRelaySource>[0]) => {
    try {
      createRelaySource(options);
      return [];
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return error.problems;
    }
  };
  t.match(problems({ url: 'http://relay/path', namespace: 'shop' }), [/must be an origin only/]);
  t.match(problems({ url: 'ftp://relay', namespace: 'shop' }), [/must use http or https/]);
  t.match(problems({ url: 'http://relay:6000', namespace: 'shop' }), [/fetch refuses port 6000/]);
  t.match(problems({ url: 'http://relay', env: {} }), [/needs the namespace to follow/]);
  t.match(problems({ url: 'http://relay', namespaces: ['a', 'b'], env: {} }), [/one namespace/, /needs the namespace/]);
  t.match(problems({ url: 'http://relay', namespace: 'Not_Valid' }), [/not a DNS-1123 label/]);
  t.match(problems({ url: 'http://relay', namespace: 'shop', idleTimeoutMs: 1 }), [/idleTimeoutMs 1 must be an integer from 10/]);
  const fromEnv = createRelaySource({ url: 'http://relay:7400/', env: { DEVSTACK_NAMESPACE: 'shop' } });
  t.equal((fromEnv.status() as RelayStatus).namespace, 'shop');
  t.equal((fromEnv.status() as RelayStatus).relay, 'http://relay:7400');
});
