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
// The SDK's mark on a `propagation` object it hooked (packages/sdk/src/otel-globals.ts).
const PATCHED = Symbol.for('devstack.sdk.propagation');

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

/** What a package's `exports` entry gives an ES module import under Node (a path, or undefined). */
function esmTarget(target) {
  if (typeof target === 'string') return target;
  if (typeof target !== 'object' || target === null || Array.isArray(target)) return undefined;
  for (const condition of ['node', 'import', 'default']) {
    const found = condition in target ? esmTarget(target[condition]) : undefined;
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * The app's own @opentelemetry/api, when it has one the SDK accepts (its peer range `^1.x.y`): the
 * URLs of its CommonJS build (what require gives) and of its ES module build. OpenTelemetry keeps
 * its globals across copies and builds of the API, but the SDK's propagation hook is on the
 * `propagation` object of the module it imports: with a copy of its own, the instrumentations the
 * app starts (auto-instrumentations-node, a NodeSDK) would extract and inject without it, and the
 * plain header's key would be lost at every hop. So the SDK imports the app's copy, as it does when
 * the app installs it, and the hook goes on both builds: instrumentations use the CommonJS one
 * under `--require` and the ES module one under `--import`.
 */
function appApi() {
  const main = process.argv[1];
  const range = /^\^(\d+)\.(\d+\.\d+)$/.exec(manifest.peerDependencies?.['@opentelemetry/api'] ?? '');
  if (main === undefined || range === null || typeof module.registerHooks !== 'function') return undefined;
  const request = module.createRequire(path.resolve(main));
  let entry;
  let version;
  let esm;
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
      const target = esmTarget(typeof found.exports === 'object' && found.exports !== null && '.' in found.exports ? found.exports['.'] : found.exports);
      if (target !== undefined) esm = pathToFileURL(path.join(dir, target)).href;
    }
  } catch {
    return undefined;
  }
  if (typeof version !== 'string' || version.split('.')[0] !== range[1] || compare(version, `${range[1]}.${range[2]}`) < 0) return undefined;
  return { cjs: pathToFileURL(entry).href, esm };
}

/** The SDK's hook on one more `propagation` object, as the SDK puts it on its own (otel-globals.ts). */
function hookPropagation(api, RoutingPropagator) {
  const { propagation, defaultTextMapGetter, defaultTextMapSetter } = api;
  if (propagation === undefined || propagation[PATCHED] === true) return;
  const ours = new RoutingPropagator();
  const extract = propagation.extract;
  const inject = propagation.inject;
  propagation.extract = function (ctx, carrier, getter = defaultTextMapGetter) {
    return ours.extract(Reflect.apply(extract, this, [ctx, carrier, getter]), carrier, getter);
  };
  propagation.inject = function (ctx, carrier, setter = defaultTextMapSetter) {
    Reflect.apply(inject, this, [ctx, carrier, setter]);
    ours.inject(ctx, carrier, setter);
  };
  Object.defineProperty(propagation, PATCHED, { value: true });
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
  // The SDK hooked the build it imports once it started (not when a variable stopped it).
  const started = api !== undefined && (await import(api.cjs)).propagation?.[PATCHED] === true;
  if (started && api.esm !== undefined) hookPropagation(await import(api.esm), (await import('@devstack/sdk')).RoutingPropagator);
} catch (error) {
  process.stderr.write(`devstack: not started, the app runs unrouted: ${error instanceof Error ? error.message : String(error)}\n`);
}
