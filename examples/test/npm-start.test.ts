/*
 * `npm start` stopped by a signal sent to the npm process (kill -TERM, kill -INT), not typed at a
 * terminal: npm hands it to the shell that runs the script, and the demo under that shell must still
 * stop every process it started and free every port.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// Two starts of the whole demo fleet through npm.
t.setTimeout(120_000);
// The subtest type: the last overload of t.test is `(cb)`.
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

/** Every process below `pid`, from /proc (ppid is the 4th field of /proc/<pid>/stat, after `(comm)`). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

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

async function stopBySignal(t: Test, signal: NodeJS.Signals): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '' };
  // An outer `npm test` leaves npm_* settings that must not steer this npm.
  for (const name of Object.keys(env)) if (/^npm_/i.test(name)) delete env[name];
  const npm = spawn('npm', ['start', '--', '--port', '0'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  npm.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const closed = new Promise<void>((resolve) => npm.once('close', () => resolve()));
  let pids: number[] = [];
  t.teardown(() => {
    // Only if the test failed: nothing it started may outlive it.
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  const ready = await new Promise<boolean>((resolve) => {
    npm.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      if (/started in [\d.]+ s/.test(stdout)) resolve(true);
    });
    void closed.then(() => resolve(false));
  });
  t.ok(ready, `the demo started${ready ? '' : `: ${stdout}${stderr}`}`);
  if (!ready) return;
  pids = descendants(npm.pid!);
  // npm -> start.ts (the script's shell execs it) -> the SQS server, eight apps, two workers, six sidecars and the edge.
  t.ok(pids.length >= 16, `the fleet runs under npm (${pids.length} processes)`);
  const ports = [...stdout.matchAll(/http:\/\/(?:[\w.-]+):(\d+)\//g)].map((m) => Number(m[1]));
  t.ok(ports.length >= 5, 'the edge and admin ports are printed');

  npm.kill(signal);
  // Every holder of npm's stdout (npm, the shell, the demo) has exited once it closes; the bound is
  // only a guard so a regression fails here instead of at the runner's timeout.
  let guard: NodeJS.Timeout | undefined;
  const done = await Promise.race([closed.then(() => true), new Promise<boolean>((resolve) => (guard = setTimeout(() => resolve(false), 30_000)))]);
  clearTimeout(guard);
  t.ok(done, `npm and the demo exited after ${signal}`);
  t.match(stdout, /devstack demo: stopped; nothing left running\./, 'the demo stopped its fleet');
  const left = pids.filter(alive).map((pid) => {
    try {
      return `${pid} ${readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ').slice(1, 3).join(' ')} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')}`;
    } catch {
      return `${pid}`;
    }
  });
  t.same(left, [], 'no process of the fleet is left');
  for (const port of new Set(ports)) t.ok(await refused(port), `nothing listens on ${port}`);
}

t.test('kill -TERM to the npm start process stops everything', { skip: process.platform !== 'linux' && 'reads /proc' }, (t) => stopBySignal(t, 'SIGTERM'));
t.test('kill -INT to the npm start process stops everything', { skip: process.platform !== 'linux' && 'reads /proc' }, (t) => stopBySignal(t, 'SIGINT'));
