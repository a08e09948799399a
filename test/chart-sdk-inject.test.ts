/*
 * The SDK injected by the chart (`devstack.sdk.inject`) into apps that were not changed. The image's
 * content is built as docker/sdk.Dockerfile builds it (docker/sdk-tree.sh: the workspaces packed and
 * installed on their own, once for the file); releases are rendered with the real helm; each pod is
 * played as the kubelet plays it: the rendered init container's command copies that content into an
 * empty folder (the emptyDir, at the rendered mount path), then a small Node app with no devstack
 * code and no node_modules, an ES module one and a CommonJS one, starts with exactly the rendered
 * app container's environment (its variables resolved and expanded as Kubernetes does), alone or
 * under the OpenTelemetry auto-instrumentation the app starts itself (its own NODE_OPTIONS). The app's
 * calls go where the rendered HTTP_PROXY sends them: the sidecar's outbound listener, played here by
 * a recorder of what the app sent. The real sidecar would add a copy's default key itself, so what
 * the app puts on the wire is checked, not what a sidecar makes of it.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { ROOT, envOf, find, podSpec, render, validate, type Container, type K8sObject } from './helpers/charts.ts';
import type { Test } from './helpers/tap.ts';

const run = promisify(execFile);
const KEY = 'uber-ctx-key';
const IMAGE = { repository: 'registry.example/shop/web', tag: '1.4.2' };
/** The app's own NODE_OPTIONS: the process title, which the app reports, shows it was kept. */
const OWN_NODE_OPTIONS = '--title=shop-web';

// helm, two npm commands and a dozen short Node processes.
t.setTimeout(120_000);

const WORK = mkdtempSync(join(tmpdir(), 'devstack-sdk-inject-'));
t.teardown(() => rmSync(WORK, { recursive: true, force: true }));

/** Commands run as a user runs them: no npm_config_* of an outer npm, no loader of the test runner. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'NODE_OPTIONS'));
}

/** The image's content, as its build stage makes it (docker/build.sh sdk runs docker/sdk-tree.sh). */
const IMAGE_CONTENT = join(WORK, 'image');
const built = run('sh', ['docker/sdk-tree.sh', IMAGE_CONTENT], { cwd: ROOT, env: cleanEnv(), maxBuffer: 16 << 20 });

/** Where the Dockerfile puts that content in the image (`COPY --from=build /out <root>`). */
function imageRoot(): string {
  const dockerfile = readFileSync(join(ROOT, 'docker/sdk.Dockerfile'), 'utf8');
  const copy = /^COPY --from=build \/out (\S+)$/m.exec(dockerfile);
  if (!copy) throw new Error('docker/sdk.Dockerfile copies no /out into the image');
  return copy[1]!;
}

// The apps: a node:http server that calls the orders service (ORDERS_URL, from its env) with fetch
// and with node:http, and answers what came back. No devstack code, nothing to install.
const APP_BODY = `
const orders = process.env.ORDERS_URL;
const viaHttp = () => new Promise((resolve, reject) => {
  http.get(orders, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk) => { body += chunk; });
    res.on('end', () => resolve(JSON.parse(body)));
  }).on('error', reject);
});
const server = http.createServer(async (req, res) => {
  try {
    const viaFetch = await (await fetch(orders)).json();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ title: process.title, fetch: viaFetch, http: await viaHttp() }));
  } catch (error) {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: String(error) }));
  }
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening on ' + server.address().port));
process.on('SIGTERM', () => server.close());
`;
const APPS = join(WORK, 'apps');
mkdirSync(APPS);
writeFileSync(join(APPS, 'esm.mjs'), `import http from 'node:http';\n${APP_BODY}`);
writeFileSync(join(APPS, 'cjs.cjs'), `'use strict';\nconst http = require('node:http');\n${APP_BODY}`);
const FORMATS = [['ES module', 'esm.mjs'], ['CommonJS', 'cjs.cjs']] as const;
// The same apps in a team's usual OpenTelemetry set-up: the packages in their node_modules (links
// to the repository's) and NODE_OPTIONS=--require (or --import)
// @opentelemetry/auto-instrumentations-node/register, which loads the API's CommonJS (or ES module)
// build: the key must survive under either.
const OTEL_APPS = join(WORK, 'otel-apps');
mkdirSync(join(OTEL_APPS, 'node_modules/@opentelemetry'), { recursive: true });
for (const [, file] of FORMATS) writeFileSync(join(OTEL_APPS, file), readFileSync(join(APPS, file)));
for (const name of ['api', 'auto-instrumentations-node']) symlinkSync(join(ROOT, 'node_modules/@opentelemetry', name), join(OTEL_APPS, 'node_modules/@opentelemetry', name));
const OTEL_ENV = [
  { name: 'OTEL_TRACES_EXPORTER', value: 'none' },
  { name: 'OTEL_METRICS_EXPORTER', value: 'none' },
  { name: 'OTEL_LOGS_EXPORTER', value: 'none' },
  { name: 'OTEL_NODE_RESOURCE_DETECTORS', value: 'none' },
];

interface Seen {
  via: 'absolute' | 'connect';
  host: string | null;
  key: string | null;
  baggage: string | null;
}

/**
 * The sidecar's outbound listener as the app meets it: a forward proxy, in absolute form (node:http
 * under NODE_USE_ENV_PROXY) and through CONNECT (fetch). It answers with what it was sent.
 */
async function outboundRecorder(t: Test): Promise<number> {
  const answer = (via: Seen['via']) => (req: IncomingMessage, res: ServerResponse) => {
    const seen: Seen = { via, host: req.headers.host ?? null, key: header(req.headers, KEY), baggage: header(req.headers, 'baggage') };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(seen));
  };
  const tunnelled = createServer(answer('connect'));
  const server = createServer(answer('absolute'));
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => sockets.add(socket).size);
  server.on('connect', (_req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);
    tunnelled.emit('connection', socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

function header(headers: IncomingHttpHeaders, name: string): string | null {
  const value = headers[name];
  return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
}

/** A release of the app `web`, with the app's own env given to it as a team would. */
function values(feature: string, outbound: number, more: { devstack?: Record<string, unknown>; env?: Record<string, unknown>[]; mountPath?: string } = {}) {
  return {
    service: 'web',
    image: IMAGE,
    env: more.env ?? [
      { name: 'PORT', value: '0' },
      { name: 'ORDERS_URL', value: 'http://orders/' },
      { name: 'NODE_OPTIONS', value: OWN_NODE_OPTIONS },
    ],
    devstack: {
      feature,
      sidecar: { ports: { outbound } },
      sdk: { inject: true, ...(more.mountPath === undefined ? {} : { mountPath: more.mountPath }) },
      ...more.devstack,
    },
  };
}

const app = (deployment: K8sObject): Container => podSpec(deployment).containers.find((c) => c.name === 'app')!;

/**
 * The kubelet's part for a container's env: valueFrom read from the given ConfigMap values, then
 * $(NAME) replaced by a variable defined before it ($$ is a literal $; an unknown name stays).
 */
function resolveEnv(container: Container, configMaps: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of (container.env ?? []) as { name: string; value?: string; valueFrom?: { configMapKeyRef?: { name: string; key: string } } }[]) {
    const ref = entry.valueFrom?.configMapKeyRef;
    const raw = ref !== undefined ? (configMaps[`${ref.name}/${ref.key}`] ?? '') : (entry.value ?? '');
    env[entry.name] = raw.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name: string | undefined) => (name === undefined ? '$' : (env[name] ?? all)));
  }
  return env;
}

/** The rendered init container's command, as the kubelet runs it in the image: its paths are the image's. */
async function runInitContainer(deployment: K8sObject): Promise<Container> {
  const init = (podSpec(deployment).initContainers ?? []).find((c) => c.name === 'devstack-sdk');
  if (!init) throw new Error(`${deployment.metadata.name} has no devstack-sdk init container`);
  const command = init['command'] as string[];
  const root = imageRoot();
  // The emptyDir: an empty folder at the mount path before any container runs.
  for (const mount of init['volumeMounts'] as { mountPath: string }[]) mkdirSync(mount.mountPath, { recursive: true });
  const inImage = command.map((arg) => (arg === root || arg.startsWith(`${root}/`) ? IMAGE_CONTENT + arg.slice(root.length) : arg));
  await run(inImage[0]!, inImage.slice(1));
  return init;
}

interface RunningApp {
  port: number;
  stderr: () => string;
}

/** Starts an app of `dir` with exactly `env`; resolves once it listens. Killed at teardown. */
async function startApp(t: Test, dir: string, file: string, env: Record<string, string>): Promise<RunningApp> {
  const proc = spawn(process.execPath, [join(dir, file)], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    return exited;
  });
  let stdout = '';
  let stderr = '';
  proc.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const listening = /listening on (\d+)/.exec(stdout);
      if (listening) resolve(Number(listening[1]));
    });
    proc.once('exit', (code) => reject(new Error(`${file} exited ${code} before listening:\n${stderr}`)));
  });
  return { port, stderr: () => stderr };
}

interface Answer {
  title?: string;
  fetch?: Seen;
  http?: Seen;
  error?: string;
}

function call(port: number, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve(JSON.parse(body) as Answer));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('the rendered pod: init container, volume, mount, and NODE_OPTIONS appended to the app\'s own', async (t) => {
  const mountPath = '/devstack/sdk';
  const [copyObjects, baseObjects, none, fromConfigMap, ownKeyName, off, native] = await Promise.all([
    render('web-feature1', { values: values('feature1', 15001) }),
    render('web', { values: values('', 15001, { devstack: { keyName: 'dev-serve-user' } }) }),
    render('web', { values: values('', 15001, { env: [{ name: 'PORT', value: '8080' }] }) }),
    render('web', { values: values('', 15001, { env: [{ name: 'NODE_OPTIONS', valueFrom: { configMapKeyRef: { name: 'web', key: 'node-options' } } }, { name: 'PORT', value: '8080' }] }) }),
    render('web', { values: values('', 15001, { env: [{ name: 'DEVSTACK_KEY_NAME', value: 'x-team-key' }] }) }),
    render('web', { values: { ...values('', 15001), devstack: { sidecar: { ports: { outbound: 15001 } } } } }),
    render('web', { values: values('', 15001, { devstack: { sidecar: { native: true, ports: { outbound: 15001 } } } }), kubeVersion: '1.30.0' }),
  ]);
  for (const objects of [copyObjects, baseObjects, none, fromConfigMap, ownKeyName, off, native]) for (const o of objects) validate(o);

  const deployment = find(copyObjects, 'Deployment', 'web-feature1');
  const pod = podSpec(deployment);
  const [init, ...moreInit] = pod.initContainers ?? [];
  t.same(moreInit, [], 'one init container without a native sidecar');
  t.match(init, {
    name: 'devstack-sdk',
    image: 'devstack-sdk:latest',
    imagePullPolicy: 'IfNotPresent',
    command: ['cp', '-R', `${imageRoot()}/.`, mountPath],
    volumeMounts: [{ name: 'devstack-sdk', mountPath }],
    securityContext: { runAsNonRoot: true, runAsUser: 1000, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '32Mi' } },
  }, 'the init container copies the image\'s SDK (where the Dockerfile puts it) into the volume, as a non-root user');
  t.same(pod['volumes'], [{ name: 'devstack-sdk', emptyDir: { sizeLimit: '64Mi' } }], 'the SDK\'s emptyDir, the only volume (the relay-mode sidecar mounts no token)');
  t.same(app(deployment)['volumeMounts'], [{ name: 'devstack-sdk', mountPath, readOnly: true }], 'the app mounts it read-only');
  t.equal(pod.containers.filter((c) => c['volumeMounts'] !== undefined && (c['volumeMounts'] as { name: string }[]).some((m) => m.name === 'devstack-sdk')).length, 1, 'the sidecar does not mount it');

  const env = app(deployment).env!;
  t.same(env.map((e) => e.name), ['HTTP_PROXY', 'http_proxy', 'NODE_USE_ENV_PROXY', 'NO_PROXY', 'no_proxy', 'DEVSTACK_KEY_NAME', 'DEVSTACK_DEFAULT_KEY', 'PORT', 'ORDERS_URL', 'NODE_OPTIONS'],
    'the proxy variables, the SDK\'s, the app\'s own, NODE_OPTIONS last');
  t.match(envOf(app(deployment)), { NODE_OPTIONS: `${OWN_NODE_OPTIONS} --import ${mountPath}/register.mjs`, DEVSTACK_KEY_NAME: KEY, DEVSTACK_DEFAULT_KEY: 'feature1' },
    'the copy: the SDK\'s --import appended to the app\'s NODE_OPTIONS, the key name and the copy\'s key as the sidecar gets them');
  t.equal(envOf(app(deployment))['DEVSTACK_REGISTRY'], undefined, 'no registry: the SDK carries the key, the sidecar routes');

  const baseEnv = envOf(app(find(baseObjects, 'Deployment', 'web')));
  t.match(baseEnv, { DEVSTACK_KEY_NAME: 'dev-serve-user', NODE_OPTIONS: `${OWN_NODE_OPTIONS} --import ${mountPath}/register.mjs` }, 'base: devstack.keyName as DEVSTACK_KEY_NAME');
  t.notOk('DEVSTACK_DEFAULT_KEY' in baseEnv, 'base has no default key');
  t.equal(envOf(app(find(none, 'Deployment', 'web')))['NODE_OPTIONS'], `--import ${mountPath}/register.mjs`, 'an app without NODE_OPTIONS gets the SDK\'s alone');

  const referred = app(find(fromConfigMap, 'Deployment', 'web')).env as { name: string; value?: string; valueFrom?: unknown }[];
  t.same(referred.slice(-3), [
    { name: 'PORT', value: '8080' },
    { name: 'DEVSTACK_APP_NODE_OPTIONS', valueFrom: { configMapKeyRef: { name: 'web', key: 'node-options' } } },
    { name: 'NODE_OPTIONS', value: `$(DEVSTACK_APP_NODE_OPTIONS) --import ${mountPath}/register.mjs` },
  ], 'a NODE_OPTIONS read from a ConfigMap is kept under another name and referred to, as Kubernetes expands it');
  t.equal(resolveEnv(app(find(fromConfigMap, 'Deployment', 'web')), { 'web/node-options': '--max-old-space-size=256' })['NODE_OPTIONS'],
    `--max-old-space-size=256 --import ${mountPath}/register.mjs`, 'expanded by the kubelet: the ConfigMap\'s options, then the SDK\'s');

  const own = app(find(ownKeyName, 'Deployment', 'web')).env!;
  t.same(own.filter((e) => e.name === 'DEVSTACK_KEY_NAME'), [{ name: 'DEVSTACK_KEY_NAME', value: 'x-team-key' }], 'a DEVSTACK_* variable of the app\'s env replaces the chart\'s (no duplicate)');

  const offDeployment = find(off, 'Deployment', 'web');
  t.equal(podSpec(offDeployment).initContainers, undefined, 'without inject: no init container');
  t.equal(podSpec(offDeployment)['volumes'], undefined, 'without inject: no SDK volume (and, following the relay, no token volume)');
  t.equal(app(offDeployment)['volumeMounts'], undefined, 'without inject: no mount');
  t.same(app(offDeployment).env!.slice(5), values('', 0).env, 'without inject: the app\'s env as given, NODE_OPTIONS untouched');

  t.same((podSpec(find(native, 'Deployment', 'web')).initContainers ?? []).map((c) => c.name), ['devstack-sdk', 'devstack-sidecar'],
    'with a native sidecar: the SDK\'s copy first, then the sidecar');
});

t.test('bad sdk values are refused by the schema and by the templates', async (t) => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['inject as a string', { inject: 'true' }, /devstack\.sdk\.inject: "true" is not true or false/],
    ['a relative mount path', { inject: true, mountPath: 'devstack/sdk' }, /devstack\.sdk\.mountPath: "devstack\/sdk" is not an absolute path/],
    ['a mount path with a space (NODE_OPTIONS splits there)', { inject: true, mountPath: '/devstack/sdk --require /x' }, /devstack\.sdk\.mountPath: "\/devstack\/sdk --require \/x" is not an absolute path/],
    ['a mount path with ..', { inject: true, mountPath: '/devstack/../usr' }, /devstack\.sdk\.mountPath: "\/devstack\/\.\.\/usr" is not an absolute path/],
    ['a mount path over /usr', { inject: true, mountPath: '/usr' }, /devstack\.sdk\.mountPath: "\/usr" is a directory of the app's image/],
    ['an image repository with a quote', { image: { repository: 'devstack-sdk"' } }, /devstack\.sdk\.image\.repository: "devstack-sdk\\"" is not an image repository/],
    ['a pull policy that adds a field', { image: { pullPolicy: 'Always\n  privileged: true' } }, /devstack\.sdk\.image\.pullPolicy: "Always\\n {2}privileged: true" is not one of Always, IfNotPresent, Never/],
    ['resources with another key', { resources: { requets: {} } }, /devstack\.sdk\.resources: "requets" is not one of requests, limits, claims/],
  ];
  const withoutSidecar = { service: 'web', image: IMAGE, devstack: { sidecar: { enabled: false }, sdk: { inject: true } } };
  const refused = (v: Record<string, unknown>, args: string[]) => render('web', { values: v, args }).then(() => 'rendered', (e: Error) => e.message);
  for (const [what, sdk, message] of cases) {
    const v = { service: 'web', image: IMAGE, devstack: { sdk } };
    t.match(await refused(v, ['--skip-schema-validation']), message, `${what}: the templates refuse it`);
    t.not(await refused(v, []), 'rendered', `${what}: the schema refuses it`);
  }
  t.match(await refused(withoutSidecar, ['--skip-schema-validation']), /devstack\.sdk\.inject: the injected SDK carries the key and the sidecar routes; it needs devstack\.sidecar\.enabled/, 'inject without the sidecar: the templates refuse it');
  t.match(await refused(withoutSidecar, []), /sidecar/, 'inject without the sidecar: the schema refuses it');
});

t.test('the library in a team\'s chart renders the same pod', async (t) => {
  const dir = mkdtempSync(join(WORK, 'team-'));
  writeFileSync(join(dir, 'Chart.yaml'), ['apiVersion: v2', 'name: team-app', 'version: 1.0.0', 'dependencies:', `  - { name: devstack, version: 0.1.0, repository: "file://${join(ROOT, 'charts/devstack')}" }`, ''].join('\n'));
  writeFileSync(join(dir, 'values.yaml'), '{}\n');
  // Only the Deployment, written as the library's README says a team's chart includes it.
  mkdirSync(join(dir, 'templates'));
  writeFileSync(join(dir, 'templates/deployment.yaml'), readFileSync(join(ROOT, 'charts/devstack-service/templates/deployment.yaml'), 'utf8').replace(/^\{\{- include "devstack-service\.validate" \. -\}\}\n/m, ''));
  mkdirSync(join(dir, 'charts'));
  await run('ln', ['-s', join(ROOT, 'charts/devstack'), join(dir, 'charts/devstack')]);
  const v = values('feature1', 15001);
  const [ours, theirs] = await Promise.all([render('web-feature1', { values: v }), render('web-feature1', { values: v, chart: dir })]);
  const strip = (d: K8sObject) => podSpec(d);
  t.same(strip(find(theirs, 'Deployment', 'web-feature1')), strip(find(ours, 'Deployment', 'web-feature1')), 'the same pod spec from the library\'s templates in a chart with no schema and no defaults');
});

t.test('unchanged apps loaded with the injected SDK carry the key on their calls', async (t) => {
  await built;
  t.ok(existsSync(join(IMAGE_CONTENT, 'register.mjs')), 'the image content has the entry NODE_OPTIONS names');
  t.notOk(existsSync(join(APPS, 'node_modules')), 'the apps have no node_modules');
  const outbound = await outboundRecorder(t);

  // A base release, a copy, and a base without injection as the control: the same app, the same
  // calls, so what differs is the SDK alone.
  const releases = [
    { name: 'web', feature: '', inject: true, otel: false },
    { name: 'web-feature1', feature: 'feature1', inject: true, otel: false },
    { name: 'web-plain', feature: '', inject: false, otel: false },
    { name: 'web-otel', feature: '', inject: true, otel: true },
    { name: 'web-otel-feature1', feature: 'feature1', inject: true, otel: true },
    { name: 'web-otel-import-feature1', feature: 'feature1', inject: true, otel: true },
  ];
  const pods = new Map<string, Record<string, string>>();
  await Promise.all(releases.map(async (r) => {
    const mountPath = join(WORK, 'pods', r.name, 'devstack', 'sdk');
    const v = values(r.feature, outbound, { mountPath });
    const preload = r.name.includes('import') ? '--import' : '--require';
    if (r.otel) v.env = [...v.env.filter((e) => e['name'] !== 'NODE_OPTIONS'), ...OTEL_ENV, { name: 'NODE_OPTIONS', value: `${preload} @opentelemetry/auto-instrumentations-node/register ${OWN_NODE_OPTIONS}` }];
    if (!r.inject) v.devstack.sdk = { inject: false, mountPath };
    const objects = await render(r.name, { values: v });
    const deployment = find(objects, 'Deployment', r.feature ? `web-${r.feature}` : 'web');
    if (r.inject) {
      await runInitContainer(deployment);
      t.ok(existsSync(join(mountPath, 'node_modules/@devstack/sdk/package.json')), `${r.name}: the init container copied the SDK into the volume`);
    }
    pods.set(r.name, resolveEnv(app(deployment)));
  }));
  t.equal(pods.get('web')!['HTTP_PROXY'], `http://127.0.0.1:${outbound}`, 'the rendered HTTP_PROXY is the outbound listener');

  type Row = [release: string, inbound: Record<string, string>, key: string | null, what: string];
  const rows: Row[] = [
    ['web', { [KEY]: 'feature1' }, 'feature1', 'base, called with the plain header: the key on the outbound call'],
    ['web', { baggage: `${KEY}=feature1,user=7` }, 'feature1', 'base, called with the key in baggage'],
    ['web', {}, null, 'base, called without a key: none'],
    ['web', { [KEY]: 'Not_A-Key' }, null, 'base, called with an invalid key: none'],
    ['web-feature1', {}, 'feature1', 'the copy, called without a key: its default key'],
    ['web-feature1', { [KEY]: 'feature2' }, 'feature2', 'the copy, called with another key: that key'],
    ['web-plain', { [KEY]: 'feature1' }, null, 'control, the same app without injection: the key is lost'],
    ['web-otel', { [KEY]: 'feature1' }, 'feature1', 'base under its own OpenTelemetry, called with the plain header: the key'],
    ['web-otel', { baggage: `${KEY}=feature1` }, 'feature1', 'base under its own OpenTelemetry, called with the key in baggage'],
    ['web-otel', {}, null, 'base under its own OpenTelemetry, called without a key: none'],
    ['web-otel-feature1', { [KEY]: 'feature2' }, 'feature2', 'the copy under its own OpenTelemetry, called with another key: that key, not its default'],
    ['web-otel-feature1', {}, 'feature1', 'the copy under its own OpenTelemetry, called without a key: its default key'],
    ['web-otel-import-feature1', { [KEY]: 'feature2' }, 'feature2', 'the copy under OpenTelemetry loaded with --import, called with another key: that key'],
    ['web-otel-import-feature1', {}, 'feature1', 'the copy under OpenTelemetry loaded with --import, called without a key: its default key'],
  ];
  for (const [format, file] of FORMATS) {
    await t.test(`${format} app`, async (t) => {
      const running = new Map<string, RunningApp>();
      await Promise.all([...pods].map(async ([name, env]) => running.set(name, await startApp(t, name.includes('otel') ? OTEL_APPS : APPS, file, env))));
      for (const [release, inbound, key, what] of rows) {
        const answer = await call(running.get(release)!.port, inbound);
        t.equal(answer.error, undefined, `${what}: the app answered`);
        t.equal(answer.title, 'shop-web', `${what}: the app's own NODE_OPTIONS still applies`);
        for (const client of ['fetch', 'http'] as const) {
          const seen = answer[client];
          t.equal(seen?.host, 'orders', `${what} (${client}): the call went to the outbound listener for orders`);
          t.equal(seen?.key ?? null, key, `${what} (${client}): ${key ?? 'no key'}`);
          if (key !== null) t.match(seen?.baggage ?? '', new RegExp(`(^|,)\\s*${KEY}=${key}(,|$)`), `${what} (${client}): the key in baggage too`);
        }
      }
      for (const [name, pod] of running) t.notMatch(pod.stderr(), /devstack/, `${name}: no word from the SDK on stderr`);
    });
  }

  await t.test('a bad variable: one line, and the app runs unrouted', async (t) => {
    const env = { ...pods.get('web')!, DEVSTACK_DEFAULT_KEY: 'Not_A-Key' };
    const pod = await startApp(t, APPS, 'esm.mjs', env);
    const answer = await call(pod.port, { [KEY]: 'feature1' });
    t.equal(answer.fetch?.host, 'orders', 'the app still serves and calls');
    t.match(pod.stderr(), /^devstack: not started, the app runs unrouted: DEVSTACK_DEFAULT_KEY/, 'one warning line');
  });

  await t.test('a copy without the SDK (a half-copied volume): one line, and the app runs unrouted', async (t) => {
    const broken = join(WORK, 'pods', 'broken', 'devstack', 'sdk');
    mkdirSync(broken, { recursive: true });
    writeFileSync(join(broken, 'register.mjs'), readFileSync(join(IMAGE_CONTENT, 'register.mjs')));
    const env = { ...pods.get('web')!, NODE_OPTIONS: `--import ${broken}/register.mjs` };
    const pod = await startApp(t, APPS, 'esm.mjs', env);
    const answer = await call(pod.port, { [KEY]: 'feature1' });
    t.equal(answer.fetch?.host, 'orders', 'the app still serves and calls');
    t.equal(answer.fetch?.key ?? null, null, 'unrouted');
    t.match(pod.stderr(), /^devstack: not started, the app runs unrouted: /, 'one warning line');
  });
});

// A gRPC server app with its own @grpc/grpc-js (a link to the repository's) and no devstack code:
// its one method calls orders with fetch and answers what came back.
const GRPC_APPS = join(WORK, 'grpc-apps');
mkdirSync(join(GRPC_APPS, 'node_modules/@grpc'), { recursive: true });
symlinkSync(join(ROOT, 'node_modules/@grpc/grpc-js'), join(GRPC_APPS, 'node_modules/@grpc/grpc-js'));
const JSON_METHOD = `{
  path: '/shop.Web/Hello', requestStream: false, responseStream: false,
  requestSerialize: (v) => Buffer.from(JSON.stringify(v)), requestDeserialize: (b) => JSON.parse(b.toString('utf8')),
  responseSerialize: (v) => Buffer.from(JSON.stringify(v)), responseDeserialize: (b) => JSON.parse(b.toString('utf8')),
}`;
writeFileSync(join(GRPC_APPS, 'server.cjs'), `'use strict';
const grpc = require('@grpc/grpc-js');
const service = { hello: ${JSON_METHOD} };
const server = new grpc.Server();
server.addService(service, {
  hello: (call, done) => {
    fetch(process.env.ORDERS_URL).then((res) => res.json()).then((seen) => done(null, { fetch: seen }), (error) => done(error));
  },
});
server.bindAsync('127.0.0.1:' + process.env.PORT, grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.log('listening on ' + port);
});
process.on('SIGTERM', () => server.forceShutdown());
`);

t.test('an unchanged gRPC server loaded with the injected SDK carries the key on its calls', async (t) => {
  await built;
  const grpc = await import('@grpc/grpc-js');
  const outbound = await outboundRecorder(t);
  const releases = [
    { name: 'greeter', feature: '', inject: true },
    { name: 'greeter-feature1', feature: 'feature1', inject: true },
    { name: 'greeter-plain', feature: '', inject: false },
  ];
  const ports = new Map<string, number>();
  await Promise.all(releases.map(async (r) => {
    const mountPath = join(WORK, 'pods', r.name, 'devstack', 'sdk');
    const v = { ...values(r.feature, outbound, { mountPath }), service: 'greeter', appProtocol: 'grpc' };
    v.env = v.env.filter((e) => e['name'] !== 'NODE_OPTIONS');
    if (!r.inject) v.devstack.sdk = { inject: false, mountPath };
    const deployment = find(await render(r.name, { values: v }), 'Deployment', r.feature ? `greeter-${r.feature}` : 'greeter');
    if (r.inject) await runInitContainer(deployment);
    ports.set(r.name, (await startApp(t, GRPC_APPS, 'server.cjs', resolveEnv(app(deployment)))).port);
  }));
  const Client = grpc.makeGenericClientConstructor({
    hello: {
      path: '/shop.Web/Hello', requestStream: false, responseStream: false,
      requestSerialize: (v: unknown) => Buffer.from(JSON.stringify(v)), requestDeserialize: (b: Buffer): unknown => JSON.parse(b.toString('utf8')),
      responseSerialize: (v: unknown) => Buffer.from(JSON.stringify(v)), responseDeserialize: (b: Buffer): unknown => JSON.parse(b.toString('utf8')),
    },
  }, 'Web');
  const hello = (release: string, key: string | undefined) => new Promise<{ fetch?: Seen }>((resolve, reject) => {
    const client = new Client(`127.0.0.1:${ports.get(release)!}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    if (key !== undefined) metadata.set(KEY, key);
    (client as unknown as { hello: (req: unknown, md: unknown, done: (error: Error | null, answer: { fetch?: Seen }) => void) => void }).hello({}, metadata, (error, answer) => {
      client.close();
      if (error) reject(error);
      else resolve(answer);
    });
  });
  const rows: [string, string | undefined, string | null, string][] = [
    ['greeter', 'feature1', 'feature1', 'base, called with the key in metadata: the key on its fetch'],
    ['greeter', undefined, null, 'base, called without a key: none'],
    ['greeter-feature1', undefined, 'feature1', 'the copy, called without a key: its default key'],
    ['greeter-feature1', 'feature2', 'feature2', 'the copy, called with another key: that key'],
    ['greeter-plain', 'feature1', null, 'control, the same server without injection: the key is lost'],
  ];
  for (const [release, key, expected, what] of rows) {
    const answer = await hello(release, key);
    t.equal(answer.fetch?.host, 'orders', `${what}: the call went to the outbound listener for orders`);
    t.equal(answer.fetch?.key ?? null, expected, what);
  }
});
