/** The h2 suite's Markdown report (the JSON file holds every run as well). */
import type { GrpcJsOutcome, H2SuiteResult } from './h2-suite.ts';
import type { H2Summary } from './h2-summary.ts';

const n0 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : Math.round(v).toLocaleString('en-US'));
const n2 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : v.toFixed(2));
const x = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : `${v.toFixed(2)}x`);
const mib = (kib: number | undefined) => (kib === undefined || !Number.isFinite(kib) ? '–' : `${(kib / 1024).toFixed(0)} MiB`);
/** Markdown table cells must not break on a reason's pipes or newlines. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');

/** Why a row's runs did not count: their failures, distinct, with counts. */
export function runFailures(row: H2Summary): string {
  const counts = new Map<string, number>();
  for (const f of row.failures) counts.set(f, (counts.get(f) ?? 0) + 1);
  return [...counts].map(([f, n]) => (n > 1 ? `${f} (${n} runs)` : f)).join('; ');
}

/** What a row without figures says instead: `failed: <reason>`, or `skipped: <reason>` for a path turned off. */
export function rowFailure(r: H2SuiteResult, row: H2Summary): string {
  if (row.failures.length > 0) return `failed: ${runFailures(row)}`;
  const f = r.failed.find((x) => x.path === row.path);
  return f ? `${f.skipped ? 'skipped' : 'failed'}: ${f.reason}` : 'failed: not run';
}

export function h2Markdown(r: H2SuiteResult): string {
  const o = r.parameters;
  const m = r.machine;
  const title = (id: string) => r.paths.find((p) => p.id === id)?.title ?? id;
  const out: string[] = [`## HTTP/2 and gRPC benchmark, ${r.startedAt}`, ''];
  const sw = ['h2load', 'nginx'].filter((k) => r.software[k]).map((k) => `; ${k} ${r.software[k]}`).join('');
  out.push(
    `Machine: ${m.cpuModel}, ${m.cpus} CPUs, ${m.memGiB} GiB, Linux ${m.kernel}; Node ${m.node}${sw}. Load average ${m.loadavg.join(' ')} before, ${r.loadavgAfter.join(' ')} after.`,
    `Parameters: h2load ${o.connections} connections x ${o.streams} streams (${o.connections * o.streams} requests in flight), ${o.threads} thread${o.threads === 1 ? '' : 's'}, ` +
      `${o.duration} s per run, ${o.rounds} interleaved rounds (medians; spread = (max - min) / median of req/s), warm-up ${o.warmup} s, ` +
      `:authority upstream and uber-ctx-key ${o.key} on every call. Suite took ${Math.round(r.seconds)} s.`,
    '',
  );
  for (const p of r.paths) out.push(`- ${p.title}: ${p.path}`);
  out.push('');
  for (const s of r.scenarios) {
    out.push(`### ${s.label}`, '');
    out.push('| Path | req/s | spread | p50 ms | p90 ms | p99 ms | errors | req/s vs direct | req/s vs nginx | p99 vs direct | p99 vs nginx | proxy process CPU | CPU µs/req | peak RSS | h2load CPU | checks passed |');
    out.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
    for (const row of r.summary.filter((x) => x.scenario === s.id)) {
      if (row.rounds === 0) {
        out.push(`| ${title(row.path)} | ${cell(rowFailure(r, row))} |||||||||||||| ${row.checks.passed}/${row.checks.made} |`);
        continue;
      }
      const p = row.proc;
      out.push(
        `| ${title(row.path)} | ${n0(row.rps.median)} | ${row.rps.spreadPct.toFixed(0)}% | ${n2(row.p50)} | ${n2(row.p90)} | ${n2(row.p99)} | ${row.errors} | ` +
          `${x(row.rpsRatio.direct)} | ${x(row.rpsRatio.nginx)} | ${x(row.p99Ratio.direct)} | ${x(row.p99Ratio.nginx)} | ` +
          `${p ? `${p.role} ${p.cpuPct.toFixed(0)}% (sys ${p.systemPct.toFixed(0)}%)` : '–'} | ${n0(p?.cpuUsPerRequest)} | ${mib(p?.peakRssKiB)} | ${row.clientCpuPct.toFixed(0)}% | ${row.checks.passed}/${row.checks.made} |`,
      );
    }
    const partial = r.summary.filter((x) => x.scenario === s.id && x.rounds > 0 && x.failures.length > 0);
    if (partial.length > 0) {
      out.push('');
      for (const row of partial) out.push(`${title(row.path)}: ${row.failures.length} run(s) not counted: ${runFailures(row)}.`);
    }
    out.push('');
  }
  out.push('### The sidecar against direct and nginx', '', '| Call | req/s sidecar / direct | req/s sidecar / nginx | p99 sidecar / direct | p99 sidecar / nginx |', '|---|--:|--:|--:|--:|');
  for (const s of r.scenarios) {
    const row = r.summary.find((x) => x.scenario === s.id && x.path === 'sidecar');
    if (!row || row.rounds === 0) out.push(`| ${s.label} | ${row ? cell(rowFailure(r, row)) : 'skipped: not among --paths'} ||||`);
    else out.push(`| ${s.label} | ${x(row.rpsRatio.direct)} | ${x(row.rpsRatio.nginx)} | ${x(row.p99Ratio.direct)} | ${x(row.p99Ratio.nginx)} |`);
  }
  out.push('');
  out.push(...grpcStatusMarkdown(r));
  out.push(
    "CPU is user + system time over the run's wall time, in % of one core (sys: the kernel's part), read from /proc for the path's own process " +
      "(the proxy; the upstream stub for direct). Peak RSS is VmHWM, reset before each run. h2load CPU is h2load's own (one native thread " +
      'by default): near 100% means the client, not the target, set the ceiling. Errors are what h2load counts: 4xx/5xx answers, broken streams ' +
      'and timeouts. Percentiles come from h2load\'s per-request log. "Checks passed" counts the node:http2 calls before and after every run ' +
      '(status, lane, body and, for gRPC, grpc-status 0 in trailers); a run whose check after it failed is not counted in the figures.',
    '',
    `Idle RSS after start: ${r.processes.map((p) => `${p.role} ${mib(p.idleRssKiB)}`).join(', ') || '–'}.`,
    '',
  );
  if (r.failed.length > 0) {
    out.push('Not measured:', '');
    for (const f of r.failed) out.push(`- ${title(f.path)}: ${f.skipped ? 'skipped' : 'failed'}: ${f.reason}`);
    out.push('');
  }
  return out.join('\n');
}

/** Whether grpc-status was 0 through every path, said plainly, since h2load cannot tell. */
function grpcStatusMarkdown(r: H2SuiteResult): string[] {
  if (!r.scenarios.some((s) => s.id === 'grpc')) return [];
  const title = (id: string) => r.paths.find((p) => p.id === id)?.title ?? id;
  const out = ['### gRPC status through each path', ''];
  out.push('h2load counts HTTP statuses only; a gRPC error is an HTTP 200 with grpc-status in the trailers. These calls check it.', '');
  out.push('| Path | node:http2, before and after every run | @grpc/grpc-js, before the first run | @grpc/grpc-js, after the last run |', '|---|---|---|---|');
  for (const p of r.paths) {
    const row = r.summary.find((x) => x.scenario === 'grpc' && x.path === p.id);
    const g = r.grpcJs.find((c) => c.path === p.id);
    const h2 = !row || row.checks.made === 0
      ? `not run (${cell(row ? rowFailure(r, row) : 'not selected')})`
      : row.checks.passed === row.checks.made ? `grpc-status 0 in ${row.checks.passed} of ${row.checks.made}` : `**FAILED** in ${row.checks.made - row.checks.passed} of ${row.checks.made}: ${cell(runFailures({ ...row, failures: row.failures.filter((f) => f.startsWith('check ')) }))}`;
    const js = (v: GrpcJsOutcome | undefined) => (v === undefined ? 'not run' : v.ok ? 'OK (grpc-status 0)' : `**FAILED**: ${cell(v.reason)}`);
    out.push(`| ${title(p.id)} | ${h2} | ${js(g?.before)} | ${js(g?.after)} |`);
  }
  out.push('');
  const bad = r.paths.filter((p) => {
    const row = r.summary.find((x) => x.scenario === 'grpc' && x.path === p.id);
    const g = r.grpcJs.find((c) => c.path === p.id);
    return (row !== undefined && row.checks.passed < row.checks.made) || (g !== undefined && (!g.before.ok || g.after?.ok === false));
  });
  if (bad.length > 0) out.push(`**grpc-status was not 0 (or the call failed) through: ${bad.map((p) => title(p.id)).join(', ')}.** Their h2load figures do not show that.`, '');
  return out;
}
