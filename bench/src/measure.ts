/** One measured run of one configuration: the load result plus its processes' CPU and memory. */
import { loadavg } from 'node:os';
import type { Binding } from './configs.ts';
import { probe, runLoad, type LoadResult, type LoadSpec } from './load.ts';
import type { BenchOptions } from './options.ts';
import { cpuTime, MemorySampler, resetPeak } from './procstat.ts';
import type { Scenario } from './scenarios.ts';

export interface ProcUsage {
  pid: number;
  /** CPU time over wall time, in percent of one core. */
  cpuPct: number;
  /** The kernel's part of cpuPct. */
  systemPct: number;
  /** CPU time per completed request, in microseconds. */
  cpuUsPerRequest: number;
  /** Peak RSS during the run when the peak could be reset before it, else since the process started. */
  peakRssKiB: number;
  /** Highest private memory (RssAnon) sampled during the run. */
  peakAnonKiB: number;
}

export interface RunRecord {
  round: number;
  scenario: Scenario['id'];
  config: Binding['id'];
  /** Position of this configuration within its round and body (orders are rotated across rounds). */
  position: number;
  load: LoadResult | undefined;
  /** Why the run did not happen or did not finish: the check request before it failed, or the load generator did. */
  failure: string | undefined;
  usage: Record<string, ProcUsage>;
  /** The load generator's own CPU, to show when the client is the bottleneck. */
  clientCpuPct: number;
  peakIsPerRun: boolean;
  loadavg1: number;
}

/** Sends one request the way the load will and checks status, lane and body before measuring. */
export async function check(b: Binding, s: Scenario): Promise<string | undefined> {
  try {
    const answer = await probe(b.port, s.method, s.path, b.headers, s.body);
    if (answer.status !== 200) return `check request answered ${answer.status}: ${answer.body.slice(0, 300)}`;
    const upstream = answer.headers['x-upstream'];
    if (upstream !== b.expectUpstream) return `check request reached lane ${JSON.stringify(upstream)}, expected ${JSON.stringify(b.expectUpstream)}`;
    const lane = answer.headers['x-devstack-lane'];
    if (b.expectLane !== undefined && lane !== b.expectLane) return `x-devstack-lane was ${JSON.stringify(lane)}, expected ${JSON.stringify(b.expectLane)}`;
    if (s.body) {
      const received = (JSON.parse(answer.body) as { received?: number }).received;
      if (received !== s.body.length) return `upstream received ${received} of ${s.body.length} body bytes`;
    }
    return undefined;
  } catch (error) {
    return `check request failed: ${(error as Error).message}`;
  }
}

export function loadSpec(b: Binding, s: Scenario, o: BenchOptions, duration: number): LoadSpec {
  return {
    port: b.port,
    method: s.method,
    path: s.path,
    headers: b.headers,
    ...(s.body ? { body: s.body } : {}),
    connections: o.connections,
    duration,
    pipelining: o.pipelining,
    expectUpstream: b.expectUpstream,
  };
}

/** The load itself: what it achieved and the CPU seconds the load generator spent on it. */
export type Runner = (spec: LoadSpec) => Promise<{ load: LoadResult; clientCpuSeconds: number }>;

/** autocannon in this process: its CPU is this process's. */
export const autocannonRunner: Runner = async (spec) => {
  const client = process.cpuUsage();
  const load = await runLoad(spec);
  const used = process.cpuUsage(client);
  return { load, clientCpuSeconds: (used.user + used.system) / 1e6 };
};

/** The CPU and memory of a run's processes, from just before its load to just after it. */
export interface UsageWatch {
  /** False when a process's peak could not be reset: its peak then counts from its start. */
  peakIsPerRun: boolean;
  /** The load failed: stop sampling, nothing to report. */
  cancel(): void;
  finish(wallSeconds: number, requests: number): Record<string, ProcUsage>;
}

export function watchUsage(procs: readonly { role: string; pid: number }[]): UsageWatch {
  let peakIsPerRun = true;
  const before = procs.map((p) => {
    peakIsPerRun = resetPeak(p.pid) && peakIsPerRun;
    return cpuTime(p.pid);
  });
  const samplers = procs.map((p) => new MemorySampler(p.pid));
  return {
    peakIsPerRun,
    cancel: () => {
      for (const sampler of samplers) sampler.stop();
    },
    finish: (wall, requests) => {
      const usage: Record<string, ProcUsage> = {};
      procs.forEach((p, i) => {
        const after = cpuTime(p.pid);
        const mem = samplers[i]!.stop();
        const system = after.system - before[i]!.system;
        const cpu = after.user - before[i]!.user + system;
        usage[p.role] = {
          pid: p.pid,
          cpuPct: (cpu / wall) * 100,
          systemPct: (system / wall) * 100,
          cpuUsPerRequest: requests > 0 ? (cpu * 1e6) / requests : Number.NaN,
          peakRssKiB: mem.peakKiB,
          peakAnonKiB: mem.peakAnonKiB,
        };
      });
      return usage;
    },
  };
}

export async function measure(b: Binding, s: Scenario, o: BenchOptions, round: number, position: number, run: Runner = autocannonRunner, duration = o.duration): Promise<RunRecord> {
  const base = { round, scenario: s.id, config: b.id, position, loadavg1: loadavg()[0]! };
  const failure = await check(b, s);
  if (failure) return { ...base, load: undefined, failure, usage: {}, clientCpuPct: Number.NaN, peakIsPerRun: false };
  const watch = watchUsage(b.procs);
  const started = performance.now();
  let result;
  try {
    result = await run(loadSpec(b, s, o, duration));
  } catch (error) {
    watch.cancel();
    return { ...base, load: undefined, failure: (error as Error).message, usage: {}, clientCpuPct: Number.NaN, peakIsPerRun: false };
  }
  const { load, clientCpuSeconds } = result;
  const wall = (performance.now() - started) / 1000;
  const usage = watch.finish(wall, load.requests);
  return { ...base, load, failure: undefined, usage, clientCpuPct: (clientCpuSeconds / wall) * 100, peakIsPerRun: watch.peakIsPerRun };
}
