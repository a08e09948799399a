// The injected SDK's entry (charts/devstack, `devstack.sdk.inject`): the pod's
// NODE_OPTIONS=--import <mountPath>/register.mjs loads @devstack/sdk/register from the copy beside
// this file, with the dependencies installed there, whatever the app has in its own node_modules.
// Injected code must never stop an app that did not ask for it: a Node the SDK does not support, or
// a copy that cannot load, is one line on stderr and the app runs unrouted.
import { readFileSync } from 'node:fs';

const sdk = new URL('./node_modules/@devstack/sdk/', import.meta.url);

/** The SDK's `engines.node` (`>=22.15.0`) against this Node; undefined when it may load. */
function tooOld() {
  const { engines } = JSON.parse(readFileSync(new URL('package.json', sdk), 'utf8'));
  const need = /^>=\s*(\d+)\.(\d+)\.(\d+)$/.exec(engines?.node ?? '');
  if (need === null) return undefined;
  const have = process.versions.node.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if (have[i] !== Number(need[i + 1])) return have[i] < Number(need[i + 1]) ? `Node ${process.versions.node} is older than the SDK needs (${engines.node})` : undefined;
  }
  return undefined;
}

try {
  const old = tooOld();
  if (old !== undefined) throw new Error(old);
  // Through the package's exports, as `node --import @devstack/sdk/register` resolves it.
  await import('@devstack/sdk/register');
} catch (error) {
  process.stderr.write(`devstack: not started, the app runs unrouted: ${error instanceof Error ? error.message : String(error)}\n`);
}
