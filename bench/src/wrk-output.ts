/*
 * Parses wrk's text report (wrk 4, `--latency`). The lines wrk prints depend on what happened:
 * the socket error and non-2xx lines appear only when their counts are not zero, and every
 * duration carries its own unit (us, ms, s, then m, h), so each figure is matched on its own and
 * converted, rather than read by position.
 */

export interface WrkOutput {
  requests: number;
  /** Wall time wrk measured over, seconds. */
  seconds: number;
  rps: number;
  /** Milliseconds: the `Latency` line of the thread stats. */
  latency: { avg: number; stdev: number; max: number };
  /** Milliseconds by percentile (wrk prints 50, 75, 90 and 99). */
  percentiles: Record<string, number>;
  errors: { connect: number; read: number; write: number; timeout: number; status: number };
  /** Response bytes per second. */
  transferPerSec: number;
}

const TIME_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const BYTES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
const DURATION = String.raw`(\d+(?:\.\d+)?)(us|ms|s|m|h)`;

function ms(value: string, unit: string): number {
  return Number(value) * TIME_MS[unit]!;
}

/** Throws when the figures the cross-check needs are not there (wrk failed, or printed something else). */
export function parseWrk(text: string): WrkOutput {
  const rps = /^\s*Requests\/sec:\s+(\d+(?:\.\d+)?)\s*$/m.exec(text);
  const total = new RegExp(String.raw`^\s*(\d+) requests in ${DURATION},`, 'm').exec(text);
  if (!rps || !total) throw new Error(`no "Requests/sec" or "N requests in T" line in wrk's output: ${JSON.stringify(text.slice(0, 500))}`);

  const percentiles: Record<string, number> = {};
  const block = /^\s*Latency Distribution\s*$([\s\S]*?)^\s*\d+ requests in/m.exec(text);
  if (block) {
    for (const m of block[1]!.matchAll(new RegExp(String.raw`^\s*(\d+(?:\.\d+)?)%\s+${DURATION}\s*$`, 'gm'))) {
      percentiles[String(Number(m[1]))] = ms(m[2]!, m[3]!);
    }
  }
  for (const p of ['50', '90', '99']) {
    if (percentiles[p] === undefined) throw new Error(`no ${p}% line in wrk's latency distribution (was --latency passed?)`);
  }

  const stats = new RegExp(String.raw`^\s*Latency\s+${DURATION}\s+${DURATION}\s+${DURATION}`, 'm').exec(text);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const status = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const transfer = /^\s*Transfer\/sec:\s+(\d+(?:\.\d+)?)(B|KB|MB|GB|TB)\s*$/m.exec(text);
  return {
    requests: Number(total[1]),
    seconds: ms(total[2]!, total[3]!) / 1000,
    rps: Number(rps[1]),
    latency: stats
      ? { avg: ms(stats[1]!, stats[2]!), stdev: ms(stats[3]!, stats[4]!), max: ms(stats[5]!, stats[6]!) }
      : { avg: Number.NaN, stdev: Number.NaN, max: Number.NaN },
    percentiles,
    errors: {
      connect: Number(socket?.[1] ?? 0),
      read: Number(socket?.[2] ?? 0),
      write: Number(socket?.[3] ?? 0),
      timeout: Number(socket?.[4] ?? 0),
      status: Number(status?.[1] ?? 0),
    },
    transferPerSec: transfer ? Number(transfer[1]) * BYTES[transfer[2]!]! : Number.NaN,
  };
}
