import t from 'tap';
import { raw, send, sidecar, upstream, writeRegistry } from './helpers.ts';

// Answers the sidecar makes before any lane is chosen (parse errors, CONNECT refusals, unknown
// Expect, admin refusals) carry `x-devstack-lane: none` and are counted like every other answer.
t.test('every answer the sidecar makes itself carries the lane header and is counted', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const s = await sidecar(t, writeRegistry(dir, { a: { base: a.origin } }), {
    maxHeaderSize: 4096,
    inbound: { port: 0, host: '127.0.0.1', appPort: a.port },
    edge: { port: 0, host: '127.0.0.1', domains: ['example.com'], entry: 'a' },
  });
  const { outbound, inbound, edge, admin } = s.addresses;
  const big = `X-Big: ${'a'.repeat(8 * 1024)}\r\n`;
  const cases: [string, number, string, number][] = [
    ['outbound', outbound!.port, `GET / HTTP/1.1\r\nHost: a\r\n${big}\r\n`, 431],
    ['outbound', outbound!.port, 'G\u0001T / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['outbound', outbound!.port, 'CONNECT zzz:80 HTTP/1.1\r\nHost: zzz:80\r\n\r\n', 404],
    ['outbound', outbound!.port, 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', 405],
    ['outbound', outbound!.port, 'GET / HTTP/1.1\r\nHost: a\r\nExpect: nonsense\r\nConnection: close\r\n\r\n', 417],
    ['inbound', inbound!.port, `GET / HTTP/1.1\r\nHost: a\r\n${big}\r\n`, 431],
    ['inbound', inbound!.port, 'CONNECT a:80 HTTP/1.1\r\nHost: a:80\r\n\r\n', 405],
    ['edge', edge!.port, 'CONNECT a:80 HTTP/1.1\r\nHost: a:80\r\n\r\n', 405],
    ['edge', edge!.port, 'GET / HTTP/1.1\r\nHost: example.com\r\nExpect: nonsense\r\nConnection: close\r\n\r\n', 417],
    ['admin', admin!.port, `GET /healthz HTTP/1.1\r\nHost: a\r\n${big}\r\n`, 431],
    ['admin', admin!.port, 'CONNECT a:80 HTTP/1.1\r\nHost: a:80\r\n\r\n', 405],
    ['admin', admin!.port, 'GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 404],
  ];
  for (const [listener, port, head, status] of cases) {
    const answer = await raw(port, head);
    t.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), `${listener} ${status}`);
    t.match(answer, /\r\nx-devstack-lane: none\r\n/i, `${listener} ${status}: lane header`);
  }
  const metrics = (await send(admin!.port, { path: '/metrics' })).body;
  const counted = (listener: string, status: number) =>
    Number(new RegExp(`devstack_requests_total\\{direction="${listener}",service="none",lane="none",status="${status}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
  for (const [listener, , , status] of cases) {
    const expected = cases.filter(([l, , , s]) => l === listener && s === status).length;
    t.equal(counted(listener, status), expected, `${listener} ${status} counted`);
  }
  t.notMatch(metrics, /direction="admin",service="none",lane="none",status="200"/, 'probes and scrapes are not counted as refusals');
  t.notMatch(metrics, /devstack_request_duration_seconds_count\{direction="admin"/, 'refusals have no latency series');
});
