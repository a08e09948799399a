import t from 'tap';
import { HELP, isLoopback, parseConfig } from '@devstack/sidecar';
import { send, sidecar, upstream, writeRegistry } from './helpers.ts';

t.test('which client addresses count as loopback', async (t) => {
  const table: [string | undefined, boolean][] = [
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['127.255.255.255', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['::FFFF:127.9.9.9', true],
    ['0:0:0:0:0:0:0:1', true],
    ['10.0.0.7', false],
    ['192.168.1.1', false],
    ['128.0.0.1', false],
    ['126.255.255.255', false],
    ['0.0.0.0', false],
    ['::', false],
    ['::2', false],
    ['::ffff:10.0.0.1', false],
    ['fe80::1', false],
    ['127.0.0.1.example.com', false],
    ['localhost', false],
    ['', false],
    [undefined, false],
  ];
  for (const [address, expected] of table) t.equal(isLoopback(address), expected, String(address));
});

t.test('/routes and /resolve answer local clients only unless exposed; probes answer everyone', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const registry = writeRegistry(dir, { a: { base: a.origin, features: { f: a.origin } } });
  const seen: (string | undefined)[] = [];
  // Loopback is all a test can reach, so the remote client is this policy saying no to it.
  const remote = (address: string | undefined) => {
    seen.push(address);
    return false;
  };
  const closed = await sidecar(t, registry, { admin: { port: 0, host: '127.0.0.1', isLocal: remote } });
  const port = closed.addresses.admin!.port;
  for (const path of ['/routes', '/resolve?service=a&key=f']) {
    const reply = await send(port, { path });
    t.equal(reply.status, 403, `${path} is refused`);
    t.same(reply.json(), { error: { code: 'DEVSTACK_FORBIDDEN', message: `${path.split('?')[0]} answers loopback clients only (--admin-expose-routes opens it)` } });
    t.equal(reply.headers['x-devstack-lane'], 'none');
  }
  t.same(seen, ['127.0.0.1', '127.0.0.1'], 'the policy is asked with the real client address');
  for (const path of ['/healthz', '/readyz', '/metrics']) t.equal((await send(port, { path })).status, 200, `${path} answers a remote client`);
  t.match((await send(port, { path: '/metrics' })).body, /devstack_requests_total\{direction="admin",service="none",lane="none",status="403"\} 2\n/, 'refusals are counted');

  const open = await sidecar(t, registry, { admin: { port: 0, host: '127.0.0.1', isLocal: remote, exposeRoutes: true } });
  t.equal((await send(open.addresses.admin!.port, { path: '/routes' })).status, 200, 'exposeRoutes opens /routes');
  t.equal((await send(open.addresses.admin!.port, { path: '/resolve?service=a&key=f' })).json()['lane'], 'f', 'and /resolve');

  const byDefault = await sidecar(t, registry);
  t.equal((await send(byDefault.addresses.admin!.port, { path: '/routes' })).status, 200, 'a loopback client gets /routes by default');
});

t.test('--admin-expose-routes and DEVSTACK_ADMIN_EXPOSE_ROUTES', async (t) => {
  const base = ['--registry', 'r.yaml', '--outbound-port', '0', '--admin-port', '0'];
  const config = (argv: string[], env: Record<string, string> = {}) => {
    const parsed = parseConfig(argv, env);
    return parsed.kind === 'config' ? parsed.config.admin : undefined;
  };
  t.equal(config(base)?.exposeRoutes, undefined, 'closed by default');
  t.equal(config([...base, '--admin-expose-routes'])?.exposeRoutes, true);
  t.equal(config(base, { DEVSTACK_ADMIN_EXPOSE_ROUTES: 'true' })?.exposeRoutes, true);
  t.same(parseConfig(base, { DEVSTACK_ADMIN_EXPOSE_ROUTES: 'maybe' }), { kind: 'error', problems: ['DEVSTACK_ADMIN_EXPOSE_ROUTES: expected true or false, got "maybe"'] });
  t.match(HELP, /--admin-expose-routes .*DEVSTACK_ADMIN_EXPOSE_ROUTES/);
});
