/*
 * The harness's logic on known inputs (options, runtime specs, the /proc and wrk parsers, the
 * summary maths, the bars), then one very short run through real processes so that the harness
 * cannot rot. No timing or memory threshold is asserted here: those are the benchmark's figures.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import type { RunRecord } from '../src/measure.ts';
import type { VariantRun } from '../src/footprint.ts';
import { FOOTPRINT_DEFAULTS, parseFootprintOptions } from '../src/footprint-options.ts';
import { footprintMarkdown, summarizeFootprint } from '../src/footprint-report.ts';
import { runFootprint, withGcTrace } from '../src/footprint.ts';
import { GcWindow, parseGcLine } from '../src/gc-trace.ts';
import { DEFAULTS, parseOptions, type BenchOptions } from '../src/options.ts';
import { memory, MemorySampler, parseStatus, threadCpuSeconds } from '../src/procstat.ts';
import { markdown } from '../src/report.ts';
import { describeRuntime, dockerfileEnv, entrypoint, entrypointNodeArgs, imageRuntime, imageRuntimeEnv, parseRuntime, runtimeEnv, words } from '../src/runtime.ts';
import { scenarios } from '../src/scenarios.ts';
import { sidecarMissing } from '../src/sidecar.ts';
import { maxOf, median, percentile, spread } from '../src/stats.ts';
import { bars, footprint, summarize } from '../src/summary.ts';
import { runSuite } from '../src/suite.ts';
import { wrkArgs, wrkAvailability } from '../src/wrk.ts';
import { parseWrk } from '../src/wrk-output.ts';

t.test('options: defaults, flags, environment and validation', async (t) => {
  t.same(parseOptions([], {}), DEFAULTS);
  const f = parseOptions(['--connections', '8', '--duration', '2', '--configs', 'direct,nginx', '--no-nginx'], { BENCH_ROUNDS: '5' }) as BenchOptions;
  t.same([f.connections, f.duration, f.rounds, f.configs, f.nginx, f.wrk], [8, 2, 5, ['direct', 'nginx'], false, true]);
  t.equal((parseOptions(['--no-wrk', '--wrk-duration', '3'], {}) as BenchOptions).wrk, false);
  t.equal((parseOptions(['--wrk-duration', '3'], {}) as BenchOptions).wrkDuration, 3);
  t.equal((parseOptions([], { BENCH_NO_WRK: '1' }) as BenchOptions).wrk, false);
  t.equal((parseOptions(['--wrk'], { BENCH_NO_WRK: '1' }) as BenchOptions).wrk, true, 'a flag wins over the environment');
  t.equal((parseOptions([], { BENCH_SIDECAR_RUNTIME: 'none' }) as BenchOptions).sidecarRuntime, 'none');
  t.equal((parseOptions(['--sidecar-runtime', 'MALLOC_ARENA_MAX=2 --optimize-for-size'], {}) as BenchOptions).sidecarRuntime, 'MALLOC_ARENA_MAX=2 --optimize-for-size');
  t.throws(() => parseOptions(['--sidecar-runtime', 'lean'], {}), /neither image, NAME=value nor a --flag/);
  t.throws(() => parseOptions(['--wrk-duration', '0.5'], {}), /wrk-duration/);
  t.throws(() => parseOptions(['--rounds', '2'], {}), /rounds/);
  t.throws(() => parseOptions(['--configs', 'envoy'], {}), /unknown envoy/);
  t.throws(() => parseOptions(['--key', 'Not A Key'], {}), /DNS-1123/);
  t.equal(parseOptions(['--help'], {}), 'help');

  t.same(parseFootprintOptions([], {}), FOOTPRINT_DEFAULTS);
  const fp = parseFootprintOptions(['--variant', 'a:none', '--variant', 'b: MALLOC_ARENA_MAX=2', '--rounds', '3'], { BENCH_FOOTPRINT_SCENARIOS: 'post' });
  t.same(fp !== 'help' && [fp.variants, fp.rounds, fp.scenarios], [[{ name: 'a', spec: 'none' }, { name: 'b', spec: 'MALLOC_ARENA_MAX=2' }], 3, ['post']]);
  t.throws(() => parseFootprintOptions(['--variant', 'a:none'], {}), /at least two/);
  t.throws(() => parseFootprintOptions(['--variant', 'a:none', '--variant', 'a:image'], {}), /must differ/);
  t.throws(() => parseFootprintOptions(['--variant', 'none', '--variant', 'b:image'], {}), /NAME:SPEC/);
  t.throws(() => parseFootprintOptions(['--rounds', '1'], {}), /rounds/);
  t.same([parseFootprintOptions(['--gc'], {}), parseFootprintOptions([], { BENCH_FOOTPRINT_GC: '1' }), parseFootprintOptions([], { BENCH_FOOTPRINT_GC: '0' })].map((o) => o !== 'help' && o.gc), [true, true, false]);
  t.throws(() => parseFootprintOptions([], { BENCH_FOOTPRINT_GC: 'yes' }), /BENCH_FOOTPRINT_GC: expected 1 or 0/);
});

// Captured from node 24.22 (V8 13.6) with --trace-gc-nvp, shortened after promoted=.
const SCAVENGE = '[32177:0x3a400000:0]       82 ms: pause=1.6 mutator=26.1 gc=s reduce_memory=0 interleaved=0 time_to_safepoint=0.00 scavenge=1.57 allocated=1241088 promoted=410016';
const MARK_COMPACT = '[32177:0x3a400000:0]     1203 ms: pause=6.1 mutator=30.2 gc=mc reduce_memory=0 time_to_safepoint=0.01 heap.prologue=0.00 mark=3.20';

t.test('GC trace: --trace-gc-nvp lines counted while the window is open, V8 thread CPU from /proc', async (t) => {
  t.same(parseGcLine(SCAVENGE), { kind: 's', pauseMs: 1.6 });
  t.same(parseGcLine(MARK_COMPACT), { kind: 'mc', pauseMs: 6.1 });
  t.equal(parseGcLine('{"msg":"listening","listener":"outbound","port":15001}'), undefined, 'a log line is not a collection');
  const w = new GcWindow();
  w.line(SCAVENGE);
  w.open();
  for (const line of [SCAVENGE, SCAVENGE, MARK_COMPACT, '{"msg":"x"}']) w.line(line);
  const totals = w.close();
  t.same([totals.young, totals.full], [2, 1], 'only what arrived while open');
  t.equal(Math.round(totals.pauseMs * 10) / 10, 9.3);
  w.line(SCAVENGE);
  t.equal(w.close().young, 2, 'closed: nothing more counted');
  t.same(withGcTrace({ spec: 'none', env: {}, nodeArgs: [] }, true).nodeArgs, ['--trace-gc-nvp']);
  t.same(withGcTrace({ spec: 'x', env: {}, nodeArgs: ['--trace-gc-nvp'] }, true).nodeArgs, ['--trace-gc-nvp'], 'never twice');
  t.same(withGcTrace({ spec: 'none', env: {}, nodeArgs: [] }, false).nodeArgs, []);
  // This process has V8 worker threads (Node names them V8Worker); any work they did shows.
  const own = threadCpuSeconds(process.pid);
  t.ok(Number.isFinite(own) && own >= 0, `V8 worker threads of this process: ${own} s`);
  t.ok(threadCpuSeconds(process.pid, /^no such thread$/) === 0, 'no matching thread: 0');
  t.ok(Number.isNaN(threadCpuSeconds(2 ** 30)), 'no such process: NaN');
});

t.test('runtime specs: the image ENV, words, and what reaches the sidecar', async (t) => {
  t.same(words('A=1  B="x y" --flag C="" D=a"b c"'), ['A=1', 'B=x y', '--flag', 'C=', 'D=ab c']);
  const dockerfile = 'FROM node:24-slim\nENV NODE_ENV=production \\\n    NODE_OPTIONS="--max-semi-space-size=1 --max-old-space-size=128" \\\n    MALLOC_ARENA_MAX=2\nenv LEGACY some value\nRUN echo ENV X=1\n';
  t.same(dockerfileEnv(dockerfile), { NODE_ENV: 'production', NODE_OPTIONS: '--max-semi-space-size=1 --max-old-space-size=128', MALLOC_ARENA_MAX: '2', LEGACY: 'some value' });
  t.same(imageRuntimeEnv(dockerfile), { NODE_OPTIONS: '--max-semi-space-size=1 --max-old-space-size=128', MALLOC_ARENA_MAX: '2' }, 'only runtime tuning, never DEVSTACK_* or NODE_ENV');

  t.same(entrypointNodeArgs(`${dockerfile}ENTRYPOINT ["node", "--no-concurrent-array-buffer-sweeping", "--x=1", "packages/sidecar/dist/cli.js", "--not-node's"]\n`), ['--no-concurrent-array-buffer-sweeping', '--x=1'], 'node\'s flags from the exec-form ENTRYPOINT, up to the script');
  t.same([entrypointNodeArgs(dockerfile), entrypointNodeArgs('ENTRYPOINT node --x cli.js\n'), entrypointNodeArgs('ENTRYPOINT ["tini", "--", "node"]\n'), entrypointNodeArgs('ENTRYPOINT ["node", \n')], [[], [], [], []], 'none, shell form, not node, or not JSON: no flags');
  t.same(entrypoint(`${dockerfile}ENTRYPOINT ["node", "--y", "cli.js"]\n`), ['node', '--y', 'cli.js'], 'the whole exec form');
  t.equal(entrypoint(`${dockerfile}ENTRYPOINT node cli.js\n`), undefined, 'a shell form is not read');
  t.same(imageRuntime(`${dockerfile}ENTRYPOINT ["node", "--y", "cli.js"]\n`), { env: { NODE_OPTIONS: '--max-semi-space-size=1 --max-old-space-size=128', MALLOC_ARENA_MAX: '2' }, nodeArgs: ['--y'] });
  t.same(parseRuntime('none'), { spec: 'none', env: {}, nodeArgs: [] });
  t.same(parseRuntime(' image ', () => ({ env: { MALLOC_ARENA_MAX: '2' }, nodeArgs: ['--no-concurrent-array-buffer-sweeping'] })), { spec: 'image', env: { MALLOC_ARENA_MAX: '2' }, nodeArgs: ['--no-concurrent-array-buffer-sweeping'] });
  t.same(parseRuntime('image MALLOC_ARENA_MAX=1 --optimize-for-size', () => ({ env: { MALLOC_ARENA_MAX: '2', NODE_OPTIONS: '--x' }, nodeArgs: [] })), { spec: 'image MALLOC_ARENA_MAX=1 --optimize-for-size', env: { MALLOC_ARENA_MAX: '1', NODE_OPTIONS: '--x' }, nodeArgs: ['--optimize-for-size'] }, 'the image, then changes to it');
  const r = parseRuntime('NODE_OPTIONS="--max-semi-space-size=2" --no-incremental-marking');
  t.same([r.env, r.nodeArgs], [{ NODE_OPTIONS: '--max-semi-space-size=2' }, ['--no-incremental-marking']]);
  t.equal(describeRuntime(r), 'NODE_OPTIONS=--max-semi-space-size=2 --no-incremental-marking');
  t.equal(describeRuntime(parseRuntime('none')), 'Node defaults');
  const env = runtimeEnv(parseRuntime('MALLOC_ARENA_MAX=2'), { PATH: '/bin', NODE_OPTIONS: '--inspect', MALLOC_TOP_PAD_: '1' });
  t.same(env, { PATH: '/bin', MALLOC_ARENA_MAX: '2' }, "the harness's own tuning is not inherited");

  // Node refuses most V8 flags in NODE_OPTIONS: what the image sets must start a process.
  const image = parseRuntime('image');
  const node = spawnSync(process.execPath, [...image.nodeArgs, '-e', 'process.stdout.write(String(require("v8").getHeapStatistics().total_available_size > 0))'], { env: runtimeEnv(image), encoding: 'utf8' });
  t.equal(node.status, 0, `node starts with the image's ${describeRuntime(image)}: ${node.stderr}`);
  t.equal(node.stdout, 'true');
});

const STATUS = 'Name:\tnode\nVmPeak:\t 1300000 kB\nVmHWM:\t  131072 kB\nVmRSS:\t   98304 kB\nRssAnon:\t   47104 kB\nRssFile:\t   51200 kB\nRssShmem:\t       0 kB\nThreads:\t11\n';

t.test('/proc/<pid>/status: parsed, and sampled while a process grows', async (t) => {
  t.same(parseStatus(STATUS), { rssKiB: 98304, peakKiB: 131072, anonKiB: 47104, fileKiB: 51200 });
  const old = parseStatus('Name:\tx\nVmRSS:\t 10 kB\n');
  t.equal(old.rssKiB, 10);
  t.ok(Number.isNaN(old.peakKiB) && Number.isNaN(old.anonKiB), 'a field the kernel does not print is NaN, not 0');
  t.ok(Number.isNaN(memory(2 ** 30).rssKiB), 'no such process: NaN');

  const before = memory(process.pid);
  t.ok(before.rssKiB > 0 && before.peakKiB >= before.rssKiB, 'own process read');
  const sampler = new MemorySampler(process.pid, 1000);
  const block = Buffer.alloc(64 * 1024 * 1024, 1); // touched, so resident
  const seen = sampler.stop();
  t.ok(seen.peakAnonKiB - before.anonKiB >= 48 * 1024, `64 MiB allocated: private peak ${before.anonKiB} -> ${seen.peakAnonKiB} KiB`);
  t.ok(seen.peakKiB >= before.rssKiB + 48 * 1024, 'and VmHWM saw it');
  t.equal(block[block.length - 1], 1);
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
  t.same([out.requests, out.seconds, out.rps], [37882, 2, 18935.37]);
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
});

t.test('statistics', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.ok(Number.isNaN(median([])));
  t.same(spread([100, 80, 120, Number.NaN]), { median: 100, min: 80, max: 120, spreadPct: 40, n: 3 });
  const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
  t.same([percentile(sorted, 50), percentile(sorted, 99), percentile(sorted, 100)], [50, 99, 100]);
  t.equal(maxOf([1, Number.NaN, 3]), 3);
  t.ok(Number.isNaN(maxOf([Number.NaN])), 'no reading is not a peak of zero');
});

/** One measured run with round figures, as measure() records it. */
function run(config: RunRecord['config'], scenario: RunRecord['scenario'], round: number, rps: number, p99: number, role: string, peakMiB: number): RunRecord {
  const load = { requests: rps * 3, seconds: 3, rps, p50: p99 / 3, p90: p99 / 2, p99, max: p99, errors: 0, errorDetail: { socket: 0, timeouts: 0, non2xx: 0, wrongLane: 0 }, throughput: 0 };
  const usage = { [role]: { pid: 1, cpuPct: 90 + round, systemPct: 30, cpuUsPerRequest: 50 + round, peakRssKiB: peakMiB * 1024, peakAnonKiB: (peakMiB - 50) * 1024 } };
  return { round, scenario, config, position: 0, load, failure: undefined, usage, clientCpuPct: 40, peakIsPerRun: true, loadavg1: 0 };
}

t.test('summary: medians, ratios, peaks, footprint and bars', async (t) => {
  const o: BenchOptions = { ...DEFAULTS, scenarios: ['small', 'post'] };
  const list = scenarios(o);
  const runs: RunRecord[] = [];
  for (const [round, k] of [[1, 1], [2, 1.2], [3, 0.8]] as const) {
    runs.push(run('sidecar-key', 'small', round, 15000 * k, 6, 'sidecar', 100 + round), run('sidecar-key', 'post', round, 700 * k, 90, 'sidecar', 120 + round));
    runs.push(run('http-proxy', 'small', round, 6000 * k, 12, 'http-proxy', 80), run('nginx', 'small', round, 20000 * k, 4, 'nginx-worker', 7));
  }
  const summary = summarize(runs, ['sidecar-key', 'http-proxy', 'nginx'], list);
  const side = summary.find((r) => r.config === 'sidecar-key' && r.scenario === 'small')!;
  t.same([side.rounds, side.rps.median, side.rps.spreadPct, side.p99], [3, 15000, 40, 6]);
  t.same([side.ratio['http-proxy'], side.ratio.nginx, side.p99VsNginx], [2.5, 0.75, 1.5]);
  t.same(side.proc && [side.proc.role, side.proc.cpuUsPerRequest, side.proc.peakRssKiB], ['sidecar', 52, 103 * 1024], 'CPU a median, peak RSS the highest round');

  const fp = footprint(runs, 'NODE_OPTIONS=x', { rssKiB: 75 * 1024, anonKiB: 25 * 1024 }, 110 * 1024, list);
  t.same(fp.byScenario.map((b) => [b.scenario, b.peakRssKiB / 1024, b.peakAnonKiB / 1024]), [['small', 103, 53], ['post', 123, 73]]);
  t.same([fp.peakRssKiB / 1024, fp.peakAnonKiB / 1024], [123, 73], "the worst body, not the other processes' runs");
  t.equal(footprint(runs, 'x', { rssKiB: 1, anonKiB: 1 }, 140 * 1024, list).peakRssKiB / 1024, 140, 'the warm-up counts too');

  const barOf = (b: ReturnType<typeof bars>, name: RegExp) => b.find((x) => name.test(x.name));
  const met = bars(summary, undefined, undefined, o, fp);
  t.match(barOf(met, /http-proxy/), { value: 2.5, pass: false });
  t.match(barOf(met, /req\/s \/ nginx/), { value: 0.75, pass: true });
  t.match(barOf(met, /peak RSS/), { value: 123, target: '<= 128', pass: true });
  t.notOk(barOf(met, /peak RSS/)!.note, 'measured at the bar\'s 50 connections');
  const over = bars(summary, undefined, undefined, { ...o, connections: 4 }, { ...fp, peakRssKiB: 129 * 1024 });
  t.match(barOf(over, /peak RSS/), { value: 129, pass: false, note: /4 connections/ });
  t.equal(barOf(bars(summary, undefined, undefined, o), /peak RSS/), undefined, 'no sidecar ran: no memory bar');
});

t.test('footprint: interleaved variants compared round by round', async (t) => {
  const vr = (variant: string, round: number, rps: number, cpu: number, peakMiB: number, failure?: string): VariantRun => ({
    variant, round, position: 0, loadavg1: 0, idleRssKiB: 80 * 1024, idleAnonKiB: 30 * 1024, peakRssKiB: peakMiB * 1024, peakAnonKiB: (peakMiB - 50) * 1024,
    bodies: failure ? [] : [{ scenario: 'small', rps, p99: 2, cpuUsPerRequest: cpu, errors: 0, peakRssKiB: peakMiB * 1024, peakAnonKiB: 0 }], failure,
  });
  // Round 2 is a slow minute for both: the paired ratio stays put while the raw figures move.
  const runs = [vr('a', 1, 10000, 50, 200), vr('b', 1, 9800, 51, 120), vr('a', 2, 5000, 100, 210), vr('b', 2, 4900, 102, 125), vr('a', 3, 10000, 50, 205), vr('b', 3, 0, 0, 0, 'check request failed')];
  const variants = [{ name: 'a', spec: 'none' }, { name: 'b', spec: 'image' }];
  const [a, b] = summarizeFootprint(runs, variants, ['small']);
  t.same([a!.rounds, a!.peakRssKiB.median / 1024, a!.bodies[0]!.rpsVsBaseline.median], [3, 205, 1]);
  t.same([b!.rounds, b!.failures, b!.peakRssKiB.max / 1024], [2, ['check request failed'], 125], 'a failed round is reported, not averaged in');
  t.same([b!.bodies[0]!.rpsVsBaseline.median, b!.bodies[0]!.rpsVsBaseline.min], [0.98, 0.98]);
  t.equal(b!.bodies[0]!.cpuVsBaseline.median, 1.02);
  const md = footprintMarkdown({ startedAt: 'now', seconds: 1, machine: { node: 'v24', v8: '', platform: '', kernel: 'k', cpuModel: 'cpu', cpus: 2, memGiB: 1, freeMemGiB: 1, loadavg: [0], cpuQuota: 'max' }, loadavgAfter: [0], parameters: { ...FOOTPRINT_DEFAULTS, variants, scenarios: ['small'] }, runtimes: { a: 'Node defaults', b: 'X=1' }, runs }, [a!, b!]);
  t.match(md, /\| b \| `X=1` \| 80 \| 30 \| 123 \(120-125\) \|/);
  t.match(md, /b failed 1 time\(s\): check request failed/);
  t.notMatch(md, /GC µs\/req/, 'no GC columns unless asked for');

  // With --gc: b collects more (3 µs against 2 µs per request), 1 µs over a's CPU of 50 and 100 µs.
  const gc = (young: number, pause: number, workers: number) => ({ young, full: 1, pauseUsPerRequest: pause, workerUsPerRequest: workers });
  const withGc = runs.map((r) => ({ ...r, bodies: r.bodies.map((b) => ({ ...b, gc: r.variant === 'a' ? gc(50, 1, 1) : gc(120, 2, 1) })) }));
  const [ga, gb] = summarizeFootprint(withGc, variants, ['small']);
  t.same([ga!.bodies[0]!.gcUsPerRequest.median, ga!.bodies[0]!.extraGcVsBaselineCpu.median, gb!.bodies[0]!.gcUsPerRequest.median, gb!.bodies[0]!.youngGcs.median], [2, 0, 3, 120]);
  t.same([gb!.bodies[0]!.extraGcVsBaselineCpu.min, gb!.bodies[0]!.extraGcVsBaselineCpu.max], [0.01, 0.02], 'per round, over the baseline CPU of that round (50 µs, then 100 µs)');
  const gmd = footprintMarkdown({ startedAt: 'now', seconds: 1, machine: { node: 'v24', v8: '', platform: '', kernel: 'k', cpuModel: 'cpu', cpus: 2, memGiB: 1, freeMemGiB: 1, loadavg: [0], cpuQuota: 'max' }, loadavgAfter: [0], parameters: { ...FOOTPRINT_DEFAULTS, variants, scenarios: ['small'], gc: true }, runtimes: { a: 'Node defaults', b: 'X=1' }, runs: withGc }, [ga!, gb!]);
  t.match(gmd, /\| b \| .* \| 3\.0 \(3\.0-3\.0\) \| 120 \/ 1 \| 1\.5 \(1\.0-2\.0\) \|$/m);
});

t.test('one short run through real processes: direct and the sidecar', async (t) => {
  const options: BenchOptions = {
    ...DEFAULTS,
    connections: 4,
    duration: 0.3,
    warmup: 0,
    rounds: 1, // the CLI insists on 3; one is enough to prove the harness works
    configs: ['direct', 'sidecar-key'],
    scenarios: ['small'],
    registrySizes: [10],
    reloadIterations: 1,
    nginx: false,
    wrk: false,
    setup: false, // never install packages from a test
  };
  const result = await runSuite(options);
  t.same([result.parameters, result.wrk], [options, { skipped: 'disabled with --no-wrk' }]);
  t.equal(result.machine.node, process.version);
  const noSidecar = sidecarMissing();
  for (const row of result.summary) {
    t.same([row.failures, row.rounds, row.errors], [[], 1, 0], `${row.config}: checked, measured, no errors`);
    t.ok(row.rps.median > 0 && row.p99 > 0 && row.p99 >= row.p50, `${row.config}: requests and latency`);
    t.ok(row.proc && Number.isFinite(row.proc.cpuPct) && row.proc.cpuPct >= 0 && row.proc.peakRssKiB > 0 && row.proc.peakAnonKiB > 0, `${row.config}: CPU and memory of its process`);
  }
  t.same(result.summary.map((r) => r.config), noSidecar ? ['direct'] : ['direct', 'sidecar-key']);
  t.same(result.registry && 'length' in result.registry && result.registry.map((r) => [r.entries, r.fileReloadMs.length]), [[10, 1]]);
  const md = markdown(result);
  t.match(md, /### GET, 64 B response/);
  if (noSidecar) {
    t.equal(result.skipped[0]?.reason, noSidecar);
    t.equal(result.footprint, undefined);
    return;
  }
  const fp = result.footprint!;
  t.ok(fp.idleRssKiB > 0 && fp.idleAnonKiB > 0 && fp.idleAnonKiB < fp.idleRssKiB, 'idle RSS and its private part');
  t.ok(fp.peakRssKiB >= fp.idleRssKiB, 'the peak (VmHWM since start) is never below the idle reading');
  t.equal(fp.runtime, describeRuntime(parseRuntime('image')), 'run as the image runs it');
  t.ok(result.reload && 'ms' in result.reload && result.reload.ms.length === 1, 'registry change routed');
  t.match(md, /### Sidecar footprint/);
  t.match(result.bars.find((b) => /peak RSS/.test(b.name)), { note: /4 connections/ });
});

t.test('one short footprint run with --gc: each sidecar\'s GC trace read from its output', { skip: sidecarMissing() ?? false }, async (t) => {
  // A 1 MiB semi-space collects within a fraction of a second of load, so the trace has lines to count.
  const variants = [{ name: 'a', spec: 'none' }, { name: 'b', spec: 'NODE_OPTIONS=--max-semi-space-size=1' }];
  const result = await runFootprint({ ...FOOTPRINT_DEFAULTS, variants, rounds: 2, duration: 0.5, warmup: 0.2, settle: 0, connections: 4, scenarios: ['small'], gc: true });
  t.same(result.runs.map((r) => [r.variant, r.failure]), [['a', undefined], ['b', undefined], ['b', undefined], ['a', undefined]], 'every sidecar measured, order rotated');
  t.equal(result.runtimes['b'], 'NODE_OPTIONS=--max-semi-space-size=1 --trace-gc-nvp', 'the trace flag added to the variant');
  for (const run of result.runs.filter((r) => r.variant === 'b')) {
    const gc = run.bodies[0]!.gc!;
    t.ok(gc.young > 0 && gc.pauseUsPerRequest > 0, `round ${run.round}: ${gc.young} young and ${gc.full} full collections counted from the trace`);
    t.ok(Number.isFinite(gc.workerUsPerRequest) && gc.workerUsPerRequest >= 0, 'V8 worker threads read');
  }
  const [, b] = summarizeFootprint(result.runs, variants, ['small']);
  t.equal(b!.bodies[0]!.extraGcVsBaselineCpu.n, 2, 'the extra GC paired per round');
});
