export { Emitter, StaticSource } from './source.js';
export type { RegistrySource, SnapshotListener, ErrorListener } from './source.js';
export { FileSource, RegistryFileError, parseRegistry } from './file.js';
export type { FileSourceOptions, ReloadOutcome } from './file.js';
