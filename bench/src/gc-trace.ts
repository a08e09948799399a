/*
 * What V8's garbage collector cost a process, from two sources that need no change to it:
 * `--trace-gc-nvp` lines on its stdout (one per collection, with the main-thread pause) and the CPU
 * of its V8 worker threads in /proc (parallel scavenging, concurrent marking and sweeping; also the
 * optimizing compiler, which is quiet once a warmed-up process serves a steady load).
 *
 * Whole-process CPU per request moves by a fifth from minute to minute on a shared VM, so two
 * runtime settings of the same code are compared on this instead: what they differ in is the GC.
 */
export interface GcEvent {
  /** `s` scavenge, `ms` minor mark-sweep, `mc` mark-compact, `mmc` memory-reducing mark-compact. */
  kind: string;
  pauseMs: number;
}

/** One `--trace-gc-nvp` line, e.g. `[123:0x...]  54 ms: pause=1.4 mutator=49.6 gc=s ...`; undefined for any other line. */
export function parseGcLine(line: string): GcEvent | undefined {
  const pause = /\bpause=([0-9.]+)/.exec(line);
  const kind = /\bgc=([a-z]+)/.exec(line);
  if (!pause || !kind) return undefined;
  return { kind: kind[1]!, pauseMs: Number(pause[1]) };
}

export interface GcTotals {
  young: number;
  full: number;
  pauseMs: number;
}

const YOUNG = new Set(['s', 'ms']);

/** Counts the collections whose lines arrive while it is open. */
export class GcWindow {
  #open = false;
  #totals: GcTotals = { young: 0, full: 0, pauseMs: 0 };

  /** Feed every stdout line of the process here. */
  line(line: string): void {
    if (!this.#open) return;
    const event = parseGcLine(line);
    if (event === undefined) return;
    if (YOUNG.has(event.kind)) this.#totals.young++;
    else this.#totals.full++;
    this.#totals.pauseMs += event.pauseMs;
  }

  open(): void {
    this.#totals = { young: 0, full: 0, pauseMs: 0 };
    this.#open = true;
  }

  close(): GcTotals {
    this.#open = false;
    return this.#totals;
  }
}
