/** Medians across rounds, ratios between configurations, the sidecar's footprint, and the bars. */
import type { LoadFigures } from './load.ts';
import type { ScaleResult } from './registry.ts';
import type { ProcUsage, RunRecord } from './measure.ts';
import type { BenchOptions, ConfigId } from './options.ts';
import type { ReloadResult } from './reload.ts';
import type { Scenario } from './scenarios.ts';
import { maxOf, median, spread, type Spread } from './stats.ts';

/** Medians across the rounds that count. */
export interface LoadMedians {
  rps: Spread;
  /** Milliseconds. */
  p50: number;
  p90: number;
  p99: number;
}

export interface Summary extends LoadMedians {
  scenario: Scenario['id'];
  config: ConfigId;
  rounds: number;
  failures: string[];
  p99Spread: Spread;
  errors: number;
  /** Median req/s of this configuration over that of another (same body, same run). */
  ratio: Partial<Record<'direct' | 'http-proxy' | 'nginx', number>>;
  /** Median p99 over nginx's median p99. */
  p99VsNginx: number | undefined;
  /** The configuration's own process (the proxy), medians across rounds. */
  proc: (ProcSummary & { peakAnonKiB: number }) | undefined;
  clientCpuPct: number;
}

export function loadMedians(loads: readonly LoadFigures[]): LoadMedians {
  return {
    rps: spread(loads.map((l) => l.rps)),
    p50: median(loads.map((l) => l.p50)),
    p90: median(loads.map((l) => l.p90)),
    p99: median(loads.map((l) => l.p99)),
  };
}

export interface ProcSummary {
  role: string;
  cpuPct: number;
  systemPct: number;
  cpuUsPerRequest: number;
  peakRssKiB: number;
}

/**
 * The process a row is about, the first of its runs' usage (the proxy, or the upstream when
 * there is none): CPU as medians across rounds, memory as the highest peak, since a limit must
 * hold the worst round.
 */
export function ownProcess(ok: readonly { usage: Record<string, ProcUsage> }[]): ProcSummary | undefined {
  const role = ok[0] ? Object.keys(ok[0].usage)[0] : undefined;
  if (!role) return undefined;
  return {
    role,
    cpuPct: median(ok.map((r) => r.usage[role]!.cpuPct)),
    systemPct: median(ok.map((r) => r.usage[role]!.systemPct)),
    cpuUsPerRequest: median(ok.map((r) => r.usage[role]!.cpuUsPerRequest)),
    peakRssKiB: maxOf(ok.map((r) => r.usage[role]!.peakRssKiB)),
  };
}

export function summarize(runs: RunRecord[], configs: ConfigId[], list: Scenario[]): Summary[] {
  const out: Summary[] = [];
  for (const s of list) {
    const rows: Summary[] = [];
    for (const config of configs) {
      const mine = runs.filter((r) => r.scenario === s.id && r.config === config);
      const ok = mine.filter((r) => r.load !== undefined);
      const loads = ok.map((r) => r.load!);
      const proc = ownProcess(ok);
      rows.push({
        scenario: s.id,
        config,
        rounds: ok.length,
        failures: mine.filter((r) => r.failure).map((r) => r.failure!),
        ...loadMedians(loads),
        p99Spread: spread(loads.map((l) => l.p99)),
        errors: loads.reduce((n, l) => n + l.errors, 0) + (mine.length - ok.length),
        ratio: {},
        p99VsNginx: undefined,
        proc: proc && { ...proc, peakAnonKiB: maxOf(ok.map((r) => r.usage[proc.role]!.peakAnonKiB)) },
        clientCpuPct: median(ok.map((r) => r.clientCpuPct)),
      });
    }
    const find = (id: ConfigId) => rows.find((r) => r.config === id && r.rounds > 0);
    for (const row of rows) {
      for (const peer of ['direct', 'http-proxy', 'nginx'] as const) {
        const other = find(peer);
        if (other && row.rounds > 0) row.ratio[peer] = row.rps.median / other.rps.median;
      }
      const nginx = find('nginx');
      if (nginx && row.rounds > 0) row.p99VsNginx = row.p99 / nginx.p99;
    }
    out.push(...rows);
  }
  return out;
}

export interface Bar {
  name: string;
  value: number | undefined;
  /** `>= 3` and the like. */
  target: string;
  pass: boolean | undefined;
  note?: string;
}

type Reload = (ReloadResult & { summary: Spread }) | { error: string } | { skipped: string } | undefined;

/** What one sidecar process costs in memory: idle, and at its worst under the runs' load. */
export interface Footprint {
  /** The V8/malloc tuning it ran with, as a report line (see runtime.ts). */
  runtime: string;
  idleRssKiB: number;
  idleAnonKiB: number;
  /** VmHWM from start through the warm-up, read before the first measured run resets it. */
  warmupPeakKiB: number;
  /** Per body, the highest peak over the rounds (autocannon and wrk runs alike). */
  byScenario: { scenario: Scenario['id']; peakRssKiB: number; peakAnonKiB: number }[];
  /** The highest of all the above: what a memory limit must hold. */
  peakRssKiB: number;
  peakAnonKiB: number;
}

export function footprint(runs: RunRecord[], runtime: string, idle: { rssKiB: number; anonKiB: number }, warmupPeakKiB: number, list: Scenario[]): Footprint {
  const mine = runs.filter((r) => r.usage['sidecar'] !== undefined);
  const byScenario = list.map((s) => {
    const rs = mine.filter((r) => r.scenario === s.id).map((r) => r.usage['sidecar']!);
    return { scenario: s.id, peakRssKiB: maxOf(rs.map((u) => u.peakRssKiB)), peakAnonKiB: maxOf(rs.map((u) => u.peakAnonKiB)) };
  });
  return {
    runtime,
    idleRssKiB: idle.rssKiB,
    idleAnonKiB: idle.anonKiB,
    warmupPeakKiB,
    byScenario,
    peakRssKiB: maxOf([warmupPeakKiB, ...byScenario.map((b) => b.peakRssKiB)]),
    peakAnonKiB: maxOf(byScenario.map((b) => b.peakAnonKiB)),
  };
}

/** The peak RSS a sidecar in every pod may reach under the benchmark's load. */
export const SIDECAR_PEAK_RSS_MIB = 128;

/** The sidecar's bars, computed from this run; `pass: undefined` when one cannot be. */
export function bars(summary: Summary[], registry: ScaleResult[] | { error: string } | undefined, reload: Reload, o: BenchOptions, fp?: Footprint): Bar[] {
  const out: Bar[] = [];
  const add = (name: string, value: number | undefined, target: string, ok: (v: number) => boolean, note: string | undefined) => {
    const pass = value === undefined || Number.isNaN(value) ? undefined : ok(value);
    out.push(note === undefined ? { name, value, target, pass } : { name, value, target, pass, note });
  };
  const row = (id: ConfigId) => summary.find((r) => r.scenario === 'small' && r.config === id && r.rounds > 0);
  const sidecar = row('sidecar-key');
  // The bar is defined for 64 B, 50 connections, no pipelining; other settings are reported but flagged.
  const off = o.connections === 50 && o.pipelining === 1 && o.smallBody === 64 ? undefined : 'measured with other parameters than the bar (64 B, 50 connections, no pipelining)';
  add('sidecar req/s / http-proxy req/s (64 B, key set)', sidecar?.ratio['http-proxy'], '>= 3', (v) => v >= 3, off);
  add('sidecar req/s / nginx req/s (64 B, key set)', sidecar?.ratio.nginx, '>= 0.75', (v) => v >= 0.75, off);
  add('sidecar p99 / nginx p99 (64 B, key set)', sidecar?.p99VsNginx, '<= 1.5', (v) => v <= 1.5, off);
  if (Array.isArray(registry) && registry.length >= 2) {
    const sizes = registry.map((r) => r.entries).join(', ');
    const ns = registry.map((r) => r.resolveNs);
    add(`resolve ns/call, slowest / fastest size, lookups spread over the registry (${sizes} entries)`, Math.max(...ns) / Math.min(...ns), '<= 2', (v) => v <= 2, undefined);
    const hot = registry.map((r) => r.resolveHotNs);
    add(`resolve ns/call, slowest / fastest size, hot set of 64 lookups (${sizes} entries)`, Math.max(...hot) / Math.min(...hot), '<= 2', (v) => v <= 2, undefined);
  }
  if (reload && 'ms' in reload && reload.ms.length > 0) {
    add('registry file write -> first request routed by it through the sidecar, worst run (ms)', Math.max(...reload.ms), '<= 100', (v) => v <= 100, undefined);
  }
  if (fp) {
    const load = o.connections === 50 ? undefined : `measured with ${o.connections} connections, not the bar's 50`;
    add(`sidecar peak RSS under load, MiB (${fp.runtime})`, fp.peakRssKiB / 1024, `<= ${SIDECAR_PEAK_RSS_MIB}`, (v) => v <= SIDECAR_PEAK_RSS_MIB, load);
  }
  return out;
}
