/*
 * The native peer: nginx, one worker, routing on the `uber-ctx-key` header with `map` to two
 * upstream groups that keep connections alive. It runs as its own process with a private prefix
 * and config in a temporary directory, on a free unprivileged port, in the foreground.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childPids } from './procstat.ts';
import { stopChild, tail, track, type Target } from './processes.ts';

/** The first executable among an override (BENCH_NGINX, BENCH_WRK), PATH and the usual places. */
export function findExecutable(name: string, override: string | undefined, extra: readonly string[]): string | undefined {
  const candidates = [override, ...(process.env['PATH'] ?? '').split(':').map((d) => join(d, name)), ...extra];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function findNginx(): string | undefined {
  return findExecutable('nginx', process.env['BENCH_NGINX'], ['/usr/sbin/nginx', '/usr/local/sbin/nginx']);
}

export function nginxVersion(bin: string): string {
  const out = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  return (out.stderr || out.stdout).trim().replace(/^nginx version: /, '');
}

let setupOutcome: { failed: string | undefined } | undefined;

/**
 * Runs bench/setup.sh (apt-get install nginx-light wrk) once per process; returns why it failed,
 * or undefined. Both nginx and wrk may ask: a second apt-get would only fail the same way.
 */
export function runSetup(): string | undefined {
  if (!setupOutcome) {
    const script = fileURLToPath(new URL('../setup.sh', import.meta.url));
    const out = spawnSync('bash', [script], { encoding: 'utf8', timeout: 300_000 });
    setupOutcome = { failed: out.status === 0 ? undefined : (out.stderr || out.stdout || `exit ${out.status ?? out.signal}`).trim().split('\n').pop() };
  }
  return setupOutcome.failed;
}

/** A native tool bench/setup.sh installs, and what to say while it is missing. */
export interface Tool {
  name: string;
  find: () => string | undefined;
  /** Where bench/setup.sh gets it from, for the progress line. */
  from: string;
  /** The Debian package to name when the user is to install it by hand. */
  apt?: string;
  /** Why it is missing when bench/setup.sh reported success; by default, that it is not on PATH. */
  stillMissing?: string;
}

/** The tool's executable, after running bench/setup.sh when it is missing and `setup` allows; else why there is none. */
export function findOrInstall(tool: Tool, setup: boolean, log: (line: string) => void): { bin: string } | { missing: string } {
  let bin = tool.find();
  if (!bin && setup) {
    log(`${tool.name} not found: running bench/setup.sh to install it ${tool.from}`);
    const failed = runSetup();
    bin = tool.find();
    if (!bin) return { missing: `${tool.name} not installed and bench/setup.sh could not install it (${failed ?? tool.stillMissing ?? `it finished, yet no executable ${tool.name} is on PATH`})` };
  }
  if (!bin) return { missing: `${tool.name} not installed (${tool.apt ? `apt-get install ${tool.apt}, or ` : ''}run bench/setup.sh, or drop --no-setup)` };
  return { bin };
}

/** nginx for a suite that can run without it (--no-nginx): its executable, or why there is none. */
export function nginxAvailability(o: { nginx: boolean; setup: boolean }, log: (line: string) => void): { bin: string } | { missing: string } {
  if (!o.nginx) return { missing: 'disabled with --no-nginx' };
  return findOrInstall({ name: 'nginx', find: findNginx, from: 'from Debian packages', stillMissing: 'unknown reason' }, o.setup, log);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface NginxRoutes {
  base: number;
  features: Record<string, number>;
  keyHeader: string;
}

/** What one nginx peer does its own way; every line without its indentation. */
export interface NginxPeer {
  /** Named on the first line of the file. */
  source: string;
  /** `http`-level directives about client connections. */
  clients: string[];
  /** The `listen` directive(s) of the one server. */
  listen: string;
  /** How `location /` passes the request on to `lane_$devstack_lane`. */
  forward: string[];
}

/**
 * Both peers route alike, so that what they are compared on is the protocol: one worker, every
 * file under the private prefix, `$devstack_lane` mapped from the key header, one kept-alive
 * upstream group per lane, and the lane named on every answer.
 */
export function laneConfig(dir: string, routes: NginxRoutes, peer: NginxPeer): string {
  const variable = `$http_${routes.keyHeader.toLowerCase().replace(/-/g, '_')}`;
  const group = (name: string, upstreamPort: number) => `
  upstream lane_${name} {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
    keepalive_requests 1000000;
  }`;
  const mapped = Object.keys(routes.features).map((key) => `    ${key} ${key};`).join('\n');
  const indent = (lines: string[], by: string) => lines.map((line) => `${by}${line}`).join('\n');
  return `# Generated by ${peer.source}.
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events {
  worker_connections 4096;
}
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${indent(peer.clients, '  ')}
  map ${variable} $devstack_lane {
    default base;
${mapped}
  }
${group('base', routes.base)}${Object.entries(routes.features).map(([k, p]) => group(k, p)).join('')}
  server {
    ${peer.listen}
    client_max_body_size 0;
    location / {
${indent(peer.forward, '      ')}
      add_header x-devstack-lane $devstack_lane always;
    }
  }
}
`;
}

export function nginxConfig(dir: string, port: number, routes: NginxRoutes): string {
  return laneConfig(dir, routes, {
    source: 'bench/src/nginx.ts for one benchmark run',
    clients: ['# Keep client connections for the whole run, as Node servers do.', 'keepalive_requests 1000000;', 'keepalive_timeout 120s;'],
    listen: `listen 127.0.0.1:${port};`,
    forward: [
      'proxy_pass http://lane_$devstack_lane;',
      'proxy_http_version 1.1;',
      'proxy_set_header Connection "";',
      '# The sidecar passes Host unchanged; so does this peer.',
      'proxy_set_header Host $http_host;',
      "# Stream request bodies as the sidecar does; responses go through nginx's in-memory buffers",
      '# (its normal mode), sized so a 64 KiB answer never touches a temp file.',
      'proxy_request_buffering off;',
      'proxy_buffer_size 16k;',
      'proxy_buffers 8 16k;',
    ],
  });
}

export interface NginxTarget extends Target {
  workerPid: number;
  version: string;
}

export function startNginx(bin: string, routes: NginxRoutes, timeoutMs = 10_000): Promise<NginxTarget> {
  return startNginxWith(bin, (dir, port) => nginxConfig(dir, port, routes), timeoutMs);
}

/** nginx in the foreground with the configuration `config` writes for its prefix and free port. */
export async function startNginxWith(bin: string, config: (dir: string, port: number) => string, timeoutMs = 10_000): Promise<NginxTarget> {
  const dir = mkdtempSync(join(tmpdir(), 'devstack-bench-nginx-'));
  // When run as root, nginx's worker drops to an unprivileged user that must reach the prefix.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, config(dir, port));
  const child = spawn(bin, ['-p', dir, '-c', conf, '-e', join(dir, 'error.log'), '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  track(child, 'nginx', output);
  tail(child, output);
  const started = Date.now();
  let workerPid = 0;
  while (Date.now() - started < timeoutMs) {
    if (child.exitCode !== null) break;
    workerPid = childPids(child.pid!)[0] ?? 0;
    if (workerPid !== 0 && (await accepts(port))) break;
    workerPid = 0;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (workerPid === 0) {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`nginx did not start: ${output.join(' | ') || 'no output'}`);
  }
  return {
    name: 'nginx',
    pid: child.pid!,
    workerPid,
    version: nginxVersion(bin),
    ports: { proxy: port },
    child,
    output,
    stop: async () => {
      // SIGQUIT is nginx's graceful stop; SIGTERM (fast) is enough here.
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
