import { EventEmitter } from 'node:events';
import { trace, type Span, type TracerProvider } from '@opentelemetry/api';

/** Spans recorded in memory: the sidecar's tracer comes from the global provider. */
export interface Recorded {
  name: string;
  attributes: Record<string, unknown>;
  status: number | undefined;
  ended: boolean;
}

export const spans: Recorded[] = [];
/** Emits 'end' with the Recorded span each time one ends. */
export const spanEnded = new EventEmitter();

/** Installs the recording provider as the global one (once per test process). */
export function recordSpans(): void {
  trace.setGlobalTracerProvider({
    getTracer: () => ({
      startSpan(name: string, options?: { attributes?: Record<string, unknown> }) {
        const recorded: Recorded = { name, attributes: { ...options?.attributes }, status: undefined, ended: false };
        spans.push(recorded);
        const span = {
          setAttribute: (key: string, value: unknown) => ((recorded.attributes[key] = value), span),
          setStatus: (status: { code: number }) => ((recorded.status = status.code), span),
          end: () => {
            recorded.ended = true;
            spanEnded.emit('end', recorded);
          },
          spanContext: () => ({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 }),
          isRecording: () => true,
        };
        return span as unknown as Span;
      },
      startActiveSpan: () => {
        throw new Error('not used');
      },
    }),
  } as unknown as TracerProvider);
}
