import t from 'tap';
import { connect } from 'node:net';
import http2 from 'node:http2';
import { raw, send, spawnSidecar, upstream, writeRegistry } from './helpers.ts';

interface Answer {
  status: number | undefined;
  headers: Record<string, string>;
  code: string | undefined;
}

/** The final answer on a raw connection (after an interim `100 Continue`), with its error code if any. */
function parse(text: string): Answer {
  const final = text.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
  const end = final.indexOf('\r\n\r\n');
  const lines = final.slice(0, end === -1 ? final.length : end).split('\r\n');
  const status = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0] ?? '')?.[1];
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const code = /"code":"(DEVSTACK_[A-Z_]+)"/.exec(final.slice(end))?.[1];
  return { status: status === undefined ? undefined : Number(status), headers, code };
}

type Listener = 'admin' | 'outbound' | 'inbound' | 'edge';

/** [listener, request head (without the final CRLF), status, error code or the upstream that answered, lane if chosen] */
type Case = [Listener, string, number, string, string?];

const BIG = `X-Big: ${'a'.repeat(40 * 1024)}`;

// Every listener gets the malformed shapes: bad absolute targets, non-path targets, garbage, oversized
// headers, unknown Expect, CONNECT. Each answer is asserted: status, JSON code, lane header.
const CASES: Case[] = [
  ['admin', 'GET http://[ HTTP/1.1\r\nHost: x', 400, 'DEVSTACK_BAD_REQUEST'],
  ['admin', 'GET //[ HTTP/1.1\r\nHost: x', 400, 'DEVSTACK_BAD_REQUEST'],
  ['admin', 'GET http:// HTTP/1.1\r\nHost: x', 400, 'DEVSTACK_BAD_REQUEST'],
  ['admin', 'GET http://[::1/healthz HTTP/1.1\r\nHost: x', 400, 'DEVSTACK_BAD_REQUEST'],
  ['admin', 'GET * HTTP/1.1\r\nHost: x', 404, 'DEVSTACK_NOT_FOUND'],
  ['admin', 'GET /nope HTTP/1.1\r\nHost: x', 404, 'DEVSTACK_NOT_FOUND'],
  ['admin', 'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0', 405, 'DEVSTACK_METHOD_NOT_ALLOWED'],
  ['admin', 'CONNECT a:80 HTTP/1.1\r\nHost: a:80', 405, 'DEVSTACK_METHOD_NOT_ALLOWED'],
  ['admin', 'GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: nonsense', 417, 'DEVSTACK_EXPECTATION_FAILED'],
  ['admin', `GET /healthz HTTP/1.1\r\nHost: x\r\n${BIG}`, 431, 'DEVSTACK_HEADERS_TOO_LARGE'],
  ['admin', 'G\u0001T / HTTP/1.1\r\nHost: x', 400, 'DEVSTACK_BAD_REQUEST'],
  ['admin', 'GET /resolve?service=a&key=%zz HTTP/1.1\r\nHost: x', 200, 'admin'],
  ['admin', 'GET /healthz HTTP/1.1\r\nHost: x', 200, 'admin'],

  ['outbound', 'GET http://[ HTTP/1.1\r\nHost: a', 404, 'DEVSTACK_UNKNOWN_SERVICE'],
  ['outbound', 'GET http:// HTTP/1.1\r\nHost: a', 400, 'DEVSTACK_MISSING_HOST'],
  ['outbound', 'GET //[ HTTP/1.1\r\nHost: a', 200, 'a'],
  ['outbound', 'GET * HTTP/1.1\r\nHost: a', 400, 'DEVSTACK_BAD_REQUEST'],
  ['outbound', 'GET a:80 HTTP/1.1\r\nHost: a', 400, 'DEVSTACK_BAD_REQUEST'],
  ['outbound', 'GET / HTTP/1.1', 400, 'DEVSTACK_MISSING_HOST'],
  ['outbound', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b', 400, 'DEVSTACK_DUPLICATE_HOST'],
  ['outbound', 'CONNECT [:80 HTTP/1.1\r\nHost: [:80', 404, 'DEVSTACK_UNKNOWN_SERVICE'],
  ['outbound', 'CONNECT a:443 HTTP/1.1\r\nHost: a:443', 405, 'DEVSTACK_METHOD_NOT_ALLOWED'],
  ['outbound', 'GET / HTTP/1.1\r\nHost: a\r\nExpect: nonsense', 417, 'DEVSTACK_EXPECTATION_FAILED'],
  ['outbound', `GET / HTTP/1.1\r\nHost: a\r\n${BIG}`, 431, 'DEVSTACK_HEADERS_TOO_LARGE'],
  ['outbound', 'G\u0001T / HTTP/1.1\r\nHost: a', 400, 'DEVSTACK_BAD_REQUEST'],
  ['outbound', 'GET / HTTP/1.1\r\nHost: zzz\r\nUpgrade: websocket\r\nConnection: upgrade', 404, 'DEVSTACK_UNKNOWN_SERVICE'],

  ['inbound', 'GET / HTTP/1.1\r\nHost: [', 400, 'DEVSTACK_BAD_REQUEST', 'base'],
  ['inbound', 'CONNECT a:80 HTTP/1.1\r\nHost: a:80', 405, 'DEVSTACK_METHOD_NOT_ALLOWED'],
  ['inbound', 'GET / HTTP/1.1\r\nHost: a\r\nExpect: nonsense', 417, 'DEVSTACK_EXPECTATION_FAILED'],
  ['inbound', `GET / HTTP/1.1\r\nHost: a\r\n${BIG}`, 431, 'DEVSTACK_HEADERS_TOO_LARGE'],
  ['inbound', 'G\u0001T / HTTP/1.1\r\nHost: a', 400, 'DEVSTACK_BAD_REQUEST'],

  ['edge', 'GET http://[ HTTP/1.1\r\nHost: example.com', 404, 'DEVSTACK_UNKNOWN_HOST'],
  ['edge', 'GET http:// HTTP/1.1\r\nHost: example.com', 400, 'DEVSTACK_MISSING_HOST'],
  ['edge', 'GET * HTTP/1.1\r\nHost: example.com', 400, 'DEVSTACK_BAD_REQUEST'],
  ['edge', 'GET / HTTP/1.1\r\nHost: f.example.com', 200, 'a'],
  ['edge', 'CONNECT a:80 HTTP/1.1\r\nHost: a:80', 405, 'DEVSTACK_METHOD_NOT_ALLOWED'],
  ['edge', 'GET / HTTP/1.1\r\nHost: example.com\r\nExpect: nonsense', 417, 'DEVSTACK_EXPECTATION_FAILED'],
  ['edge', `GET / HTTP/1.1\r\nHost: example.com\r\n${BIG}`, 431, 'DEVSTACK_HEADERS_TOO_LARGE'],
  ['edge', 'G\u0001T / HTTP/1.1\r\nHost: example.com', 400, 'DEVSTACK_BAD_REQUEST'],
];

t.test('hostile requests on every listener get a clear answer and the process keeps serving', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const registry = writeRegistry(dir, { a: { base: a.origin, features: { f: a.origin } } });
  const child = await spawnSidecar(t, [
    '--registry', registry,
    '--outbound-port', '0',
    '--inbound-port', '0', '--inbound-host', '127.0.0.1', '--app-port', String(a.port),
    '--edge-port', '0', '--edge-host', '127.0.0.1', '--domain', 'example.com', '--entry', 'a',
    '--admin-port', '0', '--admin-host', '127.0.0.1',
    '--max-header-size', '16384',
  ]);
  for (const [listener, head, status, expected, lane = 'none'] of CASES) {
    const name = `${listener} ${JSON.stringify(head.slice(0, 60))}`;
    const answer = parse(await raw(child.ports[listener]!, `${head}\r\nConnection: close\r\n\r\n`));
    t.equal(answer.status, status, `${name}: status`);
    if (expected.startsWith('DEVSTACK_')) {
      t.equal(answer.code, expected, `${name}: code`);
      t.equal(answer.headers['x-devstack-lane'], lane, `${name}: lane header`);
    } else if (expected === 'admin') {
      t.equal(answer.headers['content-type'], 'application/json', `${name}: an admin answer`);
    } else {
      t.equal(answer.headers['x-upstream'], expected, `${name}: answered by the upstream`);
      t.ok(answer.headers['x-devstack-lane'], `${name}: lane header`);
    }
    t.equal(child.proc.exitCode, null, `${name}: the process is still running`);
  }
  const routed = await send(child.ports['outbound']!, { headers: { host: 'a', 'uber-ctx-key': 'f' } });
  t.equal(routed.status, 200, 'still routing afterwards');
  t.equal(routed.headers['x-devstack-lane'], 'f');
  t.equal((await send(child.ports['edge']!, { headers: { host: 'example.com' } })).status, 200, 'the edge still serves');
  t.equal((await send(child.ports['inbound']!, { headers: { host: 'a' } })).status, 200, 'the inbound listener still serves');
  t.equal((await send(child.ports['admin']!, { path: '/readyz' })).status, 200, 'the admin listener still serves');
});

/** Opens `n` connections that send `text` and reset at once; resolves when all are closed. */
function resets(port: number, text: string, n: number): Promise<number> {
  let closed = 0;
  return new Promise((resolve) => {
    for (let i = 0; i < n; i++) {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(text);
        setImmediate(() => socket.resetAndDestroy());
      });
      socket.on('error', () => undefined);
      socket.on('close', () => ++closed === n && resolve(closed));
    }
  });
}

t.test('clients that reset right after CONNECT or an upgrade request do not end the process', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const child = await spawnSidecar(t, ['--registry', writeRegistry(dir, { a: { base: a.origin } }), '--outbound-port', '0', '--admin-port', '0', '--admin-host', '127.0.0.1']);
  const port = child.ports['outbound']!;
  // Node hands such sockets over without an error listener; a reset used to be an uncaught error.
  for (const head of ['CONNECT zzz:80 HTTP/1.1\r\nHost: zzz:80', 'CONNECT a:443 HTTP/1.1\r\nHost: a:443', 'CONNECT a:80 HTTP/1.1\r\nHost: a:80', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket']) {
    t.equal(await resets(port, `${head}\r\n\r\n`, 200), 200, `${JSON.stringify(head.slice(0, 24))}: 200 resets`);
    t.equal(child.proc.exitCode, null, 'the process is still running');
  }
  t.equal((await send(port, { headers: { host: 'a' } })).status, 200, 'and still serving');
});

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

t.test('hostile HTTP/2 on every listener: resets, garbage frames, rapid stream resets, CONNECT', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const child = await spawnSidecar(t, [
    '--registry', writeRegistry(dir, { a: { base: a.origin, features: { f: a.origin } } }),
    '--outbound-port', '0',
    '--inbound-port', '0', '--inbound-host', '127.0.0.1', '--app-port', String(a.port),
    '--edge-port', '0', '--edge-host', '127.0.0.1', '--domain', 'example.com', '--entry', 'a',
    '--admin-port', '0', '--admin-host', '127.0.0.1',
  ]);
  const authority = { outbound: 'a', inbound: 'a', edge: 'f.example.com' } as const;
  for (const listener of ['outbound', 'inbound', 'edge'] as const) {
    const port = child.ports[listener]!;
    t.equal(await resets(port, PREFACE.slice(0, 10), 100), 100, `${listener}: 100 resets in the middle of the preface`);
    t.equal(await resets(port, PREFACE, 100), 100, `${listener}: 100 resets right after the preface`);
    const garbage = await raw(port, `${PREFACE}${'\u0000\u0000\u0004\u0008\u0000\u0000\u0000\u0000\u0000'.repeat(50)}\u00ff\u00ff\u00ff`);
    t.type(garbage, 'string', `${listener}: a preface and garbage frames: that connection ends`);
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    // Rapid reset: streams opened and cancelled at once, many times over: over the budget of
    // --max-client-resets (200 per 10 s) the connection is ended.
    const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
    for (let i = 0; i < 300; i++) {
      const stream = session.request({ ':authority': authority[listener], ':path': '/' });
      stream.on('error', () => undefined);
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }
    t.equal(await goaway, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, `${listener}: rapid resets end the connection with GOAWAY`);
    session.destroy();
    const next = http2.connect(`http://127.0.0.1:${port}`);
    next.on('error', () => undefined);
    const connectStatus = await new Promise<number | string>((resolve) => {
      const stream = next.request({ ':method': 'CONNECT', ':authority': 'a:80' });
      stream.on('error', (e: Error & { code?: string }) => resolve(e.code ?? 'error'));
      stream.once('response', (h) => resolve(Number(h[':status'])));
    });
    t.equal(connectStatus, 405, `${listener}: CONNECT over HTTP/2 is refused`);
    next.destroy();
    t.equal(child.proc.exitCode, null, `${listener}: the process is still running`);
    const after = http2.connect(`http://127.0.0.1:${port}`);
    after.on('error', () => undefined);
    const status = await new Promise<number>((resolve, reject) => {
      const stream = after.request({ ':authority': authority[listener], ':path': '/' });
      stream.on('error', reject);
      stream.once('response', (h) => resolve(Number(h[':status'])));
      stream.resume();
    });
    after.destroy();
    t.equal(status, 200, `${listener}: HTTP/2 still served`);
  }
  const admin = parse(await raw(child.ports['admin']!, PREFACE));
  t.equal(admin.status, 400, 'admin: no HTTP/2 there, the preface is a malformed HTTP/1.1 request');
  t.equal(admin.code, 'DEVSTACK_BAD_REQUEST');
  t.equal((await send(child.ports['outbound']!, { headers: { host: 'a' } })).status, 200, 'HTTP/1.1 still served');
});
