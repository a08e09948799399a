/** The Markdown report printed to stdout (the JSON file holds every run as well). */
import { CONFIG_INFO } from './configs.ts';
import { wrkMarkdown } from './report-wrk.ts';
import type { SuiteResult } from './suite.ts';
import { formatBytes } from './scenarios.ts';
import { median } from './stats.ts';

const n0 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : Math.round(v).toLocaleString('en-US'));
const n2 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : v.toFixed(2));
const x = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : `${v.toFixed(2)}x`);
const mib = (kib: number | undefined) => (kib === undefined || Number.isNaN(kib) || !Number.isFinite(kib) ? '–' : `${(kib / 1024).toFixed(0)} MiB`);

function footprintMarkdown(r: SuiteResult): string[] {
  const f = r.footprint;
  if (!f) return [];
  const label = (id: string) => r.scenarios.find((s) => s.id === id)?.label ?? id;
  return [
    '### Sidecar footprint',
    '',
    `Runtime: \`${f.runtime}\` (\`--sidecar-runtime ${r.parameters.sidecarRuntime}\`), ${r.parameters.connections} connections.`,
    '',
    '| Sidecar process | RSS | private (RssAnon) |',
    '|---|--:|--:|',
    `| idle, after start | ${mib(f.idleRssKiB)} | ${mib(f.idleAnonKiB)} |`,
    `| start and warm-up, peak | ${mib(f.warmupPeakKiB)} | – |`,
    ...f.byScenario.map((b) => `| ${label(b.scenario)}, peak over the rounds | ${mib(b.peakRssKiB)} | ${mib(b.peakAnonKiB)} |`),
    `| **peak** | **${mib(f.peakRssKiB)}** | **${mib(f.peakAnonKiB)}** |`,
    '',
    'Peak RSS is VmHWM, exact. The private part is the highest of samples every 50 ms, so a lower bound; the rest of RSS is ' +
      "file pages, mostly the node binary's code, which every process mapping the same file shares.",
    '',
  ];
}

export function markdown(r: SuiteResult): string {
  const o = r.parameters;
  const m = r.machine;
  const out: string[] = [];
  out.push(`## Routing benchmark, ${r.startedAt}`, '');
  out.push(
    `Machine: ${m.cpuModel}, ${m.cpus} CPUs, ${m.memGiB} GiB, Linux ${m.kernel}; Node ${m.node}; autocannon ${r.software['autocannon']}` +
      `${r.software['nginx'] ? `; nginx ${r.software['nginx']}` : ''}${r.software['wrk'] ? `; wrk ${r.software['wrk']}` : ''}. Load average ${m.loadavg.join(' ')} before, ${r.loadavgAfter.join(' ')} after.`,
  );
  out.push(
    `Parameters: ${o.connections} connections, pipelining ${o.pipelining}, ${o.duration} s per run, ${o.rounds} interleaved rounds ` +
      `(medians; spread = (max - min) / median of req/s), warm-up ${o.warmup} s. Suite took ${Math.round(r.seconds)} s.`,
    '',
  );
  for (const s of r.scenarios) {
    out.push(`### ${s.label}`, '');
    out.push('| Configuration | req/s | spread | p50 ms | p90 ms | p99 ms | errors | vs direct | vs http-proxy | vs nginx | p99 vs nginx | proxy process CPU | CPU µs/req | peak RSS | client CPU |');
    out.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
    for (const row of r.summary.filter((x) => x.scenario === s.id)) {
      const title = CONFIG_INFO[row.config].title;
      if (row.rounds === 0) {
        out.push(`| ${title} | failed: ${row.failures[0] ?? 'no run'} ||||||||||||||`);
        continue;
      }
      const p = row.proc;
      out.push(
        `| ${title} | ${n0(row.rps.median)} | ${row.rps.spreadPct.toFixed(0)}% | ${n2(row.p50)} | ${n2(row.p90)} | ${n2(row.p99)} | ${row.errors} | ` +
          `${x(row.ratio.direct)} | ${x(row.ratio['http-proxy'])} | ${x(row.ratio.nginx)} | ${x(row.p99VsNginx)} | ` +
          `${p ? `${p.role} ${p.cpuPct.toFixed(0)}% (sys ${p.systemPct.toFixed(0)}%)` : '–'} | ${n0(p?.cpuUsPerRequest)} | ${mib(p?.peakRssKiB)} | ${row.clientCpuPct.toFixed(0)}% |`,
      );
    }
    out.push('');
  }
  out.push(
    "CPU is user + system time over the run's wall time, in % of one core (sys: the kernel's part), read from /proc for the configuration's own process " +
      '(the proxy; the upstream stub for direct; the sidecar for the pod path, whose app stub is in the JSON). Peak RSS is VmHWM, reset before each run. ' +
      'Client CPU is the load generator (autocannon, one Node process): near 100% means the client, not the target, set the ceiling.',
    '',
    `Idle RSS after start: ${r.processes.map((p) => `${p.role} ${mib(p.idleRssKiB)}`).join(', ')}.`,
    '',
  );
  out.push(...footprintMarkdown(r));
  if (r.skipped.length > 0) {
    out.push('Skipped:', '');
    for (const s of r.skipped) out.push(`- ${CONFIG_INFO[s.config].title}: ${s.reason}`);
    out.push('');
  }
  out.push(...wrkMarkdown(r));
  // The bars are judged on autocannon's figures; wrk's rows only show whether they hold with another client.
  const cross = 'skipped' in r.wrk ? [] : r.wrk.bars;
  if (r.bars.length > 0) {
    out.push('### Bars', '', '| Bar | Measured | Target | Result |', '|---|--:|--:|---|');
    for (const b of r.bars) {
      const result = b.pass === undefined ? 'not measured' : b.pass ? 'met' : 'NOT met';
      out.push(`| ${b.name} | ${n2(b.value)} | ${b.target} | ${result}${b.note ? ` (${b.note})` : ''} |`);
    }
    for (const b of cross) {
      const result = b.pass === undefined ? 'not measured' : b.pass ? 'met with wrk' : 'NOT met with wrk';
      out.push(`| *cross-check:* ${b.name} | ${n2(b.value)} | ${b.target} | ${result} (autocannon's row is the bar${b.note ? `; ${b.note}` : ''}) |`);
    }
    out.push('');
  }
  if (r.registry) {
    out.push('### Registry scale', '');
    if ('error' in r.registry) out.push(`Failed: ${r.registry.error}`, '');
    else {
      out.push('| (service, key) entries | services x keys | resolve ns/call, spread (min-max) | resolve ns/call, hot set | snapshot build ms | retained heap | bytes/entry | YAML file | parse + build ms | file write -> snapshot ms (median of n) |');
      out.push('|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
      for (const g of r.registry) {
        out.push(
          `| ${n0(g.entries)} | ${g.services} x ${g.keysPerService} | ${g.resolveNs.toFixed(1)} (${g.resolveNsRange[0].toFixed(1)}-${g.resolveNsRange[1].toFixed(1)}) | ${g.resolveHotNs.toFixed(1)} | ${n2(g.buildMs)} | ` +
            `${formatBytes(Math.max(0, Math.round(g.retainedBytes / 1024)) * 1024)} | ${n0(g.bytesPerEntry)} | ${g.yamlBytes < 10_240 ? `${g.yamlBytes} B` : formatBytes(Math.round(g.yamlBytes / 1024) * 1024)} | ${n2(g.parseAndBuildMs)} | ` +
            `${g.fileReloadMs.length ? `${n2(median(g.fileReloadMs))} (n=${g.fileReloadMs.length})` : '–'} |`,
        );
      }
      out.push('');
    }
  }
  if (r.reload) {
    out.push('### Registry file change -> first request routed by it through the sidecar', '');
    if ('ms' in r.reload) {
      const s = r.reload.summary;
      out.push(`${s.n} changes: median ${n2(s.median)} ms, min ${n2(s.min)} ms, max ${n2(s.max)} ms (all: ${r.reload.ms.map((v) => v.toFixed(1)).join(', ')} ms).`, '');
    } else if ('error' in r.reload) out.push(`Failed: ${r.reload.error}`, '');
    else out.push(`Skipped: ${r.reload.skipped}`, '');
  }
  return out.join('\n');
}
