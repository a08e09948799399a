import t from 'tap';
import { request } from 'node:http';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { WebSocketServer, WebSocket } from 'ws';
import { blackholePort, currentRss, peakRss, raw, send, sidecar, spawnSidecar, upstream, writeRegistry } from './helpers.ts';

t.test('hop-by-hop headers are dropped, end-to-end ones kept, forwarding headers added', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a', (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', connection: 'x-secret-hop', 'x-secret-hop': '1', 'keep-alive': 'timeout=1', 'set-cookie': ['a=1', 'b=2'] });
    res.end(JSON.stringify(req.headers));
  });
  const s = await sidecar(t, writeRegistry(dir, { a: { base: a.origin } }));
  const reply = await send(s.addresses.outbound!.port, {
    headers: { host: 'a', connection: 'x-custom-hop, keep-alive', 'x-custom-hop': '1', 'keep-alive': 'timeout=5', te: 'gzip', 'proxy-authorization': 'secret', 'x-end': 'kept', 'x-forwarded-for': '10.1.1.1' },
  });
  const seen = reply.json() as Record<string, string>;
  for (const h of ['x-custom-hop', 'keep-alive', 'te', 'proxy-authorization']) t.equal(seen[h], undefined, `${h} not forwarded`);
  t.equal(seen['x-end'], 'kept');
  t.equal(seen['host'], 'a', 'Host unchanged');
  t.equal(seen['x-forwarded-for'], '10.1.1.1, 127.0.0.1', 'X-Forwarded-For appended');
  t.equal(seen['x-forwarded-proto'], 'http');
  t.equal(seen['x-forwarded-host'], 'a');
  t.equal(seen['x-devstack-hops'], '1');
  t.equal(reply.headers['x-secret-hop'], undefined, 'response headers named in Connection are dropped');
  t.same(reply.headers['set-cookie'], ['a=1', 'b=2'], 'repeated response headers survive');
});

t.test('a routing loop ends in 508', async (t) => {
  const dir = t.testdir();
  // The registry points service `loop` back at the sidecar itself.
  const registry = writeRegistry(dir, { loop: { base: 'http://127.0.0.1:1' } });
  const s = await sidecar(t, registry, { maxHops: 4 });
  const port = s.addresses.outbound!.port;
  writeRegistry(dir, { loop: { base: `http://127.0.0.1:${port}` } });
  await new Promise<void>((resolve) => {
    const off = s.snapshot() && (() => undefined);
    void off;
    const timer = setInterval(() => {
      if (s.snapshot()?.version === 2) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
  const reply = await send(port, { headers: { host: 'loop' } });
  t.equal(reply.status, 508);
  t.equal((reply.json()['error'] as Record<string, string>)['code'], 'DEVSTACK_LOOP_DETECTED');
});

t.test('upstream failures: 502 with a code, each target tried once before any byte was sent', async (t) => {
  const dir = t.testdir();
  const live = await upstream(t, 'live');
  const resets = await upstream(t, 'resets', (req) => {
    req.on('data', () => undefined);
    req.on('end', () => req.socket.destroy());
  });
  const s = await sidecar(t, writeRegistry(dir, {
    dead: { base: 'http://127.0.0.1:1' },
    flaky: { base: ['http://127.0.0.1:1', live.origin] },
    resets: { base: resets.origin },
  }));
  const port = s.addresses.outbound!.port;
  const dead = await send(port, { headers: { host: 'dead' } });
  t.equal(dead.status, 502);
  t.equal((dead.json()['error'] as Record<string, string>)['code'], 'DEVSTACK_UPSTREAM_UNREACHABLE');
  t.equal(dead.headers['x-devstack-lane'], 'base');

  for (let i = 0; i < 4; i++) {
    const flaky = await send(port, { method: 'POST', headers: { host: 'flaky' }, body: 'payload' });
    t.equal(flaky.status, 200, `refused connection retried on the other target (${i})`);
    t.equal(flaky.json()['body'], 'payload', 'the body arrives whole after a retry');
  }

  const reset = await send(port, { method: 'POST', headers: { host: 'resets' }, body: 'x' });
  t.equal(reset.status, 502);
  t.equal((reset.json()['error'] as Record<string, string>)['code'], 'DEVSTACK_UPSTREAM_RESET');
  t.equal(resets.hits, 1, 'a request the upstream received is never retried');

  const metrics = (await send(s.addresses.admin!.port, { path: '/metrics' })).body;
  // Its one target refused and was ejected: nothing is left to try (the targets tried bound the attempts).
  t.match(metrics, /devstack_upstream_errors_total\{direction="outbound",service="dead",code="DEVSTACK_UPSTREAM_UNREACHABLE"\} 1$/m, 'the one attempt counted');
});

t.test('timeouts answer 504', async (t) => {
  const dir = t.testdir();
  const hole = await blackholePort(t);
  const c = await sidecar(t, writeRegistry(dir, { hole: { base: `http://127.0.0.1:${hole}` } }, 'hole.json'), { connectTimeoutMs: 100 });
  const connect = await send(c.addresses.outbound!.port, { headers: { host: 'hole' } });
  t.equal(connect.status, 504);
  t.equal((connect.json()['error'] as Record<string, string>)['code'], 'DEVSTACK_UPSTREAM_CONNECT_TIMEOUT');

  const silent = await upstream(t, 'silent', () => undefined);
  const stalls = await upstream(t, 'stalls', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('partial');
  });
  const s = await sidecar(t, writeRegistry(dir, { silent: { base: silent.origin }, stalls: { base: stalls.origin } }), { headersTimeoutMs: 200, idleTimeoutMs: 200 });
  const port = s.addresses.outbound!.port;
  const reply = await send(port, { headers: { host: 'silent' } });
  t.equal(reply.status, 504);
  t.equal((reply.json()['error'] as Record<string, string>)['code'], 'DEVSTACK_UPSTREAM_TIMEOUT');
  const stalled = await send(port, { headers: { host: 'stalls' } }).then(
    () => 'completed',
    (error: NodeJS.ErrnoException) => error.code,
  );
  t.equal(stalled, 'ECONNRESET', 'an idle upstream after the headers cuts the response: the client sees it was incomplete');
});

t.test('a 100 MB upload streams through in constant memory', async (t) => {
  const dir = t.testdir();
  const total = 100 * 1024 * 1024;
  const sink = await upstream(t, 'sink', (req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    req.on('end', () => res.end(JSON.stringify({ bytes, sha: hash.digest('hex') })));
  });
  const child = await spawnSidecar(t, ['--registry', writeRegistry(dir, { sink: { base: sink.origin } }), '--outbound-port', '0']);
  const chunk = Buffer.alloc(64 * 1024, 7);
  const upload = async () => {
    const expected = createHash('sha256');
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent >= total) return this.push(null);
        sent += chunk.length;
        expected.update(chunk);
        this.push(chunk);
      },
    });
    const reply = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: child.ports['outbound'], method: 'PUT', path: '/', headers: { host: 'sink' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      body.pipe(req);
    });
    const result = JSON.parse(reply) as { bytes: number; sha: string };
    t.equal(result.bytes, total);
    t.equal(result.sha, expected.digest('hex'), 'every byte arrived in order');
  };
  const start = currentRss(child.proc.pid!);
  await upload();
  const afterOne = peakRss(child.proc.pid!);
  await upload();
  await upload();
  const afterThree = peakRss(child.proc.pid!);
  // Garbage collection lets some read buffers pile up before it runs, so one upload raises the
  // peak a little; buffering would raise it by the body size each time.
  t.ok(afterOne - start < total, `first 100 MB raised the peak by ${Math.round((afterOne - start) / 1048576)} MB`);
  t.ok(afterThree - afterOne < 32 * 1024 * 1024, `two more raised it by ${Math.round((afterThree - afterOne) / 1048576)} MB`);
});

t.test('WebSocket upgrades pass through, routed by key', async (t) => {
  const dir = t.testdir();
  const make = async (name: string) => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    wss.on('connection', (ws, req) => ws.on('message', (m) => ws.send(`${name}:${req.headers['uber-ctx-key'] ?? '-'}:${m.toString()}`)));
    t.teardown(() => new Promise<void>((resolve) => {
      for (const c of wss.clients) c.terminate();
      wss.close(() => resolve());
    }));
    return `http://127.0.0.1:${(wss.address() as { port: number }).port}`;
  };
  const base = await make('base');
  const f1 = await make('f1');
  const s = await sidecar(t, writeRegistry(dir, { chat: { base, features: { feature1: f1 } } }));
  const echo = (headers: Record<string, string>) =>
    new Promise<{ text: string; lane: string | undefined }>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${s.addresses.outbound!.port}/socket`, { headers: { host: 'chat', ...headers } });
      let lane: string | undefined;
      ws.on('upgrade', (res) => (lane = res.headers['x-devstack-lane'] as string | undefined));
      ws.on('open', () => ws.send('hello'));
      ws.on('message', (m) => {
        resolve({ text: m.toString(), lane });
        ws.close();
      });
      ws.on('error', reject);
    });
  t.same(await echo({ 'uber-ctx-key': 'feature1' }), { text: 'f1:feature1:hello', lane: 'feature1' });
  t.same(await echo({}), { text: 'base:-:hello', lane: 'base' });

  // An open WebSocket is in flight too: shutdown waits for it until the deadline, then cuts it.
  const short = await sidecar(t, writeRegistry(dir, { chat: { base } }, 'short.json'), { shutdownTimeoutMs: 50 });
  const open = new WebSocket(`ws://127.0.0.1:${short.addresses.outbound!.port}/`, { headers: { host: 'chat' } });
  await new Promise((resolve, reject) => open.once('open', resolve).once('error', reject));
  let closedBeforeShutdown = false;
  const cut = new Promise<number>((resolve) => open.once('close', (code: number) => resolve(code)));
  void cut.then(() => (closedBeforeShutdown = !shutdownStarted));
  let shutdownStarted = false;
  t.equal(open.readyState, WebSocket.OPEN, 'the WebSocket is open when shutdown starts');
  shutdownStarted = true;
  await short.close();
  t.equal(await cut, 1006, 'the tunnel is cut (no close frame: abnormal closure)');
  t.notOk(closedBeforeShutdown, 'it was cut by the shutdown, not before');
  t.equal(short.ready(), false, 'the sidecar is no longer ready');

  const refused = await raw(s.addresses.outbound!.port, 'GET / HTTP/1.1\r\nHost: nowhere\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', /\}\}$/);
  t.match(refused, /^HTTP\/1\.1 404 /, 'an upgrade for an unknown service is refused with the same error');
  t.match(refused, /DEVSTACK_UNKNOWN_SERVICE/);
});

t.test('oversized headers get 431 and two Host headers 400, both with a JSON code', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const s = await sidecar(t, writeRegistry(dir, { a: { base: a.origin } }), { maxHeaderSize: 8192 });
  const port = s.addresses.outbound!.port;
  const big = await raw(port, `GET / HTTP/1.1\r\nHost: a\r\nx-big: ${'x'.repeat(10_000)}\r\n\r\n`);
  t.match(big, /^HTTP\/1\.1 431 /);
  t.match(big, /"code":"DEVSTACK_HEADERS_TOO_LARGE"/);
  const twoHosts = await raw(port, 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n');
  t.match(twoHosts, /^HTTP\/1\.1 400 /);
  t.match(twoHosts, /"code":"DEVSTACK_DUPLICATE_HOST"/);
  const asterisk = await raw(port, 'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.match(asterisk, /^HTTP\/1\.1 400 /, 'OPTIONS * names nothing to forward');
  t.match(asterisk, /"code":"DEVSTACK_BAD_REQUEST"/);
  const expect = await raw(port, 'PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx');
  t.match(expect, /^HTTP\/1\.1 417 /);
  t.match(expect, /"code":"DEVSTACK_EXPECTATION_FAILED"/);
  const garbage = await raw(port, 'NOT HTTP\r\n\r\n');
  t.match(garbage, /^HTTP\/1\.1 400 /);
  t.match(garbage, /"code":"DEVSTACK_BAD_REQUEST"/);
  t.equal(a.hits, 0);
});
