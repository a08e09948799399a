export { RelaySource, RelayStreamError, createRelaySource, createSource, SYSTEM_CLOCK, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_BACKOFF } from './source.js';
export type { RelaySourceOptions, CreateRelaySourceOptions, RelayStatus, RelayFailure, Clock } from './source.js';
export { STREAM_PATH, NDJSON, RELAY_ERRORS, streamPath, entryToInput, entryJSON, changedMembers, changedStacks, encodeSnapshot, encodeDelta, encodeStatus } from './protocol.js';
export type { RelayMessage, SnapshotMessage, DeltaMessage, ResumedMessage, HeartbeatMessage } from './protocol.js';
