/*
 * CPU and memory of the target processes, read from /proc so that every target is measured the
 * same way, Node or not (nginx has no process.resourceUsage).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

let clockTicks: number | undefined;

/** Kernel clock ticks per second (USER_HZ), in which /proc/<pid>/stat counts CPU time. */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may itself contain spaces or parentheses.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

export interface CpuTime {
  user: number;
  /** Kernel time: on loopback, the TCP stack of both ends of a write runs in the writer's syscall. */
  system: number;
}

/** User and system CPU seconds a process has used so far; NaN when they cannot be read. */
export function cpuTime(pid: number): CpuTime {
  const f = statFields(pid);
  if (!f) return { user: Number.NaN, system: Number.NaN };
  // After the command: state(3) ppid(4) ... utime(14) stime(15), so indexes 11 and 12 here.
  return { user: Number(f[11]) / ticksPerSecond(), system: Number(f[12]) / ticksPerSecond() };
}

/**
 * CPU seconds of this process's children that have exited and been waited for (cutime, cstime).
 * The difference across a wrk run is wrk's own CPU, exactly: targets keep running, so wrk is the
 * only child that ends in between, and a process's own /proc entry is gone once it has exited.
 */
export function exitedChildrenCpuSeconds(): number {
  // Read the tick rate first: its one-off `getconf` child must not land inside a measured window.
  const hz = ticksPerSecond();
  const f = statFields(process.pid);
  // cutime(16) and cstime(17), so indexes 13 and 14 here.
  return f ? (Number(f[13]) + Number(f[14])) / hz : Number.NaN;
}

export interface Memory {
  rssKiB: number;
  /** Peak resident set (VmHWM) since start or since the last resetPeak. */
  peakKiB: number;
  /**
   * Private memory (RssAnon): the heap, buffers, thread arenas. What each sidecar adds to a node,
   * unlike RssFile (mostly the node binary's pages, shared by every process that maps the same file).
   */
  anonKiB: number;
  fileKiB: number;
}

const NONE: Memory = { rssKiB: Number.NaN, peakKiB: Number.NaN, anonKiB: Number.NaN, fileKiB: Number.NaN };

/** The memory lines of /proc/<pid>/status; a field the kernel does not print is NaN. */
export function parseStatus(text: string): Memory {
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { rssKiB: field('VmRSS'), peakKiB: field('VmHWM'), anonKiB: field('RssAnon'), fileKiB: field('RssFile') };
}

export function memory(pid: number): Memory {
  try {
    return parseStatus(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return { ...NONE };
  }
}

/**
 * Samples a process's memory while a run lasts. VmHWM is the exact peak of the total; the kernel
 * keeps no peak of the private part, so that one is the highest sample (a lower bound).
 */
export class MemorySampler {
  #timer: NodeJS.Timeout | undefined;
  #maxAnonKiB = Number.NaN;
  readonly #pid: number;

  constructor(pid: number, intervalMs = 50) {
    this.#pid = pid;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
    this.#timer.unref();
  }

  #sample(): void {
    const anon = memory(this.#pid).anonKiB;
    if (Number.isNaN(this.#maxAnonKiB) || anon > this.#maxAnonKiB) this.#maxAnonKiB = anon;
  }

  /** Stops sampling; returns the highest private memory seen and the total's peak (VmHWM). */
  stop(): { peakKiB: number; peakAnonKiB: number } {
    clearInterval(this.#timer);
    this.#sample();
    return { peakKiB: memory(this.#pid).peakKiB, peakAnonKiB: this.#maxAnonKiB };
  }
}

/** Resets VmHWM to the current RSS (writes 5 to clear_refs), so a peak can be measured per run. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Direct children of a process (nginx's worker under its master). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (f && Number(f[1]) === pid) out.push(Number(name));
  }
  return out;
}

/** CPU seconds of the threads of `pid` whose name matches (Node names V8's workers `V8Worker`). */
export function threadCpuSeconds(pid: number, name: RegExp = /^V8/): number {
  let ticks = 0;
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return Number.NaN;
  }
  for (const tid of tasks) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended between the listing and the read
    }
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    if (!name.test(stat.slice(open + 1, close))) continue;
    const f = stat.slice(close + 2).split(' ');
    ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / ticksPerSecond();
}
