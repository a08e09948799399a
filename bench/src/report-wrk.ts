/** The wrk cross-check's part of the Markdown report. */
import { CONFIG_INFO } from './configs.ts';
import { formatBytes } from './scenarios.ts';
import type { SuiteResult } from './suite.ts';

const n0 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : Math.round(v).toLocaleString('en-US'));
const n2 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : v.toFixed(2));
const x = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : `${v.toFixed(2)}x`);

export function wrkMarkdown(r: SuiteResult): string[] {
  const w = r.wrk;
  const title = `### wrk cross-check (${formatBytes(r.parameters.smallBody)})`;
  if ('skipped' in w) return [title, '', `Skipped: ${w.skipped}.`, ''];
  const out = [title, ''];
  out.push(
    `wrk ${w.version}, ${w.threads} thread${w.threads === 1 ? '' : 's'}, ${r.parameters.connections} connections, ${w.duration} s per run, run right after ` +
      `each autocannon run of the same configuration in every round (medians over ${r.parameters.rounds} rounds), same headers. ` +
      'wrk does not check the lane of each response (the check request before each run does); errors are socket errors, timeouts and 4xx/5xx.',
    '',
  );
  out.push('| Configuration | req/s | spread | p50 ms | p90 ms | p99 ms | errors | vs direct | vs http-proxy | vs nginx | p99 vs nginx | wrk / autocannon req/s | proxy process CPU | CPU µs/req | wrk CPU |');
  out.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const row of w.summary) {
    const name = CONFIG_INFO[row.config].title;
    if (row.rounds === 0) {
      out.push(`| ${name} | failed: ${row.failures[0] ?? 'no run'} ||||||||||||||`);
      continue;
    }
    const primary = r.summary.find((s) => s.scenario === 'small' && s.config === row.config && s.rounds > 0);
    const p = row.proc;
    out.push(
      `| ${name} | ${n0(row.rps.median)} | ${row.rps.spreadPct.toFixed(0)}% | ${n2(row.p50)} | ${n2(row.p90)} | ${n2(row.p99)} | ${row.errors} | ` +
        `${x(row.ratio.direct)} | ${x(row.ratio['http-proxy'])} | ${x(row.ratio.nginx)} | ${x(row.p99VsNginx)} | ${x(primary ? row.rps.median / primary.rps.median : undefined)} | ` +
        `${p ? `${p.role} ${p.cpuPct.toFixed(0)}% (sys ${p.systemPct.toFixed(0)}%)` : '–'} | ${n0(p?.cpuUsPerRequest)} | ${row.clientCpuPct.toFixed(0)}% |`,
    );
  }
  out.push(
    '',
    "wrk CPU is wrk's own user + system time (from this process's waited-for children in /proc) over the run's wall time: " +
      'with one thread, near 100% would mean wrk set the ceiling.',
    '',
  );
  return out;
}
