/* What the sidecar reports of its registry source: failures by reason, unusable objects, and a log that keeps up with churn. */
import t from 'tap';
import { buildSnapshot, Emitter, type RegistrySource, type Snapshot, type SourceStatus } from '@devstack/core';
import { Sidecar, createLogger, parseConfig } from '@devstack/sidecar';
import { send } from './helpers.ts';

/** A source whose snapshots and status the test sets. */
function fakeSource(status: () => SourceStatus): RegistrySource & { publish(version: number): void } {
  const snapshots = new Emitter<Snapshot>();
  const make = (version: number) => buildSnapshot({ services: { orders: { base: 'http://127.0.0.1:2' } } }, { source: 'fake', version });
  let current: Snapshot | undefined;
  return {
    kind: 'fake',
    start: async () => (current = make(0)),
    current: () => current,
    subscribe: (l) => snapshots.add(l),
    onError: () => () => undefined,
    close: async () => undefined,
    status,
    publish(version) {
      current = make(version);
      snapshots.emit(current);
    },
  };
}

t.test('registry metrics: failures by reason, and the unusable objects now', async (t) => {
  let status: SourceStatus = { synced: true, stale: false, lastSync: 1, failures: 3, failuresByReason: { list: 1, watch: 2, timeout: 0 }, unusableObjects: 2 };
  const s = new Sidecar({ source: fakeSource(() => status), outbound: { port: 0 }, admin: { port: 0, host: '127.0.0.1' }, logger: createLogger('silent') });
  await s.start();
  t.teardown(() => s.close());
  const metrics = async () => (await send(s.addresses.admin!.port, { path: '/metrics' })).body;
  let text = await metrics();
  t.match(text, /^devstack_registry_watch_failures_total\{reason="list"\} 1$/m);
  t.match(text, /^devstack_registry_watch_failures_total\{reason="watch"\} 2$/m);
  t.match(text, /^devstack_registry_unusable_objects 2$/m);
  status = { ...status, failures: 5, failuresByReason: { list: 1, watch: 2, timeout: 2 }, unusableObjects: 0 };
  text = await metrics();
  t.match(text, /^devstack_registry_watch_failures_total\{reason="timeout"\} 2$/m);
  t.match(text, /^devstack_registry_watch_failures_total\{reason="watch"\} 2$/m, 'a counter: unchanged reasons stay');
  t.match(text, /^devstack_registry_unusable_objects 0$/m, 'a gauge: fixed objects are no longer counted');
});

t.test('snapshot log: at most one line a second under churn, with how many it stood for', async (t) => {
  let now = 1_000_000;
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  const source = fakeSource(() => ({ synced: true, stale: false, lastSync: now }));
  const s = new Sidecar({ source, outbound: { port: 0 }, logger, now: () => now });
  await s.start();
  t.teardown(() => s.close());
  const snapshotLines = () => lines.filter((l) => l['msg'] === 'registry snapshot');
  t.equal(snapshotLines().length, 1, 'the first snapshot is logged');
  for (let v = 1; v <= 50; v++) {
    now += 10;
    source.publish(v);
  }
  t.equal(snapshotLines().length, 1, 'fifty more within half a second: no line');
  t.equal(s.snapshot()?.version, 50, 'each was published all the same');
  now += 1000;
  source.publish(51);
  t.equal(snapshotLines().length, 2);
  t.match(snapshotLines()[1], { version: 51, snapshotsSinceLastLine: 50 });
});

t.test('the Kubernetes source bounds: flags and variables, only with --registry k8s', async (t) => {
  const argv = ['--registry', 'k8s', '--outbound-port', '0', '--registry-request-timeout', '5000', '--registry-page-size', '50'];
  const parsed = parseConfig(argv, { DEVSTACK_REGISTRY_MAX_DELAY: '250', DEVSTACK_REGISTRY_REPORT_INTERVAL: '60000' });
  t.equal(parsed.kind, 'config');
  if (parsed.kind === 'config') t.match(parsed.config.kubernetes, { requestTimeoutMs: 5000, pageSize: 50, maxDelayMs: 250, reportIntervalMs: 60000 });
  t.same(parseConfig(['--registry', 'r.yaml', '--outbound-port', '0', '--registry-page-size', '50'], {}), { kind: 'error', problems: ['--registry-page-size (DEVSTACK_REGISTRY_PAGE_SIZE): only used with --registry k8s'] });
  t.same(parseConfig(['--registry', 'k8s', '--outbound-port', '0', '--registry-page-size', '0'], {}), { kind: 'error', problems: ['--registry-page-size (DEVSTACK_REGISTRY_PAGE_SIZE): expected a whole number from 1 to 10000, got "0"'] });
});

t.test('a relay registry takes one --namespace, handed to the relay source', async (t) => {
  const parsed = parseConfig(['--registry', 'http://127.0.0.1:7400', '--namespace', 'shop', '--outbound-port', '0'], {});
  t.equal(parsed.kind, 'config');
  if (parsed.kind === 'config') t.same(parsed.config.kubernetes, { namespaces: ['shop'] });
  t.same(parseConfig(['--registry', 'http://127.0.0.1:7400', '--namespace', 'a,b', '--outbound-port', '0'], {}), { kind: 'error', problems: ['--namespace (DEVSTACK_NAMESPACE): a relay registry follows one namespace'] });
});
