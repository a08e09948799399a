/* The command line: help, usage errors, credentials, the environment variables. */
import t from 'tap';
import { COMMANDS, parseCommandLine } from '@devstack/hooks';
import { done, fake, NS, routesOf, run, sharedRoute, spawnCli } from './helpers.ts';

t.test('--help for the tool and for each command', async (t) => {
  const top = await spawnCli(['--help']);
  t.equal(top.code, 0);
  t.match(top.stdout, /^Usage: devstack-hooks COMMAND/);
  for (const command of Object.keys(COMMANDS)) {
    const r = await run([...command.split(' '), '--help']);
    t.equal(r.code, 0, command);
    t.match(r.stdout, new RegExp(`^Usage: devstack-hooks ${command} `));
    // Every flag the command accepts is in its help.
    for (const flag of [...COMMANDS[command]!.strings, ...(COMMANDS[command]!.booleans ?? []), ...(COMMANDS[command]!.pairs ?? [])]) t.match(r.stdout, `--${flag} `, `${command} --${flag}`);
  }
});

t.test('usage errors exit 2 with one line per problem', async (t) => {
  const none = await spawnCli(['frobnicate', 'now']);
  t.equal(none.code, 2);
  t.match(none.stderr, /unknown command "frobnicate now"/);
  const missing = await run(['secret', 'clone', '--from', 'a', '--set', 'novalue', '--bogus']);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /unknown flag at argument 7 \(flags of secret clone: --from, /);
  const lines = await run(['secret', 'clone', '--from', 'a', '--set', 's3cr3t-without-equals']);
  t.equal(lines.code, 2);
  t.same(lines.stderr.trim().split('\n'), [
    "devstack-hooks: --set (argument 6): expected KEY=VALUE, got a value without '='",
    'devstack-hooks: --to (DEVSTACK_TO): required',
    'devstack-hooks: --key (DEVSTACK_KEY): required',
    'Run devstack-hooks secret clone --help for usage.',
  ]);
  t.notMatch(lines.stderr, /s3cr3t/, 'a malformed --set never echoes its value');
  const attrs = await run(['sqs', 'create', '--queue', 'orders', '--key', 'f1', '--attributes', '[1]']);
  t.equal(attrs.code, 2);
  t.match(attrs.stderr, /--attributes: expected a JSON object/);
});

t.test('no credentials is exit 1 with the reason, after the flags were checked', async (t) => {
  const r = await spawnCli(['secret', 'update', '--name', 'orders', '--set', 'A=1', '--kubeconfig', '/nonexistent/devstack-hooks/kubeconfig']);
  t.equal(r.code, 1);
  t.match(r.lines.find((l) => l['level'] === 'error'), { code: 'DEVSTACK_HOOK_NO_CREDENTIALS', error: /no Kubernetes credentials/ });
  // Outside a pod without a kubeconfig: said at once, not retried as a lost connection.
  const none = await run(['ingressroute', 'remove', '--name', 'edge', '--key', 'feature1'], {});
  t.equal(none.code, 1);
  t.same(none.lines.map((l) => [l['level'], l['code']]), [['error', 'DEVSTACK_HOOK_NO_CREDENTIALS']]);
  t.match(none.stderr, /not in a pod \(KUBERNETES_SERVICE_HOST is not set\)/);
});

t.test('flags come from DEVSTACK_* and KUBECONFIG too; a flag wins', async (t) => {
  const { api, kubeconfig } = await fake(t);
  sharedRoute(api);
  const r = await run(['ingressroute', 'add', '--key', 'feature1'], {
    KUBECONFIG: kubeconfig,
    DEVSTACK_NAME: 'edge',
    DEVSTACK_HOST: 'shop.example.com',
    DEVSTACK_SERVICE: 'web-feature1',
    DEVSTACK_KEY: 'ignored',
    DEVSTACK_KEY_NAME: 'dev-serve-user',
  });
  t.equal(r.code, 0, r.stderr);
  t.match(done(r), { namespace: NS, change: 'added' }, 'the namespace from the kubeconfig context');
  t.equal(routesOf(api)[1]!.match, 'Host(`shop.example.com`) && Header(`dev-serve-user`, `feature1`)');
  t.match(parseCommandLine(['sqs', 'delete', '--queue', 'q'], { DEVSTACK_KEY: 'k1' }), { kind: 'run', invocation: { values: { key: 'k1', queue: 'q' } } });
});

t.test('a usage error never echoes an argument that may be a secret', async (t) => {
  // A stray space after '=' makes the secret a positional argument of its own.
  const stray = await spawnCli(['secret', 'update', '--name', 'orders-f1', '--set', 'PASSWORD=', 'Hunter2Leak']);
  t.equal(stray.code, 2);
  t.match(stray.stderr, /unexpected argument 7 \(after --set: a value without a flag; a space after '='\?\)/);
  const dash = await run(['secret', 'update', '--name', 'orders-f1', '--set', '-Hunter2Leak']);
  t.equal(dash.code, 2);
  const inline = await run(['secret', 'update', '--name', 'orders-f1', '--set', 'A=1', '--Hunter2Leak=x']);
  t.equal(inline.code, 2);
  t.match(inline.stderr, /unknown flag at argument 7/);
  const badKey = await run(['secret', 'update', '--name', 'orders-f1', '--set', 'Hunter2Leak PASSWORD=x']);
  t.equal(badKey.code, 2);
  t.match(badKey.stderr, /--set #1: its KEY is not a Secret key/);
  const json = await run(['sqs', 'create', '--queue', 'orders', '--key', 'f1', '--attributes', '{"Hunter2Leak']);
  t.equal(json.code, 2);
  for (const r of [stray, dash, inline, badKey, json]) t.notMatch(r.stdout + r.stderr, /Hunter2Leak/, 'the value appears nowhere');
});
