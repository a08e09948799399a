/* The bounds' flags and environment variables, as the command reads them. */
import t from 'tap';
import { parseConfig } from '@devstack/sidecar';

const BASE = ['--registry', 'r.yaml', '--outbound-port', '0'];

t.test('every bound has a flag and an environment variable; flags win', async (t) => {
  const flags = parseConfig([...BASE, '--max-in-flight', '64', '--max-concurrent-streams', '8', '--max-upstream-connections', '16', '--max-client-resets', '50', '--max-invalid-frames', '5'], {});
  t.equal(flags.kind, 'config');
  if (flags.kind !== 'config') return;
  t.match(flags.config, { maxInFlight: 64, maxConcurrentStreams: 8, connections: 16, maxClientResets: 50, maxInvalidFrames: 5 });
  const env = parseConfig([...BASE, '--max-in-flight', '7'], { DEVSTACK_MAX_IN_FLIGHT: '9', DEVSTACK_MAX_CONCURRENT_STREAMS: '3', DEVSTACK_MAX_UPSTREAM_CONNECTIONS: '0' });
  t.equal(env.kind, 'config');
  if (env.kind !== 'config') return;
  t.equal(env.config.maxInFlight, 7, 'the flag wins');
  t.equal(env.config.maxConcurrentStreams, 3);
  t.equal(env.config.connections, null, '0 upstream connections: no limit');
  const none = parseConfig(BASE, {});
  t.ok(none.kind === 'config' && !('maxInFlight' in none.config) && !('connections' in none.config), 'unset: the sidecar defaults apply');
});

t.test('a bound out of range is one problem line', async (t) => {
  const bad = parseConfig([...BASE, '--max-in-flight', '0', '--max-concurrent-streams', 'many'], { DEVSTACK_MAX_CLIENT_RESETS: '-1' });
  t.equal(bad.kind, 'error');
  if (bad.kind !== 'error') return;
  t.same(bad.problems, [
    '--max-in-flight (DEVSTACK_MAX_IN_FLIGHT): expected a whole number from 1 to 1000000, got "0"',
    '--max-concurrent-streams (DEVSTACK_MAX_CONCURRENT_STREAMS): expected a whole number from 1 to 100000, got "many"',
    '--max-client-resets (DEVSTACK_MAX_CLIENT_RESETS): expected a whole number from 1 to 1000000, got "-1"',
  ]);
});

t.test('passive health: on by default, its flags and variables, off by --no-passive-health', async (t) => {
  const config = (argv: string[], env: Record<string, string> = {}) => {
    const parsed = parseConfig([...BASE, ...argv], env);
    if (parsed.kind !== 'config') throw new Error(JSON.stringify(parsed));
    return parsed.config;
  };
  t.notOk('passiveHealth' in config([]), 'unset: on, with core defaults');
  t.same(config(['--eject-after', '3', '--base-ejection', '200', '--max-ejection', '400']).passiveHealth, { ejectAfter: 3, baseEjectionMs: 200, maxEjectionMs: 400 });
  t.same(config([], { DEVSTACK_EJECT_AFTER: '2', DEVSTACK_MAX_EJECTION: '5000' }).passiveHealth, { ejectAfter: 2, maxEjectionMs: 5000 });
  t.equal(config(['--no-passive-health']).passiveHealth, false);
  t.equal(config(['--passive-health=false']).passiveHealth, false);
  t.equal(config([], { DEVSTACK_PASSIVE_HEALTH: 'false' }).passiveHealth, false);
  t.notOk('passiveHealth' in config(['--passive-health'], { DEVSTACK_PASSIVE_HEALTH: 'false' }), 'the flag wins');
  const bad = parseConfig([...BASE, '--passive-health=maybe', '--base-ejection', '5000', '--max-ejection', '100'], {});
  t.same(bad, { kind: 'error', problems: ['--passive-health (DEVSTACK_PASSIVE_HEALTH): expected true or false, got "maybe"', '--max-ejection (DEVSTACK_MAX_EJECTION): must not be below --base-ejection (5000)'] });
});
