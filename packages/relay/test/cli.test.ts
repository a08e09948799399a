/*
 * The `devstack-relay` command: usage errors, readiness, the admin listener and stream ages.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { NS, Stream, fleet, get, startRelay } from './helpers.ts';

const CLI = fileURLToPath(new URL('../bin/devstack-relay.cjs', import.meta.url));

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('usage errors say what is wrong and exit 2; no credentials exit 1', async (t) => {
  const help = await run(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /--all-namespaces/);
  t.match(help.stdout, /--max-connections N/);
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [[], {}, /--namespace NS \(repeatable\) or --all-namespaces/],
    [['--namespace', 'a', '--all-namespaces'], {}, /give one of them/],
    [['--namespace', 'Bad_Name'], {}, /"Bad_Name" is not a namespace name/],
    [['--namespace', 'a', '--targets', 'pods'], {}, /--targets \(DEVSTACK_TARGETS\): expected service or endpoints/],
    [['--namespace', 'a', '--port', '70000'], {}, /--port \(DEVSTACK_PORT\): expected a whole number from 0 to 65535/],
    [['--namespace', 'a'], { DEVSTACK_MAX_CONNECTIONS: 'lots' }, /--max-connections \(DEVSTACK_MAX_CONNECTIONS\)/],
    [['--namespace', 'a', '--nope'], {}, /Unknown option '--nope'/],
    [['--namespace', 'a', '--tls-cert', 'cert.pem'], {}, /--tls-cert and --tls-key \(DEVSTACK_TLS_CERT, DEVSTACK_TLS_KEY\): give both or neither/],
  ];
  for (const [args, env, message] of cases) {
    const r = await run(args, env);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, message);
  }
  const creds = await run(['--namespace', 'a', '--kubeconfig', '/nonexistent/kubeconfig']);
  t.equal(creds.code, 1, 'no credentials');
  t.match(creds.stderr, /^devstack-relay: /);
});

t.test('ready only after the first sync; streams end at their maximum age and clients come back', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  api.failNext(Infinity, 'hang', { match: (r) => r.path.includes('/services') && !r.watch });
  const relay = await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS, '--max-stream-age', '1000']);
  t.equal((await get(relay.adminPort, '/healthz')).status, 200, 'alive');
  const notYet = await get(relay.adminPort, '/readyz');
  t.equal(notYet.status, 503, 'not ready before the first sync');
  t.equal((notYet.body['error'] as { code: string }).code, 'DEVSTACK_RELAY_NOT_READY');
  const waiting = await Stream.open(relay.port, NS);
  t.teardown(() => waiting.close());
  api.clearFaults();
  await api.stop();
  await api.restart();
  const first = await waiting.next();
  t.equal(first.type, 'snapshot', 'a subscriber that came before the first sync gets it');
  t.equal((await get(relay.adminPort, '/readyz')).status, 200);
  await waiting.next(() => false).catch(() => undefined);
  t.ok(waiting.ended, 'the stream ended at its maximum age');
  const status = await get(relay.adminPort, '/status');
  t.match(status.body, { ready: true, namespaces: [{ namespace: NS, services: 2 }] });
  t.equal((await get(relay.adminPort, '/nope')).status, 404);

  const lasting = await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS]);
  const last = await Stream.open(lasting.port, NS);
  await last.next();
  lasting.proc.kill('SIGTERM');
  t.equal(await lasting.exited, 0, 'SIGTERM: a clean exit');
  await last.next(() => false).catch(() => undefined);
  t.ok(last.ended, 'streams are ended on the way out, so clients resume elsewhere at once');
});
