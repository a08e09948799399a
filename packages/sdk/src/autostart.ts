/* What `register` runs: the SDK from the environment, the inbound and gRPC coverage `init()` leaves to code. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { ConfigError, Emitter, registryKind, type RegistrySource, type Snapshot } from '@devstack/core';
import type * as RegistryFile from '@devstack/registry-file';
import { routeGrpc, routeServers } from './auto.js';
import { optionsFromEnv } from './env.js';
import { init, type DevstackSdk } from './init.js';

function warn(problems: readonly string[]): void {
  process.stderr.write(`devstack: not started, the app runs unrouted: ${problems.join('; ')}\n`);
}

/**
 * A registry file's source whose first snapshot is read before the app's code runs. An app started
 * with `register` cannot wait for `sdk.ready`, and its first calls (or a server's first requests)
 * would otherwise go out unrouted while the file is read asynchronously. The file is then watched as
 * usual; a first read that fails is left to the source's own start, which reports it.
 */
function primedFile(path: string): RegistrySource {
  // Loaded only for a file registry (its YAML parser is most of a propagation-only start's cost);
  // synchronously, so the snapshot is there before the app's first line.
  const { FileSource, parseRegistry } = createRequire(import.meta.url)('@devstack/registry-file') as typeof RegistryFile;
  const inner = new FileSource({ path, persistent: false });
  let first: Snapshot | undefined;
  try {
    first = parseRegistry(readFileSync(inner.path, 'utf8'), { source: inner.path, version: 0, createdAt: Date.now() });
  } catch {
    first = undefined;
  }
  if (first === undefined) return inner;
  const snapshots = new Emitter<Snapshot>();
  const errors = new Emitter<Error>();
  inner.subscribe((s) => snapshots.emit(s));
  inner.onError((e) => errors.emit(e));
  // The watch starts now; what it reads first replaces the primed snapshot.
  inner.start().then((s) => snapshots.emit(s), (e: Error) => errors.emit(e));
  return {
    kind: inner.kind,
    start: async () => inner.current() ?? first,
    current: () => inner.current() ?? first,
    subscribe: (listener) => snapshots.add(listener),
    onError: (listener) => errors.add(listener),
    close: () => inner.close(),
    reload: () => inner.reload(),
  };
}

/** Starts the SDK as `register` does, from `env`; undefined when a problem kept it from starting. */
export function startFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): DevstackSdk | undefined {
  const { options, problems } = optionsFromEnv(env);
  if (problems.length > 0) {
    warn(problems);
    return undefined;
  }
  let sdk: DevstackSdk;
  try {
    const registry = options.registry;
    if (typeof registry === 'string' && registryKind(registry) === 'file') options.registry = primedFile(registry);
    sdk = init(options);
  } catch (error) {
    warn(error instanceof ConfigError ? error.problems : [(error as Error).message]);
    return undefined;
  }
  routeServers();
  routeGrpc(sdk.proxyless);
  return sdk;
}

