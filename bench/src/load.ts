/*
 * One measured run: autocannon against one target for a fixed time, with every response's
 * latency kept (sub-millisecond resolution) and every response's lane checked, so a proxy that
 * answers fast but routes wrong shows up as errors rather than as a good number.
 */
import autocannon from 'autocannon';
import type { EventEmitter } from 'node:events';
import { request } from 'node:http';
import { Samples, percentile } from './stats.ts';

export interface LoadSpec {
  port: number;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  connections: number;
  /** Seconds. */
  duration: number;
  pipelining: number;
  /** The `x-upstream` value every response must carry. */
  expectUpstream: string;
}

/** What one load run achieved, whichever client made it. */
export interface LoadFigures {
  requests: number;
  seconds: number;
  rps: number;
  /** Milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Requests that went wrong; what counts as wrong is up to the client (see each result). */
  errors: number;
}

export interface LoadResult extends LoadFigures {
  /** Socket errors + timeouts + non-2xx answers + answers from the wrong lane. */
  errors: number;
  errorDetail: { socket: number; timeouts: number; non2xx: number; wrongLane: number };
  /** Response bytes per second. */
  throughput: number;
}

const UPSTREAM_HEADER = 'x-upstream';

export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const latencies = new Samples();
  let wrongLane = 0;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: `http://127.0.0.1:${spec.port}${spec.path}`,
        method: spec.method,
        headers: { ...spec.headers, ...(spec.body ? { 'content-type': 'application/octet-stream' } : {}) },
        ...(spec.body ? { body: spec.body } : {}),
        connections: spec.connections,
        duration: spec.duration,
        pipelining: spec.pipelining,
        timeout: 10,
        // autocannon checks for the end of a run once per sample: 1 s by default, which rounds
        // every duration up to whole seconds. Rates are computed from totals, not samples.
        sampleInt: 100,
        setupClient: (client) => {
          // At run time the event carries the parser's raw header list [name, value, ...] (the
          // typings say a header object, which autocannon 8 does not emit).
          (client as unknown as EventEmitter).on('headers', (info: { headers: string[] }) => {
            const h = info.headers;
            for (let i = 0; i < h.length; i += 2) {
              if (h[i]!.length === UPSTREAM_HEADER.length && h[i]!.toLowerCase() === UPSTREAM_HEADER) {
                if (h[i + 1] !== spec.expectUpstream) wrongLane++;
                return;
              }
            }
            wrongLane++;
          });
        },
      },
      (error, result) => {
        if (error) return reject(error);
        const sorted = latencies.sorted();
        const seconds = result.duration;
        const errorDetail = { socket: result.errors, timeouts: result.timeouts, non2xx: result.non2xx, wrongLane };
        resolve({
          requests: result.requests.total,
          seconds,
          rps: result.requests.total / seconds,
          p50: percentile(sorted, 50),
          p90: percentile(sorted, 90),
          p99: percentile(sorted, 99),
          max: percentile(sorted, 100),
          errors: errorDetail.socket + errorDetail.timeouts + errorDetail.non2xx + errorDetail.wrongLane,
          errorDetail,
          throughput: result.throughput.average,
        });
      },
    );
    instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => latencies.push(responseTime));
  });
}

export interface ProbeAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with node:http (fetch cannot set Host), to check a target before loading it. */
export function probe(port: number, method: string, path: string, headers: Record<string, string>, body?: Buffer, timeoutMs = 5000): Promise<ProbeAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        // Only the start of the body is kept: an error body is short, a payload is not needed.
        if (size < 4096) chunks.push(c);
        size += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8').slice(0, 4096) }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
