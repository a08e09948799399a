/*
 * What init() accepts, and what proxyless mode says when it has no registry: bad options are one
 * ConfigError naming the option; a missing or invalid registry is a warning, a rejected `ready`
 * and, for calls that then find no host, the SDK's error instead of a bare ENOTFOUND.
 */
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Agent } from 'undici';
import { ConfigError, StaticSource, buildSnapshot } from '@devstack/core';
import { RegistryUnavailableError, init, routingInterceptor, type InitOptions } from '@devstack/sdk';

const BAD: ReadonlyArray<readonly [string, unknown, RegExp]> = [
  ['allowHosts: 5', { allowHosts: 5 }, /^init: allowHosts must be a list of host names.*, got 5 \(number\)$/],
  ['denyHosts as one string', { denyHosts: 'vault.internal' }, /^init: denyHosts must be a list/],
  ['registry: 123', { registry: 123 }, /^init: registry must be a registry file path, 'k8s', or a RegistrySource.*got 123 \(number\)$/],
  ['registry: empty path', { registry: '' }, /^init: registry must be/],
  ['kubernetes: a string', { kubernetes: 'shop' }, /^init: kubernetes must be an object of Kubernetes source options, got the string "shop"$/],
  ['kubernetes: a misspelt option', { kubernetes: { namespace: ['shop'] } }, /^init: kubernetes has unknown options "namespace" \(known: namespaces, allNamespaces, kubeconfig, targets, watchIdleTimeoutMs, requestTimeoutMs, pageSize, maxDelayMs, reportIntervalMs\)/],
  ['clusterDomain: empty', { clusterDomain: '' }, /^init: clusterDomain must be a domain name/],
  ['relay: a misspelt option', { relay: { idleTimeout: 1 } }, /^init: relay has unknown options "idleTimeout" \(known: namespace, namespaces, idleTimeoutMs, connectTimeoutMs, maxMessageBytes, reportIntervalMs, backoff\)/],
  ['namespaces: a string', { namespaces: 'shop' }, /^init: namespaces must be a list of namespace names \(write \["shop"\]\)/],
  ['registry: not a source', { registry: { start() {} } }, /^init: registry must be .*got an object$/],
  ["domains: 'a.b'", { domains: 'a.b' }, /^init: domains must be a list of domain names \(write \["a\.b"\]\), got the string "a\.b"$/],
  ['domains with a number', { domains: ['a.b', 7] }, /^init: domains must be a list of domain names, got an array$/],
  ['lane: a number', { lane: 7 }, /^init: lane must be a string/],
  ['keyName: a number', { keyName: 1 }, /^init: keyName must be a string/],
  ["strict: 'yes'", { strict: 'yes' }, /^init: strict must be true or false, got the string "yes"$/],
  ['metrics: not a registry', { metrics: {} }, /^init: metrics must be a prom-client Registry/],
  ['connectTimeoutMs: not a whole number', { connectTimeoutMs: 1.5 }, /^init: connectTimeoutMs must be a whole number of milliseconds/],
  ['passiveHealth: not an object', { passiveHealth: true }, /^init: passiveHealth must be false or an object/],
  ['passiveHealth: a misspelt option', { passiveHealth: { ejectAfer: 2 } }, /^init: passiveHealth has unknown options "ejectAfer" \(known: ejectAfter, baseEjectionMs, maxEjectionMs, maxTracked, now\)/],
  ['passiveHealth: a bad value', { registry: new StaticSource(buildSnapshot({ services: {} })), passiveHealth: { ejectAfter: 0 } }, /^passive health: ejectAfter must be a whole number from 1 to 1000, got 0$/],
  ['a misspelt option', { alowHosts: ['*'] }, /^init: unknown option "alowHosts" \(known: keyName, domains, lane, (service, )?registry, kubernetes, namespaces, relay, clusterDomain, strict, allowHosts, denyHosts, connectTimeoutMs, passiveHealth, metrics\)$/],
  ['options: null', null, /^init: options must be an object, got null$/],
  ['options: a string', 'orders', /^init: options must be an object, got the string "orders"$/],
];

t.test('init() refuses options of the wrong type or name with a ConfigError naming each', async (t) => {
  for (const [what, options, message] of BAD) {
    let thrown: unknown;
    try {
      init(options as InitOptions);
    } catch (error) {
      thrown = error;
    }
    t.type(thrown, ConfigError, `${what}: a ConfigError`);
    t.equal((thrown as ConfigError).code, 'DEVSTACK_INVALID_CONFIG', `${what}: its code`);
    t.match((thrown as ConfigError).problems?.[0], message, `${what}: names the option`);
  }
  const many = t.throws(() => init({ strict: 1, lane: 2, nope: true } as unknown as InitOptions)) as ConfigError;
  t.same(many.problems.map((p) => p.split(' ')[1]), ['strict', 'lane', 'unknown'], 'every problem at once');

  // Options set to undefined are options not given (`registry: process.env.DEVSTACK_REGISTRY`).
  const sdk = init({ registry: undefined, lane: undefined, strict: undefined });
  t.teardown(() => sdk.close());
  t.equal(sdk.proxyless, false, 'nothing was left installed by the refused calls; undefined options are absent');
  t.equal(await sdk.ready, false, 'without a registry, ready resolves false');
  await sdk.close();
});

/** A lookup that finds nothing, as DNS does for `payments` outside a cluster (no network needed). */
const notFound: LookupFunction = (hostname, _options, callback) => {
  const error = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname });
  process.nextTick(() => callback(error, '', 4));
};

function httpGet(options: http.RequestOptions): Promise<{ error?: Error; status?: number }> {
  return new Promise((resolve) => {
    const req = http.get(options, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    });
    req.on('error', (error) => resolve({ error }));
  });
}

t.test('proxyless mode without a registry snapshot says so', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'devstack-sdk-ready-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const warnings: Error[] = [];
  const onWarning = (w: Error) => (w as { code?: string }).code === 'DEVSTACK_REGISTRY_UNAVAILABLE' && warnings.push(w);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  const server = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as { port: number };

  t.test('a missing file', async (t) => {
    const missing = join(dir, 'missing.yaml');
    const sdk = init({ registry: missing });
    t.teardown(() => sdk.close());
    t.equal(sdk.proxyless, true);
    const error = (await sdk.ready.then(() => undefined, (e: unknown) => e)) as RegistryUnavailableError;
    t.type(error, RegistryUnavailableError, 'ready rejects with the documented error');
    t.equal(error.code, 'DEVSTACK_REGISTRY_UNAVAILABLE');
    t.equal(error.registry, missing);
    t.match(error.cause, { code: 'DEVSTACK_REGISTRY_FILE' }, "the source's own error is the cause");
    t.match(error.message, /no registry snapshot from .*missing\.yaml/);
    // The warning is emitted in the same turn as the rejection; it is delivered on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
    t.equal(warnings.length, 1, 'one process warning (printed on stderr by default)');
    t.equal(warnings[0]?.name, 'DevstackWarning');

    const viaFetch = await fetch('http://payments/', { dispatcher: new Agent({ connect: { lookup: notFound } }).compose(routingInterceptor()) }).then(
      () => undefined,
      (e: Error) => e.cause,
    );
    t.type(viaFetch, RegistryUnavailableError, 'fetch: the cause is the missing registry, not ENOTFOUND');
    t.match((viaFetch as Error).message, /missing\.yaml.*the call to payments was not routed/);
    const viaHttp = await httpGet({ host: 'payments', lookup: notFound, agent: false });
    t.type(viaHttp.error, RegistryUnavailableError, 'http.get: the same error');
    t.match(viaHttp.error?.cause, { code: 'DEVSTACK_REGISTRY_FILE' });

    t.equal((await httpGet({ host: '127.0.0.1', port, agent: false })).status, 200, 'other calls are untouched');
    // Port 2: privileged, so no test's listen(0) can be handed it while files run in parallel,
    // and not on fetch's list of blocked ports (1 is).
    const refused = await fetch('http://127.0.0.1:2/').then(() => undefined, (e: Error) => e.cause as { code?: string });
    t.equal(refused?.code, 'ECONNREFUSED', 'failures other than a missing host keep their own error');
  });

  t.test('an invalid file', async (t) => {
    const invalid = join(dir, 'invalid.yaml');
    await writeFile(invalid, 'services: [1, 2\n');
    const sdk = init({ registry: invalid });
    t.teardown(() => sdk.close());
    await t.rejects(sdk.ready, { code: 'DEVSTACK_REGISTRY_UNAVAILABLE', registry: invalid, message: /invalid\.yaml.*Flow sequence/s, cause: { code: /^DEVSTACK_/ } });
    await new Promise((resolve) => setImmediate(resolve));
    t.equal(warnings.length, 2, 'its own warning');
  });

  t.test('an app that never awaits ready is not ended by the rejection', async (t) => {
    const sdk = init({ registry: join(dir, 'also-missing.yaml') });
    t.teardown(() => sdk.close());
    let unhandled = 0;
    const onUnhandled = () => unhandled++;
    process.on('unhandledRejection', onUnhandled);
    t.teardown(() => void process.off('unhandledRejection', onUnhandled));
    // The warning comes with the rejection; unhandled rejections are reported once microtasks drain.
    await once(process, 'warning');
    await new Promise((resolve) => setImmediate(resolve));
    t.equal(unhandled, 0, 'no unhandled rejection');
  });
});
