/** What a result was measured on: without it a number cannot be compared with another. */
import { cpus, freemem, loadavg, release, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';

export interface MachineInfo {
  node: string;
  v8: string;
  platform: string;
  kernel: string;
  cpuModel: string;
  cpus: number;
  memGiB: number;
  freeMemGiB: number;
  loadavg: number[];
  /** cgroup CPU limit if one applies (`max` when none). */
  cpuQuota: string;
}

function cpuQuota(): string {
  try {
    return readFileSync('/sys/fs/cgroup/cpu.max', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform}-${process.arch}`,
    kernel: release(),
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cpus: list.length,
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    freeMemGiB: Math.round((freemem() / 2 ** 30) * 10) / 10,
    loadavg: loadavg().map((v) => Math.round(v * 100) / 100),
    cpuQuota: cpuQuota(),
  };
}

/** What every results file starts with: when the run was, on what, with which parameters and software. */
export interface RunStamp<P> {
  startedAt: string;
  finishedAt: string;
  seconds: number;
  /** Read before the run: its load average is the one the run started under. */
  machine: MachineInfo;
  loadavgAfter: number[];
  parameters: P;
  software: Record<string, string>;
}

/** Taken at the end of the run. */
export function runStamp<P>(started: number, machine: MachineInfo, parameters: P, software: Record<string, string>): RunStamp<P> {
  return {
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date().toISOString(),
    seconds: (Date.now() - started) / 1000,
    machine,
    loadavgAfter: machineInfo().loadavg,
    parameters,
    software,
  };
}
