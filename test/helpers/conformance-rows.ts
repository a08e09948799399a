/*
 * The routing table of the conformance tests: the same calls, run against the sidecar's outbound
 * listener and the SDK's proxyless mode, over HTTP (conformance.test.ts) and gRPC
 * (conformance-grpc.test.ts), so a row changed for one transport is changed for both.
 */
export interface Row {
  name: string;
  /** The authority the app calls. */
  host: string;
  /** Key carriers on the request the app is handling (its inbound request). */
  carriers: Record<string, string>;
  defaultKey?: string;
  strict?: boolean;
  /** The upstream that must answer, or the devstack code of the refusal or failure. */
  expect: string;
  status: number;
  /** The key the upstream must receive in the plain header (and baggage). */
  key?: string;
  lane: string;
  /** The `service` label the call is counted under. */
  service: string;
}

export const rows: readonly Row[] = [
  { name: 'no key: base', host: 'web', carriers: {}, expect: 'web', status: 200, lane: 'base', service: 'web' },
  { name: 'plain header', host: 'web', carriers: { 'uber-ctx-key': 'f1' }, expect: 'web-f1', status: 200, key: 'f1', lane: 'f1', service: 'web' },
  { name: 'baggage', host: 'web:80', carriers: { baggage: 'a=1,uber-ctx-key=f1' }, expect: 'web-f1', status: 200, key: 'f1', lane: 'f1', service: 'web' },
  { name: 'jaeger', host: 'web', carriers: { 'uberctx-uber-ctx-key': 'f1' }, expect: 'web-f1', status: 200, key: 'f1', lane: 'f1', service: 'web' },
  { name: 'chain rule: no copy here', host: 'orders', carriers: { 'uber-ctx-key': 'f1' }, expect: 'orders', status: 200, key: 'f1', lane: 'base', service: 'orders' },
  { name: 'Kubernetes service name', host: 'orders.shop.svc.cluster.local', carriers: { 'uber-ctx-key': 'f2' }, expect: 'orders-f2', status: 200, key: 'f2', lane: 'f2', service: 'orders' },
  { name: 'short Kubernetes name', host: 'orders.shop', carriers: { 'uber-ctx-key': 'f2' }, expect: 'orders-f2', status: 200, key: 'f2', lane: 'f2', service: 'orders' },
  { name: 'unknown key', host: 'web', carriers: { 'uber-ctx-key': 'nope' }, expect: 'web', status: 200, key: 'nope', lane: 'base', service: 'web' },
  { name: 'invalid key', host: 'web', carriers: { 'uber-ctx-key': 'F1!' }, expect: 'web', status: 200, lane: 'base', service: 'web' },
  { name: 'conflicting key', host: 'web', carriers: { 'uber-ctx-key': 'f1, f2' }, expect: 'web', status: 200, lane: 'base', service: 'web' },
  { name: 'not ready: base', host: 'orders', carriers: { 'uber-ctx-key': 'parked' }, expect: 'orders', status: 200, key: 'parked', lane: 'base', service: 'orders' },
  { name: 'default key fills a missing key', host: 'web', carriers: {}, defaultKey: 'f1', expect: 'web-f1', status: 200, key: 'f1', lane: 'f1', service: 'web' },
  { name: 'default key stands in for an invalid key', host: 'web', carriers: { 'uber-ctx-key': 'F1!' }, defaultKey: 'f1', expect: 'web-f1', status: 200, key: 'f1', lane: 'f1', service: 'web' },
  { name: 'a valid key beats the default key', host: 'web', carriers: { 'uber-ctx-key': 'f2' }, defaultKey: 'f1', expect: 'web', status: 200, key: 'f2', lane: 'base', service: 'web' },
  { name: 'strict: unknown key refused', host: 'web', carriers: { 'uber-ctx-key': 'nope' }, strict: true, expect: 'DEVSTACK_NO_FEATURE_COPY', status: 503, lane: 'none', service: 'web' },
  { name: 'strict: not ready refused', host: 'orders', carriers: { 'uber-ctx-key': 'parked' }, strict: true, expect: 'DEVSTACK_NO_FEATURE_COPY', status: 503, lane: 'parked', service: 'orders' },
  { name: 'strict: chain rule still base', host: 'orders', carriers: { 'uber-ctx-key': 'f1' }, strict: true, expect: 'orders', status: 200, key: 'f1', lane: 'base', service: 'orders' },
  { name: 'no ready target', host: 'idle', carriers: {}, expect: 'DEVSTACK_NO_READY_UPSTREAM', status: 503, lane: 'base', service: 'idle' },
  { name: 'dead upstream', host: 'gone', carriers: {}, expect: 'DEVSTACK_UPSTREAM_UNREACHABLE', status: 502, lane: 'base', service: 'gone' },
];
