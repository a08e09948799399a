/** The h2 suite's medians across rounds and its ratios: every path against direct and against nginx. */
import type { ProcUsage } from './measure.ts';
import type { H2LoadResult } from './h2load.ts';
import type { H2PathId, H2ScenarioId } from './h2-options.ts';
import { median } from './stats.ts';
import { loadMedians, ownProcess, type LoadMedians, type ProcSummary } from './summary.ts';

export interface H2RunRecord {
  round: number;
  scenario: H2ScenarioId;
  path: H2PathId;
  position: number;
  /** Kept even when the check after the run failed, for the JSON; such a run is not summarized. */
  load: H2LoadResult | undefined;
  /** Why the run does not count: the check before it, h2load, or the check after it. */
  failure: string | undefined;
  /** node:http2 checks made around this run, and how many passed (2 when all went well). */
  checks: { made: number; passed: number };
  usage: Record<string, ProcUsage>;
  clientCpuPct: number;
  loadavg1: number;
}

export interface H2Summary extends LoadMedians {
  scenario: H2ScenarioId;
  path: H2PathId;
  /** Runs that count. */
  rounds: number;
  failures: string[];
  errors: number;
  /** Median req/s of this path over that of another (same call, same run). */
  rpsRatio: Partial<Record<'direct' | 'nginx', number>>;
  /** Median p99 of this path over that of another. */
  p99Ratio: Partial<Record<'direct' | 'nginx', number>>;
  proc: ProcSummary | undefined;
  clientCpuPct: number;
  checks: { made: number; passed: number };
}

export function summarizeH2(runs: H2RunRecord[], paths: H2PathId[], scenarios: H2ScenarioId[]): H2Summary[] {
  const out: H2Summary[] = [];
  for (const scenario of scenarios) {
    const rows: H2Summary[] = paths.map((path) => {
      const mine = runs.filter((r) => r.scenario === scenario && r.path === path);
      const ok = mine.filter((r) => r.load !== undefined && r.failure === undefined);
      const loads = ok.map((r) => r.load!);
      return {
        scenario,
        path,
        rounds: ok.length,
        failures: mine.filter((r) => r.failure).map((r) => r.failure!),
        ...loadMedians(loads),
        errors: loads.reduce((n, l) => n + l.errors, 0),
        rpsRatio: {},
        p99Ratio: {},
        proc: ownProcess(ok),
        clientCpuPct: median(ok.map((r) => r.clientCpuPct)),
        checks: { made: mine.reduce((n, r) => n + r.checks.made, 0), passed: mine.reduce((n, r) => n + r.checks.passed, 0) },
      };
    });
    for (const row of rows) {
      if (row.rounds === 0) continue;
      for (const peer of ['direct', 'nginx'] as const) {
        const other = rows.find((r) => r.path === peer && r.rounds > 0);
        if (!other) continue;
        row.rpsRatio[peer] = row.rps.median / other.rps.median;
        row.p99Ratio[peer] = row.p99 / other.p99;
      }
    }
    out.push(...rows);
  }
  return out;
}
