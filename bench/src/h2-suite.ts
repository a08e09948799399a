/*
 * The h2 run: start the targets, check each path once with @grpc/grpc-js, warm each path and call
 * up, then measure in rounds with the paths interleaved (the order rotates every round, as in the
 * HTTP/1.1 suite), each run between two node:http2 checks, and check with grpc-js again at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkH2, grpcJsCall, h2Scenarios, type H2Binding, type H2Scenario } from './h2-check.ts';
import type { IdleProcess } from './environment.ts';
import { startH2Environment, type H2PathFailure } from './h2-environment.ts';
import { bodyFiles, h2loadAvailability, h2Spec, runH2load } from './h2load.ts';
import type { H2Options, H2PathId } from './h2-options.ts';
import { summarizeH2, type H2RunRecord, type H2Summary } from './h2-summary.ts';
import { machineInfo, runStamp, type RunStamp } from './machine.ts';
import { watchUsage } from './measure.ts';
import { rotate } from './suite.ts';
import { lostTargets } from './processes.ts';

export const H2_PATH_INFO: Record<H2PathId, { title: string; path: string }> = {
  direct: { title: 'direct', path: 'h2load -> upstream stub (h2c)' },
  sidecar: { title: 'sidecar outbound (h2c)', path: 'h2load -> sidecar outbound (h2c, :authority upstream) -> upstream (registry protocol: h2c)' },
  nginx: { title: 'nginx, 1 worker (grpc_pass)', path: 'h2load -> nginx (listen http2, map on the key, grpc_pass, upstream keepalive) -> upstream' },
};

/** The outcome of one @grpc/grpc-js call: `ok`, or why not. */
export type GrpcJsOutcome = { ok: true } | { ok: false; reason: string };

/** The @grpc/grpc-js call through one path at the start and at the end (absent: not made). */
export interface GrpcJsCheck {
  path: H2PathId;
  before: GrpcJsOutcome;
  after?: GrpcJsOutcome;
}

async function grpcJsOutcome(b: H2Binding): Promise<GrpcJsOutcome> {
  const reason = await grpcJsCall(b);
  return reason === undefined ? { ok: true } : { ok: false, reason };
}

export interface H2SuiteResult extends RunStamp<H2Options> {
  paths: { id: H2PathId; title: string; path: string }[];
  scenarios: { id: H2Scenario['id']; label: string }[];
  processes: IdleProcess[];
  /** Paths that could not be measured at all, with the reason (h2load missing fails them all). */
  failed: H2PathFailure[];
  registryYaml: string | undefined;
  grpcJs: GrpcJsCheck[];
  runs: H2RunRecord[];
  summary: H2Summary[];
}

/** A check that failed because a target died says so, with the target's last words. */
function lostNote(): string {
  const lost = lostTargets();
  return lost.length === 0 ? '' : ` (${lost.join('; ')})`;
}

async function measureH2(bin: string, b: H2Binding, s: H2Scenario, o: H2Options, bodyFile: string | undefined, round: number, position: number): Promise<H2RunRecord> {
  const base = { round, scenario: s.id, path: b.id, position, loadavg1: loadavg()[0]! };
  const before = await checkH2(b, s);
  if (before) return { ...base, load: undefined, failure: `check before the run: ${before}${lostNote()}`, checks: { made: 1, passed: 0 }, usage: {}, clientCpuPct: Number.NaN };
  const watch = watchUsage(b.procs);
  const started = performance.now();
  let result;
  try {
    result = await runH2load(bin, h2Spec(b, s, o, bodyFile, o.duration));
  } catch (error) {
    watch.cancel();
    return { ...base, load: undefined, failure: (error as Error).message, checks: { made: 1, passed: 1 }, usage: {}, clientCpuPct: Number.NaN };
  }
  const wall = (performance.now() - started) / 1000;
  const usage = watch.finish(wall, result.load.requests);
  const after = await checkH2(b, s);
  return {
    ...base,
    load: result.load,
    failure: after ? `check after the run: ${after}${lostNote()}` : undefined,
    checks: { made: 2, passed: after ? 1 : 2 },
    usage,
    clientCpuPct: (result.clientCpuSeconds / wall) * 100,
  };
}

export async function runH2Suite(o: H2Options, log: (line: string) => void = () => undefined): Promise<H2SuiteResult> {
  const started = Date.now();
  const machine = machineInfo();
  const list = h2Scenarios(o.scenarios, o.getBody);
  const software: Record<string, string> = { node: process.version };
  const runs: H2RunRecord[] = [];
  const grpcJs: GrpcJsCheck[] = [];
  const h2load = h2loadAvailability(o, log);
  const result = (extra: Pick<H2SuiteResult, 'processes' | 'failed' | 'registryYaml'>): H2SuiteResult => ({
    ...runStamp(started, machine, o, software),
    paths: o.paths.map((id) => ({ id, ...H2_PATH_INFO[id] })),
    scenarios: list.map((s) => ({ id: s.id, label: s.label })),
    grpcJs,
    runs,
    summary: summarizeH2(runs, o.paths, o.scenarios),
    ...extra,
  });
  if ('missing' in h2load) {
    log(`no h2load: ${h2load.missing}`);
    return result({ processes: [], failed: o.paths.map((path) => ({ path, reason: h2load.missing })), registryYaml: undefined });
  }
  software['h2load'] = h2load.version;
  const env = await startH2Environment(o, log);
  Object.assign(software, env.software);
  for (const f of env.failed) log(`${f.path} ${f.skipped ? 'skipped' : 'failed'}: ${f.reason}`);
  const tmp = mkdtempSync(join(tmpdir(), 'devstack-bench-h2-bodies-'));
  try {
    const files = bodyFiles(tmp, list);
    const grpc = list.some((s) => s.id === 'grpc');
    if (grpc) for (const b of env.bindings) grpcJs.push({ path: b.id, before: await grpcJsOutcome(b) });
    if (o.warmup > 0) {
      log(`warm-up: ${o.warmup} s per path and call`);
      for (const s of list) {
        for (const b of env.bindings) {
          if ((await checkH2(b, s)) === undefined) await runH2load(h2load.bin, h2Spec(b, s, o, files.get(s.id), o.warmup), false).catch(() => undefined);
        }
      }
    }
    const total = o.rounds * list.length * env.bindings.length;
    let done = 0;
    for (let round = 1; round <= o.rounds; round++) {
      for (const [si, s] of list.entries()) {
        for (const [position, b] of rotate(env.bindings, round - 1 + si).entries()) {
          const run = await measureH2(h2load.bin, b, s, o, files.get(s.id), round, position);
          runs.push(run);
          const l = run.load;
          log(
            `[${++done}/${total}] round ${round} ${s.id} ${b.id}: ` +
              (l ? `${Math.round(l.rps)} req/s p50 ${l.p50.toFixed(2)} ms p99 ${l.p99.toFixed(2)} ms errors ${l.errors}` : '') +
              (run.failure ? ` FAILED ${run.failure}` : ''),
          );
        }
      }
    }
    if (grpc) for (const g of grpcJs) g.after = await grpcJsOutcome(env.bindings.find((b) => b.id === g.path)!);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    await env.stop();
  }
  return result({ processes: env.processes, failed: env.failed, registryYaml: env.registryYaml });
}
