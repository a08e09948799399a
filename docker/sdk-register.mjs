// The injected SDK's entry (charts/devstack, `devstack.sdk.inject`): the pod's
// NODE_OPTIONS=--import <mountPath>/register.mjs loads @devstack/sdk/register from the copy beside
// this file, with the dependencies installed there, whatever the app has in its own node_modules.
// Injected code must never stop an app that did not ask for it: a Node the SDK does not support, or
// a copy that cannot load, is one line on stderr and the app runs unrouted.
import { readFileSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const here = new URL('./', import.meta.url);
const sdk = new URL('./node_modules/@devstack/sdk/', import.meta.url);
/** The SDK's package.json, read in the guarded part below (a broken copy must not stop the app). */
let manifest;

/** -1, 0 or 1 as version a is before, equal to or after b (numbers only; a pre-release is its release). */
function compare(a, b) {
  const x = a.split(/[.+-]/).map(Number);
  const y = b.split(/[.+-]/).map(Number);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

/** The SDK's `engines.node` (`>=22.15.0`) against this Node; a reason when it must not load. */
function tooOld() {
  const need = /^>=\s*(\d+\.\d+\.\d+)$/.exec(manifest.engines?.node ?? '');
  if (need === null || compare(process.versions.node, need[1]) >= 0) return undefined;
  return `Node ${process.versions.node} is older than the SDK needs (${manifest.engines.node})`;
}

/**
 * The app's own @opentelemetry/api, when it has one the SDK accepts (its peer range `^1.x.y`): the
 * URL of its CommonJS build (what require gives). OpenTelemetry keeps its registrations in one
 * global across copies and builds of the API, and the SDK hooks the propagator there, but it steps
 * its context manager aside through the `context` object of the module it imports: with a copy of
 * its own, a NodeSDK the app starts later would find the SDK's manager registered. So the SDK
 * imports the app's copy, as it does when the app installs it.
 */
function appApi() {
  const main = process.argv[1];
  const range = /^\^(\d+)\.(\d+\.\d+)$/.exec(manifest.peerDependencies?.['@opentelemetry/api'] ?? '');
  if (main === undefined || range === null || typeof module.registerHooks !== 'function') return undefined;
  const request = module.createRequire(path.resolve(main));
  let entry;
  let version;
  try {
    entry = request.resolve('@opentelemetry/api');
    // Its package.json is not exported: the nearest one above the entry (dist/index.cjs) is it.
    for (let dir = path.dirname(entry); version === undefined && dir !== path.dirname(dir); dir = path.dirname(dir)) {
      let found;
      try {
        found = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
      } catch {
        continue;
      }
      if (found.name !== '@opentelemetry/api') continue;
      version = found.version;
    }
  } catch {
    return undefined;
  }
  if (typeof version !== 'string' || version.split('.')[0] !== range[1] || compare(version, `${range[1]}.${range[2]}`) < 0) return undefined;
  return { cjs: pathToFileURL(entry).href };
}

try {
  manifest = JSON.parse(readFileSync(new URL('package.json', sdk), 'utf8'));
  const old = tooOld();
  if (old !== undefined) throw new Error(old);
  const api = appApi();
  if (api !== undefined) {
    module.registerHooks({
      resolve(specifier, context, nextResolve) {
        if (specifier === '@opentelemetry/api' && context.parentURL?.startsWith(here.href)) return nextResolve(api.cjs, context);
        return nextResolve(specifier, context);
      },
    });
  }
  // Through the package's exports, as `node --import @devstack/sdk/register` resolves it.
  await import('@devstack/sdk/register');
} catch (error) {
  process.stderr.write(`devstack: not started, the app runs unrouted: ${error instanceof Error ? error.message : String(error)}\n`);
}
