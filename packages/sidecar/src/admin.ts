import type { IncomingMessage, ServerResponse } from 'node:http';
import { BlockList } from 'node:net';
import { LANE_HEADER, resolve, snapshotToJSON, type PassiveHealth, type Snapshot, type SourceStatus } from '@devstack/core';
import type { SidecarMetrics } from './metrics.js';
import { PROXY_ERRORS, sendError, type ProxyErrorCode } from './errors.js';

export interface AdminState {
  snapshot(): Snapshot | undefined;
  ready(): boolean;
  strict: boolean;
  /** Passive health: the targets with failures on record show in `/routes`. */
  health?: PassiveHealth | undefined;
  metrics: SidecarMetrics;
  /** The registry source's own account of its state (sync, staleness), if it gives one. */
  registry?: (() => SourceStatus | undefined) | undefined;
  /** Answer `/routes` and `/resolve` to every client, not only to loopback ones. */
  exposeRoutes?: boolean | undefined;
  /** Which client addresses count as local. Default: loopback (`isLoopback`). */
  isLocal?: ((address: string | undefined) => boolean) | undefined;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * True for a loopback client: 127.0.0.0/8, ::1, and 127.x mapped into IPv6 (`::ffff:127.0.0.1`,
 * what a dual-stack listener reports). Anything else, including no address at all, is remote.
 */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return LOOPBACK.check(mapped[1]!, 'ipv4');
  try {
    return LOOPBACK.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
  } catch {
    return false; // not an IP address at all
  }
}

/** The endpoints that reveal every upstream origin and key: loopback only unless opened. */
const REVEALING = new Set(['/routes', '/resolve']);

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', [LANE_HEADER]: 'none' });
  res.end(text);
}

/** `/healthz`, `/readyz`, `/metrics`, `/routes`, `/resolve?service=&key=`. */
export function adminHandler(state: AdminState) {
  const isLocal = state.isLocal ?? isLoopback;
  // Probe and scrape answers are not counted (a 503 from /readyz while draining is not an error);
  // refusals are, like every other answer the sidecar makes itself.
  const refuse = (res: ServerResponse, code: ProxyErrorCode, message: string): void => {
    state.metrics.refused('admin', PROXY_ERRORS[code]);
    sendError(res, code, message, 'none');
  };
  return (req: IncomingMessage, res: ServerResponse): void => {
    // A request target is untrusted text: `http://[` must be an answer, not an exception.
    const url = URL.parse(req.url ?? '/', 'http://admin');
    if (url === null) return refuse(res, 'DEVSTACK_BAD_REQUEST', 'the request target is not a valid path');
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 'DEVSTACK_METHOD_NOT_ALLOWED', 'the admin endpoints answer GET only');
    if (REVEALING.has(url.pathname) && state.exposeRoutes !== true && !isLocal(req.socket.remoteAddress)) {
      return refuse(res, 'DEVSTACK_FORBIDDEN', `${url.pathname} answers loopback clients only (--admin-expose-routes opens it)`);
    }
    switch (url.pathname) {
      case '/healthz':
        return json(res, 200, { status: 'ok' });
      case '/readyz': {
        const snapshot = state.snapshot();
        // Stale data is not wrong data: a registry that cannot reach its source stays ready and says so.
        const registry = state.registry?.();
        if (state.ready()) return json(res, 200, { status: 'ready', version: snapshot?.version, registry });
        return json(res, 503, { status: snapshot === undefined ? 'no registry snapshot yet' : 'shutting down', registry });
      }
      case '/metrics':
        state.metrics.registry
          .metrics()
          .then((text) => {
            res.writeHead(200, { 'content-type': state.metrics.registry.contentType, [LANE_HEADER]: 'none' });
            res.end(text);
          })
          // Outside the listener's guard: an unhandled rejection here would end the process.
          .catch((error: Error) => {
            try {
              refuse(res, 'DEVSTACK_INTERNAL', `metrics failed: ${error.message}`);
            } catch {
              res.destroy();
            }
          });
        return;
      case '/routes': {
        const snapshot = state.snapshot();
        if (snapshot === undefined) return refuse(res, 'DEVSTACK_NOT_READY', 'no registry snapshot yet');
        return json(res, 200, { ...snapshotToJSON(snapshot), registry: state.registry?.(), health: state.health?.status() ?? [] });
      }
      case '/resolve': {
        const snapshot = state.snapshot();
        if (snapshot === undefined) return refuse(res, 'DEVSTACK_NOT_READY', 'no registry snapshot yet');
        const service = url.searchParams.get('service');
        if (!service) return refuse(res, 'DEVSTACK_BAD_REQUEST', 'query parameter service is required');
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
        return refuse(res, 'DEVSTACK_NOT_FOUND', 'admin endpoints: /healthz /readyz /metrics /routes /resolve?service=&key=');
    }
  };
}
