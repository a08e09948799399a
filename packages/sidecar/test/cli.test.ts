import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CLI, holdingUpstream, send, spawnSidecar, upstream, writeRegistry } from './helpers.ts';

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('--help and --version', async (t) => {
  const help = run(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage: devstack-sidecar --registry FILE/);
  for (const flag of ['--outbound-port', '--inbound-port', '--app-port', '--edge-port', '--domain', '--entry', '--admin-port', '--default-key', '--strict']) {
    t.match(help.stdout, flag, `documents ${flag}`);
  }
  t.match(run(['--version']).stdout, /^\d+\.\d+\.\d+\n$/);
});

t.test('invalid configuration: one clear line per problem, exit 2', async (t) => {
  const bad = run(['--outbound-port', '70000', '--inbound-port', '0', '--default-key', 'Not A Key', '--key-name', 'Bad Name']);
  t.equal(bad.code, 2);
  const lines = bad.stderr.trim().split('\n');
  t.same(lines, [
    'devstack-sidecar: --registry (DEVSTACK_REGISTRY): required: the registry file to route by',
    'devstack-sidecar: --outbound-port (DEVSTACK_OUTBOUND_PORT): expected a whole number from 0 to 65535, got "70000"',
    'devstack-sidecar: --app-port (DEVSTACK_APP_PORT): required with --inbound-port',
    `devstack-sidecar: --default-key (DEVSTACK_DEFAULT_KEY): "Not A Key" is not a routing key (a DNS-1123 label: a-z, 0-9, '-', at most 63 characters)`,
    `devstack-sidecar: key name "Bad Name" must be a lower-case header token (a-z, 0-9, '.', '_', '-')`,
    'Run devstack-sidecar --help for usage.',
  ]);
  t.match(run(['--bogus']).stderr, /Unknown option '--bogus'/);
  t.match(run(['--registry', 'x.yaml']).stderr, /no listener/);
  t.match(run(['--registry', 'x.yaml', '--edge-port', '0']).stderr, /--domain \(DEVSTACK_DOMAIN\): required with --edge-port\n.*--entry/);
});

t.test('a missing registry file or a port in use: exit 1 with a clear message', async (t) => {
  const dir = t.testdir();
  const missing = run(['--registry', `${dir}/none.yaml`, '--outbound-port', '0']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /none\.yaml: cannot read registry: no such file/);
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  t.teardown(() => busy.close());
  const port = (busy.address() as AddressInfo).port;
  const taken = run(['--registry', writeRegistry(dir, {}), '--outbound-port', String(port)]);
  t.equal(taken.code, 1);
  t.match(taken.stderr, `outbound listener on 127.0.0.1:${port}: port ${port} is already in use`);
});

t.test('environment variables configure it, flags win', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const child = await spawnSidecar(t, ['--default-key', 'g'], {
    DEVSTACK_REGISTRY: writeRegistry(dir, { a: { base: a.origin, features: { f: a.origin, g: a.origin } } }),
    DEVSTACK_OUTBOUND_PORT: '0',
    DEVSTACK_ADMIN_PORT: '0',
    DEVSTACK_ADMIN_HOST: '127.0.0.1',
    DEVSTACK_DEFAULT_KEY: 'f',
  });
  const reply = await send(child.ports['outbound']!, { headers: { host: 'a' } });
  t.equal(reply.headers['x-devstack-lane'], 'g');
  t.equal((await send(child.ports['admin']!, { path: '/readyz' })).status, 200);
});

t.test('SIGTERM: in-flight requests finish, then the process exits 0', async (t) => {
  const dir = t.testdir();
  const slow = await holdingUpstream(t, 'slow');
  const child = await spawnSidecar(t, ['--registry', writeRegistry(dir, { slow: { base: slow.origin } }), '--outbound-port', '0', '--admin-port', '0', '--admin-host', '127.0.0.1']);
  const inFlight = send(child.ports['outbound']!, { headers: { host: 'slow' } });
  const held = await slow.arrival;
  child.proc.kill('SIGTERM');
  // The process logs `stopping` once it has the signal; readiness is already off by then.
  while (!child.stdout.some((l) => l.includes('"msg":"stopping"'))) await new Promise((r) => setImmediate(r));
  t.equal((await send(child.ports['admin']!, { path: '/readyz' })).status, 503);
  held.end('done');
  const reply = await inFlight;
  t.equal(reply.status, 200);
  t.equal(reply.body, 'done');
  t.equal(await child.exited, 0);
});

t.test('tracing: a span per request with service, lane and key, when OTEL_* asks for it', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const child = await spawnSidecar(t, ['--registry', writeRegistry(dir, { a: { base: a.origin, features: { f: a.origin } } }), '--outbound-port', '0'], {
    OTEL_TRACES_EXPORTER: 'console',
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_LOGS_EXPORTER: 'none',
    OTEL_BSP_SCHEDULE_DELAY: '10',
  });
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const reply = await send(child.ports['outbound']!, { headers: { host: 'a', 'uber-ctx-key': 'f', traceparent } });
  const seen = reply.json()['headers'] as Record<string, string>;
  t.match(seen['traceparent'], /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/, 'the incoming trace continues upstream');
  child.proc.kill('SIGTERM');
  await child.exited;
  const out = child.stdout.join('\n');
  t.match(out, /'devstack.service': 'a'/);
  t.match(out, /'devstack.lane': 'f'/);
  t.match(out, /'devstack.key': 'f'/);
  t.match(out, /traceId: '0af7651916cd43dd8448eb211c80319c'/);
});
