/*
 * Runs the whole harness briefly (about a second of load per configuration, 4 connections) so
 * that it cannot rot. No timing is asserted: only that every configuration ran without errors or
 * was skipped with a reason, and that the results have the documented shape.
 */
import t from 'tap';
import { CONFIG_IDS, DEFAULTS, parseOptions, type BenchOptions } from '../src/options.ts';
import { findNginx } from '../src/nginx.ts';
import { markdown } from '../src/report.ts';
import { sidecarMissing } from '../src/sidecar.ts';
import { runSuite } from '../src/suite.ts';

t.test('options: defaults, flags, environment and validation', async (t) => {
  const o = parseOptions([], {});
  t.not(o, 'help');
  t.same(o, DEFAULTS);
  const f = parseOptions(['--connections', '8', '--duration', '2', '--configs', 'direct,nginx', '--no-nginx'], { BENCH_ROUNDS: '5' }) as BenchOptions;
  t.equal(f.connections, 8);
  t.equal(f.duration, 2);
  t.equal(f.rounds, 5);
  t.same(f.configs, ['direct', 'nginx']);
  t.equal(f.nginx, false);
  t.throws(() => parseOptions(['--rounds', '2'], {}), /rounds/);
  t.throws(() => parseOptions(['--configs', 'envoy'], {}), /unknown envoy/);
  t.throws(() => parseOptions(['--key', 'Not A Key'], {}), /DNS-1123/);
  t.equal(parseOptions(['--help'], {}), 'help');
});

t.test('the suite runs every configuration, or says why not', async (t) => {
  const options: BenchOptions = {
    ...DEFAULTS,
    connections: 4,
    duration: 0.35, // x 3 bodies: about one second per configuration
    warmup: 0,
    rounds: 1, // the CLI insists on 3; one is enough to prove the harness works
    registrySizes: [10, 1000],
    reloadIterations: 2,
    setup: false, // never install packages from a test
  };
  const result = await runSuite(options);

  t.equal(result.machine.node, process.version);
  t.ok(result.machine.cpuModel.length > 0);
  t.same(result.parameters, options);
  t.same(result.scenarios.map((s) => s.id), ['small', 'large', 'post']);

  const skipped = new Map(result.skipped.map((s) => [s.config, s.reason]));
  for (const id of CONFIG_IDS) {
    const rows = result.summary.filter((r) => r.config === id);
    if (skipped.has(id)) {
      t.match(skipped.get(id), /\S/, `${id} skipped with a reason`);
      t.equal(rows.length, 0, `${id} skipped, so not measured`);
      continue;
    }
    t.equal(rows.length, 3, `${id} measured for each body`);
    for (const row of rows) {
      t.same(row.failures, [], `${id} ${row.scenario}: check request passed`);
      t.equal(row.rounds, 1);
      t.equal(row.errors, 0, `${id} ${row.scenario}: no errors`);
      t.ok(row.rps.median > 0, `${id} ${row.scenario}: requests completed`);
      for (const p of [row.p50, row.p90, row.p99]) t.ok(Number.isFinite(p) && p > 0, `${id} ${row.scenario}: latency percentiles`);
      t.ok(row.proc && Number.isFinite(row.proc.cpuPct), `${id} ${row.scenario}: CPU of its process`);
      t.ok(row.proc && row.proc.peakRssKiB > 0, `${id} ${row.scenario}: peak RSS of its process`);
      t.equal(row.ratio.direct !== undefined, !skipped.has('direct'));
    }
  }
  if (findNginx() === undefined) t.ok(skipped.has('nginx'), 'nginx absent: skipped, not failed');
  const noSidecar = sidecarMissing();
  if (noSidecar) t.equal(skipped.get('sidecar-key'), noSidecar);

  t.equal(result.runs.length, result.summary.length, 'one run per configuration and body');
  t.ok(Array.isArray(result.registry), 'registry scale ran');
  if (Array.isArray(result.registry)) {
    t.same(result.registry.map((r) => r.entries), [10, 1000]);
    for (const r of result.registry) {
      t.ok(r.resolveNs > 0 && r.buildMs > 0 && r.parseAndBuildMs > 0);
      t.equal(r.fileReloadMs.length, 2);
    }
  }
  t.ok(result.reload, 'reload timing reported');
  if (result.reload && 'ms' in result.reload) t.equal(result.reload.ms.length, 2);
  else if (result.reload) t.ok(noSidecar !== undefined, `reload not measured only without a sidecar: ${JSON.stringify(result.reload)}`);

  const md = markdown(result);
  for (const s of result.scenarios) t.ok(md.includes(`### ${s.label}`), `table for ${s.label}`);
  t.match(md, /### Registry scale/);
  t.ok(result.bars.every((b) => typeof b.name === 'string' && typeof b.target === 'string'));
  t.same(JSON.parse(JSON.stringify(result)).summary.length, result.summary.length, 'serialisable as JSON');
});
