/*
 * What `register` loads at start. Propagation only (no DEVSTACK_REGISTRY) hooks fetch and undici
 * through undici's diagnostics channel, so the undici package, a large share of a start-up, is not
 * loaded until the app loads it itself; the key is still carried on the app's fetch and on its own
 * undici calls. Proxyless mode composes a dispatcher, so it loads undici at start.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

// The headers each call arrived with.
const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ key: req.headers['uber-ctx-key'] ?? null }));
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
const TARGET = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

// Preloaded with --require, which runs before every other --require and --import: every undici
// module resolved from then on, by import or require, is on record.
const dir = mkdtempSync(join(tmpdir(), 'devstack-startup-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const HOOK = join(dir, 'hook.cjs');
writeFileSync(
  HOOK,
  `const { registerHooks } = require('node:module');
  globalThis.undiciLoads = [];
  registerHooks({ resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    if (resolved.url.includes('/node_modules/undici/')) globalThis.undiciLoads.push(resolved.url);
    return resolved;
  } });`,
);

// The app: what was loaded once `register` ran, then a keyed fetch, then its own undici.
const APP = `
  const atStart = globalThis.undiciLoads.length;
  const { withRoutingKey } = await import('@devstack/sdk');
  const target = process.env.TARGET;
  const fetched = await withRoutingKey('feature1', async () => (await fetch(target)).json());
  const undici = await import('undici');
  const requested = await withRoutingKey('feature1', async () => (await undici.request(target)).body.json());
  const unkeyed = await (await undici.request(target)).body.json();
  process.stdout.write(JSON.stringify({ atStart, fetched, requested, unkeyed }));`;

function run(args: string[], env: Record<string, string> = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--require', HOOK, ...args, '--input-type=module', '-e', APP], { cwd: import.meta.dirname, env: { ...process.env, TARGET, ...env }, timeout: 20_000 }, (error, stdout, stderr) =>
      error === null ? resolve(JSON.parse(stdout)) : reject(new Error(`${error.message}\n${stderr}`)),
    );
  });
}

const CARRIED = { fetched: { key: 'feature1' }, requested: { key: 'feature1' }, unkeyed: { key: null } };

t.test('propagation only, --import: undici is not loaded at start, the key is carried on fetch and on the app\'s undici', async (t) => {
  t.same(await run(['--import', '@devstack/sdk/register']), { atStart: 0, ...CARRIED });
});

t.test('propagation only, --require: the same', async (t) => {
  t.same(await run(['--require', '@devstack/sdk/register']), { atStart: 0, ...CARRIED });
});

t.test('proxyless: undici is loaded at start, for the dispatcher that routes fetch', async (t) => {
  const file = join(dir, 'registry.yaml');
  writeFileSync(file, `services:\n  orders:\n    base: ${TARGET}\n`);
  const result = (await run(['--import', '@devstack/sdk/register'], { DEVSTACK_REGISTRY: file })) as { atStart: number };
  t.ok(result.atStart > 0, 'loaded by register');
  t.match(result, CARRIED);
});
