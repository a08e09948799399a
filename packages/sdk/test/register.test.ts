/*
 * `@devstack/sdk/register` with no OpenTelemetry SDK: unchanged ESM apps under `--import` (an
 * Express front end), CommonJS apps under `--require` (a Fastify one), each a proxyless fleet run
 * through the carrier table of register-chain.ts.
 */
import t from 'tap';
import { getJson, startApp, stopApp } from './apps.ts';
import { runChain } from './register-chain.ts';

t.test('ES modules, --import', (t) => runChain(t, { ext: 'mjs', args: ['--import', '@devstack/sdk/register'], otel: false }));
t.test('CommonJS, --require, a Fastify front end', (t) => runChain(t, { ext: 'cjs', args: ['--require', '@devstack/sdk/register'], web: 'web-fastify', otel: false }));

t.test('a bad variable is one line on stderr and the app runs unrouted', async (t) => {
  const app = await startApp('echo.mjs', ['--import', '@devstack/sdk/register'], { SERVICE: 'echo', DEVSTACK_STRICT: 'maybe', DEVSTACK_DEFAULT_KEY: 'Feature_1' });
  t.teardown(() => stopApp(app));
  const { status, lane, body } = await getJson(app.url, { 'uber-ctx-key': 'feature1' });
  t.equal(status, 200, 'the app serves');
  t.equal(lane, undefined, 'unrouted: no lane header');
  t.equal(body.service, 'echo');
  const lines = app.stderr().split('\n').filter((l) => l.length > 0);
  t.equal(lines.length, 1, 'one line');
  t.match(lines[0], /^devstack: not started, the app runs unrouted: DEVSTACK_DEFAULT_KEY: "Feature_1" is not a routing key .*; DEVSTACK_STRICT: expected true or false, got "maybe"$/);
});
