import t from 'tap';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { compose, createLogger, SidecarMetrics, type Direction } from '@devstack/sidecar';
import { raw, send, sidecar, upstream, writeRegistry } from './helpers.ts';

/** Metrics whose invalid-key counter throws: a stage that fails inside a real sidecar. */
class FaultyMetrics extends SidecarMetrics {
  override invalidKey(direction: Direction, carrier: string, problem: string): void {
    super.invalidKey(direction, carrier, problem);
    throw new Error('counter exploded');
  }
}

t.test('a stage that throws answers 500 for that request only; it is logged and counted', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const lines: string[] = [];
  const s = await sidecar(t, writeRegistry(dir, { a: { base: a.origin } }), {
    metrics: new FaultyMetrics({ defaultMetrics: false }),
    logger: createLogger('error', (line) => lines.push(line)),
    edge: { port: 0, host: '127.0.0.1', domains: ['example.com'], entry: 'a' },
  });
  const port = s.addresses.outbound!.port;
  const failed = await send(port, { headers: { host: 'a', 'uber-ctx-key': 'Not A Key' } });
  t.equal(failed.status, 500);
  t.same(failed.json(), { error: { code: 'DEVSTACK_INTERNAL', message: 'the sidecar failed on this request' } });
  t.equal(failed.headers['x-devstack-lane'], 'none');
  t.notMatch(failed.body, 'counter exploded', 'the internal message stays in the log');

  const edge = await send(s.addresses.edge!.port, { headers: { host: 'Bad_Key.example.com' } });
  t.equal(edge.status, 500, 'the edge listener is guarded the same way');

  // Upgrade requests run the routing stages on a raw socket: the same guard answers there.
  const upgrade = await raw(port, 'GET / HTTP/1.1\r\nHost: a\r\nuber-ctx-key: Not A Key\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n');
  t.match(upgrade, /^HTTP\/1\.1 500 /);
  t.match(upgrade, '"code":"DEVSTACK_INTERNAL"');

  const ok = await send(port, { headers: { host: 'a', 'uber-ctx-key': 'f' } });
  t.equal(ok.status, 200, 'every other request goes on');
  const logged = lines.map((l) => JSON.parse(l) as { msg: string; listener: string; error: string });
  t.same(
    logged.map((l) => [l.msg, l.listener, l.error]),
    [
      ['request failed inside the sidecar', 'outbound', 'counter exploded'],
      ['request failed inside the sidecar', 'edge', 'counter exploded'],
      ['request failed inside the sidecar', 'outbound', 'counter exploded'],
    ],
  );
  const metrics = (await send(s.addresses.admin!.port, { path: '/metrics' })).body;
  t.match(metrics, /devstack_internal_errors_total\{direction="outbound"\} 2\n/);
  t.match(metrics, /devstack_internal_errors_total\{direction="edge"\} 1\n/);
  // The plain request and the upgrade request.
  t.match(metrics, /devstack_requests_total\{direction="outbound",service="a",lane="none",status="500"\} 2\n/);
});

t.test('a stage that throws after the response began cuts only that connection', async (t) => {
  const faults: unknown[] = [];
  const handle = compose(
    'outbound',
    [
      (ex) => (ex.req.url === '/late' ? ex.next() : ex.res.end('fine')),
      (ex) => {
        ex.res.writeHead(200, { 'content-length': '10' });
        ex.res.write('half');
        throw new Error('late failure');
      },
    ],
    (_ex, error) => faults.push(error),
  );
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const cut = await new Promise<string>((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/late', agent: false }, (res) => {
      res.on('data', () => undefined);
      res.on('aborted', () => resolve('aborted'));
      res.on('end', () => resolve('complete'));
    });
    req.on('error', (error) => resolve(`error ${(error as NodeJS.ErrnoException).code}`));
    req.end();
  });
  t.match(cut, /^(aborted|error ECONNRESET)$/, 'a truncated body is not made to look complete');
  t.equal(faults.length, 1);
  t.equal((faults[0] as Error).message, 'late failure');
  t.equal((await send(port, { path: '/' })).body, 'fine', 'the server goes on');
});
