import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);

/**
 * undici's index loads all of undici (fetch, WebSocket, EventSource, caches, mocks), about 6 MiB of
 * an idle sidecar's private memory, in every pod; the sidecar needs only the Agent and its
 * connector. Those two modules by their path, or from the index should a release move them.
 */
export function loadFromUndici<K extends 'Agent' | 'buildConnector'>(path: string, name: K): (typeof Undici)[K] {
  try {
    const loaded: unknown = require(path);
    if (typeof loaded === 'function') return loaded as (typeof Undici)[K];
  } catch {
    // Moved or renamed: the index has it.
  }
  return (require('undici') as typeof Undici)[name];
}

export const Agent = loadFromUndici('undici/lib/dispatcher/agent.js', 'Agent');
export const buildConnector = loadFromUndici('undici/lib/core/connect.js', 'buildConnector');
