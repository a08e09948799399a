import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
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
  for (const [flag, env] of [['--request-headers-timeout', 'DEVSTACK_REQUEST_HEADERS_TIMEOUT'], ['--request-body-timeout', 'DEVSTACK_REQUEST_BODY_TIMEOUT'], ['--response-drain-timeout', 'DEVSTACK_RESPONSE_DRAIN_TIMEOUT']]) {
    t.match(help.stdout, new RegExp(`${flag} MS .*\\n +${env}\\n`), `documents ${flag} with ${env}`);
  }
  t.match(help.stdout, /SIGHUP reads the registry file again/);
  t.match(run(['--version']).stdout, /^\d+\.\d+\.\d+\n$/);
});

t.test('invalid configuration: one clear line per problem, exit 2', async (t) => {
  const bad = run(['--outbound-port', '70000', '--inbound-port', '0', '--default-key', 'Not A Key', '--key-name', 'Bad Name']);
  t.equal(bad.code, 2);
  const lines = bad.stderr.trim().split('\n');
  t.same(lines, [
    'devstack-sidecar: --registry (DEVSTACK_REGISTRY): required: the registry file to route by, or k8s',
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

t.test('a flag that was given but is invalid is reported once, not also as missing', async (t) => {
  const usage = 'Run devstack-sidecar --help for usage.';
  const cases: [string[], string][] = [
    [['--outbound-port', 'abc'], '--outbound-port (DEVSTACK_OUTBOUND_PORT): expected a whole number from 0 to 65535, got "abc"'],
    [['--edge-port=-1', '--domain', 'example.localhost', '--entry', 'web'], '--edge-port (DEVSTACK_EDGE_PORT): expected a whole number from 0 to 65535, got "-1"'],
    [['--edge-port', '-1'], "Option '--edge-port' argument is ambiguous. Did you forget to specify the option argument for '--edge-port'? To specify an option argument starting with a dash use '--edge-port=-XYZ'."],
    [['--inbound-port', 'abc', '--app-port', '8080'], '--inbound-port (DEVSTACK_INBOUND_PORT): expected a whole number from 0 to 65535, got "abc"'],
    [['--inbound-port', '0', '--app-port', 'abc'], '--app-port (DEVSTACK_APP_PORT): expected a whole number from 0 to 65535, got "abc"'],
    [['--outbound-port', '0', '--request-body-timeout', '0'], '--request-body-timeout (DEVSTACK_REQUEST_BODY_TIMEOUT): expected a whole number from 1 to 3600000, got "0"'],
  ];
  for (const [args, problem] of cases) {
    const r = run(['--registry', 'x.yaml', ...args]);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.same(r.stderr.trim().split('\n'), [`devstack-sidecar: ${problem}`, usage], `${args.join(' ')}: one line for one problem`);
  }
  const env = run([], { DEVSTACK_REGISTRY: 'x.yaml', DEVSTACK_OUTBOUND_PORT: 'abc' });
  t.same(env.stderr.trim().split('\n'), ['devstack-sidecar: --outbound-port (DEVSTACK_OUTBOUND_PORT): expected a whole number from 0 to 65535, got "abc"', usage], 'the same from the environment');
});

t.test('a missing registry file or a port in use: exit 1 with a clear message', async (t) => {
  const dir = t.testdir();
  const missing = run(['--registry', `${dir}/none.yaml`, '--outbound-port', '0']);
  t.equal(missing.code, 1);
  t.same(missing.stderr.trim().split('\n'), [`devstack-sidecar: ${dir}/none.yaml: cannot read registry: no such file`], 'one line says why');
  t.notMatch(missing.stdout, /"msg":"stopped"/, 'nothing started, so nothing is said to stop');
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  t.teardown(() => busy.close());
  const port = (busy.address() as AddressInfo).port;
  const taken = run(['--registry', writeRegistry(dir, {}), '--admin-port', '0', '--admin-host', '127.0.0.1', '--outbound-port', String(port)]);
  t.equal(taken.code, 1);
  t.same(taken.stderr.trim().split('\n'), [`devstack-sidecar: outbound listener on 127.0.0.1:${port}: port ${port} is already in use`], 'one line says why');
  t.notMatch(taken.stdout, /"msg":"(stopped|stopping|ready)"/, 'no shutdown is logged for a start that never happened');
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

t.test('SIGHUP reloads the registry; requests in flight finish and the process goes on', async (t) => {
  const dir = t.testdir();
  const slow = await holdingUpstream(t, 'slow');
  const a = await upstream(t, 'a');
  const a2 = await upstream(t, 'a2');
  const registry = writeRegistry(dir, { slow: { base: slow.origin }, a: { base: a.origin } });
  const child = await spawnSidecar(t, ['--registry', registry, '--outbound-port', '0']);
  const port = child.ports['outbound']!;
  const inFlight = send(port, { headers: { host: 'slow' } });
  const held = await slow.arrival;

  const reloads = () => child.stdout.filter((l) => l.includes('"msg":"registry reload"'));
  writeRegistry(dir, { slow: { base: slow.origin }, a: { base: a2.origin } });
  child.proc.kill('SIGHUP');
  while (reloads().length < 1) await new Promise((r) => setImmediate(r));
  // The file watcher may have seen the change first; then the reload finds nothing new.
  t.match(reloads()[0], /"signal":"SIGHUP","outcome":"(published|unchanged)"/);
  t.equal(child.proc.exitCode, null, 'the process lives');
  t.equal((await send(port, { headers: { host: 'a' } })).json()['name'], 'a2', 'the new registry is used');
  held.end('done');
  const reply = await inFlight;
  t.equal(reply.status, 200, 'the request in flight during SIGHUP finished');
  t.equal(reply.body, 'done');

  await writeFile(registry, '{"services": {"a": {"base": "not a url"}}}');
  child.proc.kill('SIGHUP');
  while (reloads().length < 2) await new Promise((r) => setImmediate(r));
  t.match(reloads()[1], /"outcome":"refused"/);
  t.ok(child.stdout.some((l) => l.includes('registry update refused; keeping the last good snapshot')), 'the reason is logged');
  t.equal((await send(port, { headers: { host: 'a' } })).json()['name'], 'a2', 'the last good registry stays');

  child.proc.kill('SIGTERM');
  t.equal(await child.exited, 0);
});
