export { init } from './init.js';
export type { InitOptions, DevstackSdk } from './init.js';
export { getRoutingKey, withRoutingKey, contextWithRoutingKey, ensureContextManager, isAllowedHost } from './context.js';
export { extractRoutingContext, withRouting, routingMiddleware } from './inbound.js';
export type { InboundOptions } from './inbound.js';
export { injectRoutingKey } from './headers.js';
export { RoutingPropagator } from './propagator.js';
export { routingInterceptor } from './undici.js';
export { isClusterLocal } from './hosts.js';
export type { HostRules, HostPolicyOptions } from './hosts.js';
export {
  injectSqsAttributes,
  extractSqsKey,
  injectKafkaHeaders,
  extractKafkaKey,
  featureQueueName,
  resolveQueueName,
} from './messages.js';
export type { SqsAttribute, SqsAttributes, KafkaHeaders } from './messages.js';
export { consumeDecision, shouldConsume, fanOutConsume, laneGroupId } from './consume.js';
export type { LaneOptions, ConsumeDecision, ConsumeReason } from './consume.js';
export { kafkaDecision, shouldConsumeRecord, recordKeyReading, laneEachMessage, laneMessageHandler } from './kafka.js';
export type { RecordHeaders, RecordLike, RecordHandlerOptions, EachMessagePayloadLike } from './kafka.js';
export { RoutingRejectedError, RegistryUnavailableError } from './errors.js';
