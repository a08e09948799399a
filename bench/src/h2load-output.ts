/*
 * Parses h2load's text report (nghttp2 1.4x-1.6x) and its per-request log (`--log-file`).
 * h2load prints min, max, mean and sd of the request time but no percentiles, so the percentiles
 * come from the log: one line per completed request, tab-separated start time (µs since the
 * epoch), HTTP status and duration (µs). Durations in the report carry their own unit (us, ms,
 * s), so each figure is converted on its own rather than read by position.
 */
import { percentile, Samples } from './stats.ts';

export interface H2loadOutput {
  /** The protocol h2load negotiated (`h2c`); undefined when no connection got that far. */
  protocol: string | undefined;
  /** Wall time of the measured phase, seconds. */
  seconds: number;
  rps: number;
  /** Bytes per second, all frames included. */
  bytesPerSec: number;
  /** The `requests:` line. `failed` includes `errored`: a 4xx/5xx answer or a broken stream. */
  requests: { total: number; started: number; done: number; succeeded: number; failed: number; errored: number; timeout: number };
  /** The `status codes:` line (it also counts answers that arrived after the measured phase). */
  status: { '2xx': number; '3xx': number; '4xx': number; '5xx': number };
  /** Milliseconds: the `time for request` line. */
  requestTime: { min: number; max: number; mean: number; sd: number };
}

const TIME_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000 };
const BYTES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };
const NUM = String.raw`(\d+(?:\.\d+)?)`;
const DURATION = String.raw`${NUM}(us|ms|s)`;

function ms(value: string, unit: string): number {
  return Number(value) * TIME_MS[unit]!;
}

/** Throws when the figures a run needs are not there (h2load failed, or printed something else). */
export function parseH2load(text: string): H2loadOutput {
  const finished = new RegExp(String.raw`^finished in ${DURATION}, ${NUM} req/s, ${NUM}(B|KB|MB|GB)/s\s*$`, 'm').exec(text);
  const requests = /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout\s*$/m.exec(text);
  if (!finished || !requests) throw new Error(`no "finished in" or "requests:" line in h2load's output: ${JSON.stringify(text.slice(-600))}`);
  const status = /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx\s*$/m.exec(text);
  const time = new RegExp(String.raw`^time for request:\s+${DURATION}\s+${DURATION}\s+${DURATION}\s+${DURATION}`, 'm').exec(text);
  const n = (m: RegExpExecArray | null, i: number) => Number(m?.[i] ?? 0);
  return {
    protocol: /^Application protocol: (\S+)\s*$/m.exec(text)?.[1],
    seconds: ms(finished[1]!, finished[2]!) / 1000,
    rps: Number(finished[3]),
    bytesPerSec: Number(finished[4]) * BYTES[finished[5]!]!,
    requests: { total: n(requests, 1), started: n(requests, 2), done: n(requests, 3), succeeded: n(requests, 4), failed: n(requests, 5), errored: n(requests, 6), timeout: n(requests, 7) },
    status: { '2xx': n(status, 1), '3xx': n(status, 2), '4xx': n(status, 3), '5xx': n(status, 4) },
    requestTime: time
      ? { min: ms(time[1]!, time[2]!), max: ms(time[3]!, time[4]!), mean: ms(time[5]!, time[6]!), sd: ms(time[7]!, time[8]!) }
      : { min: Number.NaN, max: Number.NaN, mean: Number.NaN, sd: Number.NaN },
  };
}

export interface H2loadLog {
  requests: number;
  /** Milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Requests by HTTP status (h2load logs -1 for a stream that ended without one). */
  statuses: Record<string, number>;
}

export function parseH2loadLog(text: string): H2loadLog {
  const samples = new Samples();
  const statuses: Record<string, number> = {};
  let at = 0;
  while (at < text.length) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    const line = text.slice(at, nl);
    at = nl + 1;
    if (line.trim() === '') continue;
    const [, status, duration] = line.split('\t');
    const us = Number(duration);
    if (status === undefined || !Number.isFinite(us)) throw new Error(`h2load log line is not "start<TAB>status<TAB>duration": ${JSON.stringify(line.slice(0, 100))}`);
    statuses[status] = (statuses[status] ?? 0) + 1;
    samples.push(us / 1000);
  }
  const sorted = samples.sorted();
  return { requests: sorted.length, p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: percentile(sorted, 100), statuses };
}
