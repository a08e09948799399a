/*
 * Names every part agrees on: the sidecar, the SDK's proxyless mode, the charts and dashboards.
 * Changing one is a breaking change.
 */

/** Response header naming the lane that served a request: `base` or the routing key. */
export const LANE_HEADER = 'x-devstack-lane';
/** Request header counting devstack hops, so a routing loop ends in 508 instead of running on. */
export const HOPS_HEADER = 'x-devstack-hops';
/** Default number of hops after which a request is refused as a loop. */
export const DEFAULT_MAX_HOPS = 16;

/** Kubernetes labels (charts, hooks and the Kubernetes registry source use exactly these). */
export const SERVICE_LABEL = 'devstack.io/service';
export const FEATURE_LABEL = 'devstack.io/feature';

/** Prometheus metric names shared by the sidecar and the SDK's proxyless mode. */
export const METRICS = Object.freeze({
  /** counter {direction, service, lane, status} */
  requests: 'devstack_requests_total',
  /** histogram, seconds {direction, service, lane} */
  duration: 'devstack_request_duration_seconds',
  /** counter {direction, service, code} */
  upstreamErrors: 'devstack_upstream_errors_total',
  /** counter {direction, carrier, problem} */
  invalidKeys: 'devstack_invalid_keys_total',
  /** gauge: logical services in the current snapshot */
  registryServices: 'devstack_registry_services',
  /** gauge: unix time (seconds) of the current snapshot */
  registryLastUpdate: 'devstack_registry_last_update_seconds',
  /** counter {source}: refused registry updates */
  registryErrors: 'devstack_registry_errors_total',
});
