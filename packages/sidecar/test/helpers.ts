import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { FileSource } from '@devstack/registry-file';
import { Sidecar, createLogger, type SidecarOptions } from '@devstack/sidecar';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json: () => Record<string, unknown>;
}

export interface Tap {
  teardown(fn: () => unknown): void;
  testdir(fixture?: Record<string, string>): string;
}

/** An upstream on port 0 that answers with its name and what it received. */
export async function upstream(t: Tap, name: string, handler?: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; port: number; origin: string; hits: number }> {
  const state = { hits: 0 };
  const server = createServer((req, res) => {
    state.hits++;
    if (handler) return handler(req, res);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': name });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  return Object.defineProperty({ server, port, origin: `http://127.0.0.1:${port}`, hits: 0 }, 'hits', { get: () => state.hits });
}

export function send(port: number, options: { method?: string; path?: string; headers?: Record<string, string | string[]>; body?: string | Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path ?? '/', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) as Record<string, unknown> });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

export function writeRegistry(dir: string, services: Record<string, unknown>, file = 'registry.json'): string {
  const path = join(dir, file);
  writeFileSync(path, JSON.stringify({ services }));
  return path;
}

/** A sidecar on port 0 over a registry file; closed at teardown. */
export async function sidecar(t: Tap, registry: string, options: Partial<SidecarOptions> = {}): Promise<Sidecar> {
  const source = new FileSource({ path: registry, debounceMs: 5 });
  const s = new Sidecar({ source, outbound: { port: 0 }, admin: { port: 0, host: '127.0.0.1' }, logger: createLogger('silent'), ...options });
  await s.start();
  t.teardown(() => s.close());
  return s;
}

/** Writes raw bytes and collects everything until the server closes (or `until` matches). */
export function raw(port: number, text: string, until?: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let got = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      got += chunk;
      if (until?.test(got)) {
        socket.destroy();
        resolve(got);
      }
    });
    socket.on('end', () => resolve(got));
    socket.on('close', () => resolve(got));
    socket.on('error', reject);
  });
}

export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

export interface Child {
  proc: ChildProcess;
  ports: Record<string, number>;
  stdout: string[];
  exited: Promise<number | null>;
}

/** Starts the real CLI and waits for its `ready` log line; killed at teardown if still running. */
export async function spawnSidecar(t: Tap, args: string[], env: Record<string, string> = {}): Promise<Child> {
  const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const ports: Record<string, number> = {};
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    return exited;
  });
  let buffered = '';
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        stdout.push(line);
        if (!line.startsWith('{"time"')) continue; // not a log line (a console span exporter, say)
        const entry = JSON.parse(line) as { msg: string; listener?: string; port?: number };
        if (entry.msg === 'listening' && entry.listener) ports[entry.listener] = entry.port!;
        if (entry.msg === 'ready') resolve();
      }
    });
    let stderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    void exited.then((code) => reject(new Error(`sidecar exited ${code}: ${stderr}`)));
  });
  return { proc, ports, stdout, exited };
}

/** Peak resident memory of a process, from /proc (Linux). */
export function peakRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb) * 1024;
}

export function currentRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
}

/**
 * A port whose listen queue is full and never drained, so connecting hangs until the client's
 * connect timeout. Node always accepts, so a tiny python3 process holds the socket.
 */
export async function blackholePort(t: Tap): Promise<number> {
  const script = [
    'import socket, sys, time',
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
    'held = []',
    'for _ in range(4):',
    '    c = socket.socket(); c.setblocking(False)',
    "    try: c.connect(('127.0.0.1', s.getsockname()[1]))",
    '    except BlockingIOError: pass',
    '    held.append(c)',
    'print(s.getsockname()[1], flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const proc = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => {
    proc.stdin!.end();
    proc.kill();
  });
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.stdout!.setEncoding('utf8').once('data', (line: string) => resolve(Number(line.trim())));
  });
}

/** An upstream that holds each response open: `arrival` resolves with it once a request is in. */
export async function holdingUpstream(t: Tap, name: string): Promise<{ origin: string; arrival: Promise<ServerResponse> }> {
  let arrived: (res: ServerResponse) => void = () => undefined;
  const arrival = new Promise<ServerResponse>((resolve) => (arrived = resolve));
  const server = await upstream(t, name, (_req, res) => arrived(res));
  return { origin: server.origin, arrival };
}
