import t from 'tap';
import { request, type IncomingHttpHeaders } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { send, sidecar, upstream, writeRegistry } from './helpers.ts';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  trailers: NodeJS.Dict<string>;
}

/** A request through the sidecar, optionally with a chunked body and request trailers. */
function call(port: number, options: { method?: string; headers: Record<string, string>; body?: string; trailers?: Record<string, string> }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, trailers: res.trailers }));
    });
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    if (options.trailers) req.addTrailers(options.trailers);
    req.end();
  });
}

t.test('response trailers and te: trailers reach the other side', async (t) => {
  const dir = t.testdir();
  const seen: IncomingHttpHeaders[] = [];
  const a = await upstream(t, 'a', (req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { trailer: 'x-checksum' });
      res.write('hello ');
      res.addTrailers({ 'x-checksum': 'sha256=abc' });
      res.end('world');
    });
  });
  // A length-delimited body cannot carry trailers, yet its upstream announces some (Node will not
  // write that, so this upstream speaks raw HTTP): the announcement must not break the answer.
  const sizedServer = createNetServer((socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTrailer: x-checksum\r\nConnection: close\r\n\r\nok'));
  });
  await new Promise<void>((resolve) => sizedServer.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => sizedServer.close(() => resolve())));
  const sized = `http://127.0.0.1:${(sizedServer.address() as AddressInfo).port}`;
  const s = await sidecar(t, writeRegistry(dir, { a: { base: a.origin }, sized: { base: sized } }));
  const port = s.addresses.outbound!.port;

  const answer = await call(port, { headers: { host: 'a', te: 'trailers', connection: 'te' } });
  t.equal(answer.status, 200);
  t.equal(answer.body, 'hello world');
  t.equal(answer.headers['trailer'], 'x-checksum', 'the Trailer announcement is passed on');
  t.same(answer.trailers, { 'x-checksum': 'sha256=abc' }, 'the trailer itself arrives');
  t.equal(seen[0]!['te'], 'trailers', 'te: trailers goes upstream');

  await call(port, { headers: { host: 'a', te: 'gzip;q=0.5, Trailers' } });
  t.equal(seen[1]!['te'], 'trailers', 'only the trailers token of TE is forwarded');
  await call(port, { headers: { host: 'a', te: 'gzip' } });
  t.equal(seen[2]!['te'], undefined, 'a TE without trailers is this hop only');

  const length = await send(port, { headers: { host: 'sized' } });
  t.equal(length.status, 200);
  t.equal(length.body, 'ok');
  t.equal(length.headers['trailer'], undefined, 'no Trailer announcement on a body that cannot carry one');
  const head = await call(port, { method: 'HEAD', headers: { host: 'sized' } });
  t.equal(head.status, 200, 'a HEAD answer announcing trailers is still answered');
  t.equal(head.headers['trailer'], undefined);
});

t.test('request trailers reach the upstream', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a', (req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ body, trailers: req.trailers, announced: req.headers['trailer'], key: req.headers['uber-ctx-key'] }));
    });
  });
  const s = await sidecar(t, writeRegistry(dir, { a: { base: a.origin, features: { f: a.origin } } }));
  const answer = await call(s.addresses.outbound!.port, {
    method: 'POST',
    headers: { host: 'a', trailer: 'x-checksum', 'uber-ctx-key': 'f' },
    body: 'payload',
    trailers: { 'x-checksum': 'sha256=def' },
  });
  t.equal(answer.status, 200);
  t.equal(answer.headers['x-devstack-lane'], 'f');
  t.same(JSON.parse(answer.body), { body: 'payload', trailers: { 'x-checksum': 'sha256=def' }, announced: 'x-checksum', key: 'f' });
});

t.test('a request with trailers to an upstream that never answers times out like any other', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a', (req) => req.resume());
  const s = await sidecar(t, writeRegistry(dir, { a: { base: a.origin } }), { idleTimeoutMs: 50 });
  const answer = await call(s.addresses.outbound!.port, { method: 'POST', headers: { host: 'a', trailer: 'x-checksum' }, body: 'x', trailers: { 'x-checksum': '1' } });
  t.equal(answer.status, 504);
  t.equal(JSON.parse(answer.body).error.code, 'DEVSTACK_UPSTREAM_TIMEOUT');
  const metrics = (await send(s.addresses.admin!.port, { path: '/metrics' })).body;
  t.match(metrics, /devstack_upstream_errors_total\{direction="outbound",service="a",code="DEVSTACK_UPSTREAM_TIMEOUT"\} 1/);
});
