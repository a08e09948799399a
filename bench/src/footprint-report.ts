/** Medians over the rounds of `npm run footprint`, each variant against the first, and the report. */
import type { BodyGc, FootprintResult, VariantRun } from './footprint.ts';
import type { Variant } from './footprint-options.ts';
import { formatBytes } from './scenarios.ts';
import { maxOf, spread, type Spread } from './stats.ts';

export interface BodySummary {
  scenario: string;
  rps: Spread;
  p99: Spread;
  cpuUsPerRequest: Spread;
  /** This variant over the baseline in the same round, median over the rounds (1 for the baseline). */
  rpsVsBaseline: Spread;
  cpuVsBaseline: Spread;
  peakRssKiB: number;
  errors: number;
  /** Other processes' share of the machine's CPU during the measurement, over the rounds. */
  otherCpu: Spread;
  /** With --gc: GC µs per request (main-thread pauses + V8 worker threads), and collections per run. */
  gcUsPerRequest: Spread;
  youngGcs: Spread;
  fullGcs: Spread;
  /** (this variant's GC - the baseline's GC) / the baseline's CPU, per request, same round. */
  extraGcVsBaselineCpu: Spread;
}

export interface VariantSummary {
  name: string;
  rounds: number;
  failures: string[];
  idleRssKiB: Spread;
  idleAnonKiB: Spread;
  peakRssKiB: Spread;
  peakAnonKiB: Spread;
  bodies: BodySummary[];
}

export function summarizeFootprint(runs: VariantRun[], variants: Variant[], scenarioIds: string[]): VariantSummary[] {
  const baseline = variants[0]?.name;
  const body = (run: VariantRun | undefined, id: string) => run?.bodies.find((b) => b.scenario === id);
  return variants.map((v) => {
    const mine = runs.filter((r) => r.variant === v.name);
    const ok = mine.filter((r) => r.failure === undefined);
    type Body = NonNullable<ReturnType<typeof body>>;
    const pairs = (id: string, value: (own: Body, base: Body) => number | undefined) =>
      spread(
        ok.flatMap((r) => {
          const own = body(r, id);
          const base = body(runs.find((b) => b.variant === baseline && b.round === r.round && b.failure === undefined), id);
          const v = own && base ? value(own, base) : undefined;
          return v === undefined ? [] : [v];
        }),
      );
    const paired = (id: string, pick: (b: Body) => number) => pairs(id, (own, base) => pick(own) / pick(base));
    return {
      name: v.name,
      rounds: ok.length,
      failures: mine.flatMap((r) => (r.failure === undefined ? [] : [r.failure])),
      idleRssKiB: spread(ok.map((r) => r.idleRssKiB)),
      idleAnonKiB: spread(ok.map((r) => r.idleAnonKiB)),
      peakRssKiB: spread(ok.map((r) => r.peakRssKiB)),
      peakAnonKiB: spread(ok.map((r) => r.peakAnonKiB)),
      bodies: scenarioIds.map((id) => {
        const bs = ok.flatMap((r) => body(r, id) ?? []);
        return {
          scenario: id,
          rps: spread(bs.map((b) => b.rps)),
          p99: spread(bs.map((b) => b.p99)),
          cpuUsPerRequest: spread(bs.map((b) => b.cpuUsPerRequest)),
          rpsVsBaseline: paired(id, (b) => b.rps),
          cpuVsBaseline: paired(id, (b) => b.cpuUsPerRequest),
          peakRssKiB: maxOf(bs.map((b) => b.peakRssKiB)),
          errors: bs.reduce((n, b) => n + b.errors, 0),
          otherCpu: spread(bs.flatMap((b) => (b.otherCpu === undefined ? [] : [b.otherCpu]))),
          gcUsPerRequest: spread(bs.flatMap((b) => (b.gc === undefined ? [] : [gcCost(b.gc)]))),
          youngGcs: spread(bs.flatMap((b) => (b.gc === undefined ? [] : [b.gc.young]))),
          fullGcs: spread(bs.flatMap((b) => (b.gc === undefined ? [] : [b.gc.full]))),
          extraGcVsBaselineCpu: pairs(id, (own, base) => (own.gc && base.gc ? (gcCost(own.gc) - gcCost(base.gc)) / base.cpuUsPerRequest : undefined)),
        };
      }),
    };
  });
}

const gcCost = (gc: BodyGc) => gc.pauseUsPerRequest + gc.workerUsPerRequest;

const mib = (kib: number) => (Number.isFinite(kib) ? `${(kib / 1024).toFixed(0)}` : '–');
const range = (s: Spread, f: (v: number) => string) => (s.n === 0 ? '–' : `${f(s.median)} (${f(s.min)}-${f(s.max)})`);
const ratio = (v: number) => v.toFixed(2);

export function footprintMarkdown(r: FootprintResult, summary: VariantSummary[]): string {
  const o = r.parameters;
  const m = r.machine;
  const labels: Record<string, string> = { small: 'GET 64 B', large: `GET ${formatBytes(64 * 1024)}`, post: `POST ${formatBytes(1024 * 1024)}` };
  const out = [`## Sidecar footprint, ${r.startedAt}`, ''];
  out.push(
    `Machine: ${m.cpuModel}, ${m.cpus} CPUs, ${m.memGiB} GiB, Linux ${m.kernel}; Node ${m.node}. Load average ${m.loadavg.join(' ')} before, ${r.loadavgAfter.join(' ')} after. ` +
      `${o.rounds} interleaved rounds (a fresh sidecar per variant and round, order rotated), ${o.connections} connections to the outbound listener with a key, ` +
      `per body ${o.warmup} s warm-up + ${o.duration} s measured. ` +
      (o.pin ? `Pinned (taskset): load generator and upstream on CPU ${o.pin.split('/')[0]}, each sidecar on CPU ${o.pin.split('/')[1]}. ` : '') +
      `Took ${Math.round(r.seconds)} s. Baseline: ${o.variants[0]!.name}.`,
    '',
    '| Variant | runtime | idle RSS MiB | idle private MiB | peak RSS MiB, median (min-max) | peak private MiB, median (min-max) |',
    '|---|---|--:|--:|--:|--:|',
  );
  for (const v of summary) {
    out.push(`| ${v.name} | \`${r.runtimes[v.name]}\` | ${mib(v.idleRssKiB.median)} | ${mib(v.idleAnonKiB.median)} | ${range(v.peakRssKiB, mib)} | ${range(v.peakAnonKiB, mib)} |`);
  }
  out.push('');
  for (const id of o.scenarios) {
    const gcHead = o.gc ? ' GC µs/req, median (min-max) | young / full GCs per run | extra GC, % of baseline CPU, same round |' : '';
    out.push(`### ${labels[id] ?? id}`, '', `| Variant | req/s, median (min-max) | p99 ms | CPU µs/req, median (min-max) | req/s / baseline, same round | CPU µs/req / baseline, same round | peak RSS MiB (max) | errors | other load, % of the machine (max) |${gcHead}`, `|---|--:|--:|--:|--:|--:|--:|--:|--:|${o.gc ? '--:|--:|--:|' : ''}`);
    for (const v of summary) {
      const b = v.bodies.find((x) => x.scenario === id)!;
      const gc = o.gc ? ` ${range(b.gcUsPerRequest, (x) => x.toFixed(1))} | ${b.youngGcs.n === 0 ? '–' : `${b.youngGcs.median} / ${b.fullGcs.median}`} | ${range(b.extraGcVsBaselineCpu, (x) => (x * 100).toFixed(1))} |` : '';
      out.push(`| ${v.name} | ${range(b.rps, (x) => Math.round(x).toLocaleString('en-US'))} | ${b.p99.n === 0 ? '–' : b.p99.median.toFixed(2)} | ${range(b.cpuUsPerRequest, (x) => x.toFixed(0))} | ${range(b.rpsVsBaseline, ratio)} | ${range(b.cpuVsBaseline, ratio)} | ${mib(b.peakRssKiB)} | ${b.errors} | ${b.otherCpu.n === 0 ? '–' : `${(b.otherCpu.median * 100).toFixed(0)} (${(b.otherCpu.max * 100).toFixed(0)})`} |${gc}`);
    }
    out.push('');
  }
  const failed = summary.filter((v) => v.failures.length > 0);
  for (const v of failed) out.push(`${v.name} failed ${v.failures.length} time(s): ${v.failures[0]}`, '');
  out.push(
    'Peak RSS is VmHWM over the process life (start, idle, every body). Private is RssAnon, sampled every 50 ms. ' +
      'Other load: CPU that processes other than the sidecar, this harness and the upstream (and the hypervisor\'s steal) took while a body was measured; a paired ratio from a round with much of it is noise. ' +
        'A busy host can still slow every process of a VM without showing here: only repeated runs tell.' +
      (o.gc
        ? ' GC: main-thread pauses from --trace-gc-nvp plus the CPU of V8\'s worker threads, during the measured seconds; the extra GC over the baseline\'s, as a share of the baseline\'s CPU per request in the same round, is what a heap setting costs a saturated sidecar in throughput, with less noise than the whole-process ratio.'
        : ''),
  );
  return out.join('\n');
}

