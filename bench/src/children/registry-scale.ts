/*
 * Registry scale, in its own process started with --expose-gc so that memory is measured on a
 * quiet heap: for each size N of (service, key) entries, the snapshot build time and retained
 * heap, the YAML parse + build time, the cost of one `resolve` call, and the time from a write of
 * the registry file to the FileSource publishing the new snapshot.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSnapshot, resolve, type RegistryInput, type Snapshot } from '@devstack/core';
import { FileSource, parseRegistry } from '@devstack/registry-file';
import { median } from '../stats.ts';
import { settings } from './ipc.ts';

export interface ScaleResult {
  entries: number;
  services: number;
  keysPerService: number;
  buildMs: number;
  retainedBytes: number;
  bytesPerEntry: number;
  yamlBytes: number;
  parseAndBuildMs: number;
  resolveNs: number;
  /** The spread of resolve timings across repetitions (min and max, ns per call). */
  resolveNsRange: [number, number];
  /** The same over a hot set of 64 lookups. */
  resolveHotNs: number;
  fileReloadMs: number[];
}

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

/** services x keys = entries, as square as the divisors allow: thousands of each at 100 000. */
export function layout(entries: number): [number, number] {
  for (let s = Math.floor(Math.sqrt(entries)); s >= 1; s--) if (entries % s === 0) return [s, entries / s];
  return [1, entries];
}

function input(services: number, keys: number, extraKey?: string): RegistryInput {
  const out: Record<string, { base: string; features: Record<string, string> }> = {};
  for (let s = 0; s < services; s++) {
    const features: Record<string, string> = {};
    for (let k = 0; k < keys; k++) features[`key-${k}`] = `http://127.0.0.1:${20000 + ((s * keys + k) % 40000)}`;
    if (extraKey && s === 0) features[extraKey] = 'http://127.0.0.1:19999';
    out[`svc-${s}`] = { base: `http://127.0.0.1:${10000 + (s % 10000)}`, features };
  }
  return { services: out };
}

function yaml(reg: RegistryInput): string {
  const lines = ['services:'];
  for (const [name, svc] of Object.entries(reg.services)) {
    lines.push(`  ${name}:`, `    base: ${svc.base as string}`, '    features:');
    for (const [key, url] of Object.entries(svc.features ?? {})) lines.push(`      ${key}: ${url as string}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * ns per `resolve` call over a fixed pool of lookups: 80 % a feature copy that exists, 10 % no
 * key (base), 10 % a key nobody has (base). With `pool` = 16 384 the lookups spread over the whole
 * registry (worst case: no locality, so bigger maps also cost cache misses); with 64 they stay on
 * a hot set, as real traffic mostly does, and isolate the algorithmic cost.
 */
function timeResolve(snapshot: Snapshot, services: number, keys: number, pool: number): number[] {
  const POOL = pool;
  const svc: string[] = [];
  const key: (string | undefined)[] = [];
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < POOL; i++) {
    svc.push(`svc-${rand(services)}`);
    const r = rand(10);
    key.push(r === 0 ? undefined : r === 1 ? `absent-${rand(100)}` : `key-${rand(keys)}`);
  }
  const CALLS = 1_000_000;
  let sink = 0;
  const out: number[] = [];
  for (let rep = 0; rep < 8; rep++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < CALLS; i++) sink += resolve(snapshot, svc[i & (POOL - 1)]!, key[i & (POOL - 1)]).reason.length;
    const ns = Number(process.hrtime.bigint() - t) / CALLS;
    if (rep > 0) out.push(ns); // the first repetition is the JIT warm-up
  }
  if (sink === -1) process.stdout.write(''); // keeps the loop from being optimised away
  return out;
}

async function fileReload(text: string, changed: string, iterations: number, entries: number): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), 'devstack-bench-registry-'));
  const path = join(dir, 'registry.yaml');
  writeFileSync(path, text);
  const source = new FileSource({ path, persistent: false });
  await source.start();
  const out: number[] = [];
  try {
    for (let i = 0; i < iterations; i++) {
      // The watcher is not persistent and the debounce timer is unref'd: this ref'd timer keeps
      // the process alive while waiting, and bounds the wait.
      let timer: NodeJS.Timeout | undefined;
      const next = new Promise<void>((res, rej) => {
        timer = setTimeout(() => rej(new Error(`FileSource did not publish within 30 s (${entries} entries)`)), 30_000);
        const off = source.subscribe(() => {
          off();
          clearTimeout(timer);
          res();
        });
      });
      const started = performance.now();
      writeFileSync(path, i % 2 === 0 ? changed : text);
      await next;
      out.push(performance.now() - started);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await source.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

async function measure(entries: number, reloadIterations: number): Promise<ScaleResult> {
  const [services, keys] = layout(entries);
  const reg = input(services, keys);
  const builds: number[] = [];
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  let kept: Snapshot | undefined;
  for (let i = 0; i < 3; i++) {
    kept = undefined;
    gc();
    const t = performance.now();
    kept = buildSnapshot(reg, { source: 'bench' });
    builds.push(performance.now() - t);
  }
  gc();
  const retainedBytes = process.memoryUsage().heapUsed - heapBefore;
  const ns = timeResolve(kept!, services, keys, 1 << 14);
  const hot = timeResolve(kept!, services, keys, 64);
  const text = yaml(reg);
  const t = performance.now();
  parseRegistry(text, { source: 'bench' });
  const parseAndBuildMs = performance.now() - t;
  const changed = yaml(input(services, keys, 'reload-key'));
  // Big registries take seconds per parse: fewer file reloads there.
  const iterations = entries > 10_000 ? Math.min(2, reloadIterations) : reloadIterations;
  const fileReloadMs = iterations > 0 ? await fileReload(text, changed, iterations, entries) : [];
  return {
    entries,
    services,
    keysPerService: keys,
    buildMs: median(builds),
    retainedBytes,
    bytesPerEntry: retainedBytes / entries,
    yamlBytes: Buffer.byteLength(text),
    parseAndBuildMs,
    resolveNs: median(ns),
    resolveNsRange: [Math.min(...ns), Math.max(...ns)],
    resolveHotNs: median(hot),
    fileReloadMs,
  };
}

const { sizes = [10, 1000], reloadIterations = 5 } = settings<{ sizes?: number[]; reloadIterations?: number }>();
const results: ScaleResult[] = [];
for (const size of sizes) results.push(await measure(size, reloadIterations));
if (process.send) process.send({ type: 'result', results }, () => process.exit(0));
else process.stdout.write(`${JSON.stringify(results, null, 2)}\n`); // run by hand
