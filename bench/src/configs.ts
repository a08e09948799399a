/*
 * The configurations, each bound to running targets: where the load goes, which headers it
 * carries, which lane must answer, and which processes' CPU and memory belong to it.
 */
import type { ConfigId } from './options.ts';

export const CONFIG_INFO: Record<ConfigId, { title: string; path: string }> = {
  direct: { title: 'direct', path: 'client -> upstream stub (the floor)' },
  'sidecar-base': { title: 'sidecar outbound, no key', path: 'client -> sidecar outbound -> upstream base' },
  'sidecar-key': { title: 'sidecar outbound, key set', path: 'client -> sidecar outbound (uber-ctx-key) -> upstream feature' },
  'sidecar-pod': { title: 'sidecar pod path', path: 'client -> sidecar inbound -> app stub -> sidecar outbound -> upstream feature' },
  'app-direct': { title: 'app stub, no sidecar', path: 'client -> app stub -> upstream feature (pod path without the sidecar)' },
  'http-proxy': { title: 'http-proxy peer', path: 'client -> http-proxy + keep-alive agent (header routing) -> upstream feature' },
  nginx: { title: 'nginx, 1 worker', path: 'client -> nginx (map on header, upstream keepalive) -> upstream feature' },
};

export interface Proc {
  /** `sidecar`, `app`, `http-proxy`, `nginx-worker`, `upstream`. */
  role: string;
  pid: number;
}

export interface Binding {
  id: ConfigId;
  port: number;
  headers: Record<string, string>;
  /** The lane (`x-upstream`) every answer must come from. */
  expectUpstream: string;
  /** The `x-devstack-lane` the proxy must name, where it is the proxy that answers. */
  expectLane: string | undefined;
  /** The first is the configuration's own process (the proxy); the rest are reported for context. */
  procs: Proc[];
}

export interface Skipped {
  config: ConfigId;
  reason: string;
}
