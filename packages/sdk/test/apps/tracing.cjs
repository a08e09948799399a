/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS app's tracing set-up, written as teams write it */
// OpenTelemetry started in code (`node --require ./tracing.cjs app.cjs`), the W3C propagators by default.
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { ExpressInstrumentation } = require('@opentelemetry/instrumentation-express');
const { UndiciInstrumentation } = require('@opentelemetry/instrumentation-undici');

const sdk = new NodeSDK({
  serviceName: process.env.SERVICE,
  instrumentations: [new HttpInstrumentation(), new ExpressInstrumentation(), new UndiciInstrumentation()],
});
sdk.start();
