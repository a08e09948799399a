/*
 * The repository's own commands as the READMEs give them, run from the repository root: the
 * sidecar command through npx, what every command says on a Node that is too old, and a signal to
 * npx reaching the sidecar it started.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NEED = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node.replace(/^>=\s*/, '');
// Set in the commands this file runs: if the version check ever let `npm test` through, the suite
// it starts must not run this file again.
const NESTED = 'DEVSTACK_TEST_NESTED';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a user's shell: no npm_* settings from an outer `npm test`, no test hooks. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'NODE_OPTIONS') env[k] = v;
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('npx devstack-sidecar --help works from the repository root', async (t) => {
  const help = await run('npx', ['devstack-sidecar', '--help'], userEnv());
  t.equal(help.code, 0, `exit 0${help.code === 0 ? '' : `: ${help.stderr}`}`);
  t.match(help.stdout, /^Usage: devstack-sidecar --registry FILE/);
});

t.test('on a Node older than the packages need, every command says which Node it needs', { skip: process.env[NESTED] === '1' && 'nested run' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'devstack-old-node-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Every node process of the command (npm included) believes it is Node 20.
  const preload = join(dir, 'old-node.cjs');
  await writeFile(preload, "Object.defineProperty(process.versions, 'node', { value: '20.20.2' });\n");
  const env = userEnv({ NODE_OPTIONS: `--require=${preload}`, [NESTED]: '1' });
  const line = new RegExp(`needs Node\\.js ${NEED.replace(/\./g, '\\.')} or newer; this is Node\\.js 20\\.20\\.2`);
  for (const [cmd, args] of [
    // --help: were the check missing, the demo would print its help and exit, not start a fleet.
    ['npm', ['start', '--', '--help']],
    ['npm', ['test']],
    ['npm', ['run', 'build']],
    ['npx', ['devstack-sidecar', '--help']],
    // The bench workspace's own scripts, as its README runs them from bench/.
    ['npm', ['run', 'footprint', '-w', '@devstack/bench', '--', '--help']],
    ['npm', ['run', 'h2', '-w', '@devstack/bench', '--', '--help']],
  ] as const) {
    const r = await run(cmd, [...args], env);
    const what = `${cmd} ${args.join(' ')}`;
    t.not(r.code, 0, `${what}: non-zero exit`);
    t.match(r.stderr, line, `${what}: one line naming the Node it needs`);
    t.notMatch(r.stderr, /SyntaxError|TypeError|at .*node_modules/, `${what}: no crash in a dependency`);
  }
});

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

t.test('kill -TERM to npx devstack-sidecar stops the sidecar', async (t) => {
  const args = ['devstack-sidecar', '--registry', 'examples/registry.yaml', '--outbound-port', '0', '--outbound-host', '127.0.0.1', '--admin-port', '0', '--admin-host', '127.0.0.1'];
  // Its own process group, so the teardown can reach a sidecar that outlived npx.
  const npx = spawn('npx', args, { cwd: ROOT, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  // Closes once every holder of the pipe (npx, its shell, the sidecar) has exited.
  const closed = new Promise<void>((resolve) => npx.once('close', () => resolve()));
  t.teardown(() => {
    try {
      process.kill(-npx.pid!, 'SIGKILL');
    } catch {
      // the group is gone: nothing outlived the test
    }
  });
  const ports = await new Promise<number[] | undefined>((resolve) => {
    npx.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const ready = stdout.split('\n').find((l) => l.includes('"msg":"ready"'));
      if (ready === undefined) return;
      const { addresses } = JSON.parse(ready) as { addresses: Record<string, { port: number }> };
      resolve(Object.values(addresses).map((a) => a.port));
    });
    void closed.then(() => resolve(undefined));
  });
  t.ok(ports, `the sidecar started${ports ? '' : `: ${stdout}`}`);
  if (ports === undefined) return;
  npx.kill('SIGTERM');
  // The bound is only a guard, so a regression fails here rather than at the runner's timeout.
  let guard: NodeJS.Timeout | undefined;
  const done = await Promise.race([closed.then(() => true), new Promise<boolean>((resolve) => (guard = setTimeout(() => resolve(false), 20_000)))]);
  clearTimeout(guard);
  t.ok(done, 'npx and the sidecar exited');
  t.match(stdout, /"msg":"stopping","signal":"SIGTERM"/, 'the sidecar drained as on SIGTERM');
  for (const port of ports) t.ok(await refused(port), `nothing listens on ${port}`);
});
