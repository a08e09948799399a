/*
 * The sidecar's memory under each runtime tuning, compared in interleaved rounds (A B, B A, ...):
 * throughput on a shared two-core machine moves by 20-50% from one minute to the next, so each
 * variant gets the same minutes. A fresh sidecar per variant and round, so that idle and peak RSS
 * are those of a process's whole life, as a pod's memory limit sees them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Binding } from './configs.ts';
import type { FootprintOptions, Variant } from './footprint-options.ts';
import { runLoad } from './load.ts';
import { machineInfo, type MachineInfo } from './machine.ts';
import { check, loadSpec } from './measure.ts';
import { DEFAULTS } from './options.ts';
import { startNodeChild } from './processes.ts';
import { cpuTime, memory, MemorySampler, resetPeak } from './procstat.ts';
import { describeRuntime, parseRuntime } from './runtime.ts';
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

export async function runFootprint(o: FootprintOptions, log: (line: string) => void = () => undefined): Promise<FootprintResult> {
  const started = Date.now();
  const machine = machineInfo();
  const cli = o.sidecar ?? sidecarCli();
  const missing = sidecarMissing(cli);
  if (missing) throw new Error(missing);
  const runtimes = new Map(o.variants.map((v) => [v.name, parseRuntime(v.spec)]));
  const list = scenarios({ ...DEFAULTS, scenarios: o.scenarios });
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
        const sidecar = await startSidecar({ cli, registry, appPort: upstream.ports['base']!, runtime: runtimes.get(variant.name)! });
        try {
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
            const before = cpuTime(sidecar.pid);
            const load = await runLoad(loadSpec(binding, s, bench, o.duration));
            const after = cpuTime(sidecar.pid);
            const mem = sampler.stop();
            const cpu = after.user + after.system - before.user - before.system;
            bodies.push({ scenario: s.id, rps: load.rps, p99: load.p99, cpuUsPerRequest: load.requests > 0 ? (cpu * 1e6) / load.requests : Number.NaN, errors: load.errors, peakRssKiB: mem.peakKiB, peakAnonKiB: mem.peakAnonKiB });
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
              (failure ?? bodies.map((b) => `${b.scenario} ${Math.round(b.rps)} req/s ${b.cpuUsPerRequest.toFixed(0)} µs/req ${(b.peakRssKiB / 1024).toFixed(0)} MiB`).join(', ')),
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
