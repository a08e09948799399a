export { DevstackError, InvalidKeyError, RegistryValidationError, ConfigError } from './errors.js';
export { KEY_PATTERN, MAX_KEY_LENGTH, isValidKey, assertValidKey, describeUntrusted } from './key.js';
export { baggageValues, mergeBaggage } from './baggage.js';
export {
  CARRIER_PRECEDENCE,
  DEFAULT_KEY_NAME,
  JAEGER_BAGGAGE_PREFIX,
  createKeyCodec,
  normalizeHost,
} from './carriers.js';
export type { Carrier, KeyProblem, KeyReading, HeaderBag, MutableHeaderBag, KeyCodec, KeyCodecOptions } from './carriers.js';
export { buildSnapshot, updateSnapshot, snapshotToJSON, MAX_STACK_DEPTH } from './snapshot.js';
export type { StackProblem, Target, TargetProtocol, Lane, ServiceEntry, ServiceDecisions, Snapshot, TargetInput, ServiceInput, RegistryInput, SnapshotMeta } from './snapshot.js';
export { resolve, INVALID_KEY } from './resolve.js';
export type { Decision, Reason, ResolveOptions } from './resolve.js';
export { LANE_HEADER, HOPS_HEADER, DEFAULT_MAX_HOPS, SERVICE_LABEL, FEATURE_LABEL, STACK_ON_ANNOTATION, METRICS, DURATION_BUCKETS, UPSTREAM_FAILURES, upstreamFailure } from './contract.js';
export type { UpstreamFailure } from './contract.js';
export { REFUSALS, NO_LANE, serviceForAuthority, effectiveKey, pickTarget, nextTarget, routeStep, failOver } from './route.js';
export { PassiveHealth, PASSIVE_HEALTH_DEFAULTS, isIdempotent, retryable } from './health.js';
export type { PassiveHealthOptions, TargetHealth, AttemptState } from './health.js';
export type { Refusal, RouteFields, RouteStepOptions } from './route.js';
export { Emitter, StaticSource } from './source.js';
export type { RegistrySource, SnapshotListener, ErrorListener, ReloadOutcome, SourceStatus } from './source.js';
export { REGISTRY_SOURCES, registryKind, createRegistrySource, deferredSource } from './sources.js';
export type { RegistryKind, RegistrySourceOptions } from './sources.js';
