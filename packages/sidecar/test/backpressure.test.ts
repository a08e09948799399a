/*
 * Clients that do not read, in front of HTTP/1.1 upstreams: the upstream's response is paused
 * while the client (an HTTP/2 stream with a closed window, an HTTP/1.1 socket) takes nothing, and
 * what such clients hold is bounded by count too: their streams by SETTINGS, their exchanges by
 * --max-in-flight. Outbound, edge and inside CONNECT.
 */
import t from 'tap';
import { connect as h2Connect, type ClientHttp2Session } from 'node:http2';
import { connect, type Socket } from 'node:net';
import type { ServerResponse } from 'node:http';
import { send, sidecar, upstream, writeRegistry, type Tap } from './helpers.ts';
import { tunnel } from './h2-raw.ts';
import { heldUpstream, metric } from './held.ts';

/** Larger than what loopback socket buffers take in before a paused reader stops the writer. */
const BODY = Buffer.alloc(24 * 1024 * 1024, 0x61);
const CHUNK = 64 * 1024;

interface Writes {
  written: number;
  finished: boolean;
}

/** An upstream that writes BODY in chunks, honouring write() and 'drain'. */
async function bigUpstream(t: Tap) {
  const writes: Writes[] = [];
  const pauses: { promise: Promise<void>; resolve: () => void }[] = [];
  const pauseOf = (n: number) => {
    while (pauses.length <= n) {
      let resolve: () => void = () => undefined;
      const promise = new Promise<void>((r) => (resolve = r));
      pauses.push({ promise, resolve });
    }
    return pauses[n]!;
  };
  const server = await upstream(t, 'orders', (_req, res: ServerResponse) => {
    const w: Writes = { written: 0, finished: false };
    const paused = pauseOf(writes.push(w) - 1);
    res.writeHead(200, { 'content-length': String(BODY.length), 'x-upstream': 'orders' });
    const pump = () => {
      while (w.written < BODY.length) {
        const chunk = BODY.subarray(w.written, w.written + CHUNK);
        w.written += chunk.length;
        if (!res.write(chunk)) {
          paused.resolve();
          res.once('drain', pump);
          return;
        }
      }
      w.finished = true;
      res.end();
    };
    res.once('close', () => res.off('drain', pump));
    pump();
  });
  return {
    origin: server.origin,
    writes,
    /** When the next response's write() first returns false. */
    nextPause: () => pauseOf(writes.length).promise,
  };
}

function h2Session(t: Tap, target: number | Socket): ClientHttp2Session {
  const session = typeof target === 'number'
    ? h2Connect(`http://127.0.0.1:${target}`, { settings: { initialWindowSize: 0 } })
    : h2Connect('http://orders', { createConnection: () => target, settings: { initialWindowSize: 0 } });
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  return session;
}

t.test('the upstream is paused while the client reads nothing, on every listener and protocol', async (t) => {
  const orders = await bigUpstream(t);
  const registry = writeRegistry(t.testdir(), { orders: { base: orders.origin } });
  const s = await sidecar(t, registry, { edge: { port: 0, domains: ['example.test'], entry: 'orders' } });
  const out = s.addresses.outbound!.port;
  const edge = s.addresses.edge!.port;
  const cases: [string, string, () => Promise<number | Socket>][] = [
    ['outbound', 'orders', async () => out],
    ['edge', 'example.test', async () => edge],
    ['CONNECT', 'orders', () => tunnel(out, 'orders:80')],
  ];
  for (const [name, authority, open] of cases) {
    // HTTP/2 with a window of 0: the sidecar can send it nothing.
    let pause = orders.nextPause();
    const stream = h2Session(t, await open()).request({ ':authority': authority, ':path': '/' });
    stream.on('error', () => undefined);
    stream.pause();
    await pause;
    t.pass(`${name}, HTTP/2 with a closed window: the upstream's write() returned false`);
    // An HTTP/1.1 client that never reads its socket.
    pause = orders.nextPause();
    const target = await open();
    const socket = typeof target === 'number' ? connect(target, '127.0.0.1') : target;
    t.teardown(() => socket.destroy());
    socket.write(`GET / HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    socket.pause();
    await pause;
    t.pass(`${name}, HTTP/1.1 not reading: the upstream's write() returned false`);
  }
  // One more exchange through the sidecar: every event before it has been handled.
  t.equal((await send(out, { headers: { host: 'unknown' } })).status, 404);
  t.equal(orders.writes.length, 6, 'six responses started');
  for (const [i, w] of orders.writes.entries()) {
    t.notOk(w.finished, `response ${i + 1}: the upstream is held back`);
    t.ok(w.written < (BODY.length * 3) / 4, `response ${i + 1}: ${(w.written / 2 ** 20).toFixed(1)} MiB of ${BODY.length / 2 ** 20} MiB read by the sidecar and the sockets`);
  }
});

t.test('a never-reading HTTP/2 client holds at most its stream limit upstream', async (t) => {
  const orders = await heldUpstream(t);
  const registry = writeRegistry(t.testdir(), { orders: { base: orders.origin } });
  const s = await sidecar(t, registry, { maxConcurrentStreams: 10 });
  const out = s.addresses.outbound!.port;
  for (const target of [out, await tunnel(out, 'orders:80')]) {
    const before = orders.hits;
    const session = h2Session(t, target);
    for (let i = 0; i < 15; i++) session.request({ ':authority': 'orders', ':path': '/' }).on('error', () => undefined).pause();
    await orders.arrived(before + 10);
    // Another client's request reaching the upstream: whatever the first had sent has arrived too.
    const probe = send(out, { headers: { host: 'orders' } });
    await orders.arrived(before + 11);
    t.equal(orders.hits - before, 11, `${typeof target === 'number' ? 'direct' : 'CONNECT'}: ten streams of fifteen reached the upstream, and the probe`);
    orders.release();
    await probe;
    session.destroy();
  }
});

t.test('never-reading HTTP/1.1 clients past --max-in-flight are shed, not buffered', async (t) => {
  const orders = await heldUpstream(t);
  const registry = writeRegistry(t.testdir(), { orders: { base: orders.origin } });
  const s = await sidecar(t, registry, { maxInFlight: 5 });
  const out = s.addresses.outbound!.port;
  const sockets = Array.from({ length: 8 }, () => {
    const socket = connect(out, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: orders\r\n\r\n'));
    socket.on('error', () => undefined);
    socket.pause();
    t.teardown(() => socket.destroy());
    return socket;
  });
  await orders.arrived(5);
  for (let i = 0; i < 50 && (await metric(s.addresses.admin!.port, 'devstack_overload_shed_total', { direction: 'outbound' })) < 3; i++);
  t.equal(await metric(s.addresses.admin!.port, 'devstack_overload_shed_total', { direction: 'outbound', protocol: 'http1' }), 3, 'three shed');
  t.equal(orders.hits, 5, 'five reached the upstream');
  t.equal(sockets.length, 8);
  orders.release();
});
