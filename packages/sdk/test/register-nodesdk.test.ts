/*
 * `@devstack/sdk/register` loaded before the app's own OpenTelemetry, a NodeSDK started in code
 * (apps/tracing.cjs: http, express, undici instrumentations, default propagators), in CommonJS apps:
 * the carrier table of register-chain.ts, and no duplicate registration on stderr. The echo leaves
 * run the SDK only. Nothing is exported and no resource is detected.
 */
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { QUIET_OTEL } from './apps.ts';
import { runChain } from './register-chain.ts';

const SDK = '@devstack/sdk/register';
const TRACING = fileURLToPath(new URL('./apps/tracing.cjs', import.meta.url));

t.test('CommonJS, the SDK first', (t) => runChain(t, { ext: 'cjs', args: ['--require', SDK, '--require', TRACING], leafArgs: ['--require', SDK], env: QUIET_OTEL, otel: true }));
