/*
 * h2load (nghttp2) as the load generator of the h2 suite: native, and it speaks HTTP/2 with prior
 * knowledge on http:// URLs, so the same client loads the upstream, the sidecar and nginx. Each
 * run writes its per-request log to a temporary file, the only place h2load gives percentiles.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { H2Binding, H2Scenario } from './h2-check.ts';
import { parseH2load, parseH2loadLog, type H2loadOutput } from './h2load-output.ts';
import type { H2Options } from './h2-options.ts';
import type { LoadFigures } from './load.ts';
import { runClient } from './native-client.ts';
import { findExecutable, findOrInstall } from './nginx.ts';

export function findH2load(): string | undefined {
  return findExecutable('h2load', process.env['BENCH_H2LOAD'], ['/usr/bin/h2load', '/usr/local/bin/h2load']);
}

export function h2loadVersion(bin: string): string {
  const out = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000 });
  return /h2load (\S+)/.exec(`${out.stdout}${out.stderr}`)?.[1] ?? 'unknown';
}

export type H2loadAvailability = { bin: string; version: string } | { missing: string };

/** h2load, installing it with bench/setup.sh when allowed. */
export function h2loadAvailability(o: Pick<H2Options, 'setup'>, log: (line: string) => void, find: () => string | undefined = findH2load): H2loadAvailability {
  const h2load = findOrInstall({ name: 'h2load', find, from: '(Debian nghttp2-client)', apt: 'nghttp2-client' }, o.setup, log);
  return 'missing' in h2load ? h2load : { bin: h2load.bin, version: h2loadVersion(h2load.bin) };
}

export interface H2LoadSpec {
  port: number;
  authority: string;
  headers: Record<string, string>;
  method: 'GET' | 'POST';
  path: string;
  /** File holding the request body (h2load's `-d`, which makes the request a POST). */
  bodyFile: string | undefined;
  connections: number;
  streams: number;
  threads: number;
  /** Seconds. */
  duration: number;
}

export function h2loadArgs(spec: H2LoadSpec, logFile: string | undefined): string[] {
  if ((spec.method === 'POST') !== (spec.bodyFile !== undefined)) throw new Error('h2load sends a POST exactly when it has a body file (-d)');
  return [
    '-c', String(spec.connections),
    '-m', String(spec.streams),
    '-t', String(Math.min(spec.threads, spec.connections)),
    // Milliseconds: h2load's -D takes a unit, and a run may be shorter than a second.
    '-D', `${Math.max(1, Math.round(spec.duration * 1000))}ms`,
    ...(logFile ? [`--log-file=${logFile}`] : []),
    '-H', `:authority: ${spec.authority}`,
    ...Object.entries(spec.headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
    ...(spec.bodyFile ? ['-d', spec.bodyFile] : []),
    `http://127.0.0.1:${spec.port}${spec.path}`,
  ];
}

/** The percentiles come from the per-request log. */
export interface H2LoadResult extends LoadFigures {
  /** Failed (4xx/5xx or broken streams) + timed out requests; no request completed counts as a failure, not as zero errors. */
  errors: number;
  output: H2loadOutput;
  /** Requests by HTTP status, from the log. */
  statuses: Record<string, number>;
  args: string[];
}

/** Writes a scenario's request body once per run of the suite; h2load reads it from a file. */
export function bodyFiles(dir: string, scenarios: readonly H2Scenario[]): Map<H2Scenario['id'], string> {
  const out = new Map<H2Scenario['id'], string>();
  for (const s of scenarios) {
    if (!s.body) continue;
    const file = join(dir, `${s.id}.body`);
    writeFileSync(file, s.body);
    out.set(s.id, file);
  }
  return out;
}

export function h2Spec(b: H2Binding, s: H2Scenario, o: H2Options, bodyFile: string | undefined, duration: number): H2LoadSpec {
  return { port: b.port, authority: b.authority, headers: { ...b.headers, ...s.headers }, method: s.method, path: s.path, bodyFile, connections: o.connections, streams: o.streams, threads: o.threads, duration };
}

/** One h2load run; throws when h2load fails or completes no request. */
export async function runH2load(bin: string, spec: H2LoadSpec, withLog = true): Promise<{ load: H2LoadResult; clientCpuSeconds: number }> {
  const dir = withLog ? mkdtempSync(join(tmpdir(), 'devstack-bench-h2load-')) : undefined;
  const logFile = dir ? join(dir, 'requests.tsv') : undefined;
  try {
    const args = h2loadArgs(spec, logFile);
    const { stdout, clientCpuSeconds } = await runClient('h2load', bin, args, spec.duration);
    const output = parseH2load(stdout);
    if (output.requests.done === 0) {
      const why = output.protocol === undefined ? 'no connection negotiated h2c' : `protocol ${output.protocol}`;
      throw new Error(`h2load completed no request (${why}; ${output.requests.started} started, ${output.requests.errored} errored)`);
    }
    const log = logFile ? parseH2loadLog(readFileSync(logFile, 'utf8')) : undefined;
    const load: H2LoadResult = {
      requests: output.requests.done,
      seconds: output.seconds,
      rps: output.rps,
      p50: log?.p50 ?? Number.NaN,
      p90: log?.p90 ?? Number.NaN,
      p99: log?.p99 ?? Number.NaN,
      max: log?.max ?? output.requestTime.max,
      errors: output.requests.failed + output.requests.timeout,
      output,
      statuses: log?.statuses ?? {},
      args,
    };
    return { load, clientCpuSeconds };
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
