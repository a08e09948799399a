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
/** Annotation on a feature copy's Service: the key its key stacks on (every copy of the key agrees). */
export const STACK_ON_ANNOTATION = 'devstack.io/stack-on';

/**
 * Prometheus metric names shared by the sidecar and the SDK's proxyless mode, with one meaning:
 * - `service` is a registry service name, or `none` when the request named no known service;
 * - `lane` is what `x-devstack-lane` says: `base`, a key, or `none`;
 * - `status` is the HTTP status the caller got (a refusal's or a failure's own status when devstack
 *   answered, `aborted` when the caller left before the response ended);
 * - a request is counted once, when its response ends, and its duration runs from the moment
 *   devstack saw the request to that end (last body byte, error or abort), in the buckets below.
 */
export const METRICS = Object.freeze({
  /** counter {direction, service, lane, status} */
  requests: 'devstack_requests_total',
  /** histogram, seconds {direction, service, lane}: request seen to response ended */
  duration: 'devstack_request_duration_seconds',
  /** counter {direction, service, code}: every failed upstream attempt, retried or not, by UPSTREAM_FAILURES code */
  upstreamErrors: 'devstack_upstream_errors_total',
  /** counter {direction, service, lane}: targets ejected by passive health (consecutive connect failures); `lane` is the target's */
  upstreamEjections: 'devstack_upstream_ejections_total',
  /** counter {direction, service, from, to}: calls moved to another target after a failed attempt, by lane (`to` is `none` when none was left) */
  upstreamFailovers: 'devstack_upstream_failovers_total',
  /** counter {direction, carrier, problem} */
  invalidKeys: 'devstack_invalid_keys_total',
  /** gauge: logical services in the current snapshot */
  registryServices: 'devstack_registry_services',
  /** gauge: unix time (seconds) of the current snapshot */
  registryLastUpdate: 'devstack_registry_last_update_seconds',
  /** gauge: stacks the current snapshot refused (a cycle, or deeper than MAX_STACK_DEPTH); those keys resolve unstacked */
  registryStackProblems: 'devstack_registry_stack_problems',
  /** counter {source}: refused registry updates, and a source losing what it watches (once per state change) */
  registryErrors: 'devstack_registry_errors_total',
  /** gauge: unix time (seconds) the source last had complete, current data (watched sources) */
  registryLastSync: 'devstack_registry_last_sync_seconds',
  /** gauge: 1 while the source cannot reach what it watches */
  registryStale: 'devstack_registry_stale',
  /** counter: failed list or watch attempts of the source (each retried) */
  registryFailures: 'devstack_registry_watch_failures_total',
});

/** Buckets of `devstack_request_duration_seconds`, seconds, in both the sidecar and the SDK. */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

export interface UpstreamFailure {
  /** The stable code of the answer (sidecar) or error (SDK) and of the upstream-errors metric. */
  readonly code: 'DEVSTACK_UPSTREAM_UNREACHABLE' | 'DEVSTACK_UPSTREAM_CONNECT_TIMEOUT' | 'DEVSTACK_UPSTREAM_TIMEOUT' | 'DEVSTACK_UPSTREAM_RESET' | 'DEVSTACK_UPSTREAM_ERROR';
  readonly status: 502 | 504;
  /** The failure happened before any byte reached the upstream: another target may be tried. */
  readonly retry: boolean;
}

const failure = (code: UpstreamFailure['code'], status: 502 | 504, retry: boolean): UpstreamFailure => Object.freeze({ code, status, retry });
const UNREACHABLE = failure('DEVSTACK_UPSTREAM_UNREACHABLE', 502, true);
const RESET = failure('DEVSTACK_UPSTREAM_RESET', 502, false);
const TIMEOUT = failure('DEVSTACK_UPSTREAM_TIMEOUT', 504, false);

/** Socket and undici error codes, as devstack reports them. */
export const UPSTREAM_FAILURES: Readonly<Record<string, UpstreamFailure>> = Object.freeze({
  ECONNREFUSED: UNREACHABLE,
  EHOSTUNREACH: UNREACHABLE,
  ENETUNREACH: UNREACHABLE,
  ENOTFOUND: UNREACHABLE,
  EAI_AGAIN: UNREACHABLE,
  UND_ERR_CONNECT_TIMEOUT: failure('DEVSTACK_UPSTREAM_CONNECT_TIMEOUT', 504, true),
  UND_ERR_HEADERS_TIMEOUT: TIMEOUT,
  UND_ERR_BODY_TIMEOUT: TIMEOUT,
  UND_ERR_SOCKET: RESET,
  ECONNRESET: RESET,
  EPIPE: RESET,
});

const OTHER = failure('DEVSTACK_UPSTREAM_ERROR', 502, false);

/** How a failed upstream attempt is reported, from its error's `code`. */
export function upstreamFailure(error: unknown): UpstreamFailure {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && Object.hasOwn(UPSTREAM_FAILURES, code) ? UPSTREAM_FAILURES[code]! : OTHER;
}
