import { HOPS_HEADER, type KeyCodec, type Target } from '@devstack/core';
import type { Exchange } from './exchange.js';
import { isLoopback } from './admin.js';

/** The lane label of a call passed through to a host outside the registry. */
export const PASSTHROUGH_LANE = 'passthrough';

/**
 * Whether a bind address keeps a listener to this machine: passthrough forwards to any host a
 * request names, which only the app beside the sidecar may ask for.
 */
export function isLoopbackBind(host: string): boolean {
  return host === 'localhost' || isLoopback(host.replace(/^\[|\]$/g, ''));
}

const origins = new Map<string, Target | null>();

/**
 * The upstream for a host outside the registry, as the request named it (`api.example.org`,
 * `10.0.0.9:8080`): plain http, the authority only. Null when it is not a usable authority.
 */
export function passthroughTarget(authority: string): Target | null {
  let target = origins.get(authority);
  if (target !== undefined) return target;
  const url = URL.parse(`http://${authority}/`);
  target = url !== null && url.username === '' && url.password === '' && url.pathname === '/' && url.search === '' && url.hostname !== '' ? Object.freeze({ origin: url.origin, ready: true, protocol: 'http1' as const }) : null;
  // A few hosts per app; the bound only keeps a hostile stream of names from growing it.
  if (origins.size >= 1024) origins.clear();
  origins.set(authority, target);
  return target;
}

/**
 * The headers a passed-through call leaves with: the app's own, minus every carrier of the key and
 * the hop count (neither may leave the fleet), with no forwarding headers added.
 */
export function passthroughHeaders(ex: Exchange, codec: KeyCodec): void {
  const out = ex.headers!;
  codec.strip(out);
  delete out[HOPS_HEADER];
}
