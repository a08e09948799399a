export { Relay, DEFAULT_LIMITS } from './relay.js';
export type { RelayOptions, RelayLimits, RelayLog } from './relay.js';
export { Channel } from './channel.js';
export type { Subscriber, ChannelOptions, ChannelEvents } from './channel.js';
export { RelayMetrics } from './metrics.js';
export type { RejectReason } from './metrics.js';
export { parseConfig, HELP } from './config.js';
export type { RelayConfig, Parsed } from './config.js';
