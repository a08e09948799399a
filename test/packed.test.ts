/*
 * The packages as a user gets them: every publishable package packed with `npm pack`, the tarballs
 * installed into a fresh strict TypeScript app (no skipLibCheck, no fastify), a file using each
 * public API type-checked and run. Catches what the workspace hides: files missing from or leaking
 * into a tarball, maps pointing at sources that are not shipped, declarations that need types the
 * app does not have, a bin that only works in the repository. Reads the built dist/ (npm test
 * builds first; alone: npm run build).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import type { Test } from './helpers/tap.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** What the app below uses; every other publishable workspace is packed and checked too. */
const USED = ['@devstack/core', '@devstack/registry-file', '@devstack/sdk', '@devstack/sidecar'];
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const run = promisify(execFile);

interface Manifest {
  name: string;
  private?: boolean;
  workspaces?: string[];
}

const manifest = (dir: string) => JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as Manifest;
const PUBLISHABLE = manifest('.').workspaces!.map(manifest).filter((m) => m.private !== true).map((m) => m.name).sort();

// Two installs from npm's cache and a type check: slower than a unit test on a busy machine.
t.setTimeout(180_000);

/** Runs a command; a failure fails the test with what the command said. */
async function sh(t: Test, cmd: string, args: string[], cwd: string): Promise<string> {
  try {
    // npm_config_* from an outer `npm test` (a workspace, a prefix) must not steer these commands.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
    return (await run(cmd, args, { cwd, env, maxBuffer: 32 << 20 })).stdout;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    t.fail(`${cmd} ${args.join(' ')}: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
    throw error;
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(relative(dir, join(entry.parentPath, entry.name)));
  }
  return out;
}

const APP = `
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { ConfigError, LANE_HEADER, buildSnapshot, createKeyCodec, resolve, type Decision } from '@devstack/core';
import { StaticSource, type RegistrySource } from '@devstack/core';
import { FileSource } from '@devstack/registry-file';
import { Sidecar, createLogger } from '@devstack/sidecar';
import { RoutingRejectedError, getRoutingKey, init, withRoutingKey, type InitOptions } from '@devstack/sdk';

// @devstack/core: the README's example.
const snapshot = buildSnapshot({ services: { orders: { base: 'http://orders:8080', features: { feature1: 'http://orders-feature1:8080' } } } });
const codec = createKeyCodec();
const decision: Decision = resolve(snapshot, 'orders', codec.read({ baggage: 'userId=7,uber-ctx-key=feature1' }).key);
const source: RegistrySource = new StaticSource(snapshot);

// An upstream that reports what it received.
const seen: IncomingMessage['headers'][] = [];
const upstream = createServer((req, res) => {
  seen.push(req.headers);
  res.end('pong');
});
await new Promise<void>((done) => upstream.listen(0, '127.0.0.1', done));
const port = (upstream.address() as AddressInfo).port;

// @devstack/registry-file + @devstack/sidecar: a FileSource and a Sidecar, one call through it.
const file = new URL('./registry.yaml', import.meta.url);
await writeFile(file, \`services:\\n  orders:\\n    base: http://127.0.0.1:9\\n    features:\\n      feature2: http://127.0.0.1:\${port}\\n\`);
const sidecar = new Sidecar({ source: new FileSource({ path: file.pathname }), outbound: { port: 0, host: '127.0.0.1' }, logger: createLogger('error') });
const { outbound } = await sidecar.start();
// fetch cannot set Host; an app behind the sidecar sends \`Host: orders\` as node:http does here.
const sidecarReply = await new Promise<{ status: number | undefined; lane: unknown; body: string }>((done, fail) => {
  const req = request({ host: '127.0.0.1', port: outbound!.port, path: '/ping', headers: { host: 'orders', 'uber-ctx-key': 'feature2' } }, (res) => {
    let body = '';
    res.setEncoding('utf8').on('data', (c: string) => (body += c));
    res.on('end', () => done({ status: res.statusCode, lane: res.headers[LANE_HEADER], body }));
  });
  req.on('error', fail).end();
});
await sidecar.close();

// @devstack/sdk: init() refuses a bad option; then propagation on fetch.
let refused = '';
try {
  init({ allowHosts: 5 } as unknown as InitOptions);
} catch (error) {
  refused = error instanceof ConfigError ? error.code : String(error);
}
const sdk = init({ allowHosts: ['127.0.0.1'] });
const sdkStatus = await withRoutingKey('feature1', async () => {
  const key = getRoutingKey();
  const res = await fetch(\`http://127.0.0.1:\${port}/sdk\`);
  await res.text();
  return { key, status: res.status };
});
await sdk.close();
upstream.close();

console.log(JSON.stringify({
  core: { outcome: decision.outcome, origin: decision.lane?.ready[0]?.origin, source: source.kind },
  sidecar: { ...sidecarReply, key: seen[0]?.['uber-ctx-key'] },
  sdk: { refused, ...sdkStatus, sent: seen[1]?.['uber-ctx-key'], proxyless: sdk.proxyless, rejected: typeof RoutingRejectedError },
}));
`;

// An unchanged app under register: its server is given the key, its outbound node:http call must
// carry it. `main` is its module loader's: the CommonJS app requires the SDK too, as apps may.
const registerApp = (cjs: boolean) => `
${cjs ? "const http = require('node:http');\nconst sdk = require('@devstack/sdk');" : "import http from 'node:http';\nconst sdk = await import('@devstack/sdk');"}
const get = (port, path, headers) => new Promise((resolve, reject) => {
  http.get({ host: '127.0.0.1', port, path, headers }, (res) => {
    let body = '';
    res.setEncoding('utf8').on('data', (c) => (body += c)).on('end', () => resolve(body));
  }).on('error', reject);
});
const server = http.createServer(async (req, res) => {
  if (req.url === '/up') return void res.end(String(req.headers['uber-ctx-key']));
  res.end(await get(server.address().port, '/up', {}));
});
server.listen(0, '127.0.0.1', async () => {
  const carried = await get(server.address().port, '/in', { 'uber-ctx-key': 'feature1' });
  server.close();
  console.log(JSON.stringify({ carried, init: typeof sdk.init }));
});
`;

const TSCONFIG = {
  compilerOptions: {
    strict: true,
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'es2023',
    lib: ['es2023', 'dom'],
    types: ['node'],
    // The app has no @types/node of its own: the repository's, as a user would install theirs.
    typeRoots: [join(ROOT, 'node_modules', '@types')],
    noEmit: true,
    allowImportingTsExtensions: true,
    verbatimModuleSyntax: true,
  },
  files: ['main.ts'],
};

t.test('the packed packages, installed into a strict TypeScript app', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'devstack-packed-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const packs = join(dir, 'packs');
  const app = join(dir, 'app');
  await sh(t, 'mkdir', ['-p', packs, app], dir);

  t.same(USED.filter((name) => !PUBLISHABLE.includes(name)), [], 'the packages the app uses are publishable workspaces');
  const packed = JSON.parse(await sh(t, 'npm', ['pack', '--json', '--pack-destination', packs, ...PUBLISHABLE.flatMap((name) => ['--workspace', name])], ROOT)) as { name: string; filename: string; files: { path: string }[] }[];
  t.same(packed.map((p) => p.name).sort(), PUBLISHABLE, 'every publishable package packed');
  for (const p of packed) {
    const files = p.files.map((f) => f.path);
    t.same(files.filter((f) => /tsbuildinfo|(^|\/)test\//.test(f)), [], `${p.name}: no build info or tests in the tarball`);
    t.ok(files.includes('README.md'), `${p.name}: has a README`);
  }

  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'devstack-packed-app', private: true, type: 'module' }));
  const tarballs = packed.map((p) => join(packs, p.filename));
  await sh(t, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', ...tarballs], app);
  t.notOk(existsSync(join(app, 'node_modules', 'fastify')), 'fastify is not installed');

  for (const name of PUBLISHABLE) {
    const pkg = join(app, 'node_modules', ...name.split('/'));
    const files = await filesUnder(pkg);
    const missing: string[] = [];
    for (const map of files.filter((f) => f.endsWith('.map'))) {
      const { sources } = JSON.parse(await readFile(join(pkg, map), 'utf8')) as { sources: string[] };
      for (const s of sources) if (!files.includes(relative(pkg, resolve(dirname(join(pkg, map)), s)))) missing.push(`${map} -> ${s}`);
    }
    t.same(missing, [], `${name}: every source map and declaration map points at a shipped file`);
  }

  await writeFile(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
  await writeFile(join(app, 'main.ts'), APP);
  t.equal(await sh(t, process.execPath, [TSC, '-p', 'tsconfig.json'], app), '', 'the app type-checks: strict, no skipLibCheck, module nodenext, without fastify');

  const out = JSON.parse(await sh(t, process.execPath, ['main.ts'], app)) as unknown;
  t.same(out, {
    core: { outcome: 'feature', origin: 'http://orders-feature1:8080', source: 'static' },
    sidecar: { status: 200, lane: 'feature2', body: 'pong', key: 'feature2' },
    sdk: { refused: 'DEVSTACK_INVALID_CONFIG', key: 'feature1', status: 200, sent: 'feature1', proxyless: false, rejected: 'function' },
  }, 'the app runs: core, a FileSource and Sidecar round trip, the SDK');

  const help = await new Promise<{ code: number | null; stdout: string }>((done) => {
    const child = spawn(join(app, 'node_modules', '.bin', 'devstack-sidecar'), ['--help'], { cwd: app, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.on('exit', (code) => done({ code, stdout }));
  });
  t.equal(help.code, 0, 'the installed devstack-sidecar command runs');

  // The same install: a CommonJS app (no "type") under --require, an ES module one under --import.
  const cjs = join(app, 'cjs');
  await sh(t, 'mkdir', ['-p', cjs], dir);
  await writeFile(join(cjs, 'package.json'), JSON.stringify({ name: 'devstack-packed-cjs', private: true }));
  await writeFile(join(cjs, 'main.js'), registerApp(true));
  await writeFile(join(app, 'register.mjs'), registerApp(false));
  const want = { carried: 'feature1', init: 'function' };
  t.same(JSON.parse(await sh(t, process.execPath, ['--require', '@devstack/sdk/register', 'main.js'], cjs)), want, 'CommonJS app, --require @devstack/sdk/register: the key carried on');
  t.same(JSON.parse(await sh(t, process.execPath, ['--import', '@devstack/sdk/register', 'register.mjs'], app)), want, 'ES module app, --import @devstack/sdk/register: the key carried on');
  t.match(help.stdout, /^Usage: devstack-sidecar/);
});
