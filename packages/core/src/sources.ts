import { ConfigError } from './errors.js';
import type { RegistrySource } from './source.js';

/**
 * The registry sources `createRegistrySource` knows: each is a package of its own exporting
 * `createSource(options)`, loaded only when chosen, so an app that routes by a file never loads a
 * Kubernetes client. Another source is one package and one line here.
 */
export const REGISTRY_SOURCES = Object.freeze({
  file: '@devstack/registry-file',
  kubernetes: '@devstack/registry-kubernetes',
  relay: '@devstack/registry-relay',
} as const);

export type RegistryKind = keyof typeof REGISTRY_SOURCES;

/** The names `--registry` and `init({ registry })` accept for a source other than a file path. */
const KIND_NAMES: Readonly<Record<string, RegistryKind>> = Object.freeze({ k8s: 'kubernetes', kubernetes: 'kubernetes' });

/** A devstack-relay's origin: the registry is followed from its stream, with no Kubernetes client. */
const RELAY_URL = /^https?:\/\//i;

/** Which source a registry setting names: `k8s` (or `kubernetes`), a relay's `http(s)://` URL, else it is a file path. */
export function registryKind(registry: string): RegistryKind {
  if (RELAY_URL.test(registry)) return 'relay';
  return Object.hasOwn(KIND_NAMES, registry) ? KIND_NAMES[registry]! : 'file';
}

export interface RegistrySourceOptions {
  /** `k8s` (or `kubernetes`), a devstack-relay's `http(s)://` origin, or the path of a YAML/JSON registry file. */
  registry: string;
  /** Options of the file source (besides `path`). */
  file?: Readonly<Record<string, unknown>>;
  /** Options of the Kubernetes source (`namespaces`, `allNamespaces`, `kubeconfig`, `targets`, ...). */
  kubernetes?: Readonly<Record<string, unknown>>;
  /** Options of the relay source (besides `url`): `namespace`, timeouts. */
  relay?: Readonly<Record<string, unknown>>;
}

interface SourceModule {
  createSource(options: Record<string, unknown>): RegistrySource;
}

/**
 * Opens the source a registry setting names. `load` imports a source package (default: a dynamic
 * import, resolved from here); a package that is not installed is a ConfigError saying which to
 * install.
 */
export async function createRegistrySource(options: RegistrySourceOptions, load: (name: string) => Promise<unknown> = (name) => import(name)): Promise<RegistrySource> {
  const kind = registryKind(options.registry);
  const name = REGISTRY_SOURCES[kind];
  let module: SourceModule;
  try {
    module = (await load(name)) as SourceModule;
  } catch (error) {
    const missing = (error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' || (error as { code?: string }).code === 'MODULE_NOT_FOUND';
    throw new ConfigError([missing ? `registry ${kind} needs the package ${name}: npm install ${name}` : `registry ${kind}: ${name} failed to load: ${(error as Error).message}`], { cause: error });
  }
  if (typeof module.createSource !== 'function') throw new ConfigError([`registry ${kind}: ${name} has no createSource()`]);
  const own = kind === 'file' ? { ...options.file, path: options.registry } : kind === 'relay' ? relayOptions(options) : { ...options.kubernetes };
  return module.createSource(own);
}

/** The relay source's options: the namespace may come as the Kubernetes source's `namespaces` (the flag both share). */
function relayOptions(options: RegistrySourceOptions): Record<string, unknown> {
  const namespaces = options.kubernetes?.['namespaces'];
  return { ...(namespaces !== undefined ? { namespaces } : {}), ...options.relay, url: options.registry };
}

/**
 * A source that is opened on `start()`: for callers that must answer at once (the SDK's `init()`)
 * while the source package is imported. Listeners given before then are passed on when it opens.
 */
export function deferredSource(kind: string, open: () => Promise<RegistrySource>): RegistrySource {
  let inner: RegistrySource | undefined;
  let opening: Promise<RegistrySource> | undefined;
  let closed = false;
  const snapshots = new Set<Parameters<RegistrySource['subscribe']>[0]>();
  const errors = new Set<Parameters<RegistrySource['onError']>[0]>();
  const offs: Array<() => void> = [];
  const attach = (source: RegistrySource) => {
    for (const l of snapshots) offs.push(source.subscribe(l));
    for (const l of errors) offs.push(source.onError(l));
  };
  const source: RegistrySource = {
    kind,
    async start() {
      opening ??= open().then((s) => {
        inner = s;
        attach(s);
        return s;
      });
      const s = await opening;
      if (closed) throw new Error('the registry source was closed before it started');
      return s.start();
    },
    current: () => inner?.current(),
    subscribe(listener) {
      snapshots.add(listener);
      const off = inner?.subscribe(listener);
      return () => {
        snapshots.delete(listener);
        off?.();
      };
    },
    onError(listener) {
      errors.add(listener);
      const off = inner?.onError(listener);
      return () => {
        errors.delete(listener);
        off?.();
      };
    },
    async close() {
      closed = true;
      offs.forEach((off) => off());
      await inner?.close();
    },
    // A source that tells nothing of its state is synced once it has a snapshot.
    status: () => inner?.status?.() ?? { synced: inner?.current() !== undefined, stale: false, lastSync: inner?.current()?.createdAt },
  };
  return source;
}
