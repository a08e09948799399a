/*
 * The sidecar's memory under each runtime tuning, compared in interleaved rounds (A B, B A, ...):
 * throughput on a shared two-core machine moves by 20-50% from one minute to the next, so each
 * variant gets the same minutes. A fresh sidecar per variant and round, so that idle and peak RSS
 * are those of a process's whole life, as a pod's memory limit sees them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Binding } from './configs.ts';
import type { FootprintOptions, Variant } from './footprint-options.ts';
import { runLoad } from './load.ts';
import { machineInfo, type MachineInfo } from './machine.ts';
import { check, loadSpec } from './measure.ts';
import { DEFAULTS } from './options.ts';
import { startNodeChild } from './processes.ts';
import { GcWindow } from './gc-trace.ts';
import { cpuTime, memory, MemorySampler, resetPeak, threadCpuSeconds } from './procstat.ts';
import { describeRuntime, parseRuntime, type Runtime } from './runtime.ts';
import { scenarios, type Scenario } from './scenarios.ts';
import { maxOf } from './stats.ts';
import { sidecarCli, sidecarMissing, startSidecar, writeRegistry } from './sidecar.ts';

export interface BodyRun {
  scenario: Scenario['id'];
  rps: number;
  /** Milliseconds. */
  p99: number;
  cpuUsPerRequest: number;
  errors: number;
  /** VmHWM over this body's warm-up and measured load. */
  peakRssKiB: number;
  peakAnonKiB: number;
  /**
   * Share of the machine's CPU (0-1) that other processes (and the hypervisor's steal) used while
   * this body was measured: how disturbed the figure is. Absent where /proc/stat cannot be read.
   */
  otherCpu?: number;
  /** With --gc: collections during the measured seconds and their cost per request. */
  gc?: BodyGc;
}

export interface BodyGc {
  young: number;
  full: number;
  /** Main-thread GC pauses, µs per request. */
  pauseUsPerRequest: number;
  /** CPU of V8's worker threads, µs per request. */
  workerUsPerRequest: number;
}

export interface VariantRun {
  variant: string;
  round: number;
  position: number;
  loadavg1: number;
  idleRssKiB: number;
  idleAnonKiB: number;
  /** VmHWM over the whole life: start, idle and every body. */
  peakRssKiB: number;
  peakAnonKiB: number;
  bodies: BodyRun[];
  failure: string | undefined;
}

export interface FootprintResult {
  startedAt: string;
  seconds: number;
  machine: MachineInfo;
  loadavgAfter: number[];
  parameters: FootprintOptions;
  /** Each variant's runtime as a report line. */
  runtimes: Record<string, string>;
  runs: VariantRun[];
}

const KEY = 'feature1';

let clockTicks: number | undefined;

/** CPU seconds the whole machine has been busy (steal included), from /proc/stat; NaN if unreadable. */
function machineBusySeconds(): number {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / clockTicks;
  } catch {
    return Number.NaN;
  }
}

/** Binds every thread of a process to CPUs; threads it starts later inherit the binding. */
/** The variant's runtime with V8's GC trace on node's command line, when asked for. */
export function withGcTrace(runtime: Runtime, on: boolean): Runtime {
  return on && !runtime.nodeArgs.includes('--trace-gc-nvp') ? { ...runtime, nodeArgs: [...runtime.nodeArgs, '--trace-gc-nvp'] } : runtime;
}

function pinProcess(pid: number, cpus: string): void {
  try {
    execFileSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
  } catch (error) {
    throw new Error(`--pin: taskset -a -cp ${cpus} ${pid} failed: ${(error as Error).message}`);
  }
}

export async function runFootprint(o: FootprintOptions, log: (line: string) => void = () => undefined): Promise<FootprintResult> {
  const started = Date.now();
  const machine = machineInfo();
  const cli = o.sidecar ?? sidecarCli();
  const missing = sidecarMissing(cli);
  if (missing) throw new Error(missing);
  const runtimes = new Map(o.variants.map((v) => [v.name, withGcTrace(parseRuntime(v.spec), o.gc)]));
  const list = scenarios({ ...DEFAULTS, scenarios: o.scenarios });
  const [harnessCpus, sidecarCpus] = o.pin?.split('/') ?? [];
  // Before the upstream starts, so that it inherits the harness's CPUs.
  if (harnessCpus !== undefined) pinProcess(process.pid, harnessCpus);
  const tmp = mkdtempSync(join(tmpdir(), 'devstack-footprint-'));
  const upstream = await startNodeChild('upstream', 'upstream.ts', { lanes: ['base', KEY] });
  const runs: VariantRun[] = [];
  try {
    const registry = join(tmp, 'registry.yaml');
    writeRegistry(registry, { base: upstream.ports['base']!, features: { [KEY]: upstream.ports[KEY]! } });
    const bench = { ...DEFAULTS, connections: o.connections };
    for (let round = 1; round <= o.rounds; round++) {
      for (let position = 0; position < o.variants.length; position++) {
        const variant: Variant = o.variants[(position + round - 1) % o.variants.length]!;
        const base = { variant: variant.name, round, position, loadavg1: loadavg()[0]! };
        // The inbound listener is not loaded here; any port satisfies --app-port.
        const gcWindow = new GcWindow();
        const sidecar = await startSidecar({ cli, registry, appPort: upstream.ports['base']!, runtime: runtimes.get(variant.name)!, onLine: (line) => gcWindow.line(line) });
        try {
          if (sidecarCpus !== undefined) pinProcess(sidecar.pid, sidecarCpus);
          await new Promise((r) => setTimeout(r, o.settle * 1000));
          const idle = memory(sidecar.pid);
          const binding: Binding = { id: 'sidecar-key', port: sidecar.ports['outbound']!, headers: { host: 'upstream', 'uber-ctx-key': KEY }, expectUpstream: KEY, expectLane: KEY, procs: [] };
          const bodies: BodyRun[] = [];
          let failure: string | undefined;
          for (const s of list) {
            failure = await check(binding, s);
            if (failure) break;
            resetPeak(sidecar.pid);
            const sampler = new MemorySampler(sidecar.pid);
            if (o.warmup > 0) await runLoad(loadSpec(binding, s, bench, o.warmup));
            // The first reading starts getconf, which must not count as other load.
            machineBusySeconds();
            const start = { at: performance.now(), busy: machineBusySeconds(), harness: process.cpuUsage(), upstream: cpuTime(upstream.pid) };
            const before = cpuTime(sidecar.pid);
            const workersBefore = o.gc ? threadCpuSeconds(sidecar.pid) : 0;
            gcWindow.open();
            const load = await runLoad(loadSpec(binding, s, bench, o.duration));
            const after = cpuTime(sidecar.pid);
            const workers = o.gc ? threadCpuSeconds(sidecar.pid) - workersBefore : 0;
            const harness = process.cpuUsage(start.harness);
            const up = cpuTime(upstream.pid);
            const busy = machineBusySeconds() - start.busy;
            const mem = sampler.stop();
            const cpu = after.user + after.system - before.user - before.system;
            const own = cpu + (harness.user + harness.system) / 1e6 + (up.user + up.system - start.upstream.user - start.upstream.system);
            const otherCpu = Math.min(1, Math.max(0, (busy - own) / (((performance.now() - start.at) / 1000) * availableParallelism())));
            // The trace line of a collection that ended just before the load did may still be on its way.
            if (o.gc) await new Promise((r) => setTimeout(r, 50));
            const collected = gcWindow.close();
            const perRequest = (seconds: number) => (load.requests > 0 ? (seconds * 1e6) / load.requests : Number.NaN);
            const gc: BodyGc | undefined = o.gc ? { young: collected.young, full: collected.full, pauseUsPerRequest: perRequest(collected.pauseMs / 1000), workerUsPerRequest: perRequest(workers) } : undefined;
            bodies.push({ scenario: s.id, rps: load.rps, p99: load.p99, cpuUsPerRequest: perRequest(cpu), errors: load.errors, peakRssKiB: mem.peakKiB, peakAnonKiB: mem.peakAnonKiB, ...(Number.isFinite(otherCpu) ? { otherCpu } : {}), ...(gc ? { gc } : {}) });
          }
          const run: VariantRun = {
            ...base,
            idleRssKiB: idle.rssKiB,
            idleAnonKiB: idle.anonKiB,
            peakRssKiB: maxOf([idle.peakKiB, ...bodies.map((b) => b.peakRssKiB)]),
            peakAnonKiB: maxOf([idle.anonKiB, ...bodies.map((b) => b.peakAnonKiB)]),
            bodies,
            failure,
          };
          runs.push(run);
          log(
            `round ${round} ${variant.name}: idle ${(run.idleRssKiB / 1024).toFixed(0)} MiB, peak ${(run.peakRssKiB / 1024).toFixed(0)} MiB; ` +
              (failure ?? bodies.map((b) => `${b.scenario} ${Math.round(b.rps)} req/s ${b.cpuUsPerRequest.toFixed(0)} µs/req ${(b.peakRssKiB / 1024).toFixed(0)} MiB${b.otherCpu === undefined ? '' : ` (other ${(b.otherCpu * 100).toFixed(0)}%)`}`).join(', ')),
          );
        } finally {
          await sidecar.stop();
        }
      }
    }
  } finally {
    await upstream.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  return {
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    machine,
    loadavgAfter: loadavg().map((v) => Math.round(v * 100) / 100),
    parameters: o,
    runtimes: Object.fromEntries([...runtimes].map(([name, r]) => [name, describeRuntime(r)])),
    runs,
  };
}
