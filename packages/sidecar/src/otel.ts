import type { Logger } from './log.js';

/** True when the standard OpenTelemetry environment asks for a trace exporter. */
export function tracingRequested(env: Readonly<Record<string, string | undefined>>): boolean {
  const exporter = env['OTEL_TRACES_EXPORTER'];
  if (exporter !== undefined && exporter !== '') return exporter !== 'none';
  return Boolean(env['OTEL_EXPORTER_OTLP_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']);
}

/**
 * Starts @opentelemetry/sdk-node, configured by the standard OTEL_* variables. It is loaded only
 * when asked for, so a sidecar without tracing pays nothing for it, at start or per request.
 */
export async function startTracing(log: Logger): Promise<(() => Promise<void>) | undefined> {
  try {
    const { NodeSDK } = await import('@opentelemetry/sdk-node');
    const sdk = new NodeSDK({ serviceName: process.env['OTEL_SERVICE_NAME'] ?? 'devstack-sidecar', instrumentations: [] });
    sdk.start();
    log.info('tracing started', { exporter: process.env['OTEL_TRACES_EXPORTER'] ?? 'otlp' });
    return () => sdk.shutdown();
  } catch (error) {
    log.error('tracing could not start; continuing without it', { error: (error as Error).message });
    return undefined;
  }
}
