/*
 * `@devstack/sdk/register` loaded after the app's own OpenTelemetry, `auto-instrumentations-node/
 * register` (http, express, undici instrumentations, the W3C propagators), in ES module apps: the
 * carrier table of register-chain.ts, and no duplicate registration on stderr. The echo leaves run
 * the SDK only (OpenTelemetry takes a second to start, for nothing at a leaf). Nothing is exported
 * and no resource is detected.
 */
import t from 'tap';
import { QUIET_OTEL } from './apps.ts';
import { runChain } from './register-chain.ts';

const SDK = '@devstack/sdk/register';

t.test('ES modules, OpenTelemetry first', (t) =>
  runChain(t, { ext: 'mjs', args: ['--import', '@opentelemetry/auto-instrumentations-node/register', '--import', SDK], leafArgs: ['--import', SDK], env: QUIET_OTEL, otel: true }),
);

// Under --require, OpenTelemetry's instrumentations use the API's CommonJS build: the key must ride
// whichever build calls propagation, since both read the one global propagator.
t.test('ES modules, OpenTelemetry first with --require', (t) =>
  runChain(t, { ext: 'mjs', args: ['--require', '@opentelemetry/auto-instrumentations-node/register', '--import', SDK], leafArgs: ['--import', SDK], env: QUIET_OTEL, otel: true }),
);

t.test('CommonJS, OpenTelemetry first, --require both', (t) =>
  runChain(t, { ext: 'cjs', args: ['--require', '@opentelemetry/auto-instrumentations-node/register', '--require', SDK], leafArgs: ['--require', SDK], env: QUIET_OTEL, otel: true }),
);

t.test('CommonJS, the SDK first, --require both', (t) =>
  runChain(t, { ext: 'cjs', args: ['--require', SDK, '--require', '@opentelemetry/auto-instrumentations-node/register'], leafArgs: ['--require', SDK], env: QUIET_OTEL, otel: true }),
);
