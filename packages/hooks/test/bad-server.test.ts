/*
 * An API server that is not one: it never answers, answers `null`, or answers a proxy's HTML page.
 * Each is reported as what it is, with its own code and exit 1, never as a missing or foreign
 * object, and never as a stack trace.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import t from 'tap';
import { answerWith, badServer } from './bad-server.ts';
import { run, spawnCli } from './helpers.ts';

const errorOf = (r: Awaited<ReturnType<typeof run>>) => r.lines.find((l) => l['level'] === 'error');
const clone = (kubeconfig: string, extra: string[] = []) => run(['secret', 'clone', '--kubeconfig', kubeconfig, '--from', 'orders', '--to', 'orders-f1', '--key', 'f1', ...extra]);

t.test('a server that accepts and never answers: a timeout, exit 1, not a wait until the deadline', async (t) => {
  const server = await badServer(t, () => undefined);
  const r = await clone(server.kubeconfig, ['--request-timeout', '200ms']);
  t.equal(r.code, 1, r.stderr);
  t.match(errorOf(r), { code: 'DEVSTACK_HOOK_KUBE_TIMEOUT', error: /get Secret team-a\/orders: no answer within 200 ms/ });
  t.same(server.requests, ['GET /api/v1/namespaces/team-a/secrets/orders'], 'not retried: one request');
  // The same through the environment, for ingressroute remove.
  const env = await run(['ingressroute', 'remove', '--kubeconfig', server.kubeconfig, '--name', 'edge', '--key', 'f1'], { DEVSTACK_REQUEST_TIMEOUT: '0.2s' });
  t.equal(env.code, 1, env.stderr);
  t.match(errorOf(env), { code: 'DEVSTACK_HOOK_KUBE_TIMEOUT' });
});

t.test('--request-timeout is checked before anything is sent', async (t) => {
  const server = await badServer(t, () => undefined);
  for (const bad of ['soon', '0', '1h', '11m', '1.5.0s']) {
    const r = await clone(server.kubeconfig, ['--request-timeout', bad]);
    t.equal(r.code, 2, bad);
    t.match(r.stderr, /--request-timeout: expected a duration from 1ms to 10m/);
  }
  t.same(server.requests, []);
});

t.test('a JSON null answer is a bad response, not a TypeError', async (t) => {
  const server = await badServer(t, answerWith(200, 'application/json', 'null'));
  const r = await clone(server.kubeconfig);
  t.equal(r.code, 1, r.stderr);
  t.match(errorOf(r), { code: 'DEVSTACK_HOOK_KUBE_BAD_RESPONSE', error: /get Secret team-a\/orders: HTTP 200: not a Secret: null/ });
  t.notMatch(r.stderr, /TypeError|at .*\.js:\d+/);
  const update = await run(['secret', 'update', '--kubeconfig', server.kubeconfig, '--name', 'orders', '--set', 'A=1']);
  t.match(errorOf(update), { code: 'DEVSTACK_HOOK_KUBE_BAD_RESPONSE' });
});

t.test('an HTML page with 200 is a bad response, not a secret it did not make', async (t) => {
  const server = await badServer(t, answerWith(200, 'text/html', '<html><body>Sign in to continue</body></html>'));
  const r = await clone(server.kubeconfig);
  t.equal(r.code, 1, r.stderr);
  t.match(errorOf(r), { code: 'DEVSTACK_HOOK_KUBE_BAD_RESPONSE', error: /get Secret team-a\/orders: HTTP 200: not JSON \(text\/html, 45 bytes\)/ });
  t.same(server.requests, ['GET /api/v1/namespaces/team-a/secrets/orders'], 'nothing written');
  const add = await run(['ingressroute', 'add', '--kubeconfig', server.kubeconfig, '--name', 'edge', '--host', 'shop.example.com', '--key', 'f1', '--service', 'web-f1']);
  t.match(errorOf(add), { code: 'DEVSTACK_HOOK_KUBE_BAD_RESPONSE' });
});

t.test('an HTML 404 is a bad response, not an object that is absent', async (t) => {
  const server = await badServer(t, answerWith(404, 'text/html', '<html>Not Found</html>'));
  const r = await run(['ingressroute', 'remove', '--kubeconfig', server.kubeconfig, '--name', 'edge', '--key', 'f1']);
  t.equal(r.code, 1, r.stdout);
  t.match(errorOf(r), { code: 'DEVSTACK_HOOK_KUBE_BAD_RESPONSE', error: /HTTP 404: not a Kubernetes Status \(text\/html, 22 bytes\)/ });
});

t.test('an object of another name or kind is a bad response', async (t) => {
  const server = await badServer(t, answerWith(200, 'application/json', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'orders' }, data: {} })));
  t.match(errorOf(await clone(server.kubeconfig)), { code: 'DEVSTACK_HOOK_KUBE_BAD_RESPONSE', error: /not a Secret: kind "ConfigMap"/ });
  const other = await badServer(t, answerWith(200, 'application/json', JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'payments' }, data: { A: 1 } })));
  t.match(errorOf(await clone(other.kubeconfig)), { code: 'DEVSTACK_HOOK_KUBE_BAD_RESPONSE' });
});

t.test('an SQS endpoint that never answers: the same timeout, exit 1', async (t) => {
  const server = await badServer(t, () => undefined);
  const r = await spawnCli(['sqs', 'delete', '--queue', 'orders', '--key', 'f1', '--endpoint', server.url, '--request-timeout', '100ms'], { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' });
  t.equal(r.code, 1, r.stderr);
  t.match(errorOf(r), { code: 'DEVSTACK_HOOK_SQS', error: /look up orders-f1: TimeoutError: .*100 ms requestTimeout/ });
});

t.test('an answer that never ends: cut at --max-response-size, and at the deadline when it drips', async (t) => {
  const piece = `"${'x'.repeat(64 * 1024)}",`;
  const endless = await badServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"kind":"Secret","data":[');
    // Bounded: far past the limit, then it stops whether or not the client left.
    let sent = 0;
    const more = () => {
      while (sent++ < 200 && !res.destroyed) if (!res.write(piece)) return void res.once('drain', more);
      res.end(']}');
    };
    more();
  });
  const big = await clone(endless.kubeconfig, ['--max-response-size', '1Mi']);
  t.equal(big.code, 1, big.stderr);
  t.match(errorOf(big), { code: 'DEVSTACK_HOOK_KUBE_BAD_RESPONSE', error: /get Secret team-a\/orders: HTTP 200: an answer over 1048576 bytes \(--max-response-size\)/ });
  const announced = await badServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 20 * 1024 * 1024 });
    res.write('{');
  });
  t.match(errorOf(await clone(announced.kubeconfig)), { code: 'DEVSTACK_HOOK_KUBE_BAD_RESPONSE', error: /an answer over 8388608 bytes/ });
  const bad = await clone(endless.kubeconfig, ['--max-response-size', '1Gb']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--max-response-size: expected a size from 1Ki to 1Gi/);

  const drip = await badServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{');
  });
  const slow = await clone(drip.kubeconfig, ['--request-timeout', '300ms']);
  t.equal(slow.code, 1, slow.stderr);
  t.match(errorOf(slow), { code: 'DEVSTACK_HOOK_KUBE_TIMEOUT', error: /no answer within 300 ms/ });
});

t.test('an SNS endpoint that never answers: the same timeout, exit 1', async (t) => {
  const server = await badServer(t, () => undefined);
  const r = await spawnCli(['sns', 'subscribe', '--topic', 'events', '--queue', 'orders', '--key', 'f1', '--endpoint', server.url, '--request-timeout', '100ms'], { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1', AWS_MAX_ATTEMPTS: '1' });
  t.equal(r.code, 1, r.stderr);
  t.match(errorOf(r), { code: 'DEVSTACK_HOOK_SNS', error: /look up the topic events: TimeoutError: .*100 ms requestTimeout/ });
  const topic = await spawnCli(['sns', 'delete', '--topic', 'events', '--key', 'f1', '--endpoint', server.url, '--request-timeout', '100ms'], { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1', AWS_MAX_ATTEMPTS: '1' });
  t.equal(topic.code, 1, topic.stderr);
  t.match(errorOf(topic), { code: 'DEVSTACK_HOOK_SNS', error: /TimeoutError/ });
});

t.test('a PostgreSQL that accepts and never answers: a timeout, exit 1', async (t) => {
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => {
    sockets.add(socket);
    socket.resume();
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    silent.close(() => resolve());
  }));
  const env = { PGHOST: '127.0.0.1', PGPORT: String((silent.address() as AddressInfo).port), PGUSER: 'postgres', PGPASSWORD: 'pw-SECRET' };
  for (const args of [['postgres', 'create', '--database', 'orders', '--key', 'f1'], ['postgres', 'drop', '--database', 'orders', '--key', 'f1']]) {
    const r = await run([...args, '--request-timeout', '200ms'], env);
    t.equal(r.code, 1, r.stderr);
    t.match(errorOf(r), { code: 'DEVSTACK_HOOK_POSTGRES', error: /connect to PostgreSQL at 127\.0\.0\.1:\d+ as postgres: .*no answer within 200 ms \(--request-timeout/ });
    t.notMatch(r.stdout + r.stderr, /pw-SECRET/);
  }
  t.equal(sockets.size, 2, 'one connection each, not retried');
});
