/*
 * Runs the whole harness briefly (about a second of load per configuration, 4 connections) so
 * that it cannot rot. No timing is asserted: only that every configuration ran without errors or
 * was skipped with a reason, and that the results have the documented shape. The wrk cross-check
 * is exercised on its own, on three configurations, and only where wrk is installed; its output
 * parser is tested on recorded wrk output everywhere.
 */
import t from 'tap';
import { CONFIG_IDS, DEFAULTS, parseOptions, type BenchOptions } from '../src/options.ts';
import { findNginx } from '../src/nginx.ts';
import { markdown } from '../src/report.ts';
import { sidecarMissing } from '../src/sidecar.ts';
import { runSuite } from '../src/suite.ts';
import { findWrk, wrkArgs, wrkAvailability } from '../src/wrk.ts';
import { parseWrk } from '../src/wrk-output.ts';

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
  t.equal(f.wrk, true);
  t.equal((parseOptions(['--no-wrk', '--wrk-duration', '3'], {}) as BenchOptions).wrk, false);
  t.equal((parseOptions(['--wrk-duration', '3'], {}) as BenchOptions).wrkDuration, 3);
  t.equal((parseOptions([], { BENCH_NO_WRK: '1' }) as BenchOptions).wrk, false);
  t.equal((parseOptions(['--wrk'], { BENCH_NO_WRK: '1' }) as BenchOptions).wrk, true, 'a flag wins over the environment');
  t.throws(() => parseOptions(['--wrk-duration', '0.5'], {}), /wrk-duration/);
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
    wrk: false, // exercised in its own test below, to keep this one short
  };
  const result = await runSuite(options);
  t.same(result.wrk, { skipped: 'disabled with --no-wrk' });

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

const WRK_OUTPUT = `Running 2s test @ http://127.0.0.1:41234/bytes/64
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.61ms    1.02ms   1.20s    91.17%
    Req/Sec    19.02k     1.10k   20.73k    70.00%
  Latency Distribution
     50%  812.00us
     75%    2.71ms
     90%    3.49ms
     99%    1.01s
  37882 requests in 2.00s, 5.17MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:  18935.37
Transfer/sec:      2.58MB
`;

t.test('wrk: output parsed by unit, optional lines, headers canonical', async (t) => {
  const out = parseWrk(WRK_OUTPUT);
  t.equal(out.requests, 37882);
  t.equal(out.seconds, 2);
  t.equal(out.rps, 18935.37);
  t.same(out.percentiles, { 50: 0.812, 75: 2.71, 90: 3.49, 99: 1010 });
  t.same(out.latency, { avg: 2.61, stdev: 1.02, max: 1200 });
  t.same(out.errors, { connect: 1, read: 2, write: 3, timeout: 4, status: 5 });
  t.equal(out.transferPerSec, 2.58 * 1024 * 1024);
  const clean = parseWrk(WRK_OUTPUT.replace(/^ {2}(Socket errors|Non-2xx).*\n/gm, ''));
  t.same(clean.errors, { connect: 0, read: 0, write: 0, timeout: 0, status: 0 }, 'no error lines: zero errors');
  t.throws(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused\n'), /Requests\/sec/);
  t.throws(() => parseWrk(WRK_OUTPUT.replace(/ {5}99%.*\n/, '')), /99%/);

  const args = wrkArgs({ port: 1, method: 'GET', path: '/bytes/64', headers: { host: 'upstream', 'uber-ctx-key': 'feature1' }, connections: 4, duration: 1, pipelining: 1, expectUpstream: 'feature1' }, 2, 1);
  t.same(args.slice(0, 6), ['-t', '2', '-c', '4', '-d', '1s']);
  t.ok(args.includes('Host: upstream') && args.includes('Uber-Ctx-Key: feature1'), 'wrk adds its own Host unless it sees "Host"');

  const skip = (o: Partial<BenchOptions>) => wrkAvailability({ ...DEFAULTS, setup: false, ...o }, () => undefined);
  t.same(skip({ wrk: false }), { skipped: 'disabled with --no-wrk' });
  t.match(skip({ scenarios: ['large'] }), { skipped: /small GET only/ });
  t.match(skip({ pipelining: 4 }), { skipped: /does not pipeline/ });
  if (!findWrk()) t.match(skip({}), { skipped: /wrk not installed/ }, 'absent: skipped with the reason');
});

t.test('wrk cross-check runs beside autocannon when wrk is installed', { skip: findWrk() ? false : 'wrk is not installed' }, async (t) => {
  const options: BenchOptions = {
    ...DEFAULTS,
    connections: 4,
    duration: 0.35,
    warmup: 0,
    rounds: 1,
    configs: ['direct', 'sidecar-key', 'nginx'],
    scenarios: ['small'],
    registrySizes: [],
    reloadIterations: 0,
    setup: false,
    wrkDuration: 1,
  };
  const result = await runSuite(options);
  const w = result.wrk;
  if ('skipped' in w) return t.fail(`wrk skipped: ${w.skipped}`);
  t.equal(w.runs.length, result.runs.length, 'one wrk run after each autocannon run');
  for (const row of w.summary) {
    t.same(row.failures, [], `${row.config}: wrk ran`);
    t.equal(row.errors, 0, `${row.config}: no errors under wrk`);
    t.ok(row.rps.median > 0 && row.p99 > 0, `${row.config}: wrk figures parsed`);
    t.ok(Number.isFinite(row.clientCpuPct), `${row.config}: wrk CPU read`);
  }
  t.match(markdown(result), /### wrk cross-check \(64 B\)/);
});
