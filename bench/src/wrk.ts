/*
 * wrk as a second load generator for the 64 B GET. autocannon runs in the harness's own Node
 * process and takes a large share of two cores; wrk is native and far cheaper per request, so if
 * the ranking and the ratios hold under wrk too, they are not an artefact of the client.
 */
import { spawnSync } from 'node:child_process';
import type { LoadResult, LoadSpec } from './load.ts';
import { runClient } from './native-client.ts';
import { findExecutable, findOrInstall } from './nginx.ts';
import type { BenchOptions } from './options.ts';
import { parseWrk, type WrkOutput } from './wrk-output.ts';

export function findWrk(): string | undefined {
  return findExecutable('wrk', process.env['BENCH_WRK'], ['/usr/bin/wrk', '/usr/local/bin/wrk']);
}

export function wrkVersion(bin: string): string {
  // `wrk --version` prints the banner and usage, then exits 1.
  const out = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000 });
  return /^wrk (\S+)/m.exec(`${out.stdout}${out.stderr}`)?.[1] ?? 'unknown';
}

export type WrkAvailability = { bin: string; version: string } | { skipped: string };

/** Whether the cross-check can run with these options, installing wrk when allowed. */
export function wrkAvailability(o: BenchOptions, log: (line: string) => void): WrkAvailability {
  if (!o.wrk) return { skipped: 'disabled with --no-wrk' };
  if (!o.scenarios.includes('small')) return { skipped: 'wrk cross-checks the small GET only, and it is not among --scenarios' };
  // Without a Lua script wrk sends one request at a time per connection.
  if (o.pipelining !== 1) return { skipped: `wrk does not pipeline; --pipelining ${o.pipelining} would not compare` };
  const wrk = findOrInstall({ name: 'wrk', find: findWrk, from: 'from Debian packages', apt: 'wrk' }, o.setup, log);
  if ('missing' in wrk) return { skipped: wrk.missing };
  return { bin: wrk.bin, version: wrkVersion(wrk.bin) };
}

/** wrk's header table is case-sensitive: a lowercase `host` would go out next to its own `Host`. */
function canonical(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
}

export function wrkArgs(spec: LoadSpec, threads: number, duration: number): string[] {
  return [
    '-t', String(Math.min(threads, spec.connections)),
    '-c', String(spec.connections),
    '-d', `${duration}s`,
    '--timeout', '10s',
    '--latency',
    ...Object.entries(spec.headers).flatMap(([k, v]) => ['-H', `${canonical(k)}: ${v}`]),
    `http://127.0.0.1:${spec.port}${spec.path}`,
  ];
}

export interface WrkLoadResult extends LoadResult {
  wrk: WrkOutput & { args: string[] };
}

/**
 * One wrk run. Lanes are not checked per response: that needs a Lua `response` callback, which
 * makes wrk build a Lua table of every response's headers and would cost more than it measures.
 * The check request before each run verifies the lane, as autocannon's run just before it did
 * for every response.
 */
export async function runWrk(bin: string, spec: LoadSpec, threads: number, duration: number): Promise<{ load: WrkLoadResult; clientCpuSeconds: number }> {
  if (spec.method !== 'GET' || spec.body) throw new Error('the wrk cross-check sends GETs without a body only');
  const args = wrkArgs(spec, threads, duration);
  const { stdout, clientCpuSeconds } = await runClient('wrk', bin, args, duration);
  const out = parseWrk(stdout);
  const socket = out.errors.connect + out.errors.read + out.errors.write;
  const errorDetail = { socket, timeouts: out.errors.timeout, non2xx: out.errors.status, wrongLane: 0 };
  const load: WrkLoadResult = {
    requests: out.requests,
    seconds: out.seconds,
    rps: out.rps,
    p50: out.percentiles['50']!,
    p90: out.percentiles['90']!,
    p99: out.percentiles['99']!,
    max: out.latency.max,
    errors: socket + errorDetail.timeouts + errorDetail.non2xx,
    errorDetail,
    throughput: out.transferPerSec,
    wrk: { ...out, args },
  };
  return { load, clientCpuSeconds };
}
