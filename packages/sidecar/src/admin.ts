import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolve, snapshotToJSON, type Snapshot } from '@devstack/core';
import type { SidecarMetrics } from './metrics.js';
import { sendError } from './errors.js';

export interface AdminState {
  snapshot(): Snapshot | undefined;
  ready(): boolean;
  strict: boolean;
  metrics: SidecarMetrics;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** `/healthz`, `/readyz`, `/metrics`, `/routes`, `/resolve?service=&key=`. */
export function adminHandler(state: AdminState) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 'DEVSTACK_METHOD_NOT_ALLOWED', 'the admin endpoints answer GET only', 'none');
    switch (url.pathname) {
      case '/healthz':
        return json(res, 200, { status: 'ok' });
      case '/readyz': {
        const snapshot = state.snapshot();
        if (state.ready()) return json(res, 200, { status: 'ready', version: snapshot?.version });
        return json(res, 503, { status: snapshot === undefined ? 'no registry snapshot yet' : 'shutting down' });
      }
      case '/metrics':
        state.metrics.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': state.metrics.registry.contentType });
            res.end(text);
          },
          (error: Error) => json(res, 500, { error: { code: 'DEVSTACK_METRICS', message: error.message } }),
        );
        return;
      case '/routes': {
        const snapshot = state.snapshot();
        if (snapshot === undefined) return sendError(res, 'DEVSTACK_NOT_READY', 'no registry snapshot yet', 'none');
        return json(res, 200, snapshotToJSON(snapshot));
      }
      case '/resolve': {
        const snapshot = state.snapshot();
        if (snapshot === undefined) return sendError(res, 'DEVSTACK_NOT_READY', 'no registry snapshot yet', 'none');
        const service = url.searchParams.get('service');
        if (!service) return sendError(res, 'DEVSTACK_BAD_REQUEST', 'query parameter service is required', 'none');
        const key = url.searchParams.get('key') ?? undefined;
        const decision = resolve(snapshot, service, key, { strict: state.strict });
        return json(res, 200, {
          service,
          outcome: decision.outcome,
          reason: decision.reason,
          lane: decision.lane?.name ?? null,
          targets: decision.lane?.ready.map((t) => t.origin) ?? [],
        });
      }
      default:
        return sendError(res, 'DEVSTACK_NOT_FOUND', 'admin endpoints: /healthz /readyz /metrics /routes /resolve?service=&key=', 'none');
    }
  };
}
