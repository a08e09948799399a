/*
 * The apps of test/apps/ started as teams start theirs: `node [preloads] app`, configured by
 * environment only. Each prints `listening <port>` once it serves.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

const SDK_DIR = fileURLToPath(new URL('..', import.meta.url));
const APPS = fileURLToPath(new URL('./apps/', import.meta.url));

/** No telemetry leaves the machine: no exporter, no resource detector asking a cloud's metadata host. */
export const QUIET_OTEL = {
  OTEL_TRACES_EXPORTER: 'none',
  OTEL_METRICS_EXPORTER: 'none',
  OTEL_LOGS_EXPORTER: 'none',
  OTEL_NODE_RESOURCE_DETECTORS: 'none',
  OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,express,fastify,undici,grpc,dns,net',
};

export interface App {
  readonly port: number;
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything written to stderr so far. */
  stderr(): string;
}

/** Starts `apps/<file>` with `args` before it (preloads) and `env` on top of a clean environment. */
export function startApp(file: string, args: readonly string[], env: Readonly<Record<string, string>>): Promise<App> {
  const base: Record<string, string> = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp' };
  const child = spawn(process.execPath, [...args, APPS + file], { cwd: SDK_DIR, env: { ...base, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  return new Promise((resolve, reject) => {
    let out = '';
    const exited = (code: number | null) => reject(new Error(`${file} exited (${String(code)}) before listening: ${err}`));
    child.once('exit', exited);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const m = /listening (\d+)/.exec(out);
      if (m === null) return;
      child.off('exit', exited);
      const port = Number(m[1]);
      resolve({ port, url: `http://127.0.0.1:${port}/`, child, stderr: () => err });
    });
  });
}

/** SIGKILL: OpenTelemetry's register answers SIGTERM by shutting its SDK down, not the process. */
export function stopApp(app: App): Promise<void> {
  if (app.child.exitCode !== null || app.child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    app.child.once('exit', () => resolve());
    app.child.kill('SIGKILL');
  });
}

export interface Answer {
  service: string;
  headers: Record<string, string | undefined>;
  nextLane?: string | null;
  next?: Answer;
  error?: string;
}

export function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; lane: string | undefined; body: Answer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, lane: res.headers['x-devstack-lane'] as string | undefined, body: JSON.parse(text) as Answer });
        } catch (error) {
          reject(new Error(`${url}: ${res.statusCode} ${text}`, { cause: error }));
        }
      });
    });
    req.on('error', reject);
  });
}
