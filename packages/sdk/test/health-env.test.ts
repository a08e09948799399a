/* Passive health and the connect timeout from environment variables (register), the sidecar's names. */
import t from 'tap';
import { optionsFromEnv } from '../src/env.ts';

t.test('the variables of passive health and the connect timeout', async (t) => {
  type Row = [string, Record<string, string>, object, number];
  const rows: Row[] = [
    ['none', {}, {}, 0],
    ['a connect timeout', { DEVSTACK_CONNECT_TIMEOUT: '2000' }, { connectTimeoutMs: 2000 }, 0],
    ['the ejection settings', { DEVSTACK_EJECT_AFTER: '3', DEVSTACK_BASE_EJECTION: '500', DEVSTACK_MAX_EJECTION: '8000' }, { passiveHealth: { ejectAfter: 3, baseEjectionMs: 500, maxEjectionMs: 8000 } }, 0],
    ['turned off', { DEVSTACK_PASSIVE_HEALTH: 'off', DEVSTACK_EJECT_AFTER: '3' }, { passiveHealth: false }, 0],
    ['on, the defaults', { DEVSTACK_PASSIVE_HEALTH: 'true' }, {}, 0],
    ['bad values: one problem each, the rest kept', { DEVSTACK_CONNECT_TIMEOUT: '5s', DEVSTACK_EJECT_AFTER: '0', DEVSTACK_MAX_EJECTION: '9000' }, { passiveHealth: { maxEjectionMs: 9000 } }, 2],
    ['not a boolean', { DEVSTACK_PASSIVE_HEALTH: 'maybe' }, {}, 1],
  ];
  for (const [name, env, options, problems] of rows) {
    const got = optionsFromEnv(env);
    t.same(got.options, options, `${name}: options`);
    t.equal(got.problems.length, problems, `${name}: problems ${JSON.stringify(got.problems)}`);
  }
  t.match(optionsFromEnv({ DEVSTACK_CONNECT_TIMEOUT: '5s' }).problems[0], /^DEVSTACK_CONNECT_TIMEOUT: expected a whole number from 1 to 3600000, got "5s"$/);
});
