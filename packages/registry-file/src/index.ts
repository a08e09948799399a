export { FileSource, RegistryFileError, parseRegistry, createSource } from './file.js';
export type { FileSourceOptions } from './file.js';
