import t from 'tap';
import { ConfigError, StaticSource, buildSnapshot, createRegistrySource, deferredSource, registryKind, type RegistrySource } from '@devstack/core';

const snapshot = buildSnapshot({ services: { a: { base: 'http://127.0.0.1:1' } } });

t.test('registryKind: k8s (or kubernetes) names the Kubernetes source, anything else is a file', async (t) => {
  t.equal(registryKind('k8s'), 'kubernetes');
  t.equal(registryKind('kubernetes'), 'kubernetes');
  t.equal(registryKind('registry.yaml'), 'file');
  t.equal(registryKind('constructor'), 'file', 'no prototype names');
});

t.test('createRegistrySource loads the chosen package only, and passes it its options', async (t) => {
  const loaded: string[] = [];
  const seen: unknown[] = [];
  const load = async (name: string) => {
    loaded.push(name);
    return { createSource: (options: unknown) => (seen.push(options), new StaticSource(snapshot)) };
  };
  await createRegistrySource({ registry: '/etc/r.yaml', file: { debounceMs: 5 }, kubernetes: { namespaces: ['x'] } }, load);
  await createRegistrySource({ registry: 'k8s', file: { debounceMs: 5 }, kubernetes: { namespaces: ['x'] } }, load);
  t.same(loaded, ['@devstack/registry-file', '@devstack/registry-kubernetes']);
  t.same(seen, [{ debounceMs: 5, path: '/etc/r.yaml' }, { namespaces: ['x'] }]);
});

t.test('a source package that is not installed is a ConfigError naming it', async (t) => {
  const missing = async () => {
    throw Object.assign(new Error('Cannot find package'), { code: 'ERR_MODULE_NOT_FOUND' });
  };
  await t.rejects(createRegistrySource({ registry: 'k8s' }, missing), ConfigError);
  await t.rejects(createRegistrySource({ registry: 'k8s' }, missing), /registry kubernetes needs the package @devstack\/registry-kubernetes: npm install @devstack\/registry-kubernetes/);
  await t.rejects(createRegistrySource({ registry: 'k8s' }, async () => ({})), /has no createSource\(\)/);
});

t.test('deferredSource: listeners given before the source opens are passed on', async (t) => {
  let inner: StaticSource | undefined;
  const source: RegistrySource = deferredSource('static', async () => (inner = new StaticSource(snapshot)));
  const got: number[] = [];
  source.subscribe((s) => got.push(s.version));
  t.equal(source.current(), undefined, 'nothing before start');
  t.match(source.status?.(), { synced: false }, 'not synced before it opens');
  t.equal(await source.start(), snapshot);
  inner!.publish(buildSnapshot({ services: {} }, { version: 7 }));
  t.same(got, [7], 'a snapshot published after opening reaches the early listener');
  t.match(source.status?.(), { synced: true, stale: false }, 'a source without a status of its own is synced once it has a snapshot');
  await source.close();
});
