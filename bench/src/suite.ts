/*
 * The whole run: start the targets, warm each configuration up, then measure in rounds with the
 * configurations interleaved (the order rotates every round, so a slow minute on a shared machine
 * is spread over all of them instead of landing on one), then registry scale and reload timing.
 * When wrk is there, each autocannon run of the small GET is followed at once by a wrk run of the
 * same configuration, so the two clients are compared under the same minute of the machine.
 */
import { createRequire } from 'node:module';
import { CONFIG_INFO, type Skipped } from './configs.ts';
import { startEnvironment, type IdleProcess } from './environment.ts';
import { runLoad } from './load.ts';
import { machineInfo, runStamp, type RunStamp } from './machine.ts';
import { check, loadSpec, measure, type RunRecord, type Runner } from './measure.ts';
import type { BenchOptions, ConfigId } from './options.ts';
import { runRegistryScale, type ScaleResult } from './registry.ts';
import { reloadLatency, type ReloadResult } from './reload.ts';
import { scenarios, type Scenario } from './scenarios.ts';
import { spread, type Spread } from './stats.ts';
import { memory } from './procstat.ts';
import { describeRuntime } from './runtime.ts';
import { footprint, summarize, bars, type Bar, type Footprint, type Summary } from './summary.ts';
import { runWrk, wrkAvailability } from './wrk.ts';

/** The wrk cross-check of the small GET: its own runs, medians and bars, beside autocannon's. */
export type WrkSection =
  | { skipped: string }
  | { bin: string; version: string; threads: number; duration: number; runs: RunRecord[]; summary: Summary[]; bars: Bar[] };

export interface SuiteResult extends RunStamp<BenchOptions> {
  processes: IdleProcess[];
  configurations: { id: ConfigId; title: string; path: string }[];
  scenarios: { id: string; label: string }[];
  skipped: Skipped[];
  runs: RunRecord[];
  summary: Summary[];
  bars: Bar[];
  /** The sidecar's memory, idle and under load; undefined when no sidecar configuration ran. */
  footprint: Footprint | undefined;
  wrk: WrkSection;
  registry: ScaleResult[] | { error: string } | undefined;
  reload: (ReloadResult & { summary: Spread }) | { error: string } | { skipped: string } | undefined;
}

/** The order shifts by one every round, so that a slow minute on a shared machine is spread over every entry rather than landing on one. */
export function rotate<T>(list: readonly T[], by: number): T[] {
  const n = list.length;
  return n === 0 ? [] : list.map((_, i) => list[(i + by) % n]!);
}

export async function runSuite(o: BenchOptions, log: (line: string) => void = () => undefined): Promise<SuiteResult> {
  const started = Date.now();
  const machine = machineInfo();
  const list = scenarios(o);
  const autocannonVersion = (createRequire(import.meta.url)('autocannon/package.json') as { version: string }).version;
  const env = await startEnvironment(o, log);
  const software: Record<string, string> = { node: process.version, autocannon: autocannonVersion, ...env.software };
  for (const s of env.skipped) log(`skipping ${s.config}: ${s.reason}`);
  const wrk = wrkAvailability(o, log);
  let wrkRun: Runner | undefined;
  if ('skipped' in wrk) log(`skipping the wrk cross-check: ${wrk.skipped}`);
  else {
    software['wrk'] = wrk.version;
    wrkRun = (spec) => runWrk(wrk.bin, spec, o.wrkThreads, o.wrkDuration);
  }
  const runs: RunRecord[] = [];
  const wrkRuns: RunRecord[] = [];
  let registry: SuiteResult['registry'];
  let reload: SuiteResult['reload'];
  let warmupPeakKiB = Number.NaN;
  try {
    if (o.warmup > 0) {
      log(`warm-up: ${o.warmup} s per configuration and body`);
      for (const s of list) {
        for (const b of env.bindings) {
          if ((await check(b, s)) === undefined) await runLoad(loadSpec(b, s, o, o.warmup));
        }
      }
    }
    // The first measured run resets the sidecar's VmHWM: keep what start-up and warm-up reached.
    warmupPeakKiB = env.sidecar ? memory(env.sidecar.target.pid).peakKiB : Number.NaN;
    const total = o.rounds * (list.length + (wrkRun ? 1 : 0)) * env.bindings.length;
    let done = 0;
    const progress = (round: number, what: string, run: RunRecord) => {
      const l = run.load;
      log(
        `[${++done}/${total}] round ${round} ${what} ${run.config}: ` +
          (l ? `${Math.round(l.rps)} req/s p50 ${l.p50.toFixed(2)} ms p99 ${l.p99.toFixed(2)} ms errors ${l.errors}` : `FAILED ${run.failure}`),
      );
    };
    for (let round = 1; round <= o.rounds; round++) {
      for (const [si, s] of list.entries()) {
        const order = rotate(env.bindings, round - 1 + si);
        for (const [position, b] of order.entries()) {
          const run = await measure(b, s, o, round, position);
          runs.push(run);
          progress(round, s.id, run);
          if (wrkRun && s.id === 'small') {
            const cross = await measure(b, s, o, round, position, wrkRun, o.wrkDuration);
            wrkRuns.push(cross);
            progress(round, `${s.id} (wrk)`, cross);
          }
        }
      }
    }
    if (o.registrySizes.length > 0) {
      log(`registry scale: ${o.registrySizes.join(', ')} entries`);
      try {
        registry = await runRegistryScale(o.registrySizes, o.reloadIterations);
      } catch (error) {
        registry = { error: (error as Error).message };
      }
    }
    if (o.reloadIterations > 0) {
      if (env.sidecar) {
        log(`registry change -> routed through the sidecar: ${o.reloadIterations} changes`);
        try {
          const r = await reloadLatency(env.sidecar.target.ports['outbound']!, env.sidecar.registry, env.sidecar.layout, o.reloadIterations);
          reload = { ...r, summary: spread(r.ms) };
        } catch (error) {
          reload = { error: (error as Error).message };
        }
      } else {
        reload = { skipped: 'the sidecar is not running (see skipped configurations)' };
      }
    }
  } finally {
    await env.stop();
  }
  const ids = env.bindings.map((b) => b.id);
  const summary = summarize(runs, ids, list);
  const idle = env.processes.find((p) => p.role === 'sidecar');
  const fp = env.sidecar && idle && runs.some((r) => r.usage['sidecar'])
    ? footprint([...runs, ...wrkRuns], describeRuntime(env.sidecar.runtime), { rssKiB: idle.idleRssKiB, anonKiB: idle.idleAnonKiB }, warmupPeakKiB, list)
    : undefined;
  let wrkSection: WrkSection;
  if ('skipped' in wrk) wrkSection = wrk;
  else {
    const wrkSummary = summarize(wrkRuns, ids, list.filter((s) => s.id === 'small'));
    const wrkBars = bars(wrkSummary, undefined, undefined, o).map((b) => ({ ...b, name: `${b.name}, wrk` }));
    wrkSection = { ...wrk, threads: o.wrkThreads, duration: o.wrkDuration, runs: wrkRuns, summary: wrkSummary, bars: wrkBars };
  }
  return {
    ...runStamp(started, machine, o, software),
    processes: env.processes,
    configurations: o.configs.map((id) => ({ id, ...CONFIG_INFO[id] })),
    scenarios: list.map((s: Scenario) => ({ id: s.id, label: s.label })),
    skipped: env.skipped,
    runs,
    summary,
    bars: bars(summary, registry, reload, o, fp),
    footprint: fp,
    wrk: wrkSection,
    registry,
    reload,
  };
}
